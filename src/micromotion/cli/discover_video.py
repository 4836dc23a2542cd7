"""``micromotion discover video``: a micromotion from a video of one face performing it."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import torch
from tqdm import tqdm

from micromotion._io import provenance, sha256_file
from micromotion.anchors._output import check_output, write_discovery
from micromotion.anchors.video import VideoAnchorConfig, probe_video, video_anchors
from micromotion.checkpoints import load_generator
from micromotion.cli._common import (
    decomposition_options,
    device_option,
    generator_option,
    parse_rank,
    resolve_device,
)
from micromotion.direction import Micromotion
from micromotion.errors import MicromotionError
from micromotion.invert import select_loss
from micromotion.seeds import MAX_SEED

STRIP_TILES = 16  # the preview shows at most this many frames, evenly picked


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
@click.option("--no-align", is_flag=True, help="The video shows FFHQ-aligned crops already.")
@click.option("--steps", type=click.IntRange(1), default=500, show_default=True)
@click.option(
    "--next-steps",
    type=click.IntRange(1),
    default=150,
    show_default=True,
    help="Steps for each warm-started frame.",
)
@decomposition_options
@click.option(
    "--lpips/--no-lpips",
    "use_lpips",
    default=None,
    help="Invert with LPIPS-VGG  [default: when its weights are cached]",
)
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@device_option
def discover_video(
    video: Path,
    generator_spec: str,
    output: Path,
    frames: int | None,
    every: int | None,
    start: float,
    end: float | None,
    no_align: bool,
    steps: int,
    next_steps: int,
    rank: str,
    method: str | None,
    layers: str | None,
    name: str | None,
    use_lpips: bool | None,
    seed: int,
    device: str,
) -> None:
    """Decode a micromotion from CLIP, a video of one face performing it.

    Frames are picked, aligned (landmarks smoothed over time), inverted one after another with
    warm starts, and decomposed by robust PCA. Writes OUT.safetensors, OUT_anchors.npy,
    OUT_strip.png (aligned frames over their reconstructions) and OUT.json.
    """
    output = check_output(output)
    if frames is not None and every is not None:
        raise MicromotionError("give --frames N or --every K, not both")
    config = VideoAnchorConfig(
        frames=None if every is not None else (frames or 16),
        every=every,
        start=start,
        end=end,
        steps=steps,
        next_steps=next_steps,
        seed=seed,
    )
    rank_value = parse_rank(rank)
    info = probe_video(video)  # a bad video fails before the generator is loaded
    if not no_align:
        from micromotion.faces import check_backend

        check_backend()
    dev = resolve_device(device)
    G = load_generator(generator_spec, device=dev)
    if layers is not None:
        from micromotion.subspace import layer_mask

        layer_mask(layers, G.num_ws)  # a bad --layers fails before the long inversion
    fingerprint = G.fingerprint()
    loss_fn, loss_name = select_loss(device=dev, lpips=use_lpips)

    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="frame", disable=None)
        bar.update(done - bar.n)

    try:
        result = video_anchors(
            G,
            video,
            config=config,
            align=not no_align,
            loss_fn=loss_fn,
            progress=progress,
            info=info,
        )
    finally:
        for bar in bars.values():
            bar.close()
    for index, reason in result.skipped.items():
        click.echo(f"skipped frame {index}: {reason}", err=True)

    stem = output.name.removesuffix(".safetensors")
    meta = {
        "video": video.name,
        "video_sha256": sha256_file(video),
        "frame_indices": result.frame_indices,
        "fps": info.fps,
    }
    mm = Micromotion.from_anchors(
        result.anchors,
        rank=rank_value,
        method=method,
        layers=layers,
        name=name or stem,
        source="video",
        generator_fingerprint=fingerprint,
        metadata=meta,
    )
    record = provenance(
        command="discover video",
        video=str(video),
        video_sha256=meta["video_sha256"],
        video_info={"fps": info.fps, "frames": info.num_frames, "size": [info.width, info.height]},
        frame_indices=result.frame_indices,
        skipped={str(k): v for k, v in result.skipped.items()},
        psnr_db=[round(float(v), 3) for v in result.psnr],
        aligned=not no_align,
        settings=config.to_dict(),
        loss=loss_name,
        rank=rank_value,
        method=mm.metadata["method"],
        layers=mm.metadata["layers"],
        generator=generator_spec,
        generator_fingerprint=fingerprint,
    )
    pick = np.unique(np.linspace(0, len(result.frame_indices) - 1, STRIP_TILES).round())
    tiles = np.concatenate([result.aligned, result.reconstructions], axis=1)[pick.astype(int)]
    paths = write_discovery(
        output,
        micromotion=mm,
        anchors=result.anchors,
        strip_images=tiles,
        record=record,
    )
    click.echo(
        f"wrote {paths['micromotion']} from {len(result.frame_indices)} frames "
        f"(PSNR {float(result.psnr.median()):.1f} dB median, |d| = "
        f"{float(torch.linalg.norm(mm.masked_direction)):.4g}), "
        f"{paths['anchors'].name}, {paths['strip'].name}, {paths['record'].name}"
    )
