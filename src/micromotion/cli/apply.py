"""``micromotion apply``: render a micromotion clip for one face."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
from tqdm import tqdm

from micromotion._io import (
    atomic_path,
    load_float_npy,
    provenance,
    write_json_atomic,
)
from micromotion.animate import clip_codes, render_frames
from micromotion.checkpoints import load_generator
from micromotion.cli._common import (
    DEFAULT_GENERATOR,
    device_option,
    generator_option,
    resolve_device,
    truncation_option,
)
from micromotion.cli._faces import FaceCrop, face_crop, inversion_record, run_inversion
from micromotion.direction import Micromotion, load_micromotion
from micromotion.errors import MicromotionError
from micromotion.images import read_rgb, save_png, to_uint8
from micromotion.invert import InversionConfig, select_loss
from micromotion.networks.stylegan2 import Generator
from micromotion.sampling import sample_ws
from micromotion.seeds import MAX_SEED
from micromotion.video import check_output_path, loop_indices, open_clip_writer


def load_latent(path: Path, index: int | None, *, num_ws: int, w_dim: int) -> torch.Tensor:
    """Read one W+ code ``[num_ws, w_dim]`` from a ``.npy`` file; never unpickles.

    Accepts ``[w_dim]``, ``[num_ws, w_dim]``, or ``[N, num_ws, w_dim]`` with ``index``.
    """
    arr = load_float_npy(path, what="codes")
    if arr.ndim == 3:
        if index is None and arr.shape[0] != 1:
            raise MicromotionError(
                f"{path}: holds {arr.shape[0]} codes; pick one with --index (0-{arr.shape[0] - 1})"
            )
        i = 0 if index is None else index
        if not 0 <= i < arr.shape[0]:
            raise MicromotionError(f"{path}: --index {i} out of range (0-{arr.shape[0] - 1})")
        arr = arr[i]
    elif index not in (None, 0):
        raise MicromotionError(f"{path}: --index given but the file holds a single code")
    if arr.ndim == 1 and arr.shape[0] == w_dim:
        arr = np.broadcast_to(arr, (num_ws, w_dim))
    if arr.shape != (num_ws, w_dim):
        raise MicromotionError(
            f"{path}: code of shape {list(arr.shape)} does not fit this generator "
            f"([{num_ws}, {w_dim}])"
        )
    if not np.isfinite(arr).all():
        raise MicromotionError(f"{path}: the code contains NaN or inf")
    return torch.from_numpy(np.array(arr, dtype=np.float32))


@click.command()
@click.argument("micromotions", nargs=-1, metavar="[MICROMOTION]...")
@click.option(
    "--micromotion",
    "extra",
    multiple=True,
    metavar="SPEC",
    help="Another micromotion (file or zoo name); repeat to compose.",
)
@click.option(
    "--strength",
    "strengths",
    multiple=True,
    type=float,
    metavar="S",
    help="Strength per micromotion, in order (one value applies to all)  [default: 5]",
)
@generator_option(default=DEFAULT_GENERATOR)
@click.option(
    "--image",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A face photo: aligned, inverted, then animated.",
)
@click.option("--latent", type=click.Path(dir_okay=False, path_type=Path), help="W+ code .npy.")
@click.option("--index", type=int, default=None, help="Row of --latent when it holds several.")
@click.option(
    "--seed", type=click.IntRange(0, MAX_SEED), default=None, help="Start from a sampled face."
)
@truncation_option
@click.option("--frames", type=click.IntRange(2, 10_000), default=100, show_default=True)
@click.option("--fps", type=click.FloatRange(1, 240), default=30, show_default=True)
@click.option("--layers", default=None, metavar="LIST", help="Layers to move, e.g. 0-7.")
@click.option("--loop", type=click.Choice(["none", "pingpong"]), default="none", show_default=True)
@click.option(
    "--noise-mode",
    type=click.Choice(["const", "random", "none"]),
    default="const",
    show_default=True,
)
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@click.option(
    "--steps",
    type=click.IntRange(1),
    default=500,
    show_default=True,
    help="Inversion steps for --image.",
)
@click.option("--face", type=click.IntRange(0), default=None, help="Which face of --image.")
@click.option("--no-align", is_flag=True, help="--image is an FFHQ-aligned crop already.")
@click.option(
    "--paste-back",
    is_flag=True,
    help="Frames show the whole --image photo with the moving face blended in.",
)
@click.option(
    "--lpips/--no-lpips",
    "use_lpips",
    default=None,
    help="Invert --image with LPIPS-VGG  [default: when its weights are cached]",
)
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path), help=".mp4/.gif/.png"
)
@device_option
def apply(
    micromotions: tuple[str, ...],
    extra: tuple[str, ...],
    strengths: tuple[float, ...],
    generator_spec: str,
    image: Path | None,
    latent: Path | None,
    index: int | None,
    seed: int | None,
    truncation: float,
    frames: int,
    fps: float,
    layers: str | None,
    loop: str,
    noise_mode: str,
    batch_size: int,
    steps: int,
    face: int | None,
    no_align: bool,
    paste_back: bool,
    use_lpips: bool | None,
    output: Path,
    device: str,
) -> None:
    """Animate a face along MICROMOTION(s): frame i is w + (i/(frames-1))·Σ strength·d.

    The face is a photo (--image: aligned, inverted, and the aligned input, reconstruction and
    code saved beside the video as OUT_aligned.png, OUT_recon.png and OUT_latent.npy), a code
    (--latent) or a sampled face (--seed).
    """
    specs = list(micromotions) + list(extra)
    if not specs:
        raise MicromotionError("give a micromotion (a file or a zoo name such as smile)")
    if sum(x is not None for x in (image, latent, seed)) != 1:
        raise MicromotionError("give exactly one of --image PHOTO, --latent W.npy or --seed N")
    if image is None and (face is not None or no_align or paste_back):
        raise MicromotionError("--face, --no-align and --paste-back only apply to --image")
    if paste_back and no_align:
        raise MicromotionError(
            "--paste-back needs alignment; it cannot be combined with --no-align"
        )
    if no_align and face is not None:
        raise MicromotionError("--face needs alignment; it cannot be combined with --no-align")
    if len(strengths) > 1 and len(strengths) != len(specs):
        raise MicromotionError(f"{len(strengths)} --strength values for {len(specs)} micromotions")
    bad = [s for s in strengths if not math.isfinite(s)]
    if bad:
        raise MicromotionError(f"--strength {bad[0]}: must be a finite number")
    values = list(strengths) * len(specs) if len(strengths) == 1 else list(strengths)
    values = values or [5.0] * len(specs)
    output = check_output_path(output)

    if image is not None:
        read_rgb(image)  # an unreadable photo fails before any download
        clash = [p for p in photo_outputs(output).values() if p.resolve() == image.resolve()]
        if clash:
            raise MicromotionError(f"{image}: would be overwritten by this run's {clash[0].name}")
        if not no_align:
            from micromotion.faces import check_backend

            check_backend()
    loaded: list[Micromotion] = [load_micromotion(s) for s in specs]
    if layers is not None:
        loaded = [mm.with_layers(layers) for mm in loaded]
    dev = resolve_device(device)
    G = load_generator(generator_spec, device=dev)
    fingerprint = G.fingerprint()  # a full hash of the weights: once, not per micromotion
    for mm in loaded:
        mm.check_compatible(num_ws=G.num_ws, w_dim=G.w_dim, fingerprint=fingerprint)
    start: dict[str, Any]
    paster = None
    if image is not None:
        w, start, found = _invert_photo(
            G,
            image,
            output,
            align=not no_align,
            face=face,
            steps=steps,
            use_lpips=use_lpips,
            fingerprint=fingerprint,
            generator_spec=generator_spec,
        )
        if paste_back:
            from micromotion.pasteback import PasteBack

            paster = PasteBack(found.photo, found.aligned, G.img_resolution)
    elif latent is not None:
        w = load_latent(latent, index, num_ws=G.num_ws, w_dim=G.w_dim)
        start = {"latent": str(latent), "index": index}
    else:
        w = sample_ws(G, [seed], truncation_psi=truncation)[0].cpu()
        start = {"seed": seed, "truncation_psi": truncation}

    codes = clip_codes(w, list(zip(loaded, values, strict=True)), frames=frames)
    record = provenance(
        command="apply",
        micromotions=[
            {
                "spec": s,
                "name": mm.name,
                "strength": v,
                "layers": mm.metadata.get("layers"),
                "source": mm.metadata.get("source"),
            }
            for s, mm, v in zip(specs, loaded, values, strict=True)
        ],
        generator=generator_spec,
        generator_fingerprint=fingerprint,
        start=start,
        frames=frames,
        fps=fps,
        loop=loop,
        noise_mode=noise_mode,
        paste_back=None
        if paster is None
        else {"photo_size": list(paster.photo.shape[1::-1]), "box": [int(v) for v in paster.box]},
        formula="w + (i/(frames-1)) * sum(strength * masked direction)",
    )
    total = len(loop_indices(frames, loop))
    with (
        tqdm(total=frames, desc="render", unit="frame", disable=None) as bar,
        open_clip_writer(output, fps=fps, total_frames=total, comment=json.dumps(record)) as sink,
    ):
        for batch in render_frames(
            G, codes, loop=loop, batch_size=batch_size, noise_mode=noise_mode, callback=bar.update
        ):
            sink.write(paster(batch) if paster is not None else batch)
    write_json_atomic(output.with_name(output.name + ".json"), record)
    click.echo(f"wrote {output} ({total} frames) and {output.name}.json")


def photo_outputs(output: Path) -> dict[str, Path]:
    """Where ``apply --image`` saves the crop, the reconstruction and the code."""
    stem = output.name.rsplit(".", 1)[0]
    return {
        "aligned": output.with_name(f"{stem}_aligned.png"),
        "recon": output.with_name(f"{stem}_recon.png"),
        "latent": output.with_name(f"{stem}_latent.npy"),
    }


def _invert_photo(
    G: Generator,
    image: Path,
    output: Path,
    *,
    align: bool,
    face: int | None,
    steps: int,
    use_lpips: bool | None,
    fingerprint: str,
    generator_spec: str,
) -> tuple[torch.Tensor, dict[str, Any], FaceCrop]:
    """Align and invert the photo; save the crop, reconstruction and code beside ``output``."""
    found = face_crop(image, resolution=G.img_resolution, align=align, face=face)
    crop, geometry = found.image, found.record
    loss_fn, loss_name = select_loss(device=G.w_avg.device, lpips=use_lpips)
    config = InversionConfig(steps=steps)
    result, distances = run_inversion(
        G, [crop], config=config, loss_fn=loss_fn, loss_name=loss_name
    )
    paths = photo_outputs(output)
    record = inversion_record(
        "apply (inversion)",
        image,
        index=0,
        result=result,
        lpips=distances[0],
        geometry=geometry,
        config=config,
        loss_name=loss_name,
        generator_spec=generator_spec,
        fingerprint=fingerprint,
        files={k: p.name for k, p in paths.items()},
    )
    text = {"micromotion": json.dumps(record)}
    save_png(crop, paths["aligned"], text=text)
    save_png(to_uint8(result.images)[0], paths["recon"], text=text)
    with atomic_path(paths["latent"]) as tmp, open(tmp, "wb") as fh:
        np.save(fh, result.ws[0].float().numpy())
    click.echo(
        f"{image.name}: reconstruction PSNR {float(result.psnr[0]):.2f} dB "
        f"({loss_name}); saved {paths['aligned'].name}, {paths['recon'].name}, "
        f"{paths['latent'].name}"
    )
    return (
        result.ws[0],
        {
            "image": str(image),
            "image_sha256": record["image_sha256"],
            "psnr_db": record["psnr_db"],
            "lpips": record["lpips"],
            "loss": loss_name,
            "inversion": config.to_dict(),
            "face": geometry,
            "latent": paths["latent"].name,
        },
        found,
    )
