"""Micromotion files: official import (bit for bit), edit/trajectory, save/load, bad input."""

from __future__ import annotations

import hashlib

import pytest
import torch

from helpers import REFERENCE
from micromotion import CheckpointError, MicromotionError
from micromotion.subspace.micromotion import Micromotion
from micromotion.weights.micromotion import import_official, load_micromotion

OFFICIAL = {
    "smile": "f91b21a9c9bf17b49799e873c1864118d9e72510769c112e8e553aca1d6a3fd4",
    "angry": "5132218d645ef613a9148958c5286cb8b879f60c6a3145a753639f304a38f9ff",
    "aging": "b00d9bb8ab03da8d63c1b0bea89bf7e2da7c36d0a049ba10c56c7432e865fdaf",
    "eyesClose": "8d73d5175eb69fd1797fc1e6fb632d2dd51689877b0dd0241f8be2f92b6aa0fd",
    "headsTurn": "00452120b2d87dd79ac05557238970abcbdf6157819283c260944912e5e80c61",
}


def _official(name):
    path = REFERENCE / f"{name}.d_latent.pt"
    if not path.is_file():
        pytest.skip("../shared/reference is not beside the repository")
    return path


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_import_official_is_bit_exact(name, tmp_path):
    path = _official(name)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == OFFICIAL[name]
    raw = torch.load(path, map_location="cpu", weights_only=True)
    mm = import_official(path)
    assert mm.name == name
    assert mm.direction.shape == (18, 512)
    assert torch.equal(mm.direction, raw.detach()[0])
    assert mm.metadata["source"] == "official"
    saved = mm.save(tmp_path / f"{name}.safetensors")
    back = Micromotion.load(saved)
    assert torch.equal(back.direction, raw.detach()[0])  # bit for bit through our format
    assert back.mask.all()
    assert back.metadata["name"] == name
    assert (back.metadata["num_ws"], back.metadata["w_dim"]) == (18, 512)


def test_official_norms_match_the_reference_readme():
    norms = {n: import_official(_official(n)).direction.norm().item() for n in OFFICIAL}
    assert norms["smile"] == pytest.approx(2.0, abs=0.05)
    assert norms["headsTurn"] == pytest.approx(88.3, abs=0.5)
    assert norms["eyesClose"] == pytest.approx(1.06, abs=0.02)


def test_load_micromotion_accepts_raw_official_files():
    mm = load_micromotion(_official("smile"))
    assert mm.name == "smile"


def _mm(num_ws=8, w_dim=10, seed=0, **kw):
    g = torch.Generator().manual_seed(seed)
    return Micromotion(
        direction=torch.randn(num_ws, w_dim, generator=g),
        mask=torch.ones(num_ws, dtype=torch.bool),
        metadata={"name": "test", **kw},
    )


def test_edit_and_trajectory():
    mm = _mm()
    w = torch.randn(8, 10)
    torch.testing.assert_close(mm.edit(w, 2.5), w + 2.5 * mm.direction)
    batch = torch.randn(3, 8, 10)
    torch.testing.assert_close(
        mm.edit(batch, torch.tensor([0.0, 1.0, 2.0]))[2], batch[2] + 2 * mm.direction
    )
    traj = mm.trajectory(w, [0.0, 0.5, 1.0])
    assert traj.shape == (3, 8, 10)
    torch.testing.assert_close(traj[0], w)
    torch.testing.assert_close(traj[2] - traj[1], 0.5 * mm.direction)


def test_layer_mask_limits_the_edit():
    mm = _mm().with_layers("0-2,5")
    w = torch.zeros(8, 10)
    moved = mm.edit(w, 1.0)
    assert moved[[0, 1, 2, 5]].abs().sum() > 0
    assert moved[[3, 4, 6, 7]].abs().sum() == 0
    assert mm.metadata["layers"] == "0-2,5"


def test_shape_mismatch_is_a_clear_error():
    mm = _mm()
    with pytest.raises(MicromotionError, match=r"do not match micromotion 'test'"):
        mm.edit(torch.zeros(18, 512), 1.0)
    with pytest.raises(
        MicromotionError, match=r"is for W\+ of \[8, 10\], but the generator has \[18, 512\]"
    ):
        mm.check_compatible(num_ws=18, w_dim=512)


def test_other_generator_is_only_a_warning():
    mm = _mm(generator_fingerprint="a" * 64)
    with pytest.warns(UserWarning, match="was decoded on generator"):
        mm.check_compatible(num_ws=8, w_dim=10, fingerprint="b" * 64)


def test_nan_direction_is_refused():
    with pytest.raises(MicromotionError, match="NaN"):
        Micromotion(
            direction=torch.full((2, 3), float("nan")), mask=torch.ones(2, dtype=torch.bool)
        )


def test_not_a_micromotion_file(tmp_path, tiny_G):
    from micromotion import save_generator

    gen = save_generator(tiny_G, tmp_path / "g.safetensors")
    with pytest.raises(CheckpointError, match="not a micromotion file"):
        Micromotion.load(gen)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 20)
    with pytest.raises(CheckpointError, match="junk.safetensors: not a micromotion file"):
        Micromotion.load(junk)
    with pytest.raises(CheckpointError, match="no such file"):
        Micromotion.load(tmp_path / "missing.safetensors")


def test_import_official_bad_inputs(tmp_path):
    torch.save({"d": torch.zeros(1, 18, 512)}, tmp_path / "dict.pt")
    with pytest.raises(CheckpointError, match="expected a tensor, found a dict"):
        import_official(tmp_path / "dict.pt")
    torch.save(torch.zeros(4, 18, 512), tmp_path / "wrong.pt")
    with pytest.raises(
        CheckpointError, match=r"wrong.pt: an official direction is \[1, num_ws, w_dim\]"
    ):
        import_official(tmp_path / "wrong.pt")
    (tmp_path / "text.pt").write_text("not a tensor")
    with pytest.raises(CheckpointError, match="text.pt: corrupt or truncated torch file"):
        import_official(tmp_path / "text.pt")


def test_bad_masks_and_metadata(tmp_path):
    with pytest.raises(MicromotionError, match="selects no layer"):
        Micromotion(direction=torch.ones(4, 3), mask=torch.zeros(4, dtype=torch.bool))
    with pytest.raises(MicromotionError, match="basis has shape"):
        Micromotion(
            direction=torch.ones(4, 3), mask=torch.ones(4, dtype=torch.bool), basis=torch.ones(3)
        )
    from safetensors.torch import save_file

    from micromotion.subspace.micromotion import MICROMOTION_FORMAT

    path = tmp_path / "odd.safetensors"
    save_file(
        {"direction": torch.ones(4, 3), "mask": torch.ones(4, dtype=torch.uint8)},
        str(path),
        metadata={"format": MICROMOTION_FORMAT, "metadata": "[1, 2]"},
    )
    with pytest.raises(CheckpointError, match="odd.safetensors: metadata must be a JSON object"):
        Micromotion.load(path)
    with pytest.raises(MicromotionError, match="out of range"):
        _mm().with_layers("0-99999999999")


def test_gif_keeps_the_whole_provenance(tmp_path):
    import json

    import numpy as np
    from PIL import Image

    from micromotion.media.video_out import open_clip_writer

    comment = json.dumps({"k": "x" * 1000})
    with open_clip_writer(tmp_path / "a.gif", fps=10, total_frames=2, comment=comment) as sink:
        sink.write(np.zeros((2, 8, 8, 3), np.uint8))
    assert json.loads(Image.open(tmp_path / "a.gif").info["comment"]) == {"k": "x" * 1000}
