"""NVIDIA .pkl generators through load_generator: both repos' layouts and bad variants."""

from __future__ import annotations

import pytest
import torch

from helpers import tiny_generator
from micromotion import CheckpointError, load_generator
from micromotion.weights.generator import nvidia_init_kwargs, nvidia_state_dict
from nvidia_pkl_writer import NetSpec, generator_module_classes, write_nvidia_pickle


def _write(path, G, *, kwargs=None, sd=None, key="G_ema", class_name="Generator", extra=None):
    sd = nvidia_state_dict(G) if sd is None else sd
    spec = NetSpec(class_name, kwargs or nvidia_init_kwargs(G), sd, generator_module_classes(sd))
    write_nvidia_pickle(path, {key: spec}, extra=extra)
    return path


def test_ada_layout_round_trip(tmp_path):
    G = tiny_generator(3)
    path = _write(tmp_path / "net.pkl", G, extra={"training_set_kwargs": {"resolution": 32}})
    H = load_generator(path)
    assert H.source["format"] == "nvidia-pkl"
    assert H.config == G.config
    assert H.fingerprint() == G.fingerprint()
    ws = G.mapping(torch.randn(2, G.z_dim), truncation_psi=0.7)
    torch.testing.assert_close(H.synthesis(ws), G.synthesis(ws), atol=0, rtol=0)


def test_stylegan3_repo_layout_with_flat_kwargs(tmp_path):
    """The stylegan3 repo's StyleGAN2 Generator takes synthesis settings at the top level."""
    G = tiny_generator(4, conv_clamp=256.0)
    kwargs = nvidia_init_kwargs(G)
    synthesis = kwargs.pop("synthesis_kwargs")
    kwargs.update(synthesis, fused_modconv_default="inference_only")
    H = load_generator(_write(tmp_path / "sg3repo.pkl", G, kwargs=kwargs))
    assert H.config.conv_clamp == 256.0
    assert H.fingerprint() == G.fingerprint()


def test_mapping_width_and_lr_are_read_from_the_file(tmp_path):
    G = tiny_generator(5, mapping_features=7, mapping_layers=3, mapping_lr_mul=0.05)
    H = load_generator(_write(tmp_path / "m.pkl", G))
    assert H.config.mapping_features == 7 and H.config.mapping_layers == 3
    assert H.config.mapping_lr_mul == 0.05
    z = torch.randn(3, G.z_dim)
    torch.testing.assert_close(H.mapping(z), G.mapping(z))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"c_dim": 10}, "conditional generators"),
        ({"synthesis_kwargs": {"architecture": "resnet"}}, "'resnet' is not supported yet"),
    ],
)
def test_unsupported_kwargs(tmp_path, change, message):
    G = tiny_generator(0)
    kwargs = {**nvidia_init_kwargs(G), **change}
    with pytest.raises(CheckpointError, match=message):
        load_generator(_write(tmp_path / "u.pkl", G, kwargs=kwargs))


def test_missing_tensor_and_wrong_filter(tmp_path):
    G = tiny_generator(0)
    sd = nvidia_state_dict(G)
    del sd["synthesis.b16.conv0.noise_strength"]
    with pytest.raises(
        CheckpointError, match=r"missing keys: synthesis\.b16\.conv0\.noise_strength"
    ):
        load_generator(_write(tmp_path / "a.pkl", G, sd=sd))
    sd = nvidia_state_dict(G)
    sd["synthesis.b8.resample_filter"] = torch.ones(4, 4) / 16
    with pytest.raises(CheckpointError, match="resampling filter"):
        load_generator(_write(tmp_path / "b.pkl", G, sd=sd))


def test_snapshot_without_g_ema(tmp_path):
    G = tiny_generator(0)
    path = _write(tmp_path / "g.pkl", G, key="G")
    with pytest.raises(CheckpointError, match="no G_ema"):
        load_generator(path)
