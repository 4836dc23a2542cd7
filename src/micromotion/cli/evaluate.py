"""``micromotion evaluate``: smoothness, identity and subspace scores of a micromotion, as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from micromotion.cli._common import (
    device_option,
    generator_option,
    id_weights_option,
    start_code_options,
    truncation_option,
)
from micromotion.cli._progress import run_job
from micromotion.core.seeds import MAX_SEED


@click.command("evaluate")
@click.argument("micromotion", metavar="MICROMOTION")
@generator_option
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@start_code_options
@truncation_option
@click.option("--strength", type=float, default=5.0, show_default=True, help="At the last frame.")
@click.option("--frames", type=click.IntRange(2), default=16, show_default=True)
@id_weights_option("ArcFace IR-SE50 weights: score each frame's identity against frame 0.")
@click.option("--lpips", is_flag=True, help="Also LPIPS-VGG between consecutive frames.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="OUT.json",
)
@device_option
def evaluate_cmd(**job: Any) -> None:
    """Render a clip along MICROMOTION and write its scores to OUT.json.

    Smoothness: pixel RMSE (and LPIPS with --lpips) between consecutive frames, with mean,
    std, min, max and std/mean. Identity: ArcFace cosine of each frame to frame 0 (with
    --id-weights). Subspace: explained energy at the file's rank and RPCA's sparse fraction
    per layer (for micromotions decoded from anchors).
    """
    from micromotion.pipelines.evaluate import evaluate

    found = run_job(evaluate, unit="frame", **job)
    report, smooth = found.report, found.report["smoothness"]["pixel_rmse"]
    line = f"wrote {found.files['report']} (pixel step {smooth['mean']:.4g} ± {smooth['std']:.2g}"
    if report["identity"] is not None:
        line += f", identity ≥ {report['identity']['min']:.4f}"
    click.echo(line + ")")
