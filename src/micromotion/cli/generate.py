"""``micromotion generate``: one PNG per seed, the W+ codes, and a provenance sidecar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from micromotion.cli._common import device_option, generator_option, truncation_option
from micromotion.cli._progress import run_job


@click.command()
@generator_option
@click.option(
    "--seeds", default="0-3", show_default=True, metavar="LIST", help="Seeds, e.g. 0-3,7."
)
@truncation_option
@click.option(
    "--noise-mode",
    type=click.Choice(["const", "random", "none"]),
    default="const",
    show_default=True,
    help="Per-pixel noise: the checkpoint's fixed maps, fresh random, or none.",
)
@click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True)
@click.option("--outdir", required=True, type=click.Path(path_type=Path))
@device_option
def generate(seeds: str, **job: Any) -> None:
    """Generate faces from seeds: DIR/seedNNNN.png, DIR/latents.npy and DIR/generate.json."""
    from micromotion.core.seeds import parse_seeds
    from micromotion.pipelines.generate import generate as run

    # The other options are the pipeline's parameters, by name.
    done = run_job(run, parse_seeds(seeds), unit="img", **job)
    click.echo(f"wrote {len(done.images)} images, latents.npy and generate.json to {job['outdir']}")
