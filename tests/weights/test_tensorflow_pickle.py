"""NVIDIA's TensorFlow StyleGAN2 pickles: read as data, converted exactly, hostile ones refused."""

from __future__ import annotations

import os

import pytest
import torch
from click.testing import CliRunner

from helpers import randomise, tiny_config, tiny_generator
from micromotion import load_generator, save_generator
from micromotion.cli import main
from micromotion.errors import CheckpointError
from micromotion.networks.stylegan2 import Generator
from micromotion.weights.formats.rosinality import rosinality_state_dict
from micromotion.weights.generator import nvidia_init_kwargs, nvidia_state_dict, save_rosinality
from nvidia_pkl_writer import NetSpec, generator_module_classes, write_nvidia_pickle
from tf_pkl_writer import CANARY_SRC, network, tf_networks, tf_pickle_bytes, write_tf_pickle


@pytest.fixture
def G() -> Generator:
    G = tiny_generator(3)
    with torch.no_grad():  # noise that matters, so the noise constants are checked too
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.7)
    return G


def _same_outputs(G: Generator, H: Generator) -> None:
    z = torch.randn(3, G.config.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for psi in (1.0, 0.7):
            torch.testing.assert_close(
                H.mapping(z, truncation_psi=psi), G.mapping(z, truncation_psi=psi), atol=0, rtol=0
            )
        ws = G.mapping(z)
        for mode in ("const", "none"):
            torch.testing.assert_close(
                H.synthesis(ws, noise_mode=mode),
                G.synthesis(ws, noise_mode=mode),
                atol=1e-5,
                rtol=0,
            )


def test_a_tensorflow_pickle_loads_as_the_same_network(G, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    H = load_generator(write_tf_pickle(tmp_path / "g.pkl", G))
    _same_outputs(G, H)
    assert H.config == G.config and H.fingerprint() == G.fingerprint()
    assert H.source["format"] == "tensorflow-pkl" and H.source["network"] == "Gs"
    assert len(H.source["build_module_src_sha256"]["Gs"]) == 64  # hashed, recorded...
    assert not (tmp_path / "TF_PICKLE_SOURCE_WAS_RUN").exists()  # ...never run


def test_wider_mapping_and_other_channels(tmp_path):
    config = tiny_config(mapping_features=14, channels=(16, 12, 8, 4), mapping_lr_mul=0.05)
    G = randomise(Generator(config), 5)
    H = load_generator(write_tf_pickle(tmp_path / "g.pkl", G, mapping_lrmul=0.05))
    assert H.config.mapping_features == 14 and H.config.channels == (16, 12, 8, 4)
    assert H.config.mapping_lr_mul == 0.05
    _same_outputs(G, H)


def test_every_format_gives_one_fingerprint(G, tmp_path):
    """Network identity: the same weights from every writer we have, one fingerprint."""
    sd = nvidia_state_dict(G)
    spec = NetSpec("Generator", nvidia_init_kwargs(G), sd, generator_module_classes(sd))
    files = {
        "safetensors": save_generator(G, tmp_path / "g.safetensors"),
        "rosinality": save_rosinality(G, tmp_path / "g.pt"),
        "nvidia": write_nvidia_pickle(tmp_path / "g.pkl", {"G_ema": spec}) or tmp_path / "g.pkl",
        "tensorflow": write_tf_pickle(tmp_path / "tf.pkl", G),
        "encoder": tmp_path / "psp.pt",
    }
    # An encoder checkpoint's decoder.*, with its own latent_avg (not the generator's w_avg).
    decoder = {f"decoder.{k}": v for k, v in rosinality_state_dict(G).items()}
    latent_avg = (G.w_avg + 1).expand(G.num_ws, -1).clone()
    torch.save({"state_dict": decoder, "latent_avg": latent_avg, "opts": {}}, files["encoder"])
    prints = {fmt: load_generator(path).fingerprint() for fmt, path in files.items()}
    assert set(prints.values()) == {G.fingerprint()}, prints


def test_info_compares_two_files(G, tmp_path):
    a = write_tf_pickle(tmp_path / "tf.pkl", G)
    b = save_generator(G, tmp_path / "same.safetensors")
    c = save_generator(tiny_generator(4), tmp_path / "other.safetensors")
    same = CliRunner().invoke(main, ["info", str(a), str(b)])
    assert same.exit_code == 0 and "same network: the fingerprints are identical" in same.output
    other = CliRunner().invoke(main, ["info", str(a), str(c)])
    assert other.exit_code == 0 and "different networks (same architecture)" in other.output
    for tensor in ("mapping.w_avg", "mapping.fc0.weight", "synthesis.b4.conv1.noise_const"):
        assert f"{tensor}: max |a - b| = " in other.output
    one = CliRunner().invoke(main, ["info", str(a)])
    assert G.fingerprint() in one.output and "format tensorflow-pkl" in one.output


class _Hostile:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _write(tmp_path, obj, name="bad.pkl"):
    path = tmp_path / name
    path.write_bytes(tf_pickle_bytes(obj))
    return path


def _one_line(path, fragment):
    with pytest.raises(CheckpointError) as caught:
        load_generator(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and fragment in message, message


def test_hostile_globals_inside_a_tensorflow_pickle_are_refused(G, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    g, d, gs = tf_networks(G)
    gs._state["variables"].append(("evil", _Hostile()))
    _one_line(_write(tmp_path, (g, d, gs)), "refuses to load posix.system")
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda G: network("D", "D_stylegan2", {"Output/weight": 0}), "a discriminator"),
        (lambda G: tf_networks(G, synthesis_func="G_synthesis"), "a StyleGAN (v1) generator"),
        (lambda G: tf_networks(G, architecture="resnet"), "architecture 'resnet'"),
        (lambda G: tf_networks(G, label_size=1), "conditional generators"),
        (lambda G: tf_networks(G, resample_kernel=[1, 1]), "resample_kernel"),
        (lambda G: network("Gs", "G_main", {}, version=9), "unknown version 9"),
        (lambda G: network("Gs", "G_main", {"dlatent_avg": 0}), "no mapping and synthesis"),
        (lambda G: (1, 2, 3), "expected a dict of networks"),
    ],
    ids=["discriminator", "stylegan1", "resnet", "conditional", "kernel", "version", "no-parts",
         "not-networks"],
)  # fmt: skip
def test_what_is_not_a_stylegan2_generator_is_one_line(G, tmp_path, make, fragment):
    _one_line(_write(tmp_path, make(G)), fragment)


def test_missing_variables_and_broken_files_are_one_line(G, tmp_path):
    g, d, gs = tf_networks(G)
    synthesis = gs._state["components"]["synthesis"]
    synthesis._state["variables"] = [
        (k, v) for k, v in synthesis._state["variables"] if k != "8x8/Conv1/weight"
    ]
    _one_line(_write(tmp_path, (g, d, gs)), "8x8/Conv1/weight")
    data = tf_pickle_bytes(tf_networks(G))
    for cut in (10, len(data) // 2, len(data) - 2):
        path = tmp_path / f"cut{cut}.pkl"
        path.write_bytes(data[:cut])
        _one_line(path, "pkl")
    html = tmp_path / "html.pkl"
    html.write_text("<!DOCTYPE html><html><body>Google Drive quota exceeded</body></html>")
    _one_line(html, "html.pkl")


def test_the_canary_is_real(tmp_path, monkeypatch):
    """Running the embedded source would leave a file: its absence above means it never ran."""
    monkeypatch.chdir(tmp_path)
    exec(compile(CANARY_SRC, "canary", "exec"), {})  # our own test source, on purpose
    assert (tmp_path / "TF_PICKLE_SOURCE_WAS_RUN").exists()
