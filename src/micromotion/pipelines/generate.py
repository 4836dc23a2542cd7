"""Sample faces: one PNG per seed, the W+ codes, and a provenance record."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from micromotion.core.numbers import check_real
from micromotion.core.progress import Progress
from micromotion.core.provenance import provenance
from micromotion.errors import ParameterError
from micromotion.networks.sampling import sample_ws
from micromotion.networks.stylegan2 import NoiseMode
from micromotion.pipelines._load import GeneratorSpec, open_generator
from micromotion.pipelines.outputs import (
    OutputSet,
    check_outdir,
    lock_dir,
    save_npy,
    save_png_record,
    save_record,
)
from micromotion.render.frames import render_frames


@dataclass(frozen=True)
class Generated:
    """What :func:`generate` wrote: the image file names (in seed order) and the record."""

    outdir: Path
    images: list[str]
    record: dict[str, Any]


def generate(
    seeds: Sequence[int],
    *,
    outdir: str | os.PathLike[str],
    generator: GeneratorSpec,
    truncation_psi: float = 0.7,
    noise_mode: NoiseMode = "const",
    batch_size: int = 4,
    device: str | torch.device = "auto",
    progress: Progress | None = None,
) -> Generated:
    """Render the face of each seed: ``seedNNNN.png``, ``latents.npy`` and ``generate.json``.

    Args:
        seeds: The seeds (see :func:`micromotion.core.seeds.parse_seeds`); each draws its
            ``z`` on the CPU, so a seed gives the same face on any device.
        outdir: Where the files go (created if need be).
        generator: A checkpoint file, a zoo name, or a loaded generator.
        truncation_psi: Truncation toward the average face.
        noise_mode: ``const`` (the checkpoint's noise maps), ``random`` or ``none``.
        batch_size: Faces rendered together.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        progress: Progress reporting (``generate``, per image).

    Returns:
        The names written and the record.
    """
    seed_list = list(seeds)
    check_real("truncation_psi", truncation_psi, low=0, high=2)
    if batch_size < 1:
        raise ParameterError("batch_size", f"{batch_size}: must be at least 1")
    out = check_outdir(Path(outdir))
    names = [f"seed{seed:04d}.png" for seed in seed_list]
    paths = {name: out / name for name in names}
    paths |= {"latents": out / "latents.npy", "record": out / "generate.json"}
    outputs = OutputSet(paths, reads=[generator])
    with lock_dir(out), outputs:
        return _generate(
            seed_list, outputs, generator, truncation_psi, noise_mode, batch_size, device, progress
        )


def _generate(
    seed_list: list[int],
    outputs: OutputSet,
    generator: GeneratorSpec,
    truncation_psi: float,
    noise_mode: NoiseMode,
    batch_size: int,
    device: str | torch.device,
    progress: Progress | None,
) -> Generated:
    out = outputs.files["record"].parent
    G, spec = open_generator(generator, device)
    ws = sample_ws(G, seed_list, truncation_psi=truncation_psi)  # [N, num_ws, w_dim]
    record = provenance(
        command="generate",
        generator=spec,
        generator_fingerprint=G.fingerprint(),
        generator_config=G.config.to_dict(),
        generator_source=G.source,
        seeds=seed_list,
        truncation_psi=truncation_psi,
        noise_mode=noise_mode,
        latents="latents.npy",
        latents_shape=list(ws.shape),
    )
    files: list[str] = []
    # Each batch is written as soon as it is rendered, so memory does not grow with the seeds.
    batches = render_frames(
        G,
        ws,
        batch_size=batch_size,
        noise_mode=noise_mode,
        callback=None
        if progress is None
        else lambda n: progress("generate", len(files) + n, len(seed_list), ""),
    )
    for image in (image for batch in batches for image in batch):
        seed = seed_list[len(files)]
        name = f"seed{seed:04d}.png"
        save_png_record(outputs.path(name), image, {**record, "seed": seed, "row": len(files)})
        files.append(name)
    save_npy(outputs.path("latents"), ws.float().cpu().numpy())
    save_record(outputs.path("record"), {**record, "images": files})
    # The files appear together when the caller's `with outputs` block ends.
    return Generated(out, files, record)
