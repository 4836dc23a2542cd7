"""``micromotion evaluate``: scores of one micromotion, or of several side by side, as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from micromotion.cli._common import (
    clip_option,
    device_option,
    encoder_options,
    face_option,
    file_option,
    generator_option,
    id_weights_option,
    no_align_option,
    settings_from,
    start_code_options,
    truncation_option,
)
from micromotion.cli._progress import run_job
from micromotion.core.seeds import MAX_SEED
from micromotion.errors import ParameterError


@click.command("evaluate")
@click.argument("micromotions", metavar="MICROMOTION...", nargs=-1, required=True)
@click.option(
    "--compare",
    is_flag=True,
    help="Score every MICROMOTION on the same faces and strengths, with direction cosines.",
)
@generator_option
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@click.option(
    "--seeds",
    default=None,
    metavar="LIST",
    help="With --compare: faces, e.g. 0-3,7 (averaged). Not with --latent.",
)
@start_code_options
@click.option(
    "--image",
    "images",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PHOTO",
    help="A face photo as a start face (repeat for several): aligned and inverted as "
    "`apply --image` does. Not with --seed(s) or --latent.",
)
@encoder_options
@click.option(
    "--steps",
    type=click.IntRange(1),
    default=500,
    show_default=True,
    help="Projector steps for --image (with --inverter projector).",
)
@face_option("Which face of each --image.")
@no_align_option("Each --image is an FFHQ-aligned crop already.")
@truncation_option
@click.option(
    "--strength",
    type=float,
    multiple=True,
    default=(5.0,),
    show_default=True,
    help="At the last frame; with --compare once for all or once per MICROMOTION.",
)
@click.option("--frames", type=click.IntRange(2), default=16, show_default=True)
@click.option(
    "--ganspace-samples",
    type=click.IntRange(2),
    default=20_000,  # EVAL_GANSPACE_SAMPLES; the CLI does not import the pipeline to show it
    show_default=True,
    help="z samples for the PCA of a ganspace[:K] micromotion.",
)
@click.option(
    "--ganspace-seed",
    type=click.IntRange(0, MAX_SEED),
    default=0,
    show_default=True,
    help="Seed of those samples.",
)
@id_weights_option("ArcFace IR-SE50 weights: identity to frame 0, TL-ID and TG-ID.")
@click.option("--lpips", is_flag=True, help="Also LPIPS-VGG between consecutive frames.")
@clip_option(
    "CLIP for text alignment: open_clip model:tag, MODEL:/path/weights, CONFIG.json:/path/weights.",
    None,  # type: ignore[arg-type]  # no default: text alignment is off without --clip
)
@click.option(
    "--template",
    default=None,
    help="Score against this '{degree}' template (default: a text micromotion's own).",
)
@click.option("--degrees", default=None, metavar="LIST", help="Degree words for --template.")
@file_option(
    "--plot",
    metavar="OUT.png",
    help="With --compare: the main metrics against frame, one page.",
)
@file_option("-o", "--output", required=True, metavar="OUT.json")
@device_option
def evaluate_cmd(
    micromotions: tuple[str, ...],
    compare: bool,
    seed: int,
    seeds: str | None,
    strength: tuple[float, ...],
    degrees: str | None,
    images: tuple[Path, ...],
    no_align: bool,
    **job: Any,
) -> None:
    """Render clips along MICROMOTION and write their scores to OUT.json.

    Smoothness: pixel RMSE (and LPIPS with --lpips) between consecutive frames, with mean,
    std, min, max and std/mean. Identity (with --id-weights): ArcFace cosine of each frame to
    frame 0, TL-ID (adjacent frames) and TG-ID (all pairs), also relative to the unedited
    clip. Text (with --clip, for text micromotions or --template): CLIP similarity of each
    frame to its degree's prompt and the CLIP directional similarity. Subspace: explained
    energy and RPCA's sparse fraction per layer (for micromotions decoded from anchors).

    With --compare, every MICROMOTION is scored on the same faces (mean ± std over them):
    those of --seeds, or every row of --latent CODES.npy ([N, num_ws, w_dim], as `generate`
    writes DIR/latents.npy; --index I scores one row), with the cosine of every pair of
    directions over the layers both move; --plot draws the curves. --image PHOTO (repeat
    it) scores on photos instead: each is aligned and inverted as `apply --image` does
    (--inverter, --iterations, --refine, --alignment, --steps, --face, --no-align), with its
    reconstruction PSNR recorded in OUT.json beside its scores.

    A MICROMOTION may be a baseline computed from --generator on the fly: sefa, sefa:K,
    ganspace or ganspace:K (K the component, default 0), on the layers of the first
    MICROMOTION file (all layers if none). Write ./sefa for a file called sefa. Strengths
    differ by kind (one --strength per MICROMOTION): SeFa directions have unit norm per layer
    (about 3-5 is a clear edit), GANSpace ones are one σ of w (about 2-3), a decoded one spans
    its anchors (1 = the whole motion).
    """
    from micromotion.core.seeds import parse_seeds
    from micromotion.pipelines.animate import PhotoSettings

    ctx = click.get_current_context()
    photo_flags = ("inverter", "alignment", "iterations", "refine", "steps", "face", "no_align")
    # --lpips scores the clips; it is not the photos' inversion loss, which is apply's
    # default (LPIPS when its weights are cached): take it out before the photo settings.
    score_lpips = job.pop("lpips")
    photo = settings_from(PhotoSettings, job, align=not no_align)
    job["lpips"] = score_lpips
    if images:
        if ctx.get_parameter_source("seed") == click.core.ParameterSource.COMMANDLINE:
            raise ParameterError.worded(
                "{images} and {seed} each choose the faces: give one of them", "images", "seed"
            )
        job.update(images=list(images), photo=photo)
    else:
        for flag in photo_flags:
            if ctx.get_parameter_source(flag) == click.core.ParameterSource.COMMANDLINE:
                raise ParameterError.worded("{" + flag + "} goes with {images}", flag, "images")
    words = None
    if degrees is not None:
        words = [w.strip() for w in degrees.split(",")]
        if any(not w for w in words):
            raise ParameterError("degrees", f"{degrees!r}: give comma-separated words")
    if not compare:
        if len(micromotions) > 1:
            raise ParameterError.worded(
                "{compare} is needed to score several micromotions", "compare"
            )
        for flag, given in (("seeds", seeds), ("plot", job["plot"]),
                            ("strength", len(strength) > 1)):  # fmt: skip
            if given:
                raise ParameterError.worded(
                    "{" + flag + "} goes with {compare} (or give it once)", flag, "compare"
                )
        del job["plot"]
        from micromotion.pipelines.evaluate import evaluate

        one = job.pop("images", [None])
        if len(one) > 1:
            raise ParameterError.worded("{compare} is needed to score on several photos", "compare")
        found = run_job(evaluate, micromotions[0], unit="frame", seed=seed, image=one[0],
                        strength=strength[0], degrees=words, **job)  # fmt: skip
        report, smooth = found.report, found.report["smoothness"]["pixel_rmse"]
        line = f"wrote {found.files['report']} (pixel step {smooth['mean']:.4g}"
        line += f" ± {smooth['std']:.2g}"
        if report["identity"] is not None:
            temporal = report["identity"]["temporal"]
            line += f", identity ≥ {report['identity']['min']:.4f}"
            line += f", TL-ID {temporal['tl_id']:.4f}, TG-ID {temporal['tg_id']:.4f}"
        text = report["text_alignment"]
        if text is not None:
            line += f", CLIP {text['mean']:.4f}"
            if text["directional"] is not None:
                line += f", direction {text['directional']:+.3f}"
        click.echo(line + ")")
        return
    from micromotion.pipelines.evaluate import compare as compare_job

    faces = parse_seeds(seeds) if seeds is not None else None
    if faces is None and job.get("latent") is None and not images:
        faces = [seed]
    found = run_job(compare_job, list(micromotions), unit="frame", seeds=faces,
                    strength=list(strength), degrees=words, **job)  # fmt: skip
    names = ", ".join(s["label"] for s in found.report["micromotions"])
    wrote = " and ".join(str(p) for p in found.files.values())
    click.echo(f"wrote {wrote} ({len(found.report['micromotions'])} micromotions: {names}; "
               f"{len(found.report['starts'])} face(s))")  # fmt: skip
