"""``micromotion baseline sefa|ganspace|interfacegan``: baselines as micromotion files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from micromotion.cli._common import (
    clip_option,
    device_option,
    file_option,
    generator_option,
    truncation_option,
)
from micromotion.cli._progress import run_job
from micromotion.core.defaults import DEFAULT_CLIP
from micromotion.core.seeds import MAX_SEED


def _common(func: Any, *, component: bool = True) -> Any:
    """``--generator``, ``--component``, ``--layers``, ``--name``, ``-o``, ``--device``."""
    options: list[Any] = [generator_option]
    if component:
        options.append(
            click.option(
                "--component",
                type=click.IntRange(0),
                default=0,
                show_default=True,
                metavar="K",
                help="Which direction, 0 = the strongest.",
            )
        )
    options += [
        click.option(
            "--layers",
            default=None,
            metavar="LIST",
            help="W+ entries the edit moves, e.g. 0-7  [default: all]",
        ),
        click.option("--name", default=None, help="Name to record (default: the output's stem)."),
        file_option("-o", "--output", required=True, metavar="OUT.safetensors"),
        device_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group()
def baseline() -> None:
    """Baseline directions (SeFa, GANSpace, InterFaceGAN) as micromotion files `apply` takes."""


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


@baseline.command("interfacegan")
@lambda f: _common(f, component=False)
@file_option(
    "--codes",
    metavar="CODES.npy",
    help="Codes [N, w_dim] (W) or [N, num_ws, w_dim] (W+), with --labels.",
)
@file_option(
    "--labels",
    metavar="LABELS.csv",
    help="One row per code: a 0/1 label or a score (an optional header row).",
)
@click.option("--column", default=None, help="The --labels column to read (a header name).")
@click.option(
    "--prompts",
    nargs=2,
    default=None,
    metavar="POSITIVE NEGATIVE",
    help="Instead of --codes/--labels: score sampled faces with CLIP, e.g. "
    "'a smiling face' 'a neutral face'.",
)
@click.option(
    "--samples", type=int, default=2000, show_default=True, help="Faces sampled for --prompts."
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=0,
    show_default=True,
    help="First seed of the sampled faces, and of the train/validation split.",
)
@truncation_option
@clip_option(
    "CLIP for --prompts: model:tag, MODEL:/path/weights or CONFIG.json:/path.", DEFAULT_CLIP
)
@click.option(
    "--ratio",
    type=float,
    default=None,
    help="Share of scored codes taken from each end as the two classes  [default: 0.02, "
    "InterFaceGAN's; 0/1 labels use every code]",
)
@click.option(
    "--classifier",
    type=click.Choice(["svm", "logistic"]),
    default="svm",
    show_default=True,
    help="Linear SVM (InterFaceGAN's) or logistic regression.",
)
@click.option(
    "--c",
    "c",
    type=float,
    default=1.0,
    show_default=True,
    help="Data weight against the ½|n|² regulariser.",
)
def interfacegan_cmd(prompts: tuple[str, str] | None, **job: Any) -> None:
    """InterFaceGAN (Shen et al. 2020): the unit normal of a linear boundary in W (or per W+ layer).

    The boundary separates codes labelled 1 from codes labelled 0 (or the highest from the
    lowest scores); the direction points toward 1 and has unit norm on each chosen layer.
    """
    from micromotion.pipelines.baselines import interfacegan_direction

    found = run_job(
        interfacegan_direction, unit="batch", prompts=list(prompts) if prompts else None, **job
    )
    meta = found.micromotion.metadata
    accuracy = meta["val_accuracy"] if meta["val_accuracy"] is not None else meta["train_accuracy"]
    which = "validation" if meta["val_accuracy"] is not None else "training"
    if isinstance(accuracy, list):  # one per W+ layer
        kept = [a for a in accuracy if a is not None]
        accuracy = sum(kept) / len(kept)
        which += ", mean over layers"
    click.echo(
        f"wrote {found.files['micromotion']} (interfacegan {meta['classifier']} in "
        f"{meta['space']}, {meta['num_positive']}+{meta['num_negative']} codes, {which} accuracy "
        f"{100 * accuracy:.1f}%, layers {meta['layers']})"
    )
    if "scores" in found.files:
        data = meta["data"]
        refit = (
            f"--codes {found.files['codes']} --labels {found.files['scores']} --column score "
            f"--seed {job['seed']} --ratio {data['ratio']} --classifier {meta['classifier']} "
            f"--c {meta['c']}" + (f" --layers {job['layers']}" if job.get("layers") else "")
        )
        click.echo(
            f"wrote the scored faces as {found.files['codes'].name} and "
            f"{found.files['scores'].name}; the same fit without CLIP: {refit}"
        )


def _echo(mm: Any, path: Path, value: str) -> None:
    meta = mm.metadata
    click.echo(
        f"wrote {path} ({meta['method']} component {meta['component']}, {value} "
        f"{meta[value]:.4g}, {100 * meta['explained']:.1f}% of the total, "
        f"layers {meta['layers']}, |d| = {mm.norm:.4g})"
    )
