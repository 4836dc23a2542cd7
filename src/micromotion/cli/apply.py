"""``micromotion apply``: render a micromotion clip for one face."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
import numpy as np
import torch
from tqdm import tqdm

from micromotion._io import load_float_npy, provenance, write_json_atomic
from micromotion.animate import clip_codes, render_frames
from micromotion.checkpoints import load_generator
from micromotion.cli._common import (
    device_option,
    generator_option,
    resolve_device,
    truncation_option,
)
from micromotion.direction import Micromotion, load_micromotion
from micromotion.errors import MicromotionError
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
@generator_option
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
    "-o", "--output", required=True, type=click.Path(path_type=Path), help=".mp4/.gif/.png"
)
@device_option
def apply(
    micromotions: tuple[str, ...],
    extra: tuple[str, ...],
    strengths: tuple[float, ...],
    generator_spec: str,
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
    output: Path,
    device: str,
) -> None:
    """Animate a face along MICROMOTION(s): frame i is w + (i/(frames-1))·Σ strength·d."""
    specs = list(micromotions) + list(extra)
    if not specs:
        raise MicromotionError("give a micromotion (a file or a zoo name such as smile)")
    if (latent is None) == (seed is None):
        raise MicromotionError("give exactly one of --latent W.npy or --seed N")
    if len(strengths) > 1 and len(strengths) != len(specs):
        raise MicromotionError(f"{len(strengths)} --strength values for {len(specs)} micromotions")
    bad = [s for s in strengths if not math.isfinite(s)]
    if bad:
        raise MicromotionError(f"--strength {bad[0]}: must be a finite number")
    values = list(strengths) * len(specs) if len(strengths) == 1 else list(strengths)
    values = values or [5.0] * len(specs)
    output = check_output_path(output)

    loaded: list[Micromotion] = [load_micromotion(s) for s in specs]
    if layers is not None:
        loaded = [mm.with_layers(layers) for mm in loaded]
    G = load_generator(generator_spec, device=resolve_device(device))
    fingerprint = G.fingerprint()  # a full hash of the weights: once, not per micromotion
    for mm in loaded:
        mm.check_compatible(num_ws=G.num_ws, w_dim=G.w_dim, fingerprint=fingerprint)
    if latent is not None:
        w = load_latent(latent, index, num_ws=G.num_ws, w_dim=G.w_dim)
    else:
        w = sample_ws(G, [seed], truncation_psi=truncation)[0].cpu()

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
        start={"latent": str(latent), "index": index}
        if latent
        else {"seed": seed, "truncation_psi": truncation},
        frames=frames,
        fps=fps,
        loop=loop,
        noise_mode=noise_mode,
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
            sink.write(batch)
    write_json_atomic(output.with_name(output.name + ".json"), record)
    click.echo(f"wrote {output} ({total} frames) and {output.name}.json")
