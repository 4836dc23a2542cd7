"""Robust PCA internals: the Gram-matrix SVT, the fused loop and the thread split."""

from __future__ import annotations

import math

import pytest
import torch

from micromotion.subspace import rpca
from micromotion.subspace.rpca import robust_pca

F64 = torch.float64


def _svd_svt(M: torch.Tensor, tau: float) -> torch.Tensor:
    """Singular value thresholding by a full SVD: the plain definition."""
    U, s, Vh = torch.linalg.svd(M, full_matrices=False)
    return (U * (s - tau).clamp_min(0.0)[..., None, :]) @ Vh


def _literal_lin(D: torch.Tensor, tol: float = 1e-7) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Lin, Chen & Ma's inexact ALM on one matrix, transcribed literally with a full SVD."""
    m, n = D.shape
    lam = 1 / math.sqrt(max(m, n))
    spec = float(torch.linalg.matrix_norm(D, 2))
    mu = 1.25 / spec
    mu_cap = mu * 1e7
    Y = D / max(spec, float(D.abs().max()) / lam)
    S = torch.zeros_like(D)
    for k in range(1, 1001):
        L = _svd_svt(D - S + Y / mu, 1 / mu)
        T = D - L + Y / mu
        S = torch.sign(T) * (T.abs() - lam / mu).clamp_min(0.0)
        Y = Y + mu * (D - L - S)
        mu = min(mu * 1.5, mu_cap)
        if float((D - L - S).norm() / D.norm()) < tol:
            return L, S, k
    raise AssertionError("the transcription did not converge")


def _anchors(layers: int, m: int, n: int, seed: int) -> torch.Tensor:
    """Low rank + dense noise + 5 % sparse outliers, like W+ anchors: ranks vary per layer."""
    g = torch.Generator().manual_seed(seed)
    rank = torch.randint(1, 5, (layers, 1, 1), generator=g)  # [layers, 1, 1]
    factor = torch.randn(layers, m, 4, generator=g, dtype=F64) * (torch.arange(4) < rank)
    low = factor @ torch.randn(layers, 4, n, generator=g, dtype=F64)  # [layers, m, n]
    noise = 0.05 * torch.randn(layers, m, n, generator=g, dtype=F64)
    spikes = (torch.rand(layers, m, n, generator=g) < 0.05) * 3.0
    return low + noise + spikes * torch.randn(layers, m, n, generator=g, dtype=F64).sign()


@pytest.mark.parametrize("shape", [(4, 11, 40), (4, 40, 11), (2, 30, 30), (3, 40, 200)])
def test_svt_by_gram_matches_the_svd_route(shape):
    """The Gram-matrix SVT equals thresholding the singular values of an SVD, at every rank.

    The thresholds put the kept count at none, one, a few and all of the singular values, so
    both association orders of the reconstruction (projector first for high ranks of a very
    wide matrix, eigenvector products otherwise) and the zero-rank shortcut are exercised.
    """
    g = torch.Generator().manual_seed(3)
    M = torch.randn(*shape, generator=g, dtype=F64)
    s = torch.linalg.svdvals(M)  # [b, k], descending
    k = s.shape[-1]
    for kept in (0, 1, 3, k // 2, k - 1, k):
        if kept == 0:
            tau = s[:, 0] * 1.01
        elif kept == k:
            tau = s[:, -1] * 0.99
        else:
            tau = (s[:, kept - 1] + s[:, kept]) / 2
        got = rpca._svt_full(M, tau[:, None, None])
        expected = torch.stack([_svd_svt(M[i], float(tau[i])) for i in range(shape[0])])
        torch.testing.assert_close(got, expected, atol=1e-10, rtol=0)
        assert int(torch.linalg.matrix_rank(got[0], atol=1e-9)) == kept


def test_svt_batch_with_mixed_ranks_equals_one_matrix_at_a_time():
    """Each matrix keeps its own rank: its SVT does not depend on what it is batched with."""
    g = torch.Generator().manual_seed(5)
    M = torch.randn(5, 60, 300, generator=g, dtype=F64)
    s = torch.linalg.svdvals(M)
    kept = [1, 7, 33, 45, 60]  # different rank groups, both reconstruction orders
    tau = torch.stack(
        [(s[i, r - 1] + s[i, r]) / 2 if r < 60 else s[i, -1] / 2 for i, r in enumerate(kept)]
    )[:, None, None]
    batched = rpca._svt_full(M, tau)
    for i in range(5):
        alone = rpca._svt_full(M[i : i + 1], tau[i : i + 1])
        torch.testing.assert_close(batched[i : i + 1], alone, atol=1e-13, rtol=0)
        assert int(torch.linalg.matrix_rank(batched[i], atol=1e-9)) == kept[i]


@pytest.mark.parametrize("shape", [(40, 120), (120, 40)])
def test_robust_pca_matches_the_literal_full_svd_algorithm(shape):
    """The fused loop (scaled dual, one clamp, kept eigenvectors only) is Lin et al.'s ALM."""
    D = _anchors(1, *shape, seed=6)[0]
    L, S, k = _literal_lin(D)
    res = robust_pca(D)
    assert int(res.iterations) == k
    scale = float(D.abs().max())
    torch.testing.assert_close(res.L, L, atol=1e-9 * scale, rtol=0)
    torch.testing.assert_close(res.S, S, atol=1e-9 * scale, rtol=0)
    assert 1 < int(torch.linalg.matrix_rank(res.L, rtol=1e-9)) < min(shape)  # not trivial


def test_paper_mode_matches_the_literal_algorithm():
    """``mu="paper", tol="paper"``: fixed μ = mn/(4ΣD²), S₀ = Y₀ = 0, the authors' stop rule."""
    D = 2.0 * _anchors(1, 30, 80, seed=7)[0]
    m, n = D.shape
    mu, lam = m * n / (4 * float(D.square().sum())), 1 / math.sqrt(n)
    S, Y = torch.zeros_like(D), torch.zeros_like(D)
    energy = float(D.square().sum())
    iterations = 0
    while iterations < 1000:
        iterations += 1
        L = _svd_svt(D - S + Y / mu, 1 / mu)
        T = D - L + Y / mu
        S = torch.sign(T) * (T.abs() - lam / mu).clamp_min(0.0)
        Y = Y + mu * (D - L - S)
        if float((D - L - S).square().sum()) / energy <= 1e-7 * energy:
            break
    res = robust_pca(D, mu="paper", tol="paper")
    assert int(res.iterations) == iterations > 1
    torch.testing.assert_close(res.L, L, atol=1e-10, rtol=0)
    torch.testing.assert_close(res.S, S, atol=1e-10, rtol=0)


def test_results_do_not_depend_on_threads(monkeypatch):
    """The batch is split over worker threads; each matrix's result is the same either way."""
    calls = []
    real_pcp = rpca._pcp_single_threaded
    monkeypatch.setattr(rpca, "_SPLIT_WORK", 1)  # split even these small matrices
    monkeypatch.setattr(
        rpca, "_pcp_single_threaded", lambda X, *a: calls.append(len(X)) or real_pcp(X, *a)
    )
    D = _anchors(6, 40, 100, seed=4)
    before = torch.get_num_threads()
    try:
        runs = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            runs.append(robust_pca(D))
            assert torch.get_num_threads() == threads  # the caller's setting is restored
    finally:
        torch.set_num_threads(before)
    assert calls == [3, 3, 2, 2, 2]  # 1 thread: no workers; 2 and 3: the batch split
    for other in runs[1:]:
        assert torch.equal(runs[0].L, other.L) and torch.equal(runs[0].S, other.S)
        assert torch.equal(runs[0].iterations, other.iterations)


def test_small_problems_stay_on_one_worker(monkeypatch):
    """Tiny matrices are not split: two workers would only contend for the GIL."""
    monkeypatch.setattr(rpca, "ThreadPoolExecutor", None)  # any split would fail
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        res = robust_pca(_anchors(18, 16, 64, seed=9))
    finally:
        torch.set_num_threads(before)
    assert bool(res.converged.all())


@pytest.mark.parametrize(("anchors", "workers"), [(16, 1), (32, 2)])
def test_w_plus_anchors_split_where_it_was_measured_to_pay(monkeypatch, anchors, workers):
    """18 layers x 512: 16 anchors on one worker, 32 on two (measured: 2.1x faster idle)."""
    calls = []
    real_pcp = rpca._pcp_single_threaded
    monkeypatch.setattr(
        rpca, "_pcp_single_threaded", lambda X, *a: calls.append(len(X)) or real_pcp(X, *a)
    )
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        robust_pca(_anchors(18, anchors, 512, seed=2))
    finally:
        torch.set_num_threads(before)
    assert calls == ([] if workers == 1 else [9, 9])


def test_batching_does_not_change_results():
    """Matrices of different ranks and scales, batched, equal each one solved alone."""
    D = _anchors(4, 50, 120, seed=8) * torch.tensor([0.3, 1.0, 3.0, 10.0], dtype=F64)[:, None, None]
    res = robust_pca(D)
    ranks = {int(torch.linalg.matrix_rank(res.L[i], rtol=1e-9)) for i in range(4)}
    assert len(ranks) > 1  # the batch really mixes ranks
    for i in range(4):
        one = robust_pca(D[i])
        torch.testing.assert_close(res.L[i], one.L, atol=1e-12 * float(D[i].abs().max()), rtol=0)
        torch.testing.assert_close(res.S[i], one.S, atol=1e-12 * float(D[i].abs().max()), rtol=0)
        assert int(res.iterations[i]) == int(one.iterations)


# --------------------------------------------------------------------------- the block SVT


def _gapped(g: int, k: int, far: int, rank: int, noise: float, seed: int) -> torch.Tensor:
    """``[g, k, far]`` matrices: ``rank`` large singular values over a bulk of noise."""
    gen = torch.Generator().manual_seed(seed)
    low = torch.randn(g, k, rank, generator=gen, dtype=F64) @ torch.randn(
        g, rank, far, generator=gen, dtype=F64
    )
    return low + noise * torch.randn(g, k, far, generator=gen, dtype=F64)


def _start(g: int, k: int, p: int) -> torch.Tensor:
    return rpca._start_block(k, p, torch.zeros((), dtype=F64)).expand(g, -1, -1)


@pytest.mark.parametrize("tall", [False, True])
def test_block_svt_equals_the_exact_svt_where_it_certifies(tall):
    """From a cold start, the block route finds the 3 kept directions and certifies them."""
    M = _gapped(4, 64, 200, rank=3, noise=0.01, seed=11)
    if tall:
        M = M.mT  # [4, 200, 64]
    s = torch.linalg.svdvals(M)
    tau = (s[:, 2] + s[:, 3]) / 2  # between the signal and the bulk: 3 kept
    exact = torch.stack([_svd_svt(M[i], float(tau[i])) for i in range(4)])
    scale = float(torch.linalg.matrix_norm(M).max())
    res = rpca._svt_block(M, tau, _start(4, 64, 8), torch.full((4,), -1))
    assert bool(res.ok.all()) and res.kept.tolist() == [3] * 4
    torch.testing.assert_close(res.out, exact, atol=1e-11 * scale, rtol=0)
    # Warm from its own Ritz vectors (the next iteration's start), it certifies at once by
    # the cheap bound, without forming a Gram matrix.
    again = rpca._svt_block(M, tau, res.vectors, res.kept)
    assert bool(again.ok.all()) and again.gram is None
    torch.testing.assert_close(again.out, exact, atol=1e-11 * scale, rtol=0)


def test_block_svt_certifies_by_cholesky_when_the_frobenius_bound_is_loose():
    """A noise bulk whose Frobenius norm exceeds τ but whose top singular value does not."""
    M = _gapped(3, 64, 256, rank=2, noise=0.05, seed=12)
    s = torch.linalg.svdvals(M)
    bulk_top, bulk_fro = s[:, 2], s[:, 2:].square().sum(-1).sqrt()
    tau = 1.3 * bulk_top
    assert bool((bulk_fro > tau).all())  # the cheap bound cannot certify these
    res = rpca._svt_block(M, tau, _start(3, 64, 8), torch.full((3,), -1))
    assert bool(res.ok.all()) and res.kept.tolist() == [2] * 3
    assert res.gram is not None and bool(res.has_gram.all())
    exact = torch.stack([_svd_svt(M[i], float(tau[i])) for i in range(3)])
    torch.testing.assert_close(res.out, exact, atol=1e-11 * float(M.norm()), rtol=0)


def test_block_svt_gives_up_on_a_block_too_narrow():
    """12 singular values above τ and a block of 8: reported for the full eigensolver."""
    M = _gapped(2, 64, 200, rank=12, noise=0.01, seed=13)
    tau = torch.linalg.svdvals(M)[:, 11] / 2
    res = rpca._svt_block(M, tau, _start(2, 64, 8), torch.full((2,), -1))
    assert not bool(res.ok.any())
    assert res.kept.tolist() == [0, 0]


def test_block_svt_never_certifies_a_wrong_result():
    """Slowly decaying spectra, thresholds anywhere: given up, or within the certified bound.

    The singular values fall by 0.8 per index, so a block of 8 converges fast past a threshold
    high in the spectrum and too slowly past one low in it, and each threshold sits just above a
    singular value (a near-tie at the cut): both outcomes must occur, and every certified
    result must be the exact SVT to within ``_BLOCK_TOL · ‖M‖_F``.
    """
    gen = torch.Generator().manual_seed(15)
    g, k, far = 48, 40, 90
    Q1 = torch.linalg.qr(torch.randn(g, k, k, generator=gen, dtype=F64)).Q
    Q2 = torch.linalg.qr(torch.randn(g, far, k, generator=gen, dtype=F64)).Q
    sv = 0.8 ** torch.arange(k, dtype=F64)  # [k]
    M = (Q1 * sv) @ Q2.mT  # [g, k, far] with singular values sv
    cut = torch.arange(g) % 8  # thresholds just above the singular value at this index
    tau = sv[cut] * (1 + 10.0 ** -torch.randint(1, 6, (g,), generator=gen).to(F64))
    res = rpca._svt_block(M, tau, _start(g, k, 8), torch.full((g,), -1))
    assert bool((res.ok & (res.kept >= 3)).any()) and not bool(res.ok.all())  # both occur
    for i in range(g):
        if bool(res.ok[i]):
            exact = _svd_svt(M[i], float(tau[i]))
            assert float((res.out[i] - exact).norm()) <= 1e-12 * float(M[i].norm()) * 1.01
            assert int(res.kept[i]) == int(cut[i])


def test_block_svt_refines_a_warm_start_that_is_slightly_off():
    """A start block 1e-4 off the invariant subspace: bounded at once, but not accepted
    until its Ritz residuals certify the result (one more power step here)."""
    gen = torch.Generator().manual_seed(16)
    g, k, far = 3, 48, 100
    Q1 = torch.linalg.qr(torch.randn(g, k, k, generator=gen, dtype=F64)).Q
    Q2 = torch.linalg.qr(torch.randn(g, far, k, generator=gen, dtype=F64)).Q
    sv = torch.cat([torch.tensor([10.0, 9.0, 8.0], dtype=F64), torch.full((k - 3,), 1e-3)])
    M = (Q1 * sv) @ Q2.mT  # [g, k, far]
    V0 = Q1[..., :8] + 1e-4 * Q1[..., 8:16]  # the right subspace, slightly tilted
    tau = torch.ones(g, dtype=F64)
    res = rpca._svt_block(M, tau, V0, torch.full((g,), 3))
    assert bool(res.ok.all()) and res.kept.tolist() == [3] * g
    exact = torch.stack([_svd_svt(M[i], 1.0) for i in range(g)])
    torch.testing.assert_close(res.out, exact, atol=1e-11 * float(M.norm()), rtol=0)


def test_block_svt_does_not_miss_a_direction_its_start_block_lacks():
    """A singular value above τ outside an invariant start block: the exact test refuses it.

    The block spans the top three singular directions and five of the tail, but not the
    fourth, whose singular value (7.5) is above τ = 7. Its residuals are zero and the kept
    count is settled, so only the Cholesky test stands between it and a wrong result.
    """
    gen = torch.Generator().manual_seed(17)
    g, k, far = 2, 48, 100
    Q1 = torch.linalg.qr(torch.randn(g, k, k, generator=gen, dtype=F64)).Q
    Q2 = torch.linalg.qr(torch.randn(g, far, k, generator=gen, dtype=F64)).Q
    sv = torch.cat([torch.tensor([10.0, 9.0, 8.0, 7.5], dtype=F64), torch.full((k - 4,), 1e-3)])
    M = (Q1 * sv) @ Q2.mT  # [g, k, far]
    V0 = torch.cat([Q1[..., :3], Q1[..., 4:9]], dim=-1)  # [g, k, 8] without the 4th
    tau = torch.full((g,), 7.0, dtype=F64)
    res = rpca._svt_block(M, tau, V0, torch.full((g,), 3))
    assert res.gram is not None and bool(res.has_gram.all())  # the exact test ran
    exact = torch.stack([_svd_svt(M[i], 7.0) for i in range(g)])
    for i in range(g):
        if bool(res.ok[i]):  # rounding may bring the 4th direction in after a few steps
            assert int(res.kept[i]) == 4
            torch.testing.assert_close(res.out[i], exact[i], atol=1e-11 * float(M.norm()), rtol=0)


def _spectrum(g: int, k: int, far: int, head: list[float], tail: float, seed: int) -> torch.Tensor:
    """``[g, k, far]`` matrices with singular values ``head`` and then ``tail`` repeated."""
    gen = torch.Generator().manual_seed(seed)
    Q1 = torch.linalg.qr(torch.randn(g, k, k, generator=gen, dtype=F64)).Q
    Q2 = torch.linalg.qr(torch.randn(g, far, k, generator=gen, dtype=F64)).Q
    sv = torch.cat([torch.tensor(head, dtype=F64), torch.full((k - len(head),), tail)])
    return (Q1 * sv) @ Q2.mT


@pytest.mark.parametrize("tall", [False, True])
def test_svt_warm_routes_a_mixed_batch(tall):
    """One call with a cold start, a certified warm start, a start that lacks a direction
    (its Gram matrix handed to the full eigensolver) and a matrix on the full route: every
    result exact, and each matrix's next state the one its route calls for."""
    k, far = 64, 100
    M = _spectrum(4, k, far, [10.0, 9.0, 8.0, 7.5], 1e-3, seed=18)  # [4, k, far]
    U = torch.linalg.svd(M, full_matrices=False).U  # [4, k, k]
    cap = rpca._block_cap(k)  # 16
    basis = _start(4, k, cap).clone()
    basis[1, :, :12] = U[1, :, :12]  # the exact leading vectors, 4 kept + 8
    basis[2, :, :12] = torch.cat([U[2, :, :3], U[2, :, 4:13]], dim=-1)  # without the 4th
    width = torch.tensor([0, 4 + 8, 3 + 8, rpca._FULL])
    misses = torch.tensor([0, 1, 0, 0])
    tau = torch.full((4, 1, 1), 7.0, dtype=F64)
    X = M.mT if tall else M
    out, width_next, basis_next, misses_next = rpca._svt_warm(X, tau, width, basis, misses)
    for i in range(4):
        expected = _svd_svt(X[i], 7.0)
        torch.testing.assert_close(out[i], expected, atol=1e-11 * float(M[i].norm()), rtol=0)
    assert width_next[3] == rpca._FULL and misses_next[3] == 0  # stays on the full route
    assert width_next[1] == 4 + 8 and misses_next[1] == 0  # certified: a miss forgiven
    if misses_next[2] == 1:  # refused: retries from the full solver's exact eigenvectors
        assert width_next[2] == 4 + 8
        lead = basis_next[2, :, :4]  # [k, 4] must span the top 4 singular vectors
        assert float(torch.linalg.matrix_norm(U[2, :, :4].mT @ lead, 2)) > 1 - 1e-12
    else:  # rounding brought the 4th direction into the block, and it certified
        assert misses_next[2] == 0 and width_next[2] == 4 + 8


def test_a_matrix_that_keeps_failing_leaves_the_block_route(monkeypatch):
    """A failure retries from the full solver's exact eigenvectors; _BLOCK_MISSES failures
    in a row send the matrix to the full eigensolver for good."""
    k = 64
    M = _spectrum(1, k, 100, [10.0, 9.0, 8.0, 7.5], 1e-3, seed=19)
    U = torch.linalg.svd(M[0]).U  # [k, k]
    tau = torch.full((1, 1, 1), 7.0, dtype=F64)
    real_block = rpca._svt_block

    def refused(*args):
        res = real_block(*args)
        return res._replace(ok=torch.zeros_like(res.ok))  # as if the certificate failed

    monkeypatch.setattr(rpca, "_svt_block", refused)
    width, basis = torch.tensor([3 + 8]), _start(1, k, rpca._block_cap(k)).clone()
    for miss in range(1, rpca._BLOCK_MISSES + 1):
        out, width, basis, misses = rpca._svt_warm(M, tau, width, basis, torch.tensor([miss - 1]))
        torch.testing.assert_close(
            out[0], _svd_svt(M[0], 7.0), atol=1e-11 * float(M.norm()), rtol=0
        )
        assert misses.tolist() == [miss]
        if miss < rpca._BLOCK_MISSES:  # retry with the 4 kept + 8, the exact ones leading
            assert width.tolist() == [4 + 8]
            assert float(torch.linalg.matrix_norm(U[:, :4].mT @ basis[0, :, :4], 2)) > 1 - 1e-12
    assert width.tolist() == [rpca._FULL]


@pytest.mark.parametrize("scale", [1e-100, 1e-30, 1e30, 1e100])
def test_block_route_is_scale_safe(monkeypatch, scale):
    """Tiny and huge anchors: the certificate neither underflows into a false pass nor
    overflows; robust PCA gives the full route's result, scaled."""
    D = _gapped(2, 64, 200, rank=3, noise=0.01, seed=20) * scale
    res = robust_pca(D)
    monkeypatch.setattr(rpca, "_block_cap", lambda k: 0)
    full = robust_pca(D)
    assert torch.equal(res.iterations, full.iterations)
    torch.testing.assert_close(res.L, full.L, atol=1e-9 * float(D.abs().max()), rtol=0)


def test_block_route_skips_matrices_whose_squares_leave_float64(monkeypatch):
    """At 1e-160 the squared norms the certificate needs are subnormal: full route only."""
    calls = []
    real_block = rpca._svt_block
    monkeypatch.setattr(rpca, "_svt_block", lambda *a: calls.append(1) or real_block(*a))
    robust_pca(_gapped(2, 64, 200, rank=3, noise=0.01, seed=21))
    assert calls  # at unit scale the block route is taken ...
    calls.clear()
    robust_pca(_gapped(2, 64, 200, rank=3, noise=0.01, seed=21) * 1e-160)
    assert not calls  # ... and not here


@pytest.mark.parametrize("shape", [(3, 96, 512), (3, 600, 128)])
def test_robust_pca_block_route_equals_the_full_route(monkeypatch, shape):
    """W+-like anchors (and a tall case): the block route changes no iteration and no digit."""
    D = (
        _gapped(*shape, rank=4, noise=0.01, seed=14)
        if shape[1] < shape[2]
        else _gapped(shape[0], shape[2], shape[1], rank=4, noise=0.01, seed=14).mT.contiguous()
    )
    certified = []
    real_block = rpca._svt_block

    def block(*args):
        res = real_block(*args)
        certified.append(int(res.ok.sum()))
        return res

    monkeypatch.setattr(rpca, "_svt_block", block)
    res = robust_pca(D)
    assert sum(certified) >= 3 * 5  # every matrix took the block route for a while
    monkeypatch.setattr(rpca, "_block_cap", lambda k: 0)
    full = robust_pca(D)
    assert torch.equal(res.iterations, full.iterations)
    scale = float(D.abs().max())
    torch.testing.assert_close(res.L, full.L, atol=1e-9 * scale, rtol=0)
    torch.testing.assert_close(res.S, full.S, atol=1e-9 * scale, rtol=0)
