"""Baseline directions the paper compares against, as pure tensor math: SeFa and GANSpace.

* **SeFa** (Shen & Zhou, "Closed-Form Factorization of Latent Semantics in GANs", CVPR 2021):
  the style affines ``A`` map ``w`` to styles, so a unit move ``n`` in ``w`` changes the styles
  by ``A n``; the directions that change them most are the leading eigenvectors of ``AᵀA``,
  ``A`` stacking the affine weights of the chosen layers. As in the authors' code, each style
  channel's weight row is first scaled to unit norm (``normalize=True``).
* **GANSpace** (Härkönen et al., "GANSpace: Discovering Interpretable GAN Controls", NeurIPS
  2020): principal components of ``w = mapping(z)`` over many samples ``z ~ N(0, I)``.

Both give directions in ``w`` (``[w_dim]``); :func:`as_micromotion` broadcasts one over the
chosen W+ layers so that it edits and renders like any decoded micromotion. No files, no
generator: :mod:`micromotion.pipelines.baselines` feeds these from a network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import torch

from micromotion.core.provenance import provenance
from micromotion.errors import MicromotionError
from micromotion.subspace.layers import layer_mask, layers_text
from micromotion.subspace.micromotion import Micromotion


class Components(NamedTuple):
    """Directions in ``w``, strongest first.

    Attributes:
        directions: ``[k, w_dim]`` float64 orthonormal rows, each signed so that its entry of
            largest magnitude is positive (eigenvectors have no sign of their own; this one is
            reproducible).
        values: ``[k]`` float64, descending: SeFa's eigenvalues of ``AᵀA``, or GANSpace's
            variances of ``w`` along each component.
        mean: ``[w_dim]`` the mean ``w`` (GANSpace), ``None`` for SeFa.
        num_rows: Rows the components were estimated from: ``w`` samples (GANSpace) or
            style channels stacked in ``A`` (SeFa).
    """

    directions: torch.Tensor
    values: torch.Tensor
    mean: torch.Tensor | None
    num_rows: int

    @property
    def explained(self) -> torch.Tensor:
        """``[k]`` each component's share of the total, ``values / values.sum()``."""
        total = self.values.clamp_min(0).sum()
        return self.values.clamp_min(0) / total if total > 0 else torch.zeros_like(self.values)


def sefa(weights: Sequence[torch.Tensor], *, normalize: bool = True) -> Components:
    """SeFa: the eigenvectors of ``AᵀA``, ``A`` the stacked style-affine weights.

    Args:
        weights: One ``[C_i, w_dim]`` weight per style affine of the chosen layers (the
            matrix that maps ``w`` to the ``C_i`` styles; a constant gain does not matter).
        normalize: Scale each row (one style channel) to unit norm first, as the SeFa code
            does, so wide layers and layers with large gains do not dominate.

    Returns:
        All ``w_dim`` eigen-directions with their eigenvalues, largest first.

    Raises:
        MicromotionError: No weights, mismatched widths, NaN/inf, or an all-zero row.
    """
    if not weights:
        raise MicromotionError("SeFa needs at least one style-affine weight")
    w_dim = weights[0].shape[-1]
    for weight in weights:
        if weight.ndim != 2 or weight.shape[1] != w_dim:
            raise MicromotionError(
                f"style-affine weights must be [C, {w_dim}], got {list(weight.shape)}"
            )
    A = torch.cat([weight.detach().to(torch.float64).cpu() for weight in weights])  # [ΣC, w_dim]
    if not torch.isfinite(A).all():
        raise MicromotionError("the style-affine weights contain NaN or inf")
    if normalize:
        norms = A.norm(dim=1, keepdim=True)  # [ΣC, 1]
        if bool((norms == 0).any()):
            raise MicromotionError("a style channel's affine weight is all zero; cannot normalise")
        A = A / norms
    values, vectors = torch.linalg.eigh(A.T @ A)  # ascending; columns are eigenvectors
    return Components(_signed(vectors.flip(1).T), values.flip(0), None, int(A.shape[0]))


class MomentSums:
    """Running count, sum and sum of outer products of ``w`` samples, in float64.

    GANSpace's PCA needs only these, so samples can stream through in batches without being
    kept (a million ``512``-wide samples would be 2 GB).
    """

    def __init__(self, w_dim: int) -> None:
        self.count = 0
        self.sum = torch.zeros(w_dim, dtype=torch.float64)  # [w_dim]
        self.outer = torch.zeros(w_dim, w_dim, dtype=torch.float64)  # [w_dim, w_dim]

    def add(self, w: torch.Tensor) -> None:
        """Add a batch ``[B, w_dim]``."""
        if w.ndim != 2 or w.shape[1] != self.sum.shape[0]:
            raise MicromotionError(f"samples must be [B, {self.sum.shape[0]}], got {list(w.shape)}")
        x = w.detach().to(torch.float64).cpu()
        if not torch.isfinite(x).all():
            raise MicromotionError("the samples of w contain NaN or inf")
        self.count += int(x.shape[0])
        self.sum += x.sum(dim=0)
        self.outer += x.T @ x

    def components(self) -> Components:
        """Principal components of the samples so far (covariance with the ``n − 1`` divisor)."""
        if self.count < 2:
            raise MicromotionError(f"PCA needs at least 2 samples, got {self.count}")
        mean = self.sum / self.count  # [w_dim]
        cov = (self.outer - self.count * torch.outer(mean, mean)) / (self.count - 1)
        values, vectors = torch.linalg.eigh((cov + cov.T) / 2)  # symmetric up to round-off
        return Components(_signed(vectors.flip(1).T), values.flip(0), mean, self.count)


def ganspace(samples: Iterable[torch.Tensor]) -> Components:
    """GANSpace: principal components of ``w`` samples given in batches ``[B, w_dim]``.

    Args:
        samples: Batches of mapped ``w`` (untruncated), e.g. from
            :func:`micromotion.networks.sampling.mapped_w`.

    Returns:
        All ``w_dim`` components with the variance of ``w`` along each, largest first, and
        the mean.
    """
    sums: MomentSums | None = None
    for batch in samples:
        if sums is None:
            if batch.ndim != 2:
                raise MicromotionError(f"samples must be [B, w_dim], got {list(batch.shape)}")
            sums = MomentSums(int(batch.shape[1]))
        sums.add(batch)
    if sums is None:
        raise MicromotionError("PCA needs samples, got none")
    return sums.components()


def as_micromotion(
    vector: torch.Tensor,
    *,
    num_ws: int,
    layers: str | Sequence[int] | None = None,
    name: str,
    source: str,
    generator_fingerprint: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Micromotion:
    """One direction in ``w`` on every chosen W+ layer: a :class:`Micromotion` to apply.

    Args:
        vector: ``[w_dim]`` the direction (its norm is the edit's unit of strength).
        num_ws: W+ entries of the generator.
        layers: Layers the edit moves, e.g. ``"0-7"`` (default: all).
        name: Name to record.
        source: What made it (``sefa``, ``ganspace``), recorded as ``source`` and ``method``.
        generator_fingerprint: The generator the direction belongs to.
        metadata: Further JSON-serialisable facts.
    """
    if vector.ndim != 1:
        raise MicromotionError(f"a baseline direction is [w_dim], got {list(vector.shape)}")
    mask = (
        layer_mask(layers, num_ws) if layers is not None else torch.ones(num_ws, dtype=torch.bool)
    )
    # Every row holds the vector; the mask decides which layers an edit moves, and the rows
    # outside it keep the vector so that `with_layers` can widen the edit later.
    direction = vector.detach().float().cpu().expand(num_ws, -1).contiguous()  # [num_ws, w_dim]
    meta = {
        "name": name,
        "source": source,
        "method": source,
        "rank": 1,  # one direction, no subspace of anchors
        "layers": layers_text(mask),
        "generator_fingerprint": generator_fingerprint,
        **dict(metadata or {}),
    }
    return Micromotion(direction=direction, mask=mask, metadata=provenance(**meta))


def _signed(rows: torch.Tensor) -> torch.Tensor:
    """Flip each row of ``[k, w_dim]`` so its entry of largest magnitude is positive."""
    pick = rows.abs().argmax(dim=1, keepdim=True)  # [k, 1]
    sign = torch.sign(rows.gather(1, pick))  # [k, 1]
    return (rows * torch.where(sign == 0, torch.ones_like(sign), sign)).contiguous()


__all__ = ["Components", "MomentSums", "as_micromotion", "ganspace", "sefa"]
