"""SeFa and GANSpace as tensor math: planted structure is recovered, signs are reproducible."""

from __future__ import annotations

import pytest
import torch

from micromotion.errors import MicromotionError
from micromotion.subspace.baselines import MomentSums, as_micromotion, ganspace, sefa


def unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm()


def test_sefa_finds_the_direction_every_style_channel_reads():
    g = torch.Generator().manual_seed(0)
    w_dim = 12
    u = unit(torch.randn(w_dim, generator=g, dtype=torch.float64))
    # Rows = a random multiple of u plus small noise, with wildly different row scales
    # (normalisation must make them count alike).
    weights = [
        (torch.randn(c, 1, generator=g, dtype=torch.float64) * 3 * u
         + 0.1 * torch.randn(c, w_dim, generator=g, dtype=torch.float64))
        * torch.rand(c, 1, generator=g, dtype=torch.float64).mul(100).add(0.01)
        for c in (16, 8, 5)
    ]  # fmt: skip
    comps = sefa(weights)
    assert comps.directions.shape == (w_dim, w_dim) and comps.num_rows == 29
    assert abs(float(comps.directions[0] @ u)) > 0.99
    assert bool((comps.values[:-1] >= comps.values[1:]).all())
    torch.testing.assert_close(comps.directions @ comps.directions.T, torch.eye(w_dim).double())
    # the sign rule: the largest entry is positive, so reruns agree
    top = comps.directions[0]
    assert float(top[top.abs().argmax()]) > 0
    assert comps.explained[0] > 0.8


def test_sefa_without_normalisation_weighs_rows_by_their_norm():
    w_dim = 6
    e = torch.eye(w_dim, dtype=torch.float64)
    weights = [e[:1] * 10, e[1:2].repeat(3, 1)]  # one big row along e0, three unit rows on e1
    assert abs(float(sefa(weights, normalize=False).directions[0] @ e[0])) > 0.999
    assert abs(float(sefa(weights, normalize=True).directions[0] @ e[1])) > 0.999


def test_sefa_refuses_bad_weights():
    with pytest.raises(MicromotionError):
        sefa([])
    with pytest.raises(MicromotionError, match="\\[C, 4\\]"):
        sefa([torch.ones(2, 4), torch.ones(2, 5)])
    with pytest.raises(MicromotionError, match="NaN"):
        sefa([torch.full((2, 4), float("nan"))])
    with pytest.raises(MicromotionError, match="all zero"):
        sefa([torch.zeros(2, 4)])


def test_ganspace_finds_the_planted_spread_and_streams():
    g = torch.Generator().manual_seed(1)
    w_dim = 10
    u = unit(torch.randn(w_dim, generator=g, dtype=torch.float64))
    x = (
        5 * torch.randn(4000, 1, generator=g, dtype=torch.float64) * u
        + torch.randn(4000, w_dim, generator=g, dtype=torch.float64) * 0.3
        + 7.0
    )  # an offset PCA must remove
    comps = ganspace(x.split(333))
    assert abs(float(comps.directions[0] @ u)) > 0.99
    assert comps.values[0] == pytest.approx(25 + 0.09, rel=0.1)  # variance 5² along u
    assert comps.num_rows == 4000
    whole = MomentSums(w_dim)
    whole.add(x)
    torch.testing.assert_close(whole.components().values, comps.values)
    ref = torch.linalg.eigvalsh(torch.cov(x.T)).flip(0)
    torch.testing.assert_close(comps.values, ref)
    with pytest.raises(MicromotionError, match="at least 2"):
        ganspace([x[:1]])
    with pytest.raises(MicromotionError, match="NaN"):
        ganspace([torch.full((3, w_dim), float("inf"))])


def test_as_micromotion_edits_the_chosen_layers():
    v = torch.tensor([1.0, -2.0, 0.5])
    mm = as_micromotion(v, num_ws=5, layers="1-2", name="c0", source="sefa")
    assert mm.metadata["method"] == "sefa" and mm.metadata["layers"] == "1-2"
    ws = torch.zeros(2, 5, 3)
    moved = mm.edit(ws, 2.0) - ws
    torch.testing.assert_close(moved[:, 1:3], (2 * v).expand(2, 2, 3))
    assert not moved[:, [0, 3, 4]].any()
