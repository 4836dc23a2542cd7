"""Write tiny ReStyle / e4e / pSp checkpoints in the published layout (a test helper).

The layout is ``{"state_dict": encoder.* + decoder.*, "opts": dict, "latent_avg": tensor}``
with ``decoder.*`` a rosinality generator; every parameter and buffer of the encoder
(BatchNorm statistics included) is randomised from a seed, so a reader that mixed up two
tensors, or ignored running statistics, would be caught. Only our own modules are used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from micromotion.networks.encoders import ENCODERS, num_styles
from micromotion.networks.stylegan2 import Generator
from micromotion.testing import randomise, tiny_config
from micromotion.weights.formats.rosinality import rosinality_state_dict

#: The tiny decoder: 64 px (10 W+ entries) with the 512-d codes the encoders predict.
OUTPUT_SIZE = 64


def decoder(seed: int = 0) -> Generator:
    """A randomised 64 px, w_dim 512 generator: small channels, real code width.

    Its toRGB layers are scaled down so that renders stay near [-1, 1], as a trained
    generator's do (ReStyle feeds them back into the encoder).
    """
    config = tiny_config(img_resolution=64, channels=(16, 16, 12, 8, 8), z_dim=512, w_dim=512)
    G = randomise(Generator(config), seed)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if ".torgb." in name and name.endswith("weight") and "affine" not in name:
                p.mul_(0.02)
    return G


def random_encoder(kind: str, seed: int) -> torch.nn.Module:
    """The ``kind`` encoder for 64 px with every parameter and buffer drawn from ``seed``."""
    cls, input_nc = ENCODERS[kind]
    encoder = cls(num_styles(OUTPUT_SIZE), input_nc)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in encoder.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith(("running_mean", "bias")):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif name.startswith("styles.") and name.endswith("linear.weight"):
                # Small code heads: ReStyle feeds its renders back un-clamped, so large
                # outputs would grow from one iteration to the next (and with them, float
                # rounding), as no trained encoder does.
                t.copy_(torch.randn(t.shape, generator=g) * 0.03)
            elif t.ndim >= 2:  # conv and linear weights: unit-variance activations
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=g) / fan_in**0.5)
            else:  # BatchNorm gains, PReLU slopes
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.75)
    return encoder.eval()


def write_encoder_checkpoint(
    path: Path, kind: str, *, seed: int = 0, G: Generator | None = None, **opts: Any
) -> Path:
    """Write a checkpoint of the ``kind`` encoder (opts as the training scripts store them)."""
    G = G if G is not None else decoder(seed)
    encoder = random_encoder(kind, seed + 1)
    state = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    state |= {f"decoder.{k}": v for k, v in rosinality_state_dict(G).items()}
    g = torch.Generator().manual_seed(seed + 2)
    latent_avg = G.w_avg.detach()[None].repeat(num_styles(OUTPUT_SIZE), 1)
    latent_avg = latent_avg + 0.1 * torch.randn(latent_avg.shape, generator=g)
    options = {
        "encoder_type": kind,
        "input_nc": ENCODERS[kind][1],
        "output_size": OUTPUT_SIZE,
        "start_from_latent_avg": True,
        "learn_in_w": False,
        "dataset_type": "ffhq_encode",
        "exp_dir": "experiments/test",
        **opts,
    }
    torch.save({"state_dict": state, "opts": options, "latent_avg": latent_avg}, path)
    return Path(path)


def paper_render_inputs(tmp: Path) -> dict[str, Path]:
    """What a test of the paper's render needs, in ``tmp``: a tiny ReStyle checkpoint (its
    decoder is the generator), a photo with a face, and three micromotions for its 10 W+
    entries: ``official`` (a stand-in for one of the paper's ``d_latent`` files, whose 18 × 512
    would not fit 64 px), ``text`` and ``video``."""
    import numpy as np
    from PIL import Image
    from skimage import data

    from micromotion.subspace.micromotion import Micromotion

    ckpt = write_encoder_checkpoint(tmp / "restyle.pt", "BackboneEncoder", seed=3)
    Image.fromarray(np.asarray(data.astronaut())).save(tmp / "astronaut.png")
    g = torch.Generator().manual_seed(5)
    official = Micromotion.from_official(0.1 * torch.randn(1, 10, 512, generator=g), name="wink")
    made = {"ckpt": ckpt, "photo": tmp / "astronaut.png"}
    made["official"] = official.save(tmp / "wink.safetensors")
    for role, name in (("text", "grin"), ("video", "blink")):
        mm = Micromotion(
            direction=0.1 * torch.randn(10, 512, generator=g),
            mask=torch.ones(10, dtype=torch.bool),
            metadata={"name": name, "source": role},
        )
        made[role] = mm.save(tmp / f"{name}.safetensors")
    return made
