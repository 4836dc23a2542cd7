"""``micromotion discover text``: a micromotion from a text template, with CLIP anchors.

Testing hook: ``--clip`` accepts ``MODEL.json:WEIGHTS`` — an open_clip model-config JSON
and a local weights file — so a tiny random CLIP saved by a test runs this command end to
end, exactly as a user would run it with ``ViT-B-32-quickgelu:/path/to/weights.bin``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from micromotion.cli._common import (
    apply_preset,
    clip_option,
    decomposition_options,
    device_option,
    generator_option,
    id_weights_option,
    make_decomposition,
    preset_option,
    settings_from,
    start_code_options,
    truncation_option,
)
from micromotion.cli._progress import run_job
from micromotion.core.defaults import DEFAULT_CLIP, DEFAULT_DEGREES
from micromotion.core.seeds import MAX_SEED


@click.command("text")
@click.option(
    "--template",
    required=True,
    metavar="TEXT",
    help="Prompt with a {degree} slot, e.g. 'a person with {degree} smile'.",
)
@generator_option
@clip_option(
    "open_clip model:tag, MODEL:/path/weights, or CONFIG.json:/path/weights.", DEFAULT_CLIP
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=None,
    help="Start face  [default: 1, the paper's]",
)
@start_code_options
@truncation_option
@click.option(
    "--degrees",
    default=",".join(DEFAULT_DEGREES),
    show_default=True,
    metavar="LIST",
    help="Degree words in motion order, comma-separated.",
)
@click.option("--steps", type=click.IntRange(1, 100_000), default=40, show_default=True)
@click.option("--lr", type=click.FloatRange(0, 10, min_open=True), default=0.1, show_default=True)
@click.option("--l2-lambda", type=click.FloatRange(0, 1e6), default=0.008, show_default=True)
@click.option("--id-lambda", type=click.FloatRange(0, 1e6), default=0.005, show_default=True)
@id_weights_option(
    "ArcFace IR-SE50 weights (model_ir_se50.pth) for the identity loss; off without."
)
@click.option(
    "--clip-normalize/--paper-clip-input",
    default=True,
    show_default=True,
    help="Normalise images as CLIP expects, or feed raw [-1, 1] pixels as the paper's code.",
)
@decomposition_options
@preset_option
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=None,
    help="Degrees optimised together (default: all; lower only to save memory).",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="OUT.safetensors",
)
@device_option
def discover_text(seed: int | None, degrees: str, **job: Any) -> None:
    """Optimise one face toward TEMPLATE at each degree (CLIP), then decode the micromotion.

    Writes OUT.safetensors, OUT_anchors.npy, OUT_strip.png and OUT.json.
    """
    from micromotion.anchors.text import TextAnchorConfig, parse_degrees
    from micromotion.errors import MicromotionError
    from micromotion.pipelines.discover import discover_text as run

    if job["latent"] is not None and seed is not None:
        raise MicromotionError("give --seed N or --latent W.npy, not both")
    job.update(degrees=parse_degrees(degrees), seed=seed)
    preset = apply_preset(job, "text")  # fills what was not typed, seed 1 included
    job["seed"] = 1 if job["seed"] is None else job["seed"]
    config = settings_from(TextAnchorConfig, job)
    decomposition = make_decomposition(job)
    # The other options are the pipeline's parameters, by name.
    found = run_job(
        run, unit="step", config=config, decomposition=decomposition, preset=preset, **job
    )
    for note in found.notes:
        click.echo(f"note: {note}", err=True)
    mm, files = found.micromotion, found.files
    click.echo(
        f"wrote {files['micromotion']} (|d| = {mm.norm:.4g}, rank {mm.metadata['rank']}, "
        f"{mm.num_anchors} anchors), {files['anchors'].name}, {files['strip'].name}, "
        f"{files['record'].name}"
    )
