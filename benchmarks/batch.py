"""Rows per second: ``micromotion batch`` (local and Ray) against a shell loop of single commands.

Builds a generator with random weights (only time is measured), a planted micromotion and a
manifest of ``--rows`` animate rows (one sampled face each, ``--frames`` frames, MP4), then
times, in one run and from a cold process each time:

* a shell loop: ``micromotion apply`` once per row, which starts Python, imports torch and
  loads the generator every time;
* ``micromotion batch --engine local``: one process, the generator loaded once;
* ``micromotion batch --engine ray``: a local Ray instance started by the command, actors that
  load the generator once.

The batch engines must write the same clips as the loop (checked: the MP4 bytes).

Usage:
    python benchmarks/batch.py [--rows 12] [--frames 8] [--resolution 256]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from micromotion.networks.stylegan2 import Generator, GeneratorConfig
from micromotion.subspace.micromotion import Micromotion
from micromotion.testing import randomise, tiny_generator
from micromotion.weights.generator import save_generator


def micromotion(*args: object) -> float:
    """Run the CLI in a fresh process; its wall time in seconds."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "micromotion", *map(str, args)],
        check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    """Time the three ways and print rows per second and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument(
        "--resolution", type=int, default=256, help="0: the 32 px test generator instead"
    )
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.resolution:
            blocks = args.resolution.bit_length() - 2  # 4 px up to the resolution
            channels = GeneratorConfig().channels[:blocks]
            G = randomise(Generator(GeneratorConfig(img_resolution=args.resolution,
                                                    channels=channels)), 0)  # fmt: skip
        else:
            G = tiny_generator(0)
        save_generator(G, root / "g.safetensors")
        d = torch.randn(G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(0))
        Micromotion(direction=d, mask=torch.ones(G.num_ws, dtype=torch.bool)).save(
            root / "up.safetensors"
        )
        lines = ["job,name,seed,micromotion,strength,frames,format"]
        lines += [
            f"animate,row{i},{i},up.safetensors,2,{args.frames},mp4" for i in range(args.rows)
        ]
        (root / "rows.csv").write_text("\n".join(lines) + "\n")
        common = ("--generator", root / "g.safetensors", "--device", "cpu")

        (root / "loop").mkdir()
        t_loop = 0.0
        for i in range(args.rows):
            t_loop += micromotion(
                "apply", root / "up.safetensors", "--seed", i, "--strength", 2,
                "--frames", args.frames, "-o", root / "loop" / f"row{i}.mp4", *common,
            )  # fmt: skip
        t_local = micromotion("batch", root / "rows.csv", "-o", root / "local", *common)
        t_ray = None
        if not args.skip_ray:
            t_ray = micromotion(
                "batch", root / "rows.csv", "-o", root / "ray", "--engine", "ray", *common
            )
        same_ray = True
        for i in range(args.rows):  # the same clips, whichever way they were made
            loop = (root / "loop" / f"row{i}.mp4").read_bytes()
            assert (root / "local" / f"row{i}" / f"row{i}.mp4").read_bytes() == loop
            if t_ray is not None:
                same_ray &= (root / "ray" / f"row{i}" / f"row{i}.mp4").read_bytes() == loop

    size = f"{args.resolution} px random generator" if args.resolution else "32 px test generator"
    print(f"{args.rows} animate rows, {args.frames} frames each, {size}, CPU, "
          f"{os.cpu_count()} cores")  # fmt: skip
    print(f"shell loop of `micromotion apply`: {t_loop:7.1f} s  {args.rows / t_loop:6.2f} rows/s")
    print(f"batch --engine local:              {t_local:7.1f} s  {args.rows / t_local:6.2f} rows/s"
          f"  ({t_loop / t_local:.1f}x the loop)")  # fmt: skip
    if t_ray is not None:
        print(f"batch --engine ray:                {t_ray:7.1f} s  {args.rows / t_ray:6.2f} rows/s"
              f"  ({t_loop / t_ray:.1f}x the loop)")  # fmt: skip
        # Floating-point sums depend on the thread count: Ray's actors run with fewer threads
        # than the loop, so their clips are bit-identical only with the same --threads.
        print(f"ray clips bit-identical to the loop's: {same_ray}")
    print("(each time includes starting the process; ray's includes starting Ray)")


if __name__ == "__main__":
    main()
