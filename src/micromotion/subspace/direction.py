"""Editing direction of denoised anchors: the paper's ``endpoints``, ``slope``, ``robust-slope``.

The text pipeline of the paper's code decomposed 12 anchors (the unedited code, then the
prompts "no", "10%", …, "100%") but kept only the first 11 reconstructions, so its direction
was ``L̂["90%"] − L̂[unedited]`` (``StyleCLIP/optimization/pca.py``: ``text_latents`` holds one
reconstruction per degree word, anchors 0-10 of 12; ``mixin.py``: ``latents_text_pca[-1] −
latents_text_pca[0]``). :func:`direction_from` uses the true last anchor by default;
``end_anchor=-2`` reproduces the slip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from micromotion.errors import MicromotionError

Method = Literal["endpoints", "slope", "robust-slope"]

# --------------------------------------------------------------------------- directions


#: The direction method used when none is asked for: the most accurate on planted data
#: (benchmarks/subspace.py).
DEFAULT_METHOD: Method = "robust-slope"


def direction_from(
    denoised: torch.Tensor,
    *,
    method: Method = DEFAULT_METHOD,
    times: torch.Tensor | Sequence[float] | None = None,
    end_anchor: int = -1,
) -> torch.Tensor:
    """The editing direction of reconstructed anchors.

    Args:
        denoised: ``[n, num_ws, w_dim]`` reconstructed anchors in motion order (any
            trailing shape works), ``n ≥ 2``.
        method: How to read the direction off the anchors:

            * ``"endpoints"``: ``d = L̂[last] − L̂[first]``, the paper's definition.
            * ``"slope"``: the least-squares slope of the anchors against their times,
              times ``t_last − t_first`` so it has the scale of ``"endpoints"`` (the two
              agree on a straight path). It averages noise over every anchor, but a
              corrupted anchor anywhere pulls it.
            * ``"robust-slope"`` (default): the same line fitted by iteratively reweighted
              least squares, each anchor weighted by Tukey's biweight of its distance from
              the line (all layers together, scaled by 1.4826 × the median distance,
              tuning constant 4.685, after 5 Huber steps), so anchors far off the line --
              a frame where inversion failed -- drop out, while on clean anchors it equals
              ``"slope"``. ``benchmarks/subspace.py`` measures all three on planted
              motions; this one is never worse than the others there by more than noise
              and far better with outlier anchors, hence the default.
        times: ``[n]`` time of each anchor for the slope methods. Default evenly spaced,
            ``linspace(0, 1, n)``, as for the paper's 0%…100% text anchors and for video
            frames at a constant rate. Checked but unused by ``"endpoints"``.
        end_anchor: The anchor the motion ends at (Python indexing, so ``-1`` is the last;
            default). Anchors after it are left out before any method runs: ``"endpoints"``
            becomes ``L̂[end_anchor] − L̂[0]`` and the slopes are fitted to anchors
            ``0 … end_anchor`` (their ``times`` likewise). ``-2`` reproduces the paper code's
            slip, which read its text direction off the "90%" anchor instead of "100%".

    Returns:
        ``[num_ws, w_dim]`` (``denoised``'s trailing shape) direction in its dtype.

    Raises:
        MicromotionError: On fewer than 2 anchors, bad ``times``, an ``end_anchor`` that is
            not after the first anchor, or an unknown method.
    """
    if not isinstance(denoised, torch.Tensor) or denoised.ndim < 2:
        raise MicromotionError("direction_from needs [n, num_ws, w_dim] anchors")
    if not torch.is_floating_point(denoised):
        raise MicromotionError(f"anchors must be floating point, got {denoised.dtype}")
    if method not in _METHODS:
        raise MicromotionError(f"method must be one of {', '.join(_METHODS)}; got {method!r}")
    n = denoised.shape[0]
    if n < 2:
        raise MicromotionError(f"need at least 2 anchors for a direction, got {n}")
    if not torch.isfinite(denoised).all():
        raise MicromotionError("anchors contain NaN or inf")
    t = _times(times, n, denoised.device)  # [n] float64
    end = _end_index(end_anchor, n)
    if end != n - 1:  # the motion ends earlier: the anchors after it take no part
        denoised, t, n = denoised[: end + 1], t[: end + 1], end + 1
        if t[-1] == t[0]:
            raise MicromotionError("the first and end_anchor anchors must have different times")
    if method == "endpoints":
        # The paper's d = L̂[last] − L̂[first] (its code's slip: end_anchor=-2).
        return denoised[-1] - denoised[0]
    x = denoised.detach().to(torch.float64).reshape(n, -1)  # [n, p]
    w = torch.ones(n, dtype=torch.float64, device=x.device)  # [n] anchor weights
    _, slope = _weighted_line(x, t, w)
    if method == "robust-slope":
        slope = _robust_slope(x, t, slope)
    return (slope * (t[-1] - t[0])).reshape(denoised.shape[1:]).to(denoised.dtype)


def joint_direction(
    denoised: torch.Tensor,
    *,
    method: Method = DEFAULT_METHOD,
    times: torch.Tensor | Sequence[float] | None = None,
    end_anchor: int = -1,
) -> torch.Tensor:
    """The editing direction of several faces' reconstructed anchors: the mean of their own.

    Each face's direction is read off its own reconstructed anchors with
    :func:`direction_from` (same ``method``, ``times`` and ``end_anchor``), and the ``F``
    directions are averaged. Why per face, then the mean: the faces start from different
    codes, so a line through all ``F·n`` anchors needs one intercept per face; for the
    least-squares ``"slope"`` on the shared times the slope with per-face intercepts *is* the
    mean of the per-face slopes, and ``"endpoints"`` stays the paper's ``L̂[last] − L̂[first]``,
    averaged over faces. ``"robust-slope"`` rejects outlying anchors within each face, so one
    face's failed anchor does not decide what counts as an outlier in another's. With one face
    this is :func:`direction_from` exactly.

    Args:
        denoised: ``[F, n, num_ws, w_dim]`` reconstructed anchors (any trailing shape).
        method: See :func:`direction_from`.
        times: ``[n]`` anchor times, shared by every face.
        end_anchor: See :func:`direction_from`.

    Returns:
        ``[num_ws, w_dim]`` (``denoised``'s trailing shape after ``n``) in its dtype.

    Raises:
        MicromotionError: On a wrong shape, or any error of :func:`direction_from`.
    """
    if not isinstance(denoised, torch.Tensor) or denoised.ndim < 3 or denoised.shape[0] < 1:
        raise MicromotionError("joint_direction needs [F, n, num_ws, w_dim] anchors")
    per_face = [
        direction_from(face, method=method, times=times, end_anchor=end_anchor) for face in denoised
    ]
    if len(per_face) == 1:
        return per_face[0]
    return torch.stack(per_face).mean(dim=0)


_METHODS = ("endpoints", "slope", "robust-slope")
#: Huber's and Tukey's tuning constants for 95 % Gaussian efficiency (Huber 1964; Beaton &
#: Tukey 1974), and 1.4826 = 1/Φ⁻¹(3/4), which turns a median absolute value into a std.
_HUBER_C, _TUKEY_C, _MAD_TO_STD = 1.345, 4.685, 1.4826
#: Huber steps first (a convex fit, so a unique start), then Tukey steps (which reject).
_HUBER_STEPS, _MAX_IRLS_STEPS = 5, 50


def _weighted_line(
    x: torch.Tensor, t: torch.Tensor, w: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted least-squares line ``x ≈ a + t·b``; ``x [n, p]``, ``t, w [n]`` → ``a, b [p]``."""
    sw = w.sum()
    t_bar = (w * t).sum() / sw
    x_bar = (w @ x) / sw  # [p]
    tc = t - t_bar  # [n]
    slope = ((w * tc) @ (x - x_bar)) / (w * tc.square()).sum()  # [p]
    return x_bar - t_bar * slope, slope


def _robust_slope(x: torch.Tensor, t: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    """IRLS (Huber, then Tukey's biweight) on per-anchor distances; ``x [n, p]`` → ``b [p]``."""
    # A floor for the scale: on an exactly straight path every distance is round-off, and
    # weighting round-off would drop anchors at random.
    spread = (x - x.mean(dim=0)).norm(dim=1).square().mean().sqrt()
    floor = 1e-9 * spread
    if floor == 0:
        return slope  # all anchors equal: no motion, slope is already zero
    intercept = x.mean(dim=0) - t.mean() * slope
    w_old = torch.ones_like(t)
    for step in range(_MAX_IRLS_STEPS):
        r = (x - intercept - t[:, None] * slope).norm(dim=1)  # [n] distance from the line
        scale = torch.clamp_min(_MAD_TO_STD * r.median(), floor)
        if step < _HUBER_STEPS:
            u = r / (_HUBER_C * scale)
            w = torch.where(u <= 1, torch.ones_like(u), 1 / u.clamp_min(1e-300))
        else:
            u = r / (_TUKEY_C * scale)
            w = (1 - u.square()).clamp_min(0).square()
        # At least half the anchors lie within the median distance, so keep positive weight;
        # still, a fit needs two distinct times among them.
        t_on = t[w > 0]
        if t_on.numel() < 2 or bool((t_on == t_on[0]).all()):
            break
        intercept, slope = _weighted_line(x, t, w)
        if step >= _HUBER_STEPS and float((w - w_old).abs().max()) < 1e-9:
            break
        w_old = w
    return slope


def _end_index(end_anchor: int, n: int) -> int:
    """``end_anchor`` (Python indexing) as an index in ``1 … n−1``: it must follow anchor 0."""
    if isinstance(end_anchor, bool) or not isinstance(end_anchor, int):
        raise MicromotionError(f"end_anchor must be an integer, got {end_anchor!r}")
    end = end_anchor + n if end_anchor < 0 else end_anchor
    if not 0 < end < n:
        raise MicromotionError(
            f"end_anchor {end_anchor}: with {n} anchors it must pick one of anchors 1-{n - 1} "
            f"(or -1 … -{n - 1} from the end)"
        )
    return end


def _times(
    times: torch.Tensor | Sequence[float] | None, n: int, device: torch.device
) -> torch.Tensor:
    if times is None:
        return torch.linspace(0.0, 1.0, n, dtype=torch.float64, device=device)
    t = torch.as_tensor(times, dtype=torch.float64).to(device).reshape(-1)
    if t.numel() != n:
        raise MicromotionError(f"times must have one entry per anchor ({n}), got {t.numel()}")
    if not torch.isfinite(t).all():
        raise MicromotionError("times contain NaN or inf")
    if bool((t == t[0]).all()):
        raise MicromotionError("times must not all be equal")
    if t[-1] == t[0]:
        raise MicromotionError("the first and last anchor must have different times")
    return t
