"""Robust PCA, per-layer decomposition, direction estimates and layer masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from micromotion.errors import MicromotionError
from micromotion.subspace import (
    Decomposition,
    decompose,
    direction_from,
    layer_mask,
    robust_pca,
)

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def planted_pcp(
    m: int, n: int, rank: int, frac: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Candès et al. §4.1: L0 = XYᵀ with N(0, 1/n) factors, S0 = ±1 on a random support."""
    g = gen(seed)
    L0 = (
        torch.randn(m, rank, generator=g, dtype=F64)
        @ torch.randn(rank, n, generator=g, dtype=F64)
        / math.sqrt(m * n)
    )
    support = torch.rand(m, n, generator=g) < frac
    sign = torch.randint(0, 2, (m, n), generator=g).to(F64) * 2 - 1
    S0 = support * sign
    return L0, S0, support


def planted_motion(
    n: int,
    num_ws: int,
    w_dim: int,
    *,
    noise: float,
    outliers: float,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchors ``w0 + t·d + noise + sparse outliers`` and the true ``d``."""
    g = gen(seed)
    w0 = torch.randn(num_ws, w_dim, generator=g, dtype=F64)
    d = 0.3 * torch.randn(num_ws, w_dim, generator=g, dtype=F64)
    t = torch.linspace(0, 1, n, dtype=F64)
    x = w0 + t[:, None, None] * d
    x = x + noise * torch.randn(x.shape, generator=g, dtype=F64)
    if outliers:
        support = torch.rand(x.shape, generator=g) < outliers
        size = 3 + 2 * torch.rand(x.shape, generator=g, dtype=F64)
        sign = torch.randint(0, 2, x.shape, generator=g).to(F64) * 2 - 1
        x = x + support * sign * size
    return x, d


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    return float(a @ b / (a.norm() * b.norm()))


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


# --------------------------------------------------------------------------- robust_pca


@pytest.mark.parametrize(("rank", "seed"), [(5, 0), (10, 1)])
def test_rpca_recovers_planted_low_rank_and_sparse(rank: int, seed: int) -> None:
    L0, S0, support = planted_pcp(200, 200, rank, 0.05, seed)
    res = robust_pca(L0 + S0)
    assert bool(res.converged)
    assert int(res.iterations) < 60  # the inexact-ALM schedule: tens, not hundreds
    assert float(res.residual) < 1e-7
    assert rel(res.L, L0) < 1e-5
    assert rel(res.S, S0) < 1e-6
    assert torch.equal(res.S.abs() > 1e-3, support)
    assert torch.linalg.matrix_rank(res.L, rtol=1e-6) == rank


def test_rpca_matches_candes_algorithm_1_with_fixed_mu() -> None:
    # A literal numpy transcription of Candès et al. Algorithm 1 (S0 = Y0 = 0, fixed μ).
    L0, S0, _ = planted_pcp(30, 40, 3, 0.05, seed=2)
    D = (L0 + S0).numpy()
    mu, lam = 0.7, 1 / math.sqrt(40)
    S, Y = np.zeros_like(D), np.zeros_like(D)
    for _ in range(7):
        U, s, Vt = np.linalg.svd(D - S + Y / mu, full_matrices=False)
        L = (U * np.maximum(s - 1 / mu, 0)) @ Vt
        T = D - L + Y / mu
        S = np.sign(T) * np.maximum(np.abs(T) - lam / mu, 0)
        Y = Y + mu * (D - L - S)
    res = robust_pca(torch.from_numpy(D), mu=mu, max_iter=7)
    assert int(res.iterations) == 7
    assert not bool(res.converged)
    np.testing.assert_allclose(res.L.numpy(), L, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.S.numpy(), S, rtol=0, atol=1e-12)
    residual = np.linalg.norm(D - L - S) / np.linalg.norm(D)
    assert float(res.residual) == pytest.approx(residual, rel=1e-10)


def test_rpca_paper_mode_uses_papers_mu_and_stopping_rule() -> None:
    L0, S0, _ = planted_pcp(40, 60, 3, 0.05, seed=3)
    D = 3.0 * (L0 + S0)  # not unit scale: the paper's rules depend on the scale
    paper_mu = D.numel() / (4 * float(D.square().sum()))
    a = robust_pca(D, mu="paper", max_iter=9)
    b = robust_pca(D, mu=paper_mu, max_iter=9)
    torch.testing.assert_close(a.L, b.L, rtol=0, atol=1e-12)

    res = robust_pca(D, mu="paper", tol="paper")
    k = int(res.iterations)
    assert bool(res.converged)
    # The authors' rule: Σ R² / Σ D² ≤ 1e-7 · Σ D² ...
    energy = float(D.square().sum())
    assert float(res.residual) ** 2 <= 1e-7 * energy
    # ... met at iteration k and not before.
    if k > 1:
        before = robust_pca(D, mu="paper", tol="paper", max_iter=k - 1)
        assert not bool(before.converged)
        assert float(before.residual) ** 2 > 1e-7 * energy
    assert float(robust_pca(D, mu="candes", max_iter=3).residual) > 0  # accepted


def test_rpca_fixed_mu_converges_to_the_same_solution() -> None:
    L0, S0, _ = planted_pcp(80, 80, 3, 0.05, seed=4)
    fixed = robust_pca(L0 + S0, mu="candes", tol=1e-9)
    default = robust_pca(L0 + S0, tol=1e-9)
    assert bool(fixed.converged) and bool(default.converged)
    assert int(fixed.iterations) > int(default.iterations)
    assert rel(fixed.L, L0) < 1e-6
    assert rel(default.L, L0) < 1e-6


def test_rpca_batched_equals_looping() -> None:
    mats = []
    for i in range(5):
        L0, S0, _ = planted_pcp(24, 36, 1 + i % 3, 0.05, seed=10 + i)
        mats.append((L0 + S0) * (0.1 + i))  # different scales converge at different times
    mats.append(torch.zeros(24, 36, dtype=F64))
    D = torch.stack(mats).reshape(2, 3, 24, 36)
    res = robust_pca(D)
    assert res.L.shape == res.S.shape == (2, 3, 24, 36)
    assert res.iterations.shape == res.converged.shape == res.residual.shape == (2, 3)
    assert len(set(res.iterations.flatten().tolist())) > 2  # per-matrix stopping
    for i, M in enumerate(mats):
        one = robust_pca(M)
        torch.testing.assert_close(res.L.reshape(6, 24, 36)[i], one.L, rtol=0, atol=1e-12)
        torch.testing.assert_close(res.S.reshape(6, 24, 36)[i], one.S, rtol=0, atol=1e-12)
        assert int(res.iterations.flatten()[i]) == int(one.iterations)
        assert bool(res.converged.flatten()[i]) == bool(one.converged)


def test_rpca_float32_input() -> None:
    L0, S0, support = planted_pcp(100, 100, 4, 0.05, seed=5)
    res = robust_pca((L0 + S0).float())
    assert res.L.dtype == res.S.dtype == torch.float32
    assert bool(res.converged)
    assert rel(res.L, L0) < 1e-4  # limited by float32 rounding of the input
    assert torch.equal(res.S.abs() > 1e-2, support)


def test_rpca_zero_matrix() -> None:
    res = robust_pca(torch.zeros(4, 7))
    assert torch.equal(res.L, torch.zeros(4, 7))
    assert torch.equal(res.S, torch.zeros(4, 7))
    assert bool(res.converged)
    assert int(res.iterations) == 0
    assert float(res.residual) == 0.0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_rpca_rejects_non_finite(bad: float) -> None:
    D = torch.ones(5, 6)
    D[2, 3] = bad
    with pytest.raises(MicromotionError, match="NaN or inf"):
        robust_pca(D)


@pytest.mark.parametrize(
    ("D", "kwargs", "match"),
    [
        (torch.ones(3, dtype=F64), {}, r"\[\.\.\., m, n\]"),
        (torch.ones(3, 3, dtype=torch.int64), {}, "floating-point"),
        (torch.ones(0, 3), {}, "non-empty"),
        (torch.ones(3, 3), {"mu": "fast"}, "mu must be"),
        (torch.ones(3, 3), {"mu": -1.0}, "mu must be"),
        (torch.ones(3, 3), {"lam": 0}, "lam must be"),
        (torch.ones(3, 3), {"tol": "loose"}, "tol must be"),
        (torch.ones(3, 3), {"max_iter": 0}, "max_iter"),
    ],
)
def test_rpca_rejects_bad_input(D: torch.Tensor, kwargs: dict, match: str) -> None:
    with pytest.raises(MicromotionError, match=match):
        robust_pca(D, **kwargs)


# --------------------------------------------------------------------------- decompose


def test_decompose_shapes_and_basis() -> None:
    anchors, _ = planted_motion(7, 5, 16, noise=0.01, outliers=0.0, seed=6)
    dec = decompose(anchors.float())
    assert isinstance(dec, Decomposition)
    assert dec.denoised.shape == dec.sparse.shape == (7, 5, 16)
    assert dec.denoised.dtype == torch.float32
    assert dec.basis.shape == (5, 4, 16)
    assert dec.singular_values.shape == (5, 7)
    assert dec.rank == 4
    assert dec.rpca is not None and dec.rpca.iterations.shape == (5,)
    assert bool(dec.rpca.converged.all())
    eye = torch.eye(4).expand(5, 4, 4)
    torch.testing.assert_close(dec.basis @ dec.basis.mT, eye, atol=1e-5, rtol=0)
    for layer in range(5):
        assert torch.linalg.matrix_rank(dec.denoised[:, layer].double(), rtol=1e-5) <= 4
    # The reconstruction lies in the basis' span.
    proj = dec.denoised.transpose(0, 1) @ dec.basis.mT @ dec.basis  # [num_ws, n, w_dim]
    torch.testing.assert_close(proj, dec.denoised.transpose(0, 1), atol=1e-4, rtol=0)


def test_decompose_plain_is_truncated_svd() -> None:
    anchors, _ = planted_motion(6, 3, 10, noise=0.1, outliers=0.0, seed=7)
    dec = decompose(anchors, rank=2, robust=False)
    assert dec.rpca is None
    assert torch.equal(dec.sparse, torch.zeros_like(anchors))
    for layer in range(3):
        U, s, Vh = torch.linalg.svd(anchors[:, layer], full_matrices=False)
        expect = U[:, :2] @ torch.diag(s[:2]) @ Vh[:2]
        torch.testing.assert_close(dec.denoised[:, layer], expect, atol=1e-12, rtol=0)
        torch.testing.assert_close(dec.singular_values[layer], s, atol=1e-12, rtol=0)


def test_decompose_center_keeps_the_mean_out_of_the_rank() -> None:
    # Anchors w0 + t·d are rank 2, but their variation around the mean is rank 1.
    anchors, _ = planted_motion(6, 2, 12, noise=0.0, outliers=0.0, seed=8)
    centred = decompose(anchors, rank=1, robust=False, center=True)
    plain = decompose(anchors, rank=1, robust=False, center=False)
    torch.testing.assert_close(centred.denoised, anchors, atol=1e-12, rtol=0)
    assert rel(plain.denoised, anchors) > 1e-3


def test_decompose_rank_auto_and_clamp() -> None:
    g = gen(9)
    n, w_dim = 9, 32
    t = torch.linspace(0, 1, n, dtype=F64)[:, None]
    w0 = torch.randn(3, w_dim, generator=g, dtype=F64)
    d1, d2 = torch.randn(2, 3, w_dim, generator=g, dtype=F64)
    layers = [
        w0[0] + 0 * t,  # no motion
        w0[1] + t * d1[1],  # one motion
        w0[2] + t * d1[2] + torch.sin(3 * t) * d2[2],  # two motions
    ]
    anchors = torch.stack(layers, dim=1) + 1e-6 * torch.randn(n, 3, w_dim, generator=g)
    dec = decompose(anchors, rank="auto", robust=False)
    assert dec.rank == 3  # two motions, and the uncentred mean takes one component
    assert dec.basis.shape == (3, 3, w_dim)
    torch.testing.assert_close(dec.denoised, anchors, atol=1e-5, rtol=0)
    assert decompose(anchors, rank="auto", robust=False, center=True).rank == 2
    assert decompose(anchors, rank="auto", robust=True).rank == 3
    # A stricter energy has to keep noise components too.
    assert decompose(anchors, rank="auto", robust=False, energy=1.0).rank > 3
    assert decompose(anchors, rank=50, robust=False).rank == n
    still = torch.ones(5, 2, 4)
    assert decompose(still, rank="auto", robust=False).rank == 1


def test_decompose_robust_beats_plain_with_outliers() -> None:
    anchors, d = planted_motion(16, 4, 128, noise=0.02, outliers=0.05, seed=11)
    robust = direction_from(decompose(anchors).denoised)
    plain = direction_from(decompose(anchors, robust=False).denoised)
    assert cosine(robust, d) > 0.95
    assert cosine(robust, d) > cosine(plain, d) + 0.3


def test_decompose_passes_rpca_kwargs() -> None:
    anchors, _ = planted_motion(8, 2, 32, noise=0.01, outliers=0.05, seed=12)
    dec = decompose(anchors, rpca_kwargs={"max_iter": 2})
    assert dec.rpca is not None
    assert dec.rpca.iterations.tolist() == [2, 2]
    assert not bool(dec.rpca.converged.any())


@pytest.mark.parametrize(
    ("anchors", "kwargs", "match"),
    [
        (torch.zeros(2, 18, 8), {}, "at least 3 anchors"),
        (torch.zeros(5, 8), {}, r"\[n, num_ws, w_dim\]"),
        (torch.full((4, 2, 8), math.nan), {}, "NaN or inf"),
        (torch.zeros(4, 2, 8, dtype=torch.int32), {}, "floating point"),
        (torch.zeros(4, 2, 8), {"rank": 0}, "rank must be"),
        (torch.zeros(4, 2, 8), {"rank": "most"}, "rank must be"),
        (torch.zeros(4, 2, 8), {"rank": "auto", "energy": 1.5}, "energy"),
    ],
)
def test_decompose_rejects_bad_input(anchors: torch.Tensor, kwargs: dict, match: str) -> None:
    with pytest.raises(MicromotionError, match=match):
        decompose(anchors, **kwargs)


# --------------------------------------------------------------------------- directions


def test_direction_methods_agree_on_a_straight_path() -> None:
    g = gen(13)
    w0, d = torch.randn(2, 4, 8, generator=g, dtype=F64)
    t = torch.tensor([0.0, 0.1, 0.35, 0.5, 0.8, 1.0], dtype=F64)
    path = w0 + t[:, None, None] * d
    for method in ("endpoints", "slope", "robust-slope"):
        got = direction_from(path, method=method, times=t)
        torch.testing.assert_close(got, d, atol=1e-12, rtol=0)
    even = w0 + torch.linspace(0, 1, 5, dtype=F64)[:, None, None] * d
    torch.testing.assert_close(direction_from(even), d, atol=1e-12, rtol=0)


def test_slope_is_the_least_squares_slope_times_the_span() -> None:
    g = gen(14)
    x = torch.randn(9, 3, 5, generator=g, dtype=F64)
    t = torch.sort(torch.rand(9, generator=g, dtype=F64)).values
    got = direction_from(x, method="slope", times=t)
    coef = np.polyfit(t.numpy(), x.reshape(9, -1).numpy(), 1)[0]
    expect = torch.from_numpy(coef).reshape(3, 5) * (t[-1] - t[0])
    torch.testing.assert_close(got, expect, atol=1e-10, rtol=0)
    assert direction_from(x.float(), method="slope").dtype == torch.float32


@pytest.mark.parametrize("bad_anchor", [0, 4, 10])
def test_robust_slope_ignores_an_outlier_anchor(bad_anchor: int) -> None:
    g = gen(15)
    w0, d = torch.randn(2, 3, 16, generator=g, dtype=F64)
    x = w0 + torch.linspace(0, 1, 11, dtype=F64)[:, None, None] * d
    x = x + 1e-3 * torch.randn(x.shape, generator=g, dtype=F64)
    x[bad_anchor] = 5 * torch.randn(3, 16, generator=g, dtype=F64)  # a failed inversion
    robust = direction_from(x, method="robust-slope")
    assert rel(robust, d) < 1e-2
    assert rel(direction_from(x, method="slope"), d) > 0.1
    endpoint_hit = bad_anchor in (0, 10)
    assert (rel(direction_from(x, method="endpoints"), d) > 0.5) == endpoint_hit


def test_default_method_is_robust_slope() -> None:
    x, _ = planted_motion(9, 2, 8, noise=0.1, outliers=0.0, seed=16)
    x[3] += 10
    torch.testing.assert_close(direction_from(x), direction_from(x, method="robust-slope"))
    assert rel(direction_from(x), direction_from(x, method="slope")) > 1e-3


def test_direction_rejects_bad_input() -> None:
    x = torch.zeros(4, 2, 3)
    with pytest.raises(MicromotionError, match="at least 2 anchors"):
        direction_from(x[:1])
    with pytest.raises(MicromotionError, match="method must be"):
        direction_from(x, method="median")  # type: ignore[arg-type]
    with pytest.raises(MicromotionError, match="one entry per anchor"):
        direction_from(x, times=[0.0, 1.0])
    with pytest.raises(MicromotionError, match="all be equal"):
        direction_from(x, method="slope", times=[1.0, 1.0, 1.0, 1.0])
    with pytest.raises(MicromotionError, match="different times"):
        direction_from(x, method="slope", times=[0.0, 1.0, 2.0, 0.0])


def test_robust_slope_of_constant_anchors_is_zero() -> None:
    x = torch.ones(5, 2, 3)
    assert torch.equal(direction_from(x), torch.zeros(2, 3))


# --------------------------------------------------------------------------- layer masks


@pytest.mark.parametrize(
    ("spec", "expect"),
    [
        ("0-7", list(range(8))),
        ("0-3,8,10-11", [0, 1, 2, 3, 8, 10, 11]),
        (" 2 , 4 - 5 ", [2, 4, 5]),
        ("17", [17]),
        ([0, 17, 3], [0, 3, 17]),
        ((5, 5), [5]),
    ],
)
def test_layer_mask_parses(spec: str | list[int], expect: list[int]) -> None:
    mask = layer_mask(spec, 18)
    assert mask.dtype == torch.bool and mask.shape == (18,)
    assert mask.nonzero().flatten().tolist() == expect


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("0-18", "out of range"),
        ("18", "out of range"),
        ([18], "out of range"),
        ([-1], "out of range"),
        ("3-1", "backwards"),
        ("a", "not a layer"),
        ("", "not a layer"),
        ("1,,2", "not a layer"),
        ("-1", "not a layer"),
        ([1.0], "integers"),
        ([True], "integers"),
        ([], "empty"),
    ],
)
def test_layer_mask_rejects(spec: str | list[int], match: str) -> None:
    with pytest.raises(MicromotionError, match=match):
        layer_mask(spec, 18)
