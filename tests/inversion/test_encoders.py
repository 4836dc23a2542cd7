"""Encoder inversion: ReStyle-pSp, ReStyle-e4e, e4e and pSp on tiny checkpoints.

Parity with the official implementations (yuval-alaluf/restyle-encoder,
omertov/encoder4editing, eladrich/pixel2style2pixel) was checked outside the repo on
checkpoints with every parameter and buffer randomised: W+ codes within 2.3e-5 at every
ReStyle iteration, images within 4.7e-5 (tools/encoder_reference.py). The regression tensors
in tests/data pin those outputs; the checkpoints here are written by our own code in the
published layout.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from safetensors.torch import load_file

from encoder_ckpt_writer import decoder, write_encoder_checkpoint
from helpers import DATA
from micromotion import load_generator
from micromotion.errors import CheckpointError, MicromotionError, ParameterError
from micromotion.inversion.encoder import encode
from micromotion.networks.encoders import ENCODERS
from micromotion.weights.encoders import load_encoder

REFERENCE = load_file(str(DATA / "encoder_reference.safetensors"))
KINDS = list(ENCODERS)


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(7)) * 2 - 1


@pytest.mark.parametrize(("i", "kind"), list(enumerate(KINDS)), ids=KINDS)
def test_encoders_reproduce_the_reference_outputs(i, kind, x, tmp_path):
    path = write_encoder_checkpoint(tmp_path / f"{kind}.pt", kind, seed=10 * i)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the per-entry latent_avg warning
        G = load_generator(path)
    model = load_encoder(path)
    result = encode(G, model, x, iterations=3)
    steps = 3 if model.iterative else 1
    # The parity tolerances: float32 rounding (thread counts, BLAS) moves the codes
    # by ~5e-5 between machines.
    assert len(result.iterates) == steps and torch.equal(result.ws, result.iterates[-1])
    for k in range(steps):
        torch.testing.assert_close(
            result.iterates[k], REFERENCE[f"{kind}.codes.{k}"], atol=1e-4, rtol=1e-4
        )
        torch.testing.assert_close(
            result.images[k][:, :, ::8, ::8], REFERENCE[f"{kind}.images.{k}"], atol=1e-3, rtol=0
        )


def test_restyle_iterations_refine_and_start_from_the_average(tmp_path, x):
    path = write_encoder_checkpoint(tmp_path / "r.pt", "BackboneEncoder")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        G = load_generator(path)
    model = load_encoder(path)
    five = encode(G, model, x, iterations=5)
    two = encode(G, model, x, iterations=2)
    assert len(five.iterates) == 5
    torch.testing.assert_close(five.iterates[1], two.ws, atol=0, rtol=0)  # same first steps
    # Iteration 0 is the encoder's output on [image, average image] plus latent_avg.
    from micromotion.inversion.encoder import average_image

    first = model.encoder(torch.cat([x, average_image(G, model)], 1)) + model.latent_avg
    torch.testing.assert_close(five.iterates[0], first, atol=1e-6, rtol=0)


def test_e4e_checkpoints_name_their_size_stylegan_size(tmp_path):
    path = tmp_path / "e4e.pt"
    write_encoder_checkpoint(path, "Encoder4Editing")
    ckpt = torch.load(path, weights_only=True)
    for key in ("output_size", "input_nc", "learn_in_w"):  # e4e's own opts have none of these
        del ckpt["opts"][key]
    ckpt["opts"]["stylegan_size"] = 64
    torch.save(ckpt, path)
    assert load_encoder(path).n_styles == 10


def _broken(tmp_path, change):
    path = write_encoder_checkpoint(tmp_path / "e.pt", "BackboneEncoder")
    ckpt = torch.load(path, weights_only=True)
    change(ckpt)
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda c: c["opts"].update(encoder_type="ResNetBackboneEncoder"), "unknown encoder_type"),
        (lambda c: c.pop("opts"), "no opts"),
        (lambda c: c["opts"].update(output_size=256), "not a BackboneEncoder for 256 px"),
        (lambda c: c["opts"].update(input_nc=3), "input_nc 3"),
        (lambda c: c.pop("latent_avg"), "no latent_avg"),
        (lambda c: c.update(state_dict=[1, 2]), "no state_dict"),
    ],
    ids=["type", "opts", "size", "channels", "latent-avg", "state-dict"],
)
def test_bad_checkpoints_are_one_line(tmp_path, change, says):
    path = _broken(tmp_path, change)
    with pytest.raises(CheckpointError) as caught:
        load_encoder(path)
    assert says in str(caught.value) and str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_truncated_and_html_files_are_one_line(tmp_path):
    path = write_encoder_checkpoint(tmp_path / "e.pt", "GradualStyleEncoder")
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 3])
    (tmp_path / "page.pt").write_text("<html>Google Drive: quota exceeded</html>")
    for name in ("cut.pt", "page.pt"):
        with pytest.raises(CheckpointError, match=name):
            load_encoder(tmp_path / name)


def test_an_encoder_for_another_generator_size_is_refused(tmp_path, x):
    path = write_encoder_checkpoint(tmp_path / "e.pt", "GradualStyleEncoder")
    model = load_encoder(path)
    other = decoder(1)
    small = type(other)(type(other.config)(**{**other.config.to_dict(), "img_resolution": 32,
                                              "channels": (16, 16, 12, 8)}))  # fmt: skip
    with pytest.raises(MicromotionError, match="trained for another network size"):
        encode(small, model, x)
    with pytest.raises(ParameterError, match="iterations"):
        encode(other, model, x, iterations=0)
    with pytest.raises(MicromotionError, match=r"\[N, 3, 256, 256\]"):
        encode(other, model, x[:, :, :128, :128])


def test_an_encoder_warns_when_the_generator_is_not_its_own(tmp_path):
    import warnings as _warnings

    from encoder_ckpt_writer import decoder, write_encoder_checkpoint
    from micromotion.inversion.encoder import encode
    from micromotion.weights.encoders import load_encoder
    from micromotion.weights.generator import load_generator

    ckpt = write_encoder_checkpoint(tmp_path / "restyle.pt", "BackboneEncoder", seed=3)
    model = load_encoder(ckpt)
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        own = load_generator(ckpt)
    assert model.source["decoder_fingerprint"] == own.fingerprint()
    faces = torch.zeros(1, 3, 256, 256)
    with _warnings.catch_warnings():
        _warnings.simplefilter("error")  # its own generator: no warning at all
        encode(own, model, faces, iterations=1)
    other = decoder(seed=11)  # the same architecture, another network
    with pytest.warns(UserWarning, match="trained with another generator"):
        encode(other, model, faces, iterations=1)
