"""Inversion quality against wall time on a tiny generator, CPU.

Images are rendered from known W+ codes by a small randomly initialised generator (outputs
scaled into [-1, 1] like a trained one); the projector then runs for increasing step counts
and the PSNR of its reconstruction is reported with the time it took, in one run.

Usage:
    python benchmarks/invert.py [--resolution 32] [--images 4] [--steps 50,100,200,400]
"""

from __future__ import annotations

import argparse
import time

import torch

from micromotion.inversion import InversionConfig, invert
from micromotion.networks.stylegan2 import Generator, GeneratorConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--channel-base", type=int, default=512)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--steps", default="50,100,200,400")
    parser.add_argument("--space", choices=["w+", "w"], default="w+")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    cfg = GeneratorConfig.from_channel_base(
        args.resolution,
        channel_base=args.channel_base,
        channel_max=64,
        z_dim=32,
        w_dim=32,
        mapping_layers=4,
    )
    G = Generator(cfg).eval().requires_grad_(False)
    with torch.no_grad():
        for name, p in G.named_parameters():  # trained-like: noise and biases are non-zero
            if name.endswith(("noise_strength", ".bias")) and "affine" not in name:
                p.normal_(0, 0.1)
        ws = G.mapping(torch.randn(args.images, G.z_dim), truncation_psi=0.7)
        ws = ws + 0.1 * torch.randn_like(ws)
        scale = 0.9 / G.synthesis(ws).abs().max()
        for name, p in G.named_parameters():
            if ".torgb." in name and "affine" not in name:
                p.mul_(scale)
        targets = G.synthesis(ws)

    print(
        f"{args.images} images, {args.resolution} px, channels {list(cfg.channels)}, "
        f"space {args.space}, {torch.get_num_threads()} thread(s)"
    )
    print(f"{'steps':>6} {'seconds':>8} {'s/step':>7} {'PSNR mean':>10} {'PSNR min':>9}")
    invert(G, targets, config=InversionConfig(steps=5, space=args.space))  # warm-up, untimed
    for steps in (int(s) for s in args.steps.split(",")):
        start = time.perf_counter()
        result = invert(G, targets, config=InversionConfig(steps=steps, space=args.space))
        seconds = time.perf_counter() - start
        print(
            f"{steps:6d} {seconds:8.2f} {seconds / steps:7.4f} "
            f"{result.psnr.mean():10.2f} {result.psnr.min():9.2f}"
        )


if __name__ == "__main__":
    main()
