"""``micromotion discover video``: a micromotion from a video of one face performing it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from micromotion.cli._common import (
    apply_preset,
    decomposition_options,
    device_option,
    encoder_options,
    generator_option,
    inversion_options,
    make_decomposition,
    no_align_option,
    preset_option,
    settings_from,
)
from micromotion.cli._progress import run_job
from micromotion.core.seeds import MAX_SEED

# These defaults repeat VideoAnchorConfig's (a test checks they agree): importing it here
# would load torch whenever the CLI starts.
DEFAULT_W_REG = 0.3


@click.command("video")
@click.argument("video", metavar="CLIP", type=click.Path(path_type=Path))
@generator_option
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path))
@click.option(
    "--frames",
    type=click.IntRange(3),
    default=None,
    help="Frames to use, evenly spaced  [default: 16]",
)
@click.option("--every", type=click.IntRange(1), default=None, help="Use every K-th frame.")
@click.option("--start", type=click.FloatRange(0), default=0.0, show_default=True, help="s")
@click.option("--end", type=click.FloatRange(0), default=None, help="Last time used (s).")
@no_align_option("The video shows FFHQ-aligned crops already.")
@inversion_options(lpips_help="Invert with LPIPS-VGG  [default: when its weights are cached]")
@click.option(
    "--next-steps",
    type=click.IntRange(1),
    default=150,
    show_default=True,
    help="Steps for each warm-started frame.",
)
@click.option(
    "--space",
    type=click.Choice(["w+", "w"]),
    default="w+",
    show_default=True,
    help="Where the projector (and --refine) fits each frame: W+ (a code per layer) or W.",
)
@click.option(
    "--w-reg",
    "w_reg",
    type=click.FloatRange(0),
    default=DEFAULT_W_REG,
    show_default=True,
    metavar="WEIGHT",
    help="Pull of each layer's code toward the frame's mean code (W+ only; 0: off). Keeps "
    "the anchors' motion the clip's: see benchmarks/video_transfer.py.",
)
@click.option(
    "--clip-aware/--no-clip-aware",
    "clip_aware",
    default=True,
    show_default=True,
    help="A reconstruction beyond a frame's clipped (0 or 255) pixels costs nothing there.",
)
@encoder_options
@decomposition_options
@preset_option
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@device_option
def discover_video(
    video: Path,
    frames: int | None,
    every: int | None,
    no_align: bool,
    **job: Any,
) -> None:
    """Decode a micromotion from CLIP, a video of one face performing it.

    Frames are picked, aligned (landmarks smoothed over time), inverted one after another with
    warm starts, and decomposed by robust PCA. By default each frame is fitted in W+ with a
    pull toward W (--w-reg) and a loss blind to overshoot past clipped pixels
    (--clip-aware): without them the anchors can reproduce every frame and still move in
    directions the clip does not (benchmarks/video_transfer.py). Writes OUT.safetensors,
    OUT_anchors.npy, OUT_strip.png (aligned frames over their reconstructions) and OUT.json.
    """
    from micromotion.anchors.video import VideoAnchorConfig
    from micromotion.errors import MicromotionError
    from micromotion.pipelines.discover import discover_video as run
    from micromotion.pipelines.outputs import check_output

    check_output(job["output"])
    if frames is not None and every is not None:
        raise MicromotionError("give --frames N or --every K, not both")
    from micromotion.pipelines.photo import InverterSettings

    preset = apply_preset(job, "video")
    job["inverter"] = settings_from(InverterSettings, job)
    frames = None if every is not None else (frames or 16)
    config = settings_from(VideoAnchorConfig, job, frames=frames, every=every)
    decomposition = make_decomposition(job)
    # The other options are the pipeline's parameters, by name.
    found = run_job(
        run,
        video,
        unit="frame",
        config=config,
        align=not no_align,
        decomposition=decomposition,
        preset=preset,
        **job,
    )
    for note in found.notes:
        click.echo(note, err=True)
    mm, files = found.micromotion, found.files
    click.echo(
        f"wrote {files['micromotion']} from {mm.num_anchors} frames "
        f"(PSNR {found.median_psnr:.1f} dB median, |d| = {mm.norm:.4g}), "
        f"{files['anchors'].name}, {files['strip'].name}, {files['record'].name}"
    )
