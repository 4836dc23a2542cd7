"""Overhead of `apply` over pure synthesis: a 100-frame clip vs. rendering the same frames.

Both runs use the same generator, the same codes and the same batch size in one process; the
clip run adds code construction, uint8 conversion and H.264 encoding (target: ≤ 5 %).

Usage:
    python benchmarks/apply.py [--resolution 128] [--frames 100] [--batch 8] [--format mp4]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from micromotion.animate import clip_codes, render_frames
from micromotion.direction import Micromotion
from micromotion.networks.stylegan2 import Generator, GeneratorConfig
from micromotion.video import open_clip_writer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--format", choices=["mp4", "gif", "png"], default="mp4")
    args = parser.parse_args()

    torch.manual_seed(0)
    G = Generator(GeneratorConfig.from_channel_base(args.resolution)).eval()
    mm = Micromotion(
        direction=torch.randn(G.num_ws, G.w_dim) * 0.1,
        mask=torch.ones(G.num_ws, dtype=torch.bool),
        metadata={"name": "bench"},
    )
    w = G.mapping(torch.randn(1, G.z_dim), truncation_psi=0.7)[0]
    codes = clip_codes(w, [(mm, 5.0)], frames=args.frames)

    def pure() -> None:
        with torch.inference_mode():
            for start in range(0, codes.shape[0], args.batch):
                G.synthesis(codes[start : start + args.batch])

    def clip(out: Path) -> None:
        c = clip_codes(w, [(mm, 5.0)], frames=args.frames)
        with open_clip_writer(out, fps=30, total_frames=args.frames) as sink:
            for batch in render_frames(G, c, batch_size=args.batch):
                sink.write(batch)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"clip.{args.format}"
        pure(), clip(out)  # warm-up
        t_pure, t_clip = [], []
        for _ in range(args.repeats):  # interleaved so drift affects both alike
            start = time.perf_counter()
            pure()
            t_pure.append(time.perf_counter() - start)
            start = time.perf_counter()
            clip(out)
            t_clip.append(time.perf_counter() - start)
    p, c = statistics.median(t_pure), statistics.median(t_clip)
    print(
        f"{args.frames} frames at {args.resolution} px, batch {args.batch}, "
        f"{torch.get_num_threads()} threads, median of {args.repeats}"
    )
    print(f"pure synthesis      {p:8.2f} s  ({args.frames / p:6.2f} frames/s)")
    print(f"apply -> .{args.format:4s}     {c:8.2f} s  ({args.frames / c:6.2f} frames/s)")
    print(f"overhead            {100 * (c / p - 1):+7.1f} %  (target <= 5 %)")


if __name__ == "__main__":
    main()
