"""Evaluate a micromotion: render a clip along it and score smoothness, identity, subspace.

Writes one JSON report (``OUT.json``): the clip's frame-to-frame distances and their spread
(pixel RMSE, and LPIPS with ``lpips=True``), ArcFace identity of every frame against frame 0
(with ``id_weights``), and, for a micromotion decoded from anchors, the subspace metrics
(explained energy at its rank per layer, RPCA's sparse fraction). A null edit (strength 0)
scores distance 0 and identity 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from micromotion.core.io import require_file, sha256_file
from micromotion.core.numbers import check_real
from micromotion.core.outputs import OutputSet
from micromotion.core.progress import Progress
from micromotion.core.provenance import provenance
from micromotion.core.seeds import MAX_SEED
from micromotion.errors import MicromotionError, ParameterError
from micromotion.networks.irse import IdentityLoss
from micromotion.networks.lpips import perceptual_loss
from micromotion.networks.sampling import sample_ws
from micromotion.pipelines._load import GeneratorSpec, cached, open_generator
from micromotion.pipelines.latents import read_code
from micromotion.pipelines.outputs import save_record
from micromotion.render.codes import clip_codes
from micromotion.render.metrics import frame_distances, identity_similarity, spread
from micromotion.subspace.metrics import subspace_report
from micromotion.subspace.micromotion import Micromotion
from micromotion.weights.irse import load_irse50
from micromotion.weights.lpips import load_lpips
from micromotion.weights.micromotion import load_micromotion

#: Frames rendered per synthesis pass.
_BATCH = 8


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` wrote.

    Attributes:
        report: The scores (also the JSON file's content).
        files: ``{"report": path}``.
    """

    report: dict[str, Any]
    files: dict[str, Path]


def evaluate(
    micromotion: str | os.PathLike[str] | Micromotion,
    *,
    output: str | os.PathLike[str],
    generator: GeneratorSpec,
    seed: int = 0,
    latent: str | os.PathLike[str] | None = None,
    index: int | None = None,
    truncation_psi: float = 0.7,
    strength: float = 5.0,
    frames: int = 16,
    id_weights: str | os.PathLike[str] | None = None,
    lpips: bool = False,
    device: str | torch.device = "auto",
    progress: Progress | None = None,
) -> Evaluation:
    """Render ``frames`` codes ``w + (i/(frames−1))·strength·d`` and score the clip.

    Args:
        micromotion: A micromotion file, zoo name, or loaded micromotion.
        output: ``NAME.json``.
        generator: A checkpoint file, a zoo name, or a loaded generator.
        seed: The start face's seed (unless ``latent``).
        latent: Start from this W+ code (``.npy``) instead.
        index: Row of ``latent`` when it holds several codes.
        truncation_psi: Truncation of the seed's face.
        strength: Strength at the last frame.
        frames: Frames in the clip (≥ 2).
        id_weights: ArcFace IR-SE50 weights: score identity against frame 0 (skipped without).
        lpips: Also measure LPIPS-VGG between consecutive frames (its weights come from the
            zoo's cache or are downloaded).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        progress: Progress reporting (``render``, per frame).

    Returns:
        The report and its file.
    """
    # Step 0 — check inputs before any network loads.
    out = Path(output)
    if out.suffix != ".json" or out.name == ".json":
        raise MicromotionError(f"{out}: the report must be NAME.json")
    reads = [generator, latent, id_weights]
    if not isinstance(micromotion, Micromotion):
        reads.append(micromotion)
    outputs = OutputSet({"report": out}, reads=reads)
    strength = check_real("strength", strength)
    truncation_psi = check_real("truncation_psi", truncation_psi, low=0, high=2)
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 2:
        raise ParameterError("frames", f"{frames!r}: need at least 2 frames")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ParameterError("seed", f"{seed!r}: must be an integer from 0 to {MAX_SEED}")
    if index is not None and latent is None:
        raise ParameterError.worded("{index} picks a row of {latent}", "index", "latent")
    if latent is not None:
        require_file(latent, what="a .npy code")
    if id_weights is not None:
        require_file(id_weights, what="an IR-SE50 weights file")
    mm = micromotion if isinstance(micromotion, Micromotion) else load_micromotion(micromotion)
    G, spec = open_generator(generator, device)
    where = G.w_avg.device
    fingerprint = G.fingerprint()
    mm.check_compatible(num_ws=G.num_ws, w_dim=G.w_dim, fingerprint=fingerprint)
    lpips_fn = None
    if lpips:
        lpips_fn = perceptual_loss(
            cached("lpips", "lpips", where, lambda: load_lpips(device=where))
        )
    id_model = None
    if id_weights is not None:
        irse = cached("irse50", id_weights, where, lambda: load_irse50(id_weights, device=where))
        id_model = IdentityLoss(irse)

    # Step 1 — the clip's codes and frames (float, clamped as a viewer sees them).
    if latent is not None:
        w = read_code(Path(latent), index, num_ws=G.num_ws, w_dim=G.w_dim).to(where)
    else:
        w = sample_ws(G, [seed], truncation_psi=truncation_psi)[0]
    codes = clip_codes(w, [(mm, strength)], frames=frames)  # [T, num_ws, w_dim]
    images = []
    with torch.inference_mode():
        for start in range(0, frames, _BATCH):
            batch = G.synthesis(codes[start : start + _BATCH], noise_mode="const")
            images.append(batch.clamp(-1, 1).float())  # [B, 3, R, R]
            if progress is not None:
                progress("render", min(start + _BATCH, frames), frames, "")
    clip = torch.cat(images)  # [T, 3, R, R]
    if not torch.isfinite(clip).all():
        raise MicromotionError("the generator's output is not finite: use a smaller strength")

    # Step 2 — the scores.
    pixel = frame_distances(clip)
    report_smooth: dict[str, Any] = {
        "pixel_rmse": {"steps": _rounded(pixel), **spread(pixel)},
    }
    if lpips_fn is not None:
        with torch.no_grad():
            perceptual = frame_distances(clip, distance=lpips_fn)
        report_smooth["lpips"] = {"steps": _rounded(perceptual), **spread(perceptual)}
    identity = None
    if id_model is not None:
        sim = identity_similarity(id_model, clip)
        identity = {
            "cosine_to_first": _rounded(sim),
            "min": float(sim.min()),
            "mean": float(sim.mean()),
        }
    report = provenance(
        command="evaluate",
        micromotion=mm.name,
        micromotion_metadata={k: mm.metadata.get(k) for k in ("source", "method", "layers")},
        generator=spec,
        generator_fingerprint=fingerprint,
        start={"latent": str(latent), "index": index}
        if latent is not None
        else {"seed": seed, "truncation_psi": truncation_psi},
        strength=strength,
        frames=frames,
        smoothness=report_smooth,
        identity=identity,
        id_weights_sha256=sha256_file(id_weights) if id_weights is not None else None,
        subspace=subspace_report(mm),
    )
    with outputs:
        save_record(outputs.path("report"), report)
    return Evaluation(report, {"report": out})


def _rounded(values: torch.Tensor) -> list[float]:
    return [round(float(v), 8) for v in values]


__all__ = ["Evaluation", "evaluate"]
