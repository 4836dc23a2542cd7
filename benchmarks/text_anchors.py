"""Text anchors: all degrees in one batch against one degree at a time, CPU.

A small randomly initialised generator and a tiny random CLIP (same open_clip classes as
ViT-B-32, 224 px input) run the paper's optimisation for every degree word, first with all
prompts in one batch, then one prompt at a time with the same steps; the wall times, their
ratio and the largest difference between the two sets of anchors are printed, from one run.

Usage:
    python benchmarks/text_anchors.py [--resolution 64] [--steps 40] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from micromotion.anchors.text import DEFAULT_DEGREES, TextAnchorConfig, text_anchors
from micromotion.networks.clip import ClipModel
from micromotion.networks.stylegan2 import Generator, GeneratorConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--channel-base", type=int, default=512)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--degrees", default=",".join(DEFAULT_DEGREES))
    parser.add_argument("--clip-width", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from open_clip.model import CLIP

    torch.manual_seed(0)
    cfg = GeneratorConfig.from_channel_base(
        args.resolution,
        channel_base=args.channel_base,
        channel_max=64,
        z_dim=32,
        w_dim=32,
        mapping_layers=4,
    )
    G = Generator(cfg).eval()
    width = args.clip_width
    model = CLIP(
        embed_dim=32,
        vision_cfg={"image_size": 224, "patch_size": 32, "width": width, "layers": 2},
        text_cfg={"context_length": 32, "vocab_size": 49408, "width": width, "heads": 4},
    )
    with torch.no_grad():
        model.logit_scale.fill_(math.log(100))
    clip = ClipModel(model, spec="random tiny CLIP")
    degrees = tuple(d.strip() for d in args.degrees.split(","))

    print(
        f"{len(degrees)} degrees, {args.steps} steps, {args.resolution} px generator "
        f"(channels {list(cfg.channels)}), CLIP width {width} at 224 px, "
        f"{torch.get_num_threads()} thread(s)"
    )
    results, seconds = {}, {}
    for label, batch_size in (("batched", None), ("one at a time", 1)):
        config = TextAnchorConfig(degrees=degrees, steps=args.steps, batch_size=batch_size)
        start = time.perf_counter()
        results[label] = text_anchors(G, clip, config=config)
        seconds[label] = time.perf_counter() - start
        print(f"{label:>14}: {seconds[label]:7.2f} s")
    ratio = seconds["one at a time"] / seconds["batched"]
    batched, single = results["batched"], results["one at a time"]
    diff = (batched.anchors - single.anchors).abs().max()
    moved = (batched.anchors[1:] - batched.anchors[:1]).abs().max()
    loss_diff = (batched.clip_loss - single.clip_loss).abs().max()
    print(f"speed-up of batching: {ratio:.2f}x")
    # Same maths (per-step gradients agree to float rounding); over many Adam steps that
    # rounding can grow, so the codes are compared with how far they moved.
    print(
        f"max |anchor difference| {diff:.2e} (codes moved up to {moved:.2e}); "
        f"max |final CLIP loss difference| {loss_diff:.2e}"
    )


if __name__ == "__main__":
    main()
