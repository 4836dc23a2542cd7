"""Per-layer low-rank decomposition of anchors: robust PCA, then a rank-``k`` reconstruction.

The paper keeps the low-rank part at rank 4. Its code used ``torch.pca_lowrank(L, q=4,
center=False)``, a randomised SVD; we use the exact SVD, so results are deterministic.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch

from micromotion.errors import MicromotionError
from micromotion.subspace.rpca import _svd, robust_pca


class RPCAInfo(NamedTuple):
    """Per-layer robust-PCA diagnostics kept by :func:`decompose`.

    Attributes:
        iterations: ``[num_ws]`` int64 iterations per layer.
        converged: ``[num_ws]`` bool.
        residual: ``[num_ws]`` float64 final relative residual per layer.
    """

    iterations: torch.Tensor
    converged: torch.Tensor
    residual: torch.Tensor


@dataclass(frozen=True)
class Decomposition:
    """Per-layer low-rank decomposition of anchors, as returned by :func:`decompose`.

    Attributes:
        denoised: ``[n, num_ws, w_dim]`` the anchors reconstructed from the rank-``k``
            low-rank part (mean added back when centred), in the anchors' dtype.
        sparse: ``[n, num_ws, w_dim]`` the sparse part ``S`` of robust PCA (zeros when
            ``robust=False``).
        basis: ``[num_ws, k, w_dim]`` per layer, the ``k`` leading right singular vectors
            of the low-rank part (orthonormal rows).
        singular_values: ``[num_ws, min(n, w_dim)]`` the full spectrum of each layer's
            low-rank part (after centring, when centred), descending.
        rank: the rank ``k`` used, the same for every layer.
        rpca: per-layer robust-PCA diagnostics, ``None`` when ``robust=False``.
    """

    denoised: torch.Tensor
    sparse: torch.Tensor
    basis: torch.Tensor
    singular_values: torch.Tensor
    rank: int
    rpca: RPCAInfo | None


# --------------------------------------------------------------------------- decomposition


def decompose(
    anchors: torch.Tensor,
    *,
    rank: int | Literal["auto"] = 4,
    robust: bool = True,
    center: bool = False,
    energy: float = 0.99,
    rpca_kwargs: dict[str, object] | None = None,
) -> Decomposition:
    """Per W+ layer, robust PCA then a rank-``k`` reconstruction of the anchors.

    For each of the ``num_ws`` layers, the ``n × w_dim`` matrix of that layer's codes goes
    through :func:`robust_pca` (all layers in one batch), and its low-rank part ``L`` is
    truncated to its ``k`` leading singular triplets.

    Args:
        anchors: ``[n, num_ws, w_dim]`` W+ codes in motion order, ``n ≥ 3``.
        rank: Rank ``k`` of the reconstruction. Default 4, the paper's choice. Clamped to
            ``min(n, w_dim)``. ``"auto"`` picks one rank for all layers (see ``energy``).
        robust: Run robust PCA first (the paper). ``False`` truncates the anchors' own SVD
            (plain PCA), for ablations.
        center: Subtract each layer's mean anchor before the decomposition and add it back
            after. Default ``False``, as in the paper's code (``center=False``).
        energy: For ``rank="auto"``: the smallest ``k`` whose leading singular values,
            summed over all layers, hold at least this fraction of the energy ``Σσ²`` of the
            anchors' *variation* (the low-rank parts minus their means). Without centring the
            mean takes one more component, so ``k = 1 + that``: the offset ``w`` itself holds
            nearly all of the uncentred energy and would otherwise crowd out the motion. One
            ``k`` for all layers, pooled, because a layer the motion leaves alone has only
            noise to explain, and a per-layer fraction of noise would ask for full rank.
            Default 0.99.
        rpca_kwargs: Keyword options for :func:`robust_pca` (``lam``, ``mu``, ``tol``,
            ``max_iter``); ignored when ``robust=False``.

    Returns:
        A :class:`Decomposition`.

    Raises:
        MicromotionError: On fewer than 3 anchors, a wrong shape, NaN/inf, or bad options.
    """
    if not isinstance(anchors, torch.Tensor) or anchors.ndim != 3:
        shape = list(anchors.shape) if isinstance(anchors, torch.Tensor) else type(anchors)
        raise MicromotionError(f"anchors must be [n, num_ws, w_dim], got {shape}")
    if not torch.is_floating_point(anchors):
        raise MicromotionError(f"anchors must be floating point, got {anchors.dtype}")
    n, num_ws, w_dim = anchors.shape
    if n < 3:
        raise MicromotionError(f"need at least 3 anchors to find a subspace, got {n}")
    if num_ws == 0 or w_dim == 0:
        raise MicromotionError(f"anchors must be non-empty, got {list(anchors.shape)}")
    if not torch.isfinite(anchors).all():
        raise MicromotionError("anchors contain NaN or inf")
    _check_rank(rank, energy)

    X = anchors.detach().to(torch.float64).transpose(0, 1)  # [num_ws, n, w_dim]
    # [num_ws, 1, w_dim]
    mean = X.mean(dim=1, keepdim=True) if center else torch.zeros_like(X[:, :1])
    low, S, Vh, s, k, info = _low_rank(
        X - mean, rank=rank, robust=robust, centered=center, energy=energy,
        rpca_kwargs=rpca_kwargs,
    )  # fmt: skip
    low = low + mean  # [num_ws, n, w_dim]

    dtype = anchors.dtype
    return Decomposition(
        denoised=low.transpose(0, 1).to(dtype).contiguous(),
        sparse=S.transpose(0, 1).to(dtype).contiguous(),
        basis=Vh[:, :k].to(dtype).contiguous(),  # [num_ws, k, w_dim]
        singular_values=s.to(dtype).contiguous(),
        rank=k,
        rpca=info,
    )


def decompose_faces(
    anchors: torch.Tensor,
    *,
    rank: int | Literal["auto"] = 4,
    robust: bool = True,
    energy: float = 0.99,
    rpca_kwargs: dict[str, object] | None = None,
) -> Decomposition:
    """Anchors of several faces: per-face centring, then one joint decomposition per layer.

    Each face ``f`` performs the same motion from its own code, so its anchors are
    ``w̄_f + motion + noise``. The offsets ``w̄_f`` differ from face to face and would take
    up to ``F`` of the ``rank`` components of an uncentred decomposition, so each face's mean
    anchor (per layer) is subtracted first. The ``F·n`` centred rows of a layer then go
    through :func:`robust_pca` together and are truncated to rank ``k``: the basis is the one
    subspace that explains every face's motion, and noise particular to one face (or one bad
    anchor) is left to the sparse part or to the discarded components. Each face's mean is
    added back to its own reconstructed rows.

    With one face this is :func:`decompose` with ``center=True``.

    Args:
        anchors: ``[F, n, num_ws, w_dim]`` W+ codes, each face's in motion order, ``n ≥ 3``.
        rank: Rank ``k`` of the joint reconstruction (clamped to ``min(F·n, w_dim)``), or
            ``"auto"`` (the ``energy`` rule of :func:`decompose`, on the centred rows).
        robust: Robust PCA first; ``False`` truncates the centred rows' own SVD.
        energy: For ``rank="auto"``, see :func:`decompose`.
        rpca_kwargs: Keyword options for :func:`robust_pca`; ignored when ``robust=False``.

    Returns:
        A :class:`Decomposition` whose ``denoised`` and ``sparse`` are ``[F, n, num_ws,
        w_dim]``; ``basis`` ``[num_ws, k, w_dim]`` and ``singular_values``
        ``[num_ws, min(F·n, w_dim)]`` are the joint ones.

    Raises:
        MicromotionError: On a wrong shape, fewer than 3 anchors per face, NaN/inf, or bad
            options.
    """
    if not isinstance(anchors, torch.Tensor) or anchors.ndim != 4:
        shape = list(anchors.shape) if isinstance(anchors, torch.Tensor) else type(anchors)
        raise MicromotionError(
            f"anchors of several faces must be [F, n, num_ws, w_dim], got {shape}"
        )
    if not torch.is_floating_point(anchors):
        raise MicromotionError(f"anchors must be floating point, got {anchors.dtype}")
    faces, n, num_ws, w_dim = anchors.shape
    if faces == 0 or num_ws == 0 or w_dim == 0:
        raise MicromotionError(f"anchors must be non-empty, got {list(anchors.shape)}")
    if n < 3:
        raise MicromotionError(f"need at least 3 anchors per face to find a subspace, got {n}")
    if not torch.isfinite(anchors).all():
        raise MicromotionError("anchors contain NaN or inf")
    _check_rank(rank, energy)

    X = anchors.detach().to(torch.float64).permute(2, 0, 1, 3)  # [num_ws, F, n, w_dim]
    mean = X.mean(dim=2, keepdim=True)  # [num_ws, F, 1, w_dim]: each face's own mean
    rows = (X - mean).reshape(num_ws, faces * n, w_dim)  # [num_ws, F·n, w_dim]
    low, S, Vh, s, k, info = _low_rank(
        rows, rank=rank, robust=robust, centered=True, energy=energy, rpca_kwargs=rpca_kwargs
    )
    low = low.reshape(num_ws, faces, n, w_dim) + mean  # [num_ws, F, n, w_dim]
    S = S.reshape(num_ws, faces, n, w_dim)

    dtype = anchors.dtype
    return Decomposition(
        denoised=low.permute(1, 2, 0, 3).to(dtype).contiguous(),  # [F, n, num_ws, w_dim]
        sparse=S.permute(1, 2, 0, 3).to(dtype).contiguous(),
        basis=Vh[:, :k].to(dtype).contiguous(),  # [num_ws, k, w_dim]
        singular_values=s.to(dtype).contiguous(),
        rank=k,
        rpca=info,
    )


def _check_rank(rank: object, energy: float) -> None:
    """``rank`` is a positive integer or ``"auto"`` (then ``energy`` is in (0, 1])."""
    if rank == "auto":
        if isinstance(energy, bool) or not isinstance(energy, numbers.Real):
            raise MicromotionError(f"energy must be in (0, 1], got {energy!r}")
        if not 0 < energy <= 1:
            raise MicromotionError(f"energy must be in (0, 1], got {energy!r}")
    elif isinstance(rank, bool) or not isinstance(rank, numbers.Integral) or rank < 1:
        raise MicromotionError(f"rank must be a positive integer or 'auto', got {rank!r}")


def _low_rank(
    X: torch.Tensor,
    *,
    rank: int | Literal["auto"],
    robust: bool,
    centered: bool,
    energy: float,
    rpca_kwargs: Mapping[str, Any] | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int, RPCAInfo | None]:
    """Robust PCA (or none) then rank-``k`` truncation of ``X [num_ws, m, w_dim]`` float64.

    Returns:
        ``low [num_ws, m, w_dim]``, ``S`` (same), ``Vh [num_ws, full, w_dim]``,
        ``s [num_ws, full]`` (``full = min(m, w_dim)``), the rank ``k`` and RPCA's info.
    """
    info: RPCAInfo | None = None
    if robust:
        res = robust_pca(X, **dict(rpca_kwargs or {}))
        L, S = res.L, res.S  # [num_ws, m, w_dim] each
        info = RPCAInfo(res.iterations, res.converged, res.residual)
    else:
        L, S = X, torch.zeros_like(X)

    # U [num_ws, m, full], s [num_ws, full], Vh [num_ws, full, w_dim]
    U, s, Vh = _svd(L)
    full = min(X.shape[-2:])
    k = _auto_rank(L, float(energy), centered=centered) if rank == "auto" else min(int(rank), full)
    low = (U[:, :, :k] * s[:, None, :k]) @ Vh[:, :k]  # [num_ws, m, w_dim]
    return low, S, Vh, s, k, info


def _auto_rank(L: torch.Tensor, energy: float, *, centered: bool) -> int:
    """The rank keeping ``energy`` of the variation of ``L [num_ws, n, w_dim]``, pooled."""
    full = min(L.shape[-2:])
    var = L - L.mean(dim=1, keepdim=True)  # [num_ws, n, w_dim]
    s2 = torch.linalg.svdvals(var.mT).square().sum(dim=0)  # [full]; tall is faster on CPU
    total = float(s2.sum())
    if total == 0:
        return 1  # no variation at all: the mean alone (or nothing, when centred)
    # Relative slack absorbs round-off, so energy=1.0 does not demand the noise floor.
    k_var = int((s2.cumsum(0) / total < energy - 1e-12).sum()) + 1
    k = k_var if centered else k_var + 1  # the uncentred mean needs its own component
    return max(1, min(k, full))
