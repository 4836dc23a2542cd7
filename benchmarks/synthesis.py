"""Synthesis speed: images/s of micromotion's generator vs. baselines measured in the same run.

Baselines:
  * ``reference``: our own textbook path (grouped modulated conv, zero-insertion FIR), always.
  * ``rosinality``: rosinality/stylegan2-pytorch with its native (non-CUDA) ops, when
    ``--rosinality DIR`` points at a checkout of that repository. It is imported from there
    at run time; nothing of it is part of micromotion.

Usage:
    python benchmarks/synthesis.py [--resolution 256] [--batch 4] [--repeats 5]
        [--threads N] [--rosinality /path/to/stylegan2-pytorch]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from micromotion.networks.stylegan2 import Generator, GeneratorConfig
from micromotion.weights.generator import rosinality_state_dict


def _time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: allocator and oneDNN primitive caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _rosinality_generator(repo: Path, G: Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """Import rosinality's model.py without compiling its CUDA ops (CPU uses native paths)."""
    import torch.utils.cpp_extension as cpp_ext

    cpp_ext.load = lambda *a, **k: None  # its op/ modules compile at import; CPU never calls them
    sys.path.insert(0, str(repo))
    from model import Generator as RGenerator  # type: ignore[import-not-found]

    c = G.config
    cm = (
        c.channels[-1]
        // {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}[
            c.img_resolution
        ]
    )
    rg = RGenerator(c.img_resolution, c.w_dim, c.mapping_layers, channel_multiplier=cm).eval()
    rg.load_state_dict(rosinality_state_dict(G))

    def run(ws: torch.Tensor) -> torch.Tensor:
        return rg([ws], input_is_latent=True, randomize_noise=False)[0]

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rosinality", type=Path, default=None, help="rosinality checkout")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    G = Generator(GeneratorConfig.from_channel_base(args.resolution)).eval()
    ws = torch.randn(args.batch, G.num_ws, G.w_dim)
    runs: dict[str, Callable[[], object]] = {
        "micromotion (fast)": lambda: G.synthesis(ws, impl="fast"),
        "micromotion (reference)": lambda: G.synthesis(ws, impl="reference"),
    }
    if args.rosinality is not None:
        ros = _rosinality_generator(args.rosinality, G)
        ours, theirs = G.synthesis(ws), ros(ws)
        diff = (ours - theirs).abs().max().item()
        print(f"max |micromotion - rosinality| on these weights: {diff:.2e}")
        runs["rosinality (native ops)"] = lambda: ros(ws)

    print(
        f"{args.resolution} px, config-f channels, batch {args.batch}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, median of {args.repeats}"
    )
    results = {}
    with torch.inference_mode():
        for name, fn in runs.items():
            results[name] = args.batch / _time(fn, args.repeats)
    base_name = (
        "rosinality (native ops)"
        if "rosinality (native ops)" in results
        else "micromotion (reference)"
    )
    for name, ips in results.items():
        print(f"{name:26s} {ips:8.3f} img/s   {ips / results[base_name]:5.2f}x vs {base_name}")


if __name__ == "__main__":
    main()
