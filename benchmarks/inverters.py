"""Wall time of the inverters at the paper's size: ReStyle-pSp against the projector, CPU.

Builds StyleGAN2 config-f FFHQ 1024 px (18 × 512 W+) and a ReStyle-pSp encoder, both with
random weights (only the time is measured: no pretrained weights are downloadable here, and
with random weights PSNR means nothing), and times on one photo-sized input:

* the encoder: ``--iterations`` ReStyle iterations (encoder at 256 px + a 1024 px render each);
* the projector: ``--projector-steps`` steps, measured, and the per-step time × 500 (the
  default), which is reported as an extrapolation, labelled so.

Usage:
    python benchmarks/inverters.py [--iterations 5] [--projector-steps 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from micromotion.inversion import InversionConfig, invert
from micromotion.inversion.encoder import encode
from micromotion.networks.encoders import BackboneEncoder, EncoderModel
from micromotion.networks.stylegan2 import Generator, GeneratorConfig
from micromotion.testing import randomise


def main() -> None:
    """Time both inverters and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--projector-steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    G = randomise(Generator(GeneratorConfig()), 0).eval().requires_grad_(False)
    encoder = BackboneEncoder(G.num_ws).eval().requires_grad_(False)
    model = EncoderModel(encoder, "restyle-psp", G.w_avg[None].repeat(G.num_ws, 1), {})
    target = torch.rand(1, 3, 1024, 1024) * 2 - 1
    small = torch.nn.functional.interpolate(target, size=(256, 256), mode="area")

    t = time.perf_counter()
    encode(G, model, small, iterations=args.iterations)
    t_encoder = time.perf_counter() - t

    config = InversionConfig(steps=args.projector_steps, w_avg_samples=1000)
    t = time.perf_counter()
    invert(G, target, config=config)
    t_measured = time.perf_counter() - t
    per_step = t_measured / args.projector_steps
    t_500 = per_step * 500
    print(f"config-f 1024 px, {args.threads} threads, one image")
    print(f"ReStyle-pSp, {args.iterations} iterations: {t_encoder:8.1f} s (measured)")
    print(f"projector, {args.projector_steps} steps:        {t_measured:8.1f} s (measured, "
          f"{per_step:.2f} s/step incl. setup)")  # fmt: skip
    print(f"projector, 500 steps:       {t_500:8.0f} s (extrapolated from the steps above)")
    print(f"ratio projector(500) / encoder: {t_500 / t_encoder:.0f}x")


if __name__ == "__main__":
    main()
