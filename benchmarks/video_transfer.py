"""Do video anchors transfer? Planted clips on random generators nobody tuned (issue 11).

For each generator and each kind of planted direction a clip is rendered along a known path
``w0 + t·d_true`` (``t`` evenly over [0, 1]) and stored as 8-bit frames, as a video holds them.
Each method turns the frames into anchors exactly as ``discover video --no-align`` does
(:func:`micromotion.anchors.video.invert_sequence` with the method's
:class:`~micromotion.anchors.video.VideoAnchorConfig`: first frame 500 steps, then warm
starts), and the anchors are decoded by the discovery's default decomposition (robust PCA,
rank 4, :class:`~micromotion.pipelines.discover.Decomposition`). Reported, per row:

* ``cos``: cosine between the recovered and the true direction, every W+ entry flattened;
* ``gain``: over three other faces, PSNR of ``G(w + d_rec)`` against ``G(w + d_true)`` minus
  PSNR of the unedited ``G(w)`` against ``G(w + d_true)``, in dB: > 0 means the recovered edit
  is better than no edit at all;
* ``recon``: median reconstruction PSNR of the clip's frames.

The generators are :func:`micromotion.testing.tiny_generator`'s, fully random and *untamed*
(no toRGB scaling: most pixels of their images overshoot [−1, 1] and are clipped in the
frames), at 32 and 64 px, several seeds and latent sizes; none of them was used to choose a
setting in the library before this benchmark. Faces are drawn as the acceptance test draws
them, ``w_avg + 0.3·N(0, I)`` in W+ (the mapping of a random generator collapses to one point),
so the projector starts far from the face, as it does for a real photo.

Two kinds of direction: ``w``, one random W vector for every layer (what a motion of a real
network mostly is), and ``w+``, a random vector per layer. Its norm is 0.8 × the distance
between two faces, as in the acceptance test.

``--encoder`` measures the encoder path instead (``discover video --inverter CKPT
--refine N``): no encoder was ever trained for these generators, so a tiny ReStyle encoder
(``benchmarks/invert.py``'s) is trained for each on faces drawn as the clips draw them, and
the frames go through it (5 iterations) alone, or then 100 projector steps with the plain
StyleGAN2 loss or with ``discover video``'s defaults.

Usage:
    python benchmarks/video_transfer.py --small   # two 32 px generators, three methods
    python benchmarks/video_transfer.py           # every generator and method
    python benchmarks/video_transfer.py --encoder # the encoder path, with and without refine
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from micromotion.anchors.video import VideoAnchorConfig, invert_sequence
from micromotion.inversion import psnr
from micromotion.media.images import from_uint8, to_uint8
from micromotion.networks.stylegan2 import Generator
from micromotion.pipelines.discover import Decomposition
from micromotion.testing import tiny_generator


@dataclass(frozen=True)
class Spec:
    """A random generator: ``tiny_generator(seed, img_resolution, channels, w_dim)``."""

    name: str
    seed: int
    resolution: int
    channels: tuple[int, ...]
    w_dim: int

    def build(self) -> Generator:
        G = tiny_generator(
            self.seed, img_resolution=self.resolution, channels=self.channels, w_dim=self.w_dim
        )
        return G.requires_grad_(False)


GENERATORS = (
    Spec("32px-s4", 4, 32, (16, 16, 12, 8), 10),
    Spec("32px-s2", 2, 32, (16, 16, 12, 8), 10),
    # The acceptance test's architecture, untamed and another seed.
    Spec("64px-s7", 7, 64, (16, 16, 16, 12, 12), 8),
    # w_dim above the last blocks' channels: parts of a code are invisible to those layers.
    Spec("64px-s3-w16", 3, 64, (32, 32, 16, 16, 8), 16),
)

#: Method → the VideoAnchorConfig settings it changes (the rest are the defaults).
METHODS: dict[str, dict[str, Any]] = {
    "W+ plain (old default)": {"space": "w+", "w_reg": 0.0, "clip_aware": False},
    "W plain": {"space": "w", "w_reg": 0.0, "clip_aware": False},
    "W+ clip-aware": {"space": "w+", "w_reg": 0.0, "clip_aware": True},
    "W clip-aware": {"space": "w", "w_reg": 0.0, "clip_aware": True},
    "W+ clip-aware, w_reg 0.03": {"space": "w+", "w_reg": 0.03, "clip_aware": True},
    "W+ clip-aware, w_reg 0.1": {"space": "w+", "w_reg": 0.1, "clip_aware": True},
    # The default of discover video.
    "W+ clip-aware, w_reg 0.3": {"space": "w+", "w_reg": 0.3, "clip_aware": True},
}
SMALL_METHODS = ("W+ plain (old default)", "W+ clip-aware", "W+ clip-aware, w_reg 0.3")


@dataclass
class Clip:
    """A planted clip: its frames, the true direction and the faces it is carried to."""

    frames: torch.Tensor  # [T, 3, R, R], 8-bit values mapped to [-1, 1]
    d_true: torch.Tensor  # [num_ws, w_dim]
    others: torch.Tensor  # [3, num_ws, w_dim]


def planted_clip(G: Generator, kind: str, *, frames: int, seed: int) -> Clip:
    """Render ``w0 + t·d_true`` for ``frames`` values of ``t`` in [0, 1], as 8-bit frames."""
    gen = torch.Generator().manual_seed(seed)
    ws = G.w_avg + 0.3 * torch.randn(4, G.num_ws, G.w_dim, generator=gen)  # [4, num_ws, w_dim]
    if kind == "w":
        d = torch.randn(1, G.w_dim, generator=gen).expand(G.num_ws, -1)  # the same every layer
    else:
        d = torch.randn(G.num_ws, G.w_dim, generator=gen)
    d = d / d.norm() * 0.8 * (ws[0] - ws[1]).norm()
    t = torch.linspace(0, 1, frames)[:, None, None]
    with torch.no_grad():
        images = G.synthesis(ws[0] + t * d, noise_mode="const")  # [T, 3, R, R]
    return Clip(from_uint8(to_uint8(images)), d.clone(), ws[1:])


def measure(G: Generator, clip: Clip, settings: dict[str, Any]) -> dict[str, float]:
    """Anchors by ``discover video``'s projector path with ``settings``; their direction."""
    config = VideoAnchorConfig(frames=clip.frames.shape[0], **settings)
    start = time.perf_counter()
    anchors, quality, _ = invert_sequence(G, clip.frames, config=config)
    seconds = time.perf_counter() - start
    return _score(G, clip, anchors, quality, seconds)


def _score(
    G: Generator, clip: Clip, anchors: torch.Tensor, quality: torch.Tensor, seconds: float
) -> dict[str, float]:
    """Decode the anchors as ``discover video`` does; cosine, transfer gain, reconstruction."""
    mm = Decomposition().decode(
        anchors, Path("bench.safetensors"), source="video", generator_fingerprint=None, metadata={}
    )
    d_rec = mm.masked_direction
    with torch.no_grad():
        target = G.synthesis(clip.others + clip.d_true, noise_mode="const")
        moved = G.synthesis(clip.others + d_rec, noise_mode="const")
        still = G.synthesis(clip.others, noise_mode="const")
    transfer = psnr(moved, target).mean().item()
    no_edit = psnr(still, target).mean().item()
    cos = torch.nn.functional.cosine_similarity(
        d_rec.double().flatten(), clip.d_true.double().flatten(), dim=0
    ).item()
    return {
        "cos": cos,
        "gain": transfer - no_edit,
        "transfer": transfer,
        "no_edit": no_edit,
        "recon": quality.median().item(),
        "seconds": seconds,
    }


#: Encoder path (``--encoder``): a tiny ReStyle encoder trained for each generator, then the
#: frames through it (5 iterations), refined by ``refine`` projector steps with the settings.
ENCODER_METHODS: dict[str, tuple[int, dict[str, Any]]] = {
    "encoder only": (0, {}),
    "encoder + 100 plain": (100, {"w_reg": 0.0, "clip_aware": False}),
    "encoder + 100 default": (100, {}),  # discover video --refine 100, its defaults
}


def face_codes(G: Generator, n: int, *, seed: int) -> torch.Tensor:
    """``[n, num_ws, w_dim]`` faces drawn as the clips draw them, plus a planted-size motion."""
    gen = torch.Generator().manual_seed(seed)
    ws = G.w_avg + 0.3 * torch.randn(n, G.num_ws, G.w_dim, generator=gen)
    d = torch.randn(n, G.num_ws, G.w_dim, generator=gen)  # any way a clip may move them
    return ws + 0.25 * torch.rand(n, 1, 1, generator=gen) * d


def trained_encoder(G: Generator, seed: int) -> Any:
    """A tiny ReStyle encoder for ``G`` (``benchmarks/invert.py``'s), trained on its faces."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from invert import train_encoder  # a sibling benchmark script

    model, seconds, loss = train_encoder(
        G, steps=300, batch=16, iterations=3, seed=seed, sample=face_codes
    )
    print(f"  (encoder for this generator trained in {seconds:.0f} s, last loss {loss:.4f})")
    return model


def measure_encoder(
    G: Generator, clip: Clip, encoder: Any, refine: int, settings: dict[str, Any]
) -> dict[str, float]:
    """Anchors by ``discover video``'s encoder path (5 iterations, then ``refine`` steps)."""
    config = VideoAnchorConfig(frames=clip.frames.shape[0], **settings)
    start = time.perf_counter()
    anchors, quality, _ = invert_sequence(
        G, clip.frames, config=config, encoder=encoder, iterations=5, refine=refine
    )
    seconds = time.perf_counter() - start
    return _score(G, clip, anchors, quality, seconds)


def main() -> None:
    """Run the sweep and print one row per generator, direction and method, then means."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="two 32 px generators, 3 methods")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", nargs="*", default=None, help="method names (default all)")
    parser.add_argument("--generators", nargs="*", default=None, help="generator names")
    parser.add_argument(
        "--encoder",
        action="store_true",
        help="the encoder path instead: a tiny trained ReStyle encoder, then --refine steps",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # Saturated random generators produce denormal gradients that slow the CPU tenfold.
    torch.set_flush_denormal(True)
    specs = [g for g in GENERATORS if args.generators is None or g.name in args.generators]
    table = ENCODER_METHODS if args.encoder else METHODS
    methods = args.methods or list(table if args.encoder or not args.small else SMALL_METHODS)
    if args.small and args.generators is None:
        specs = specs[:2]
    kinds = ("w",) if args.small else ("w", "w+")
    rows: list[tuple[str, str, str, dict[str, float]]] = []
    header = f"{'generator':12} {'d':3} {'method':28} {'cos':>6} {'gain dB':>8} "
    header += f"{'transfer':>8} {'no edit':>8} {'recon':>6} {'s':>5}"
    print(header)
    for spec in specs:
        G = spec.build()
        encoder = trained_encoder(G, spec.seed) if args.encoder else None
        for kind in kinds:
            clip = planted_clip(G, kind, frames=args.frames, seed=spec.seed)
            for name in methods:
                if encoder is not None:
                    refine, settings = ENCODER_METHODS[name]
                    r = measure_encoder(G, clip, encoder, refine, settings)
                else:
                    r = measure(G, clip, METHODS[name])
                rows.append((spec.name, kind, name, r))
                print(
                    f"{spec.name:12} {kind:3} {name:28} {r['cos']:6.3f} {r['gain']:8.2f} "
                    f"{r['transfer']:8.2f} {r['no_edit']:8.2f} {r['recon']:6.1f} "
                    f"{r['seconds']:5.0f}",
                    flush=True,
                )
    print("\nmean over generators and directions")
    for name in methods:
        mine = [r for _, _, n, r in rows if n == name]
        wins = sum(r["gain"] > 0 for r in mine)
        print(
            f"{name:28} cos {sum(r['cos'] for r in mine) / len(mine):6.3f}  "
            f"gain {sum(r['gain'] for r in mine) / len(mine):6.2f} dB  "
            f"(> 0 in {wins}/{len(mine)})  "
            f"recon {sum(r['recon'] for r in mine) / len(mine):5.1f} dB"
        )


if __name__ == "__main__":
    main()
