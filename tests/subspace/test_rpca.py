"""Robust PCA internals: the Gram-matrix SVT and the thread split."""

from __future__ import annotations

import torch

from micromotion.subspace.rpca import robust_pca


def test_svt_by_gram_matches_the_svd_route():
    """The Gram-matrix SVT equals thresholding the singular values of an SVD."""
    from micromotion.subspace.rpca import _svd, _svt

    g = torch.Generator().manual_seed(3)
    for shape in ((4, 11, 40), (4, 40, 11), (2, 30, 30)):
        M = torch.randn(*shape, generator=g, dtype=torch.float64)
        tau = torch.full((shape[0], 1, 1), 0.7, dtype=torch.float64)
        U, s, Vh = _svd(M)
        expected = (U * (s - 0.7).clamp_min(0)[:, None, :]) @ Vh
        torch.testing.assert_close(_svt(M, tau), expected, atol=1e-10, rtol=0)


def test_results_do_not_depend_on_threads():
    """The batch is split over worker threads; each matrix's result is the same either way."""
    g = torch.Generator().manual_seed(4)
    D = torch.randn(6, 20, 50, generator=g, dtype=torch.float64)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = robust_pca(D)
        torch.set_num_threads(2)
        two = robust_pca(D)
        assert torch.get_num_threads() == 2  # the caller's setting is restored
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one.L, two.L) and torch.equal(one.iterations, two.iterations)
