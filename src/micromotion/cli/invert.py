"""``micromotion invert``: face photos → aligned crops, W+ codes, reconstructions and PSNR."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from micromotion._io import atomic_path, write_json_atomic
from micromotion.checkpoints import load_generator
from micromotion.cli._common import device_option, generator_option, resolve_device
from micromotion.cli._faces import face_crop, inversion_record, run_inversion
from micromotion.errors import MicromotionError
from micromotion.images import save_png, to_uint8
from micromotion.invert import InversionConfig, select_loss
from micromotion.seeds import MAX_SEED


@click.command("invert")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@generator_option
@click.option("-o", "--outdir", required=True, type=click.Path(path_type=Path))
@click.option("--steps", type=click.IntRange(1), default=500, show_default=True)
@click.option("--space", type=click.Choice(["w+", "w"]), default="w+", show_default=True)
@click.option("--optimize-noise", is_flag=True, help="Also fit per-image noise maps.")
@click.option("--no-align", is_flag=True, help="The images are already FFHQ-aligned crops.")
@click.option("--face", type=click.IntRange(0), default=None, help="Which face (0 = largest).")
@click.option(
    "--lpips/--no-lpips",
    "use_lpips",
    default=None,
    help="LPIPS-VGG loss  [default: when its weights are cached, else pixel loss]",
)
@click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True)
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@device_option
def invert_cmd(
    images: tuple[Path, ...],
    generator_spec: str,
    outdir: Path,
    steps: int,
    space: str,
    optimize_noise: bool,
    no_align: bool,
    face: int | None,
    use_lpips: bool | None,
    batch_size: int,
    seed: int,
    device: str,
) -> None:
    """Invert IMAGES into W+: OUTDIR/NAME.npy, NAME_recon.png and NAME.json (PSNR).

    Each photo's face is detected and FFHQ-aligned first (NAME_aligned.png; the sidecar keeps
    the transform back to the photo) unless --no-align says the images are aligned crops.
    """
    if no_align and face is not None:
        raise MicromotionError("--face needs alignment; it cannot be combined with --no-align")
    stems = [p.stem for p in images]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise MicromotionError(f"several inputs share the name {dupes[0]!r}; outputs would clash")
    if outdir.exists() and not outdir.is_dir():
        raise MicromotionError(f"{outdir}: exists and is not a directory")
    config = InversionConfig(steps=steps, space=space, optimize_noise=optimize_noise, seed=seed)
    if not no_align:
        from micromotion.faces import check_backend

        check_backend()  # dlib missing: say so before loading anything
    dev = resolve_device(device)
    G = load_generator(generator_spec, device=dev)
    fingerprint = G.fingerprint()  # a full hash of the weights: once, not per image
    loss_fn, loss_name = select_loss(device=dev, lpips=use_lpips)

    loaded, failures = [], []
    crops = tqdm(images, desc="align", unit="image", disable=None if len(images) > 1 else True)
    for path in crops:
        try:
            found = face_crop(path, resolution=G.img_resolution, align=not no_align, face=face)
        except MicromotionError as exc:
            failures.append(str(exc))
            continue
        loaded.append((path, found.image, found.record))
    for start in range(0, len(loaded), batch_size):
        batch = loaded[start : start + batch_size]
        names = ", ".join(p.name for p, *_ in batch)
        result, distances = run_inversion(
            G,
            [crop for _, crop, _ in batch],
            config=config,
            loss_fn=loss_fn,
            loss_name=loss_name,
            desc=f"invert {names}",
        )
        recon = to_uint8(result.images)
        for i, (path, crop, geometry) in enumerate(batch):
            record = inversion_record(
                "invert",
                path,
                index=i,
                result=result,
                lpips=distances[i],
                geometry=geometry,
                config=config,
                loss_name=loss_name,
                generator_spec=generator_spec,
                fingerprint=fingerprint,
                latent=f"{path.stem}.npy",
                latent_shape=[G.num_ws, G.w_dim],
            )
            with atomic_path(outdir / f"{path.stem}.npy") as tmp, open(tmp, "wb") as fh:
                np.save(fh, result.ws[i].float().numpy())
            if geometry["aligned"]:
                save_png(
                    crop,
                    outdir / f"{path.stem}_aligned.png",
                    text={"micromotion": json.dumps({**record, "what": "aligned input"})},
                )
            save_png(
                recon[i],
                outdir / f"{path.stem}_recon.png",
                text={"micromotion": json.dumps(record)},
            )
            if result.noise:
                from safetensors.torch import save_file

                with atomic_path(outdir / f"{path.stem}_noise.safetensors") as tmp:
                    save_file({k: v[i].contiguous() for k, v in result.noise.items()}, str(tmp))
            write_json_atomic(outdir / f"{path.stem}.json", record)
            click.echo(
                f"{path.name}: PSNR {float(result.psnr[i]):.2f} dB -> {outdir / path.stem}.npy"
            )
    if failures:
        for message in failures:
            click.echo(f"failed: {message}", err=True)
        raise MicromotionError(f"{len(failures)} of {len(images)} images failed")
