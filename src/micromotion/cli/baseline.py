"""``micromotion baseline sefa|ganspace``: the paper's baselines as micromotion files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from micromotion.cli._common import device_option, generator_option
from micromotion.cli._progress import run_job
from micromotion.core.seeds import MAX_SEED


def _common(func: Any) -> Any:
    """``--generator``, ``--component``, ``--layers``, ``--name``, ``-o``, ``--device``."""
    options = [
        generator_option,
        click.option(
            "--component",
            type=click.IntRange(0),
            default=0,
            show_default=True,
            metavar="K",
            help="Which direction, 0 = the strongest.",
        ),
        click.option(
            "--layers",
            default=None,
            metavar="LIST",
            help="W+ entries the edit moves, e.g. 0-7  [default: all]",
        ),
        click.option("--name", default=None, help="Name to record (default: the output's stem)."),
        click.option(
            "-o",
            "--output",
            required=True,
            type=click.Path(dir_okay=False, path_type=Path),
            metavar="OUT.safetensors",
        ),
        device_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group()
def baseline() -> None:
    """Baseline directions (SeFa, GANSpace) as micromotion files that `apply` takes."""


@baseline.command("sefa")
@_common
@click.option(
    "--normalize/--no-normalize",
    default=True,
    show_default=True,
    help="Unit-norm each style channel's affine weight first, as SeFa's code does.",
)
@click.option(
    "--include-torgb", is_flag=True, help="Factorise the ToRGB affines too (SeFa: convs only)."
)
def sefa_cmd(**job: Any) -> None:
    """SeFa (Shen & Zhou 2021): the K-th eigenvector of AᵀA, A the chosen layers' affines.

    Unit norm on each chosen layer: --strength 3 in `apply` moves each by 3.
    """
    from micromotion.pipelines.baselines import sefa_direction

    found = sefa_direction(**job)
    _echo(found.micromotion, found.files["micromotion"], "eigenvalue")


@baseline.command("ganspace")
@_common
@click.option(
    "--samples",
    type=click.IntRange(2),
    default=100_000,
    show_default=True,
    help="z samples mapped to w for the PCA.",
)
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@click.option(
    "--scale",
    type=click.Choice(["std", "unit"]),
    default="std",
    show_default=True,
    help="std: strength 1 is one standard deviation of w along the component; unit: norm 1.",
)
def ganspace_cmd(**job: Any) -> None:
    """GANSpace (Härkönen et al. 2020): the K-th principal component of w, on the chosen layers."""
    from micromotion.pipelines.baselines import ganspace_direction

    found = run_job(ganspace_direction, unit="batch", **job)
    _echo(found.micromotion, found.files["micromotion"], "variance")


def _echo(mm: Any, path: Path, value: str) -> None:
    meta = mm.metadata
    click.echo(
        f"wrote {path} ({meta['method']} component {meta['component']}, {value} "
        f"{meta[value]:.4g}, {100 * meta['explained']:.1f}% of the total, "
        f"layers {meta['layers']}, |d| = {mm.norm:.4g})"
    )
