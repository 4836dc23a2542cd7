"""``micromotion web``: serve the Gradio app (animate, discover, inspect) in a browser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from micromotion.cli._common import (
    DEFAULT_GENERATOR,
    clip_option,
    device_option,
    generator_option,
    id_weights_option,
)
from micromotion.core.defaults import DEFAULT_CLIP


@click.command()
@generator_option(default=DEFAULT_GENERATOR)
@clip_option("CLIP for the Discover tab's text anchors (as `discover text --clip`).", DEFAULT_CLIP)
@id_weights_option("ArcFace IR-SE50 weights for text discovery's identity loss; off without.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; 0.0.0.0 serves other machines too.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True)
@device_option
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Jobs run at once; the others wait in a queue that shows their place.",
)
@click.option(
    "--max-upload-mb",
    type=click.FloatRange(0.001, 10_000),
    default=20,
    show_default=True,
    help="Largest upload (photo, video, micromotion).",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(1),
    default=25_000_000,
    show_default=True,
    help="Most pixels of a photo or video frame.",
)
@click.option(
    "--max-video-seconds", type=click.FloatRange(0, min_open=True), default=30, show_default=True
)
@click.option("--max-video-frames", type=click.IntRange(1), default=900, show_default=True)
@click.option(
    "--max-frames", type=click.IntRange(2), default=300, show_default=True, help="Per clip."
)
@click.option(
    "--max-steps",
    type=click.IntRange(1),
    default=2000,
    show_default=True,
    help="Most inversion or CLIP steps per job.",
)
def web(
    max_upload_mb: float,
    max_pixels: int,
    max_video_seconds: float,
    max_video_frames: int,
    max_frames: int,
    max_steps: int,
    id_weights: Path | None,
    **options: Any,
) -> None:
    """Serve the web app: animate a photo, discover and inspect micromotions.

    Binds 127.0.0.1 (this machine only) unless --host says otherwise. Each browser session's
    files live in a temporary directory of their own, deleted when the tab closes; all of
    them are deleted when the server stops (Ctrl-C). Needs Gradio:
    pip install "micromotion[web]".
    """
    from micromotion.web import Limits, WebConfig, launch, require_gradio

    require_gradio()  # before the generator loads: the missing package is the first thing to fix
    limits = Limits(
        upload_bytes=round(max_upload_mb * 2**20),
        pixels=max_pixels,
        video_seconds=max_video_seconds,
        video_frames=max_video_frames,
        frames=max_frames,
        steps=max_steps,
    )
    config = WebConfig(
        limits=limits, id_weights=None if id_weights is None else str(id_weights), **options
    )
    click.echo(f"loading {config.generator}; then serving on http://{config.host}:{config.port}")
    launch(config)
