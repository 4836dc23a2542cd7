"""Inversion quality against wall time: encoder, projector and hybrid, CPU, one run.

**Tiny network (default).** A small randomly initialised generator (outputs scaled into
[-1, 1] like a trained one's) renders images from known W+ codes. An encoder with random
weights predicts nothing, so the benchmark first trains a tiny ReStyle-style encoder for a
few hundred seeded steps on freshly generated ``(w, image)`` pairs (seconds on a CPU; its cost
is reported once and is not part of any row's time). Then, on held-out generated images, it
measures the PSNR of:

* ``encoder``: the library's :func:`~micromotion.inversion.encoder.encode` with that encoder,
  1 … ``--iterations`` ReStyle iterations;
* ``projector``: :func:`~micromotion.inversion.invert` from ``w_avg``, for ``--steps`` steps;
* ``hybrid``: the encoder's codes refined by ``--refine`` projector steps (``init_ws``), as
  ``PhotoSettings(refine=N)`` does.

Times are per run over all ``--images`` images together, including the projector's setup
(``w_avg`` statistics). The projector uses its pixel loss. LPIPS is reported only when its
weights are in the zoo cache (``micromotion zoo download vgg16-imagenet lpips-vgg-v0.1``);
they cannot be downloaded on an offline machine, so there the table shows PSNR only and
says so.

**Paper size (``--paper-size``).** StyleGAN2 config-f at 1024 px and a ReStyle-pSp encoder on
the IR-SE50 backbone, both with random weights, on the aligned ``skimage`` astronaut: only
the times mean anything there (no pretrained weights are downloadable here, so PSNR is not
shown). Projector steps are measured and extrapolated to ``--extrapolate`` steps, labelled.

Usage:
    python benchmarks/invert.py                       # tiny network, about a minute
    python benchmarks/invert.py --steps 50,100,200,400 --refine 25,50,100 --train-steps 400
    python benchmarks/invert.py --paper-size          # 1024 px config-f, times only (minutes)
    python benchmarks/invert.py --paper-size --paper-resolution 64 --projector-steps 2
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from micromotion.inversion import InversionConfig, invert, psnr
from micromotion.inversion.encoder import average_image, encode, to_encoder_input
from micromotion.networks.encoders import BackboneEncoder, EncoderModel
from micromotion.networks.stylegan2 import Generator, GeneratorConfig
from micromotion.testing import randomise

#: What the tiny encoder reduces its 256 px input to (the tiny generator's resolution).
ENCODER_SIZE = 32


@dataclass(frozen=True)
class Row:
    """One line of the table.

    Attributes:
        method: ``encoder``, ``projector`` or ``hybrid``.
        setting: Iterations / steps, in words.
        seconds: Wall time of the run (all images together).
        psnr: ``[N]`` PSNR in dB per image, or ``None`` where it means nothing.
        lpips: ``[N]`` LPIPS distance per image, or ``None`` without LPIPS weights.
        note: ``measured`` or ``extrapolated ...``.
    """

    method: str
    setting: str
    seconds: float
    psnr: torch.Tensor | None = None
    lpips: torch.Tensor | None = None
    note: str = "measured"


class TinyEncoder(nn.Module):
    """A ReStyle-style encoder for a tiny generator: ``[image, reconstruction]`` → Δ codes.

    It takes the encoders' 256 px input (6 channels), averages it down to
    :data:`ENCODER_SIZE` px and predicts one ``w_dim`` code per W+ entry.

    Args:
        num_ws: W+ entries of the generator.
        w_dim: Width of each code.
        width: Channels of the first convolution (doubled at each stride-2 stage).
    """

    def __init__(self, num_ws: int, w_dim: int, width: int = 32) -> None:
        super().__init__()
        self.num_ws, self.w_dim = num_ws, w_dim
        layers: list[nn.Module] = [nn.Conv2d(6, width, 3, padding=1), nn.LeakyReLU(0.2)]
        c = width
        for _ in range(3):  # 32 → 16 → 8 → 4
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c *= 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c * 4 * 4, num_ws * w_dim)
        with torch.no_grad():  # start near "no change", as a trained ReStyle step ends
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 6, 256, 256]`` (or already ``[N, 6, 32, 32]``) → ``[N, num_ws, w_dim]``."""
        return self.head(self.features(shrink(x)).flatten(1)).view(-1, self.num_ws, self.w_dim)


def shrink(images: torch.Tensor) -> torch.Tensor:
    """Average ``[N, C, S, S]`` down to :data:`ENCODER_SIZE` px (unchanged at that size)."""
    return F.adaptive_avg_pool2d(images, (ENCODER_SIZE, ENCODER_SIZE))


def tiny_generator(resolution: int, channel_base: int) -> Generator:
    """A seeded random generator whose renders look trained: noise, biases, range [-1, 1]."""
    torch.manual_seed(0)
    cfg = GeneratorConfig.from_channel_base(
        resolution, channel_base=channel_base, channel_max=64, z_dim=32, w_dim=32, mapping_layers=4
    )
    G = Generator(cfg).eval().requires_grad_(False)
    with torch.no_grad():
        for name, p in G.named_parameters():  # trained-like: noise and biases are non-zero
            if name.endswith(("noise_strength", ".bias")) and "affine" not in name:
                p.normal_(0, 0.1)
        scale = 0.9 / G.synthesis(sample_codes(G, 64, seed=0)).abs().max()
        for name, p in G.named_parameters():
            if ".torgb." in name and "affine" not in name:
                p.mul_(scale)
    return G


def sample_codes(G: Generator, n: int, *, seed: int) -> torch.Tensor:
    """``[n, num_ws, w_dim]`` codes like a photo's inversion: truncated ``w`` plus W+ spread."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        ws = G.mapping(torch.randn(n, G.z_dim, generator=gen), truncation_psi=0.7)
        return ws + 0.1 * torch.randn(ws.shape, generator=gen)


def train_encoder(
    G: Generator,
    *,
    steps: int,
    batch: int,
    iterations: int,
    seed: int,
    sample: Callable[..., torch.Tensor] | None = None,
) -> tuple[EncoderModel, float, float]:
    """Train a :class:`TinyEncoder` the ReStyle way on generated pairs, seeded.

    Each step draws fresh codes, renders them, and runs ``iterations`` ReStyle iterations
    from the average image; every iteration's output is pulled toward the true code and its
    render toward the image (the feedback image is detached, as in ReStyle's training).
    ``sample(G, n, seed=...)`` draws the codes (default :func:`sample_codes`; another
    benchmark trains on the faces its clips use).

    Returns:
        The encoder wrapped for :func:`encode`, the training time in seconds, and the last
        step's loss.
    """
    torch.manual_seed(seed)
    net = TinyEncoder(G.num_ws, G.w_dim)
    latent_avg = G.w_avg[None].repeat(G.num_ws, 1)  # [num_ws, w_dim]
    model = EncoderModel(net, "restyle-psp", latent_avg, {"start_from_latent_avg": True})
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    sample = sample or sample_codes
    code_scale = float(sample(G, 256, seed=seed).std())
    with torch.no_grad():
        start_image = shrink(average_image(G, model))  # [1, 3, 32, 32]
    start = time.perf_counter()
    loss = torch.zeros(())
    for step in range(steps):
        for group in optimizer.param_groups:  # cosine decay to a tenth
            group["lr"] = 1e-3 * (0.55 + 0.45 * math.cos(math.pi * step / steps))
        ws = sample(G, batch, seed=seed + 1 + step)
        with torch.no_grad():
            images = G.synthesis(ws, noise_mode="const")  # [B, 3, R, R]
            x = shrink(to_encoder_input(images))  # what the encoder makes of encode()'s input
        current = start_image.expand(batch, -1, -1, -1)
        codes = latent_avg[None].expand(batch, -1, -1)
        optimizer.zero_grad(set_to_none=True)
        for _ in range(iterations):
            codes = net(torch.cat([x, current], dim=1)) + codes.detach()
            render = G.synthesis(codes, noise_mode="const")
            loss = F.mse_loss(codes, ws) / code_scale**2 + F.mse_loss(render, images)
            loss.backward()
            # encode() feeds the render pooled to 256 px, which the encoder averages back
            # down: at this size that round trip is exact, so it is skipped here.
            current = shrink(render.detach())
        optimizer.step()
    net.eval().requires_grad_(False)
    return model, time.perf_counter() - start, loss.item()


def lpips_metric() -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """LPIPS-VGG ``(x, y) -> [N]`` when its weights are cached, else ``None`` (no download)."""
    from micromotion.pipelines.losses import select_loss
    from micromotion.weights.lpips import lpips_available

    if not lpips_available():
        return None
    return select_loss(lpips=True)[0]


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """Run ``fn`` once; ``(seconds, result)``."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def tiny_rows(args: argparse.Namespace) -> list[Row]:
    """Train the tiny encoder, then time and score every inverter on held-out images."""
    G = tiny_generator(args.resolution, args.channel_base)
    print(
        f"tiny network: {args.resolution} px, channels {list(G.config.channels)}, "
        f"W+ [{G.num_ws}, {G.w_dim}], {torch.get_num_threads()} thread(s)"
    )
    model, train_s, train_loss = train_encoder(
        G, steps=args.train_steps, batch=args.train_batch, iterations=3, seed=args.seed
    )
    print(
        f"encoder trained: {args.train_steps} steps × batch {args.train_batch}, "
        f"3 ReStyle iterations each, {train_s:.1f} s, final loss {train_loss:.4f} (once; "
        "not in the times below)"
    )
    with torch.no_grad():
        targets = G.synthesis(sample_codes(G, args.images, seed=10_000 + args.seed))
    metric = lpips_metric()

    def score(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if metric is None:
            return psnr(images, targets), None
        with torch.no_grad():
            return psnr(images, targets), metric(images, targets)

    inputs = to_encoder_input(targets)
    invert(G, targets, config=InversionConfig(steps=5))  # warm-up, untimed
    encode(G, model, inputs, iterations=1)
    with torch.no_grad():  # the projector's start, for reference
        start = G.synthesis(G.w_avg[None, None].expand(args.images, G.num_ws, -1))
    rows: list[Row] = [Row("reference", "w_avg rendered", 0.0, *score(start), note="no inversion")]
    codes = None
    for k in range(1, args.iterations + 1):
        seconds, found = timed(lambda k=k: encode(G, model, inputs, iterations=k))
        rows.append(Row("encoder", f"{k} iteration{'s' * (k > 1)}", seconds, *score(found.final)))
        codes, encoder_s = found.ws, seconds
    assert codes is not None
    for steps in args.steps:
        seconds, result = timed(lambda s=steps: invert(G, targets, config=InversionConfig(steps=s)))
        rows.append(Row("projector", f"{steps} steps", seconds, *score(result.images)))
    for steps in args.refine:
        config = InversionConfig(steps=steps)
        seconds, result = timed(lambda c=config: invert(G, targets, config=c, init_ws=codes))
        setting = f"encoder ({args.iterations}) + {steps} steps"
        rows.append(Row("hybrid", setting, encoder_s + seconds, *score(result.images)))
    return rows


def paper_encoder(num_ws: int, seed: int) -> BackboneEncoder:
    """A ReStyle-pSp encoder with random weights whose codes stay small across iterations."""
    encoder = BackboneEncoder(num_ws)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in encoder.state_dict().items():
            if name.startswith("styles.") and name.endswith("linear.weight"):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.03)
    return encoder.eval().requires_grad_(False)


def paper_rows(args: argparse.Namespace) -> list[Row]:
    """Config-f with random weights: encoder, projector and hybrid wall times only."""
    from skimage import data

    from micromotion.faces import align_image
    from micromotion.media.images import from_uint8

    R = args.paper_resolution
    G = randomise(Generator(GeneratorConfig.from_channel_base(R)), 0)
    G.eval().requires_grad_(False)
    with torch.no_grad():  # renders near [-1, 1], as ReStyle feeds them back
        for name, p in G.named_parameters():
            if ".torgb." in name and name.endswith("weight") and "affine" not in name:
                p.mul_(0.02)
    latent_avg = G.w_avg[None].repeat(G.num_ws, 1)
    model = EncoderModel(paper_encoder(G.num_ws, 1), "restyle-psp", latent_avg, {})
    crop = align_image(data.astronaut(), size=R)[0].image
    target = from_uint8(crop)[None]  # [1, 3, R, R]
    print(
        f"paper size: StyleGAN2 config-f {R} px (W+ [{G.num_ws}, {G.w_dim}]) and ReStyle-pSp "
        f"(IR-SE50), random weights, the aligned astronaut, {torch.get_num_threads()} "
        "thread(s); times only: with random weights PSNR means nothing"
    )
    rows: list[Row] = []
    inputs = to_encoder_input(target)
    seconds, found = timed(lambda: encode(G, model, inputs, iterations=args.iterations))
    rows.append(Row("encoder", f"{args.iterations} iterations", seconds))
    encoder_s = seconds
    n, total = args.projector_steps, args.extrapolate
    config = InversionConfig(steps=n, w_avg_samples=10_000)
    steps_at: list[float] = []
    start = time.perf_counter()
    invert(G, target, config=config, callback=lambda *_: steps_at.append(time.perf_counter()))
    seconds = time.perf_counter() - start
    per_step = (steps_at[-1] - steps_at[0]) / (n - 1)
    setup = seconds - n * per_step
    rows.append(Row("projector", f"{n} steps", seconds))
    rows.append(Row("projector", f"{total} steps", setup + total * per_step,
                    note=f"extrapolated: setup {setup:.1f} s + {per_step:.2f} s/step"))  # fmt: skip
    start = time.perf_counter()
    invert(G, target, config=config, init_ws=found.ws)
    seconds = time.perf_counter() - start
    rows.append(Row("hybrid", f"encoder + {n} steps", encoder_s + seconds))
    for refine in args.refine:
        rows.append(Row("hybrid", f"encoder + {refine} steps",
                        encoder_s + setup + refine * per_step, note="extrapolated"))  # fmt: skip
    return rows


def print_table(rows: list[Row], *, lpips_note: str) -> None:
    """The rows as a table; PSNR/LPIPS are means (min/max) over the images."""
    print(f"{'method':<10} {'setting':<24} {'seconds':>9} {'PSNR mean':>10} {'PSNR min':>9} "
          f"{'LPIPS mean':>11}  note")  # fmt: skip
    for row in rows:
        p_mean = f"{row.psnr.mean():10.2f}" if row.psnr is not None else f"{'—':>10}"
        p_min = f"{row.psnr.min():9.2f}" if row.psnr is not None else f"{'—':>9}"
        lp = f"{row.lpips.mean():11.4f}" if row.lpips is not None else f"{'—':>11}"
        print(f"{row.method:<10} {row.setting:<24} {row.seconds:9.2f} {p_mean} {p_min} {lp}  "
              f"{row.note}")  # fmt: skip
    print(lpips_note)


def _int_list(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def main() -> None:
    """Parse the options, run one benchmark and print its table."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resolution", type=int, default=32, help="tiny generator size")
    parser.add_argument("--channel-base", type=int, default=512, help="tiny generator width")
    parser.add_argument("--images", type=int, default=8, help="held-out images inverted")
    parser.add_argument("--iterations", type=int, default=5, help="ReStyle iterations")
    parser.add_argument("--steps", type=_int_list, default=[25, 50, 100, 200, 400],
                        metavar="N,N", help="projector step counts")  # fmt: skip
    parser.add_argument("--refine", type=_int_list, default=[25, 50, 100], metavar="N,N",
                        help="projector steps after the encoder (hybrid)")  # fmt: skip
    parser.add_argument("--train-steps", type=int, default=300, help="tiny encoder training")
    parser.add_argument("--train-batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--paper-size", action="store_true",
                        help="time config-f 1024 px, ReStyle-pSp (random weights)")  # fmt: skip
    parser.add_argument("--paper-resolution", type=int, default=1024,
                        help="with --paper-size: smaller for a quick check")  # fmt: skip
    parser.add_argument("--projector-steps", type=int, default=3,
                        help="with --paper-size: projector steps measured (≥ 2)")  # fmt: skip
    parser.add_argument("--extrapolate", type=int, default=500,
                        help="with --paper-size: projector steps extrapolated to")  # fmt: skip
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if args.paper_size and args.projector_steps < 2:
        parser.error("--projector-steps: at least 2 (the learning rate ramps up from 0)")
    if not args.paper_size and (min(args.steps + args.refine, default=2) < 2):
        parser.error("--steps/--refine: at least 2 each (the learning rate ramps up from 0)")
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*LPIPS-VGG weights are not in the cache.*")
    if args.paper_size:
        rows = paper_rows(args)
        print_table(rows, lpips_note="PSNR/LPIPS not shown: random weights (times only).")
        encoder_s = rows[0].seconds
        projector = next(r for r in rows if r.note.startswith("extrapolated"))
        ratio = projector.seconds / encoder_s
        goal = "met" if ratio >= 100 else "NOT met"
        print(f"projector ({args.extrapolate} steps, extrapolated) / encoder: {ratio:.0f}x "
              f"(goal ≥ 100x: {goal})")  # fmt: skip
        return
    rows = tiny_rows(args)
    note = (
        "LPIPS: LPIPS-VGG v0.1 from the zoo cache."
        if lpips_metric() is not None
        else "LPIPS: not measured — its weights are not in the zoo cache and cannot be "
        "downloaded here (pixel PSNR only)."
    )
    print_table(rows, lpips_note=note)


if __name__ == "__main__":
    main()
