"""``micromotion invert``: aligned face images → W+ codes, reconstructions and PSNR."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import torch
from tqdm import tqdm

from micromotion._io import atomic_path, provenance, sha256_file, write_json_atomic
from micromotion.checkpoints import load_generator
from micromotion.cli._common import device_option, generator_option, resolve_device
from micromotion.errors import MicromotionError
from micromotion.images import load_image, save_png, to_uint8
from micromotion.invert import InversionConfig, invert
from micromotion.seeds import MAX_SEED


@click.command("invert")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@generator_option
@click.option("-o", "--outdir", required=True, type=click.Path(path_type=Path))
@click.option("--steps", type=click.IntRange(1), default=500, show_default=True)
@click.option("--space", type=click.Choice(["w+", "w"]), default="w+", show_default=True)
@click.option("--optimize-noise", is_flag=True, help="Also fit per-image noise maps.")
@click.option("--no-align", is_flag=True, help="The images are already FFHQ-aligned crops.")
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
    batch_size: int,
    seed: int,
    device: str,
) -> None:
    """Invert IMAGES into W+: OUTDIR/NAME.npy, NAME_recon.png and NAME.json (PSNR)."""
    if not no_align:
        raise MicromotionError(
            "face detection and alignment are not available yet; "
            "pass --no-align for images that are already FFHQ-aligned square crops"
        )
    stems = [p.stem for p in images]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise MicromotionError(f"several inputs share the name {dupes[0]!r}; outputs would clash")
    if outdir.exists() and not outdir.is_dir():
        raise MicromotionError(f"{outdir}: exists and is not a directory")
    config = InversionConfig(steps=steps, space=space, optimize_noise=optimize_noise, seed=seed)
    G = load_generator(generator_spec, device=resolve_device(device))
    fingerprint = G.fingerprint()  # a full hash of the weights: once, not per image

    loaded, failures = [], []
    for path in images:
        try:
            loaded.append((path, load_image(path, size=G.img_resolution)))
        except MicromotionError as exc:
            failures.append(str(exc))
    for start in range(0, len(loaded), batch_size):
        batch = loaded[start : start + batch_size]
        names = ", ".join(p.name for p, _ in batch)
        with tqdm(total=steps, desc=f"invert {names}"[:60], unit="step", disable=None) as bar:
            result = invert(
                G,
                torch.stack([t for _, t in batch]),
                config=config,
                callback=lambda step, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.4f}")),
            )
        recon = to_uint8(result.images)
        for i, (path, _) in enumerate(batch):
            record = provenance(
                command="invert",
                image=str(path),
                image_sha256=sha256_file(path),
                generator=generator_spec,
                generator_fingerprint=fingerprint,
                settings=config.to_dict(),
                loss="multiscale pixel MSE (LPIPS not available yet)",
                psnr_db=round(float(result.psnr[i]), 3),
                latent=f"{path.stem}.npy",
                latent_shape=[G.num_ws, G.w_dim],
            )
            with atomic_path(outdir / f"{path.stem}.npy") as tmp, open(tmp, "wb") as fh:
                np.save(fh, result.ws[i].float().numpy())
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
