"""How well a low-rank subspace explains its anchors, and how two micromotions' directions agree.

* :func:`explained_energy`, :func:`sparse_fraction`, :func:`subspace_report`: energy at rank
  ``k`` and RPCA's sparse part.
* :func:`direction_cosine`: transfer consistency, the cosine of two directions over the
  layers both move.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from micromotion.errors import MicromotionError
from micromotion.subspace.decompose import decompose
from micromotion.subspace.micromotion import Micromotion


def explained_energy(singular_values: torch.Tensor, rank: int) -> torch.Tensor:
    """Share of each layer's energy ``Σσ²`` in its ``rank`` leading singular values: ``[num_ws]``.

    Args:
        singular_values: ``[num_ws, s]`` per-layer spectra, descending.
        rank: ``k ≥ 1``.
    """
    if singular_values.ndim != 2:
        raise MicromotionError(
            f"singular values must be [num_ws, s], got {list(singular_values.shape)}"
        )
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise MicromotionError(f"rank must be a positive integer, got {rank!r}")
    s2 = singular_values.double().square()  # [num_ws, s]
    total = s2.sum(dim=1)
    kept = s2[:, :rank].sum(dim=1)
    return torch.where(total > 0, kept / total.clamp_min(1e-300), torch.ones_like(total))


def sparse_fraction(sparse: torch.Tensor) -> torch.Tensor:
    """Share of non-zero entries of RPCA's sparse part ``S [n, num_ws, w_dim]``, per layer."""
    if sparse.ndim != 3:
        raise MicromotionError(f"the sparse part must be [n, num_ws, w_dim], got {sparse.shape}")
    return (sparse != 0).double().mean(dim=(0, 2))  # [num_ws]


def subspace_report(mm: Micromotion) -> dict[str, Any] | None:
    """Subspace metrics of a micromotion decoded from anchors; ``None`` without anchors.

    The decomposition is run again on the stored anchors with the recorded settings (rank,
    robust, centring, RPCA settings) to recover the sparse part, which files do not keep.

    Returns:
        ``rank``; per layer ``explained_energy`` (of the low-rank part at that rank),
        ``sparse_fraction`` (non-zero entries of ``S``) and ``sparse_energy``
        (``‖S‖² / ‖anchors‖²``); ``spectrum``, each layer's singular values (descending,
        those the rank is read from); and ``rpca_iterations`` per layer.
    """
    if mm.anchors is None:
        return None
    meta = mm.metadata
    rank = int(meta.get("rank", 4))
    robust = bool(meta.get("robust", True))
    paper = meta.get("rpca_settings") == "paper"
    decomp = decompose(
        mm.anchors,
        rank=rank,
        robust=robust,
        center=bool(meta.get("center", False)),
        rpca_kwargs={"mu": "paper", "tol": "paper"} if paper else None,
    )
    energy = mm.anchors.double().square().sum(dim=(0, 2))  # [num_ws]
    sparse_energy = decomp.sparse.double().square().sum(dim=(0, 2)) / energy.clamp_min(1e-300)
    return {
        "rank": decomp.rank,
        "robust": robust,
        "rpca_settings": "paper" if paper else "converged",
        "explained_energy": _rounded(explained_energy(decomp.singular_values, decomp.rank)),
        "sparse_fraction": _rounded(sparse_fraction(decomp.sparse)),
        "sparse_energy": _rounded(sparse_energy),
        # [num_ws][min(n, w_dim)]: what info --plot draws, as numbers
        "spectrum": [_rounded(layer) for layer in decomp.singular_values],
        "rpca_iterations": None if decomp.rpca is None else decomp.rpca.iterations.tolist(),
    }


def direction_cosine(a: Micromotion, b: Micromotion) -> dict[str, Any]:
    """Cosine of two micromotions' directions over the W+ layers both move.

    The masked directions are flattened over the shared layers (one cosine, weighting each
    layer by its norm, as an edit does) and also compared layer by layer.

    Returns:
        ``cosine`` (``None`` when no layer is shared or a direction is zero there),
        ``layers`` (the shared ones) and ``per_layer`` (one cosine, or ``None``, per shared
        layer).

    Raises:
        MicromotionError: The two are not ``[num_ws, w_dim]`` of one shape.
    """
    if a.direction.shape != b.direction.shape:
        raise MicromotionError(
            f"{a.name} and {b.name} have W+ shapes {list(a.direction.shape)} and "
            f"{list(b.direction.shape)}: not the same generator"
        )
    shared = a.mask & b.mask  # [num_ws]
    layers = [int(i) for i in torch.nonzero(shared).reshape(-1)]
    da = a.direction.double()[shared]  # [L, w_dim]
    db = b.direction.double()[shared]
    per_layer = [_cosine(x, y) for x, y in zip(da, db, strict=True)]
    return {
        "cosine": _cosine(da.reshape(-1), db.reshape(-1)) if layers else None,
        "layers": layers,
        "per_layer": per_layer,
    }


def _cosine(x: torch.Tensor, y: torch.Tensor) -> float | None:
    nx, ny = float(x.norm()), float(y.norm())
    if nx == 0 or ny == 0 or not math.isfinite(nx * ny):
        return None
    return round(float((x @ y) / (nx * ny)), 8)


def _rounded(values: torch.Tensor) -> list[float]:
    return [round(float(v), 8) for v in values]


__all__ = ["direction_cosine", "explained_energy", "sparse_fraction", "subspace_report"]
