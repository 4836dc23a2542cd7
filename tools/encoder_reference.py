"""Regenerate tests/data/encoder_reference.safetensors: our encoders' outputs on tiny checkpoints.

Usage: ``python tools/encoder_reference.py``. Run only after a parity check against the
official ReStyle / e4e / pSp code (outside the repo) has passed: the file pins those outputs so
that any later change to the encoders or their iteration loop is caught. Parity measured
2026-12-01 on checkpoints randomised the same way: W+ codes within 2.3e-5 of the reference
implementations at every ReStyle iteration, images (pooled to 256 px) within 4.7e-5.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from encoder_ckpt_writer import write_encoder_checkpoint  # noqa: E402
from micromotion import load_generator  # noqa: E402
from micromotion.inversion.encoder import encode  # noqa: E402
from micromotion.networks.encoders import ENCODERS  # noqa: E402
from micromotion.weights.encoders import load_encoder  # noqa: E402

#: The input faces: fixed noise images in [-1, 1].
INPUT_SEED = 7
ITERATIONS = 3


def reference() -> dict[str, torch.Tensor]:
    """Codes and pooled renders of every encoder on one input, per iteration."""
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(INPUT_SEED)) * 2 - 1
    out: dict[str, torch.Tensor] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, kind in enumerate(ENCODERS):
            path = write_encoder_checkpoint(Path(tmp) / f"{kind}.pt", kind, seed=10 * i)
            result = encode(load_generator(path), load_encoder(path), x, iterations=ITERATIONS)
            for k, (codes, images) in enumerate(zip(result.iterates, result.images, strict=True)):
                out[f"{kind}.codes.{k}"] = codes.contiguous()
                out[f"{kind}.images.{k}"] = images[:, :, ::8, ::8].contiguous()  # a 32 px probe
    return out


if __name__ == "__main__":
    target = ROOT / "tests" / "data" / "encoder_reference.safetensors"
    save_file(reference(), str(target), metadata={"input_seed": str(INPUT_SEED)})
    print(f"wrote {target}")
