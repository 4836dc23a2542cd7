"""``micromotion generate``: one PNG per seed, the W+ codes, and a provenance sidecar."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from micromotion._io import atomic_path, provenance, write_json_atomic
from micromotion.animate import render_frames
from micromotion.checkpoints import load_generator
from micromotion.cli._common import (
    device_option,
    generator_option,
    resolve_device,
    truncation_option,
)
from micromotion.errors import MicromotionError
from micromotion.images import save_png
from micromotion.sampling import sample_ws
from micromotion.seeds import parse_seeds


@click.command()
@generator_option
@click.option(
    "--seeds", default="0-3", show_default=True, metavar="LIST", help="Seeds, e.g. 0-3,7."
)
@truncation_option
@click.option(
    "--noise-mode",
    type=click.Choice(["const", "random", "none"]),
    default="const",
    show_default=True,
    help="Per-pixel noise: the checkpoint's fixed maps, fresh random, or none.",
)
@click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True)
@click.option("--outdir", required=True, type=click.Path(path_type=Path))
@device_option
def generate(
    generator_spec: str,
    seeds: str,
    truncation: float,
    noise_mode: str,
    batch_size: int,
    outdir: Path,
    device: str,
) -> None:
    """Generate faces from seeds: DIR/seedNNNN.png, DIR/latents.npy and DIR/generate.json."""
    seed_list = parse_seeds(seeds)
    G = load_generator(generator_spec, device=resolve_device(device))
    if outdir.exists() and not outdir.is_dir():
        raise MicromotionError(f"{outdir}: exists and is not a directory")
    ws = sample_ws(G, seed_list, truncation_psi=truncation)  # [N, num_ws, w_dim]
    record = provenance(
        command="generate",
        generator=generator_spec,
        generator_fingerprint=G.fingerprint(),
        generator_config=G.config.to_dict(),
        generator_source=G.source,
        seeds=seed_list,
        truncation_psi=truncation,
        noise_mode=noise_mode,
        latents="latents.npy",
        latents_shape=list(ws.shape),
    )
    files: list[str] = []
    # Each batch is written as soon as it is rendered, so memory does not grow with --seeds.
    with tqdm(total=len(seed_list), desc="generate", unit="img", disable=None) as bar:
        batches = render_frames(
            G, ws, batch_size=batch_size, noise_mode=noise_mode, callback=bar.update
        )
        for image in (image for batch in batches for image in batch):
            seed = seed_list[len(files)]
            name = f"seed{seed:04d}.png"
            meta = {"seed": seed, "row": len(files)}
            save_png(image, outdir / name, text={"micromotion": json.dumps({**record, **meta})})
            files.append(name)
    with atomic_path(outdir / "latents.npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, ws.float().cpu().numpy())
    write_json_atomic(outdir / "generate.json", {**record, "images": files})
    click.echo(f"wrote {len(files)} images, latents.npy and generate.json to {outdir}")
