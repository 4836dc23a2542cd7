"""The paper's baselines as pure tensor math: SeFa, GANSpace and InterFaceGAN directions.

* **SeFa** (Shen & Zhou, "Closed-Form Factorization of Latent Semantics in GANs", CVPR 2021):
  the style affines ``A`` map ``w`` to styles, so a unit move ``n`` in ``w`` changes the styles
  by ``A n``; the directions that change them most are the leading eigenvectors of ``AᵀA``,
  ``A`` stacking the affine weights of the chosen layers. As in the authors' code, each style
  channel's weight row is first scaled to unit norm (``normalize=True``).
* **GANSpace** (Härkönen et al., "GANSpace: Discovering Interpretable GAN Controls", NeurIPS
  2020): principal components of ``w = mapping(z)`` over many samples ``z ~ N(0, I)``.
* **InterFaceGAN** (Shen et al., "Interpreting the Latent Space of GANs for Semantic Face
  Editing", CVPR 2020): a linear boundary separating codes with an attribute from codes
  without it (a linear SVM, as the paper, or logistic regression), fitted here with torch;
  its unit normal is the editing direction. With scores instead of labels, the codes with the
  highest and lowest scores are the two classes (:func:`select_by_score`, the paper's
  ``chosen_num_or_ratio``).

All give directions in ``w`` (``[w_dim]``), or per W+ layer; :func:`as_micromotion` broadcasts
one over the chosen W+ layers so that it edits and renders like any decoded micromotion. No
files, no generator: :mod:`micromotion.pipelines.baselines` feeds these from a network.
"""

from __future__ import annotations

import math
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


class Boundary(NamedTuple):
    """A linear boundary ``normal · x + bias = 0`` between two classes of codes.

    Attributes:
        normal: ``[D]`` float64 unit normal, pointing toward the positive class (label 1).
        bias: Offset of the boundary for the unit normal.
        train_accuracy: Share of the training codes on their class's side.
        val_accuracy: The same on the held-out codes (``None`` when none were held out).
        num_positive: Codes labelled 1 (training and validation).
        num_negative: Codes labelled 0.
        num_train: Codes the boundary was fitted on.
    """

    normal: torch.Tensor
    bias: float
    train_accuracy: float
    val_accuracy: float | None
    num_positive: int
    num_negative: int
    num_train: int


#: InterFaceGAN's share of the data used for training (``split_ratio``); the rest validates.
TRAIN_SPLIT = 0.7


def select_by_score(scores: torch.Tensor, ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The codes with the highest and lowest scores as two classes (InterFaceGAN's selection).

    Args:
        scores: ``[N]`` an attribute score per code (finite).
        ratio: Share of the codes taken from each end, in ``(0, 0.5]``.

    Returns:
        ``(indices [2k], labels [2k])``: the top ``k`` labelled 1, the bottom ``k`` labelled 0.

    Raises:
        MicromotionError: NaN/inf, a bad ratio, or fewer than 2 codes per class.
    """
    if scores.ndim != 1 or not torch.isfinite(scores).all():
        raise MicromotionError("scores must be [N] finite numbers")
    if not 0 < ratio <= 0.5:
        raise MicromotionError(f"ratio {ratio}: must be in (0, 0.5]")
    k = round(ratio * scores.numel())
    if k < 2:
        raise MicromotionError(
            f"{scores.numel()} scored codes × ratio {ratio} leaves {k} per class: need ≥ 2 "
            "(give more codes or a larger ratio)"
        )
    order = torch.argsort(scores.double(), descending=True, stable=True)
    top, bottom = order[:k], order[-k:]
    labels = torch.cat([torch.ones(k), torch.zeros(k)]).to(torch.float64)
    return torch.cat([top, bottom]), labels


def linear_boundary(
    codes: torch.Tensor,
    labels: torch.Tensor,
    *,
    method: str = "svm",
    c: float = 1.0,
    train_split: float = TRAIN_SPLIT,
    seed: int = 0,
    max_iter: int = 500,
) -> Boundary:
    """Fit a linear boundary between codes labelled 1 and 0 (InterFaceGAN's classifier).

    ``method="svm"``: a linear SVM, ``½‖n‖² + c·Σ max(0, 1 − y(n·x + b))²`` (the squared
    hinge, smooth so L-BFGS converges; scikit-learn's ``LinearSVC`` default). ``"logistic"``:
    L2-regularised logistic regression, ``½‖n‖² + c·Σ log(1 + exp(−y(n·x + b)))``. Both are
    fitted on the training split in float64 with L-BFGS; codes are centred on their training
    mean first (the bias absorbs it; the normal is unchanged).

    Args:
        codes: ``[N, D]`` codes (``w``, or one W+ layer).
        labels: ``[N]`` 0/1.
        method: ``"svm"`` or ``"logistic"``.
        c: Weight of the data term against the ``½‖n‖²`` regulariser (> 0).
        train_split: Share of the codes (shuffled with ``seed``, per class) fitted on; the rest
            measures ``val_accuracy``. 1 fits on all.
        seed: Seed of the split.
        max_iter: L-BFGS iterations.

    Raises:
        MicromotionError: Bad shapes, NaN/inf, labels not 0/1, fewer than 2 codes per class,
            or a boundary that did not come out finite.
    """
    if codes.ndim != 2 or labels.ndim != 1 or codes.shape[0] != labels.shape[0]:
        raise MicromotionError(
            f"codes [N, D] and labels [N] expected, got {list(codes.shape)} and "
            f"{list(labels.shape)}"
        )
    x = codes.detach().to(torch.float64).cpu()
    y = labels.detach().to(torch.float64).cpu()
    if not torch.isfinite(x).all() or not torch.isfinite(y).all():
        raise MicromotionError("the codes or labels contain NaN or inf")
    if not bool(((y == 0) | (y == 1)).all()):
        raise MicromotionError("labels must be 0 or 1")
    if method not in ("svm", "logistic"):
        raise MicromotionError(f"method {method!r}: choose svm or logistic")
    if not c > 0 or not 0 < train_split <= 1:
        raise MicromotionError(f"need c > 0 and 0 < train_split ≤ 1, got {c}, {train_split}")
    pos, neg = int(y.sum()), int((1 - y).sum())
    if pos < 2 or neg < 2:
        raise MicromotionError(f"{pos} positive and {neg} negative codes: need ≥ 2 of each")

    # Split each class alike, so both sides of the boundary are in training and validation.
    g = torch.Generator().manual_seed(seed)
    train_idx, val_idx = [], []
    for cls in (1.0, 0.0):
        idx = torch.nonzero(y == cls).reshape(-1)
        idx = idx[torch.randperm(len(idx), generator=g)]
        cut = max(2, round(train_split * len(idx))) if train_split < 1 else len(idx)
        train_idx.append(idx[:cut])
        val_idx.append(idx[cut:])
    tr, va = torch.cat(train_idx), torch.cat(val_idx)
    mean = x[tr].mean(dim=0)  # [D]
    xt, yt = x[tr] - mean, 2 * y[tr] - 1  # labels as ±1
    n = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [n, b], lr=1, max_iter=max_iter, tolerance_grad=1e-10, tolerance_change=1e-14,
        history_size=20, line_search_fn="strong_wolfe",
    )  # fmt: skip

    def objective() -> torch.Tensor:
        opt.zero_grad()
        margin = yt * (xt @ n + b)  # [N_train]
        if method == "svm":
            data = (1 - margin).clamp_min(0).square().sum()
        else:
            data = torch.nn.functional.softplus(-margin).sum()
        loss = 0.5 * n.square().sum() + c * data
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(objective)
    normal, bias = n.detach(), float(b.detach() - n.detach() @ mean)
    norm = float(normal.norm())
    if not math.isfinite(norm) or norm == 0 or not math.isfinite(bias):
        raise MicromotionError("the boundary did not come out finite and non-zero")

    def accuracy(idx: torch.Tensor) -> float | None:
        if len(idx) == 0:
            return None
        side = (x[idx] @ normal + bias) > 0
        return float((side == (y[idx] == 1)).double().mean())

    return Boundary(
        normal / norm, bias / norm, float(accuracy(tr) or 0.0), accuracy(va), pos, neg, len(tr)
    )


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
        vector: ``[w_dim]`` the direction (its norm is the edit's unit of strength), or
            ``[num_ws, w_dim]`` one per W+ layer.
        num_ws: W+ entries of the generator.
        layers: Layers the edit moves, e.g. ``"0-7"`` (default: all).
        name: Name to record.
        source: What made it (``sefa``, ``ganspace``), recorded as ``source`` and ``method``.
        generator_fingerprint: The generator the direction belongs to.
        metadata: Further JSON-serialisable facts.
    """
    if vector.ndim not in (1, 2) or (vector.ndim == 2 and vector.shape[0] != num_ws):
        raise MicromotionError(
            f"a baseline direction is [w_dim] or [{num_ws}, w_dim], got {list(vector.shape)}"
        )
    mask = (
        layer_mask(layers, num_ws) if layers is not None else torch.ones(num_ws, dtype=torch.bool)
    )
    # Every row holds the vector; the mask decides which layers an edit moves, and the rows
    # outside it keep the vector so that `with_layers` can widen the edit later.
    # [num_ws, w_dim]
    direction = vector.detach().float().cpu().expand(num_ws, -1).contiguous()
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


__all__ = [
    "TRAIN_SPLIT",
    "Boundary",
    "Components",
    "MomentSums",
    "as_micromotion",
    "ganspace",
    "linear_boundary",
    "sefa",
    "select_by_score",
]
