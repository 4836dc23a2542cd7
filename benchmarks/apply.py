"""Overhead of `apply` over pure synthesis: a 100-frame clip vs. rendering the same frames.

Both runs use the same generator, the same codes and the same batch size in one process; the
clip run adds code construction, uint8 conversion and H.264 encoding (target: ≤ 5 %). Runs
are interleaved and the minimum is reported (the least disturbed run), and the extra work is
also timed on its own, since on a shared 2-core machine whole-run times vary by ±10 %.

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

from micromotion.media.images import to_uint8
from micromotion.media.video_out import open_clip_writer
from micromotion.networks.stylegan2 import Generator, GeneratorConfig
from micromotion.render.codes import clip_codes
from micromotion.render.frames import render_frames
from micromotion.subspace.micromotion import Micromotion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--channel-base", type=int, default=32768, help="32768: config-f")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--format", choices=["mp4", "gif", "png"], default="mp4")
    args = parser.parse_args()

    torch.manual_seed(0)
    cfg = GeneratorConfig.from_channel_base(args.resolution, channel_base=args.channel_base)
    G = Generator(cfg).eval()
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
        # The extra work alone: uint8 conversion and encoding of already rendered frames.
        with torch.inference_mode():
            images = [
                G.synthesis(codes[i : i + args.batch]) for i in range(0, args.frames, args.batch)
            ]
        start = time.perf_counter()
        with open_clip_writer(out, fps=30, total_frames=args.frames) as sink:
            for img in images:
                sink.write(to_uint8(img))
        t_extra = time.perf_counter() - start
    p, c = min(t_pure), min(t_clip)
    print(
        f"{args.frames} frames at {args.resolution} px, channels {list(cfg.channels)}, "
        f"batch {args.batch}, {torch.get_num_threads()} threads, min of {args.repeats}"
    )
    print(f"pure synthesis      {p:8.2f} s  ({args.frames / p:6.2f} frames/s)")
    print(f"apply -> .{args.format:4s}     {c:8.2f} s  ({args.frames / c:6.2f} frames/s)")
    print(f"overhead            {100 * (c / p - 1):+7.1f} %  (target <= 5 %)")
    print(f"  extra work alone  {t_extra:8.2f} s  = {100 * t_extra / p:.1f} % of pure synthesis")
    print(
        f"  run-to-run spread {100 * (statistics.pstdev(t_pure) / statistics.mean(t_pure)):.1f} % "
        "(stdev/mean of the pure runs)"
    )


if __name__ == "__main__":
    main()
