"""Several faces' anchors: per-face centring, one joint decomposition, the mean direction."""

from __future__ import annotations

import pytest
import torch

from micromotion import MicromotionError
from micromotion.subspace import (
    Micromotion,
    decompose,
    decompose_faces,
    direction_from,
    joint_direction,
)


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    return float(a @ b / (a.norm() * b.norm()))


def planted_faces(faces=6, n=11, num_ws=4, w_dim=32, seed=0):
    """``faces`` faces moving along one shared ``d``, each with its own offset and drift.

    Face ``f``'s anchors are ``w̄_f + t·(d + e_f) + noise``: ``e_f`` is a motion particular to
    that face (as large as half of ``d``), so any one face sees ``d`` only through its own
    ``e_f``, while the mean over faces averages the ``e_f`` away. One anchor per face is an
    outlier (a failed optimisation).
    """
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(num_ws, w_dim, generator=g)
    offsets = 3 * torch.randn(faces, 1, num_ws, w_dim, generator=g)  # far apart identities
    drift = (
        0.5
        * d.norm()
        * torch.nn.functional.normalize(
            torch.randn(faces, num_ws * w_dim, generator=g), dim=1
        ).reshape(faces, 1, num_ws, w_dim)
    )
    t = torch.linspace(0, 1, n).reshape(1, n, 1, 1)
    anchors = offsets + t * (d + drift) + 0.02 * torch.randn(faces, n, num_ws, w_dim, generator=g)
    anchors[:, n // 2] += 2 * torch.randn(faces, num_ws, w_dim, generator=g)  # one bad anchor each
    return anchors, d


def test_one_face_is_the_one_face_decomposition_exactly():
    anchors, _ = planted_faces(faces=1)
    for kwargs in ({}, {"rank": "auto", "method": "endpoints"}, {"center": True, "end_anchor": -2}):
        alone = Micromotion.from_anchors(anchors[0], **kwargs)
        stacked = Micromotion.from_anchors(anchors, **kwargs)
        assert torch.equal(alone.direction, stacked.direction)
        assert torch.equal(alone.denoised_anchors, stacked.denoised_anchors)
        assert torch.equal(alone.basis, stacked.basis)
        assert stacked.metadata["num_faces"] == 1 and stacked.metadata["center"] == kwargs.get(
            "center", False
        )
    # decompose_faces itself on one face is decompose with centring.
    joint = decompose_faces(anchors)
    single = decompose(anchors[0], center=True)
    torch.testing.assert_close(joint.denoised[0], single.denoised, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(joint.singular_values, single.singular_values)
    d = joint_direction(joint.denoised, method="slope")
    assert torch.equal(d, direction_from(joint.denoised[0], method="slope"))


@pytest.mark.parametrize("method", ["endpoints", "slope", "robust-slope"])
def test_joint_recovers_the_shared_direction_better_than_any_face(method):
    anchors, d = planted_faces()
    joint = Micromotion.from_anchors(anchors, method=method)
    single = [_cos(Micromotion.from_anchors(face, method=method).direction, d) for face in anchors]
    got = _cos(joint.direction, d)
    assert got > max(single) + 0.05, (got, single)
    assert got > 0.95, got
    # Without per-face centring (all faces stacked as one) the identities take the rank.
    stacked = Micromotion.from_anchors(anchors.flatten(0, 1), method=method)
    assert _cos(stacked.direction, d) < got
    meta = joint.metadata
    assert (
        meta["num_faces"] == 6 and meta["anchors_per_face"] == 11 and meta["center"] == "per-face"
    )
    assert joint.anchors.shape == (66, 4, 32) and joint.denoised_anchors.shape == (66, 4, 32)
    assert joint.singular_values.shape == (4, 32)  # min(F·n, w_dim)


def test_decompose_faces_shapes_and_centring():
    anchors, _ = planted_faces(faces=3, n=5)
    out = decompose_faces(anchors, rank=2)
    assert out.denoised.shape == anchors.shape and out.sparse.shape == anchors.shape
    assert out.basis.shape == (4, 2, 32) and out.rank == 2
    # Each face keeps its own mean: at full rank plain PCA gives the anchors back, and at
    # rank 1 every face's reconstruction still averages to that face's mean.
    full = decompose_faces(anchors, rank=32, robust=False)
    torch.testing.assert_close(full.denoised, anchors, atol=1e-5, rtol=1e-5)
    one = decompose_faces(anchors, rank=1, robust=False)
    torch.testing.assert_close(one.denoised.mean(dim=1), anchors.mean(dim=1), atol=1e-5, rtol=1e-5)
    # A face moved far away changes nothing but its own reconstruction's offset.
    shifted = anchors.clone()
    shifted[1] += 100
    again = decompose_faces(shifted, rank=2)
    torch.testing.assert_close(again.basis.abs(), out.basis.abs(), atol=1e-4, rtol=1e-3)


def test_decompose_faces_bad_input():
    anchors, _ = planted_faces(faces=2, n=5)
    with pytest.raises(MicromotionError, match=r"\[F, n, num_ws, w_dim\]"):
        decompose_faces(anchors[0])
    with pytest.raises(MicromotionError, match="at least 3 anchors per face"):
        decompose_faces(anchors[:, :2])
    bad = anchors.clone()
    bad[1, 2, 0, 0] = float("nan")
    with pytest.raises(MicromotionError, match="NaN"):
        decompose_faces(bad)
    with pytest.raises(MicromotionError, match="NaN"):
        Micromotion.from_anchors(bad)
    with pytest.raises(MicromotionError, match="rank"):
        decompose_faces(anchors, rank=0)
