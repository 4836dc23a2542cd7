"""``micromotion discover latents``, ``micromotion info``, ``micromotion import-official``."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import torch

from micromotion._io import load_float_npy
from micromotion.anchors._output import check_output
from micromotion.cli._common import decomposition_options, parse_rank
from micromotion.direction import Micromotion, import_official, load_micromotion
from micromotion.errors import MicromotionError


@click.group()
def discover() -> None:
    """Decode a micromotion from anchors: text prompts, a video, or saved latents."""


@discover.command("latents")
@click.argument("anchors_path", metavar="ANCHORS.npy", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@decomposition_options
@click.option("--no-robust", is_flag=True, help="Plain truncated PCA instead of robust PCA.")
@click.option("--center", is_flag=True, help="Subtract the per-layer mean first.")
@click.option("--generator-fingerprint", default=None, help="sha256 of the anchors' generator.")
def discover_latents(
    anchors_path: Path,
    output: Path,
    rank: str,
    method: str | None,
    layers: str | None,
    name: str | None,
    no_robust: bool,
    center: bool,
    generator_fingerprint: str | None,
) -> None:
    """Decode a micromotion from ANCHORS.npy ([n, num_ws, w_dim], in motion order)."""
    output = check_output(output)
    anchors = load_float_npy(anchors_path, what="anchors")
    if layers is not None and anchors.ndim == 3:
        from micromotion.subspace import layer_mask

        layer_mask(layers, anchors.shape[1])  # a bad --layers fails before the decomposition
    rank_value = parse_rank(rank)
    try:
        mm = Micromotion.from_anchors(
            torch.from_numpy(np.array(anchors, dtype=np.float32)),
            rank=rank_value,
            robust=not no_robust,
            center=center,
            method=method,
            layers=layers,
            name=name or output.name.removesuffix(".safetensors"),
            source="latents",
            generator_fingerprint=generator_fingerprint,
            metadata={"anchors_file": str(anchors_path)},
        )
    except MicromotionError as exc:
        raise MicromotionError(f"{anchors_path}: {exc}") from None
    mm.save(output)
    click.echo(
        f"wrote {output} (|d| = {mm.masked_direction.norm():.4g}, rank {mm.metadata['rank']})"
    )


@click.command()
@click.argument("spec", metavar="FILE")
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
def info(spec: str, as_json: bool) -> None:
    """Describe a micromotion FILE (or zoo name): metadata, per-layer norms, spectrum."""
    summary = load_micromotion(spec).summary()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    meta = summary["metadata"]
    click.echo(
        f"{summary['name']}: W+ [{summary['num_ws']}, {summary['w_dim']}], "
        f"|d| = {summary['norm']:.4g}, layers {summary['layers']}"
    )
    for key in (
        "source",
        "rank",
        "robust",
        "method",
        "template",
        "video",
        "generator_fingerprint",
        "micromotion_version",
        "created",
        "origin",
    ):
        if meta.get(key) is not None:
            click.echo(f"  {key}: {meta[key]}")
    click.echo("  per-layer |d|: " + " ".join(f"{v:.3g}" for v in summary["per_layer_norm"]))
    if "singular_values" in summary:
        click.echo("  singular values (per layer, largest first):")
        for i, row in enumerate(summary["singular_values"]):
            click.echo(f"    {i:2d}: " + " ".join(f"{v:.3g}" for v in row[:8]))


@click.command("import-official")
@click.argument("src", metavar="FILE", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="Name to record (default: from the file name).")
def import_official_cmd(src: Path, output: Path, name: str | None) -> None:
    """Import one of the paper's pre-computed d_latent files, bit for bit."""
    if output.suffix != ".safetensors":
        raise MicromotionError(f"{output}: the output must end in .safetensors")
    mm = import_official(src, name=name)
    mm.save(output)
    click.echo(f"wrote {output} ({mm.name}, |d| = {mm.direction.norm():.4g})")
