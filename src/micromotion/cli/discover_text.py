"""``micromotion discover text``: a micromotion from a text template, with CLIP anchors.

Testing hook: ``--clip`` accepts ``MODEL.json:WEIGHTS`` — an open_clip model-config JSON
and a local weights file — so a tiny random CLIP saved by a test runs this command end to
end, exactly as a user would run it with ``ViT-B-32-quickgelu:/path/to/weights.bin``.
"""

from __future__ import annotations

from typing import Any

import click

from micromotion.cli._common import (
    apply_preset,
    clip_option,
    decomposition_options,
    device_option,
    file_option,
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
from micromotion.core.seeds import MAX_SEED, parse_seeds


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
@click.option(
    "--seeds",
    default=None,
    metavar="LIST",
    help="Several start faces, e.g. 1-8: one micromotion decoded from all their anchors "
    "jointly, checked against the first face's own on held-out faces.",
)
@click.option(
    "--held-out",
    default=None,
    metavar="LIST",
    help="Seeds of the faces the --seeds transfer check moves  [default: the 4 after the "
    "largest training seed]",
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
@file_option("-o", "--output", required=True, metavar="OUT.safetensors")
@device_option
def discover_text(
    seed: int | None, seeds: str | None, held_out: str | None, degrees: str, **job: Any
) -> None:
    """Optimise one face toward TEMPLATE at each degree (CLIP), then decode the micromotion.

    Writes OUT.safetensors, OUT_anchors.npy, OUT_strip.png and OUT.json. With --seeds the
    anchors are [faces, anchors, num_ws, w_dim] and the strip has one row per face.
    """
    from micromotion.anchors.text import TextAnchorConfig, parse_degrees
    from micromotion.errors import MicromotionError, ParameterError
    from micromotion.pipelines.discover import discover_text as run

    if job["latent"] is not None and seed is not None:
        raise MicromotionError("give --seed N or --latent W.npy, not both")
    if seeds is not None and (seed is not None or job["latent"] is not None):
        raise MicromotionError("give --seeds LIST, --seed N or --latent W.npy, only one")
    if held_out is not None and seeds is None:
        raise MicromotionError("--held-out names the faces a --seeds micromotion is checked on")
    if seeds is not None:
        job["seeds"] = parse_seeds(seeds)
    if held_out is not None:
        try:
            job["held_out"] = parse_seeds(held_out)
        except ParameterError as exc:  # parse_seeds names --seeds; this list is --held-out
            raise ParameterError("held_out", str(exc).split(" ", 1)[1]) from None
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
    if found.transfer is not None:
        t = found.transfer
        faces = mm.metadata["num_faces"]
        click.echo(
            f"transfer to {len(t['held_out'])} held-out faces: CLIP gain "
            f"{t['joint']['clip_gain']:+.4f} joint ({faces} faces) vs "
            f"{t['single_face']['clip_gain']:+.4f} one face "
            f"({t['improvement']['clip_gain']:+.4f})"
            + (
                f", identity {t['joint']['identity']:.3f} vs {t['single_face']['identity']:.3f}"
                if "identity" in t["joint"]
                else ""
            )
            + f"; cosine between the directions {t['cosine']:.3f}"
        )
    click.echo(
        f"wrote {files['micromotion']} (|d| = {mm.norm:.4g}, rank {mm.metadata['rank']}, "
        f"{mm.num_anchors} anchors), {files['anchors'].name}, {files['strip'].name}, "
        f"{files['record'].name}"
    )
