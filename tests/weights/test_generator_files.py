"""Checkpoint loaders: rosinality .pt, micromotion .safetensors, and bad inputs."""

from __future__ import annotations

import argparse
import os
import pickle
import warnings

import pytest
import torch

from micromotion import CheckpointError, load_generator, save_generator
from micromotion.weights.generator import detect_format, rosinality_state_dict, save_rosinality


def _same_outputs(G, H):
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(H.mapping(z, truncation_psi=0.7), G.mapping(z, truncation_psi=0.7))
    ws = G.mapping(z)
    torch.testing.assert_close(H.synthesis(ws), G.synthesis(ws), atol=0, rtol=0)


def test_safetensors_round_trip(tiny_G, tmp_path):
    path = save_generator(tiny_G, tmp_path / "g.safetensors")
    assert detect_format(path) == "safetensors"
    H = load_generator(path)
    assert H.config == tiny_G.config
    assert H.fingerprint() == tiny_G.fingerprint()
    assert not any(p.requires_grad for p in H.parameters())
    assert not H.training
    _same_outputs(tiny_G, H)
    assert not list(tmp_path.glob(".*part"))  # the temp file was renamed away


def test_rosinality_round_trip(tiny_G, tmp_path):
    path = save_rosinality(tiny_G, tmp_path / "g.pt")
    assert detect_format(path) == "torch"
    H = load_generator(path)
    assert H.source["format"] == "rosinality"
    assert H.fingerprint() == tiny_G.fingerprint()
    _same_outputs(tiny_G, H)


def test_rosinality_training_checkpoint(tiny_G, tmp_path):
    """train.py snapshots hold g, d, g_ema, optimiser states and an argparse.Namespace."""
    sd = rosinality_state_dict(tiny_G)
    payload = {
        "g": {k: v + 1 for k, v in sd.items()},
        "d": {"convs.0.0.weight": torch.randn(4, 3, 1, 1)},
        "g_ema": sd,
        "g_optim": {"state": {0: {"exp_avg": torch.zeros(3)}}, "param_groups": [{"lr": 0.002}]},
        "args": argparse.Namespace(size=32, channel_multiplier=2, latent=10),
        "ada_aug_p": 0.3,
    }
    torch.save(payload, tmp_path / "train.pt")
    with pytest.warns(UserWarning, match="estimated w_avg from 10000"):
        H = load_generator(tmp_path / "train.pt")
    assert H.source["w_avg"].startswith("estimated")
    # The estimate is the mean of mapped samples: deterministic, and what truncation needs.
    # Independently: the mean of w over 10 000 z drawn with seed 0, in one pass.
    z = torch.randn(10_000, H.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = H.mapping(z)[:, 0].double().mean(dim=0).float()
    torch.testing.assert_close(H.w_avg, expected, atol=1e-5, rtol=1e-5)
    assert (H.w_avg - tiny_G.w_avg).abs().max() > 1e-2  # not the checkpoint's (absent) value
    # Weights came from g_ema, not g.
    H.mapping.w_avg.copy_(tiny_G.w_avg)
    assert H.fingerprint() == tiny_G.fingerprint()


def test_encoder_checkpoint_with_decoder_prefix(tiny_G, tmp_path):
    """pSp / e4e checkpoints keep the generator under 'decoder.' and a per-layer latent_avg."""
    sd = {f"decoder.{k}": v for k, v in rosinality_state_dict(tiny_G).items()}
    sd["encoder.conv.weight"] = torch.randn(2, 2)
    latent_avg = tiny_G.w_avg.expand(tiny_G.num_ws, -1).clone()
    torch.save(
        {"state_dict": sd, "latent_avg": latent_avg, "opts": {"lr": 1e-4}}, tmp_path / "e4e.pt"
    )
    H = load_generator(tmp_path / "e4e.pt")
    assert H.fingerprint() == tiny_G.fingerprint()


def test_bare_state_dict(tiny_G, tmp_path):
    torch.save(rosinality_state_dict(tiny_G), tmp_path / "bare.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        H = load_generator(tmp_path / "bare.pt")
    assert H.config == tiny_G.config


def _write_sd(tmp_path, sd, **extra):
    path = tmp_path / "bad.pt"
    torch.save({"g_ema": sd, "latent_avg": torch.zeros(10), **extra}, path)
    return path


def test_rosinality_missing_and_unexpected_keys(tiny_G, tmp_path):
    sd = rosinality_state_dict(tiny_G)
    del sd["convs.1.noise.weight"]
    sd["convs.1.extra"] = torch.zeros(1)
    with pytest.raises(
        CheckpointError,
        match=r"missing keys: convs\.1\.noise\.weight.*unexpected keys: convs\.1\.extra",
    ):
        load_generator(_write_sd(tmp_path, sd))


def test_rosinality_wrong_shape(tiny_G, tmp_path):
    sd = rosinality_state_dict(tiny_G)
    sd["convs.1.activate.bias"] = torch.zeros(5)
    with pytest.raises(
        CheckpointError, match=r"bad\.pt: tensor synthesis\.b8\.conv1\.bias has shape \[5\]"
    ):
        load_generator(_write_sd(tmp_path, sd))


def test_nan_weights(tiny_G, tmp_path):
    sd = rosinality_state_dict(tiny_G)
    sd["style.1.weight"][0, 0] = float("nan")
    with pytest.raises(CheckpointError, match="NaN or inf"):
        load_generator(_write_sd(tmp_path, sd))


def test_wrong_fir_is_refused(tiny_G, tmp_path):
    sd = rosinality_state_dict(tiny_G)
    sd["to_rgbs.0.upsample.kernel"] = torch.ones(4, 4)
    with pytest.raises(CheckpointError, match="resampling filter"):
        load_generator(_write_sd(tmp_path, sd))


def test_bad_latent_avg(tiny_G, tmp_path):
    with pytest.raises(CheckpointError, match="latent_avg has shape"):
        load_generator(
            _write_sd(tmp_path, rosinality_state_dict(tiny_G), latent_avg=torch.zeros(3))
        )


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/micromotion-pwned",))


def test_torch_file_with_code_is_refused(tmp_path):
    marker = "/tmp/micromotion-pwned"
    if os.path.exists(marker):
        os.remove(marker)
    torch.save({"g_ema": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(
        CheckpointError, match="evil.pt: refused to load objects that are not plain data"
    ):
        load_generator(tmp_path / "evil.pt")
    assert not os.path.exists(marker)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"hello, this is not a network at all", "not a checkpoint"),
        (b"PK\x03\x04" + b"\x00" * 64, "corrupt or truncated torch file"),
    ],
)
def test_garbage_files(tmp_path, content, message):
    path = tmp_path / "junk.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as info:
        load_generator(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_truncated_torch_file(tiny_G, tmp_path):
    path = save_rosinality(tiny_G, tmp_path / "g.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="g.pt: corrupt or truncated torch file"):
        load_generator(path)


def test_truncated_safetensors(tiny_G, tmp_path):
    path = save_generator(tiny_G, tmp_path / "g.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match="g.safetensors: corrupt safetensors file"):
        load_generator(path)


def test_foreign_safetensors(tmp_path):
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not a micromotion generator file"):
        load_generator(tmp_path / "other.safetensors")


def test_torch_file_that_is_not_a_generator(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="expected a dict"):
        load_generator(tmp_path / "list.pt")
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, tmp_path / "cls.pt")
    with pytest.raises(CheckpointError, match="not a StyleGAN2 generator checkpoint"):
        load_generator(tmp_path / "cls.pt")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pkl: no such file"):
        load_generator(tmp_path / "nope.pkl")


def test_plain_pickle_that_is_not_nvidia(tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(CheckpointError, match="x.pkl"):
        load_generator(path)


def test_refusal_names_the_global_and_gives_no_unsafe_advice(tmp_path):
    torch.save({"g_ema": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError) as info:
        load_generator(tmp_path / "evil.pt")
    assert "system" in str(info.value) and "weights_only" not in str(info.value)


@pytest.mark.parametrize(
    ("latent_avg", "message"),
    [
        (torch.tensor(1.0), "latent_avg has shape"),
        (torch.zeros(0), "latent_avg has shape"),
        (torch.full((10,), float("nan")), "NaN or inf"),
    ],
)
def test_bad_latent_avg_values(tiny_G, tmp_path, latent_avg, message):
    path = tmp_path / "bad.pt"
    torch.save({"g_ema": rosinality_state_dict(tiny_G), "latent_avg": latent_avg}, path)
    with pytest.raises(CheckpointError, match=message):
        load_generator(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mapping_layers": 3_000_000}, "unreasonably large"),
        ({"conv_clamp": "x"}, "conv_clamp"),
        ({"mapping_lr_mul": "abc"}, "mapping_lr_mul"),
        ({"channels": [16, "a", 12, 8]}, "channels"),
    ],
)
def test_crafted_configs_are_refused_before_allocation(tiny_G, tmp_path, change, message):
    import json

    from safetensors.torch import save_file

    from micromotion.weights.generator import GENERATOR_FORMAT

    config = {**tiny_G.config.to_dict(), **change}
    path = tmp_path / "crafted.safetensors"
    save_file(
        {"x": torch.zeros(1)},
        str(path),
        metadata={"format": GENERATOR_FORMAT, "config": json.dumps(config)},
    )
    with pytest.raises(CheckpointError, match=message):
        load_generator(path)


def test_directory_is_not_a_checkpoint(tmp_path):
    (tmp_path / "net.pkl").mkdir()
    with pytest.raises(CheckpointError, match="is a directory"):
        load_generator(tmp_path / "net.pkl")
