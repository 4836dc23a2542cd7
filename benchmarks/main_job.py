"""The README's main job end to end on a CPU: a photo → aligned → inverted → frames → an MP4.

Runs :func:`micromotion.pipelines.animate.animate` (what ``micromotion apply smile --image
PHOTO.jpg -o smile.mp4`` calls) twice on ``skimage.data.astronaut()``: once with a ReStyle-pSp
encoder (``--iterations`` iterations, the paper's inverter) and once with the optimisation
projector. The networks have random weights (no pretrained weights are downloadable here) and
are written to a temporary folder in the formats the loaders read: the generator as
micromotion ``.safetensors`` (``save_generator``), the encoder as a checkpoint in the
published ReStyle layout (``{"state_dict": encoder.* + decoder.*, "opts", "latent_avg"}``).
Only the times mean anything; the clip itself is noise.

The breakdown of each run comes from the pipeline's progress callback (``invert`` per
projector step, ``render`` per frame batch). The pipeline reports nothing while it aligns the
face, runs the encoder or feeds the MP4 encoder, so those stages are timed by wrapping the
functions ``animate`` calls (``face_crop``, ``invert_crops``, ``render_frames``,
``open_clip_writer``) for the length of the run, without changing what they do. The MP4
encoder (ffmpeg) runs in a child process beside the rendering; its CPU time is reported too.

The 500-step projector takes about an hour at 1024 px on two cores, so ``--projector-steps``
steps are measured and the inversion extrapolated to ``--extrapolate`` steps (setup + steps ×
time per step, from the callback's time stamps); the projector job's total is the measured
job with that inversion, labelled extrapolated. ``--projector-frames`` renders a shorter clip
in the projector run (rendering does not depend on the inverter); its rendering and encoding
are then scaled to ``--frames``, labelled so.

Goals reported against: the encoder inverts at least 100× faster than the 500-step projector,
and the encoder's job is dominated by rendering.

Usage:
    python benchmarks/main_job.py                                   # 1024 px, 100 frames
    python benchmarks/main_job.py --projector-frames 8              # shorter projector clip
    python benchmarks/main_job.py --resolution 64 --frames 4 --projector-steps 2   # a check
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import micromotion.pipelines.animate as animate_module
from micromotion.networks.encoders import ENCODERS, BackboneEncoder, num_styles
from micromotion.networks.stylegan2 import Generator, GeneratorConfig
from micromotion.pipelines.animate import ClipSettings, PhotoSettings, animate
from micromotion.subspace.micromotion import Micromotion
from micromotion.testing import randomise
from micromotion.weights.formats.rosinality import rosinality_state_dict
from micromotion.weights.generator import save_generator
from micromotion.weights.micromotion import load_micromotion


@dataclass
class Timeline:
    """Time stamps of one ``animate`` run.

    Attributes:
        events: ``(seconds since start, stage, done, total)`` from the progress callback.
        spans: Seconds spent inside each wrapped stage (``align``, ``invert``, ``render``,
            ``encode``), summed over calls.
        start: ``time.perf_counter()`` at the start of the run.
        total: Wall time of the whole ``animate`` call.
        ffmpeg_cpu: CPU seconds of the child processes (the MP4 encoder) during the run.
    """

    events: list[tuple[float, str, int, int]] = field(default_factory=list)
    spans: dict[str, float] = field(default_factory=dict)
    start: float = field(default_factory=time.perf_counter)
    total: float = 0.0
    ffmpeg_cpu: float = 0.0

    def progress(self, stage: str, done: int, total: int, note: str) -> None:
        """The pipeline's ``progress(stage, done, total, note)`` callback."""
        self.events.append((time.perf_counter() - self.start, stage, done, total))

    def add(self, stage: str, seconds: float) -> None:
        """Count ``seconds`` toward ``stage``."""
        self.spans[stage] = self.spans.get(stage, 0.0) + seconds

    def stamps(self, stage: str) -> list[float]:
        """The callback's time stamps of ``stage``."""
        return [t for t, s, _, _ in self.events if s == stage]


def _timed_call(timeline: Timeline, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            timeline.add(stage, time.perf_counter() - start)

    return wrapper


def _timed_frames(timeline: Timeline, fn: Callable[..., Iterator[Any]]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
        frames = fn(*args, **kwargs)
        while True:
            start = time.perf_counter()
            try:
                batch = next(frames)
            except StopIteration:
                timeline.add("render", time.perf_counter() - start)
                return
            timeline.add("render", time.perf_counter() - start)
            yield batch

    return wrapper


class _TimedSink:
    """Forwards ``write`` to the clip writer's sink, counting its time as ``encode``."""

    def __init__(self, sink: Any, timeline: Timeline) -> None:
        self._sink, self._timeline = sink, timeline

    def write(self, frames: Any) -> None:
        start = time.perf_counter()
        self._sink.write(frames)
        self._timeline.add("encode", time.perf_counter() - start)


def _timed_writer(timeline: Timeline, fn: Callable[..., Any]) -> Callable[..., Any]:
    @contextlib.contextmanager
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[_TimedSink]:
        with fn(*args, **kwargs) as sink:
            yield _TimedSink(sink, timeline)
            closing = time.perf_counter()  # leaving the block flushes ffmpeg and waits for it
        timeline.add("encode", time.perf_counter() - closing)

    return wrapper


@contextlib.contextmanager
def instrumented(timeline: Timeline) -> Iterator[None]:
    """Wrap the functions ``animate`` calls with timers for the length of the block."""
    wrappers = {
        "face_crop": lambda fn: _timed_call(timeline, "align", fn),
        "invert_crops": lambda fn: _timed_call(timeline, "invert", fn),
        "render_frames": lambda fn: _timed_frames(timeline, fn),
        "open_clip_writer": lambda fn: _timed_writer(timeline, fn),
    }
    saved = {name: getattr(animate_module, name) for name in wrappers}
    for name, wrap in wrappers.items():
        setattr(animate_module, name, wrap(saved[name]))
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(animate_module, name, fn)


def build_generator(resolution: int, seed: int) -> Generator:
    """Config-f at ``resolution`` px, every weight random, renders scaled to about [-1, 1]."""
    G = randomise(Generator(GeneratorConfig.from_channel_base(resolution)), seed)
    with torch.no_grad():  # a trained generator's renders stay near [-1, 1]
        for name, p in G.named_parameters():
            if ".torgb." in name and name.endswith("weight") and "affine" not in name:
                p.mul_(0.02)
    return G.eval().requires_grad_(False)


def random_restyle_psp(n_styles: int, seed: int) -> BackboneEncoder:
    """A ReStyle-pSp encoder with every parameter and BatchNorm statistic drawn from ``seed``.

    Weights get unit-variance activations; the code heads are small, so that the renders fed
    back at each iteration stay in range (a trained encoder's corrections are small too).
    """
    encoder = BackboneEncoder(n_styles, ENCODERS["BackboneEncoder"][1])
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in encoder.state_dict().items():
            if not t.is_floating_point():
                continue  # BatchNorm's num_batches_tracked
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=gen))
            elif name.endswith(("running_mean", "bias")):
                t.normal_(0, 0.1, generator=gen)
            elif name.endswith("linear.weight"):
                t.normal_(0, 0.03, generator=gen)
            elif t.ndim >= 2:
                t.normal_(0, t[0].numel() ** -0.5, generator=gen)
            else:  # BatchNorm gains, PReLU slopes
                t.uniform_(0.75, 1.25, generator=gen)
    return encoder.eval()


def write_networks(folder: Path, resolution: int, seed: int) -> tuple[Path, Path, Generator]:
    """The generator ``.safetensors`` and a ReStyle-pSp checkpoint in the published layout."""
    G = build_generator(resolution, seed)
    generator_path = save_generator(G, folder / "generator.safetensors")
    n = num_styles(resolution)
    encoder = random_restyle_psp(n, seed + 1)
    state = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    state.update({f"decoder.{k}": v for k, v in rosinality_state_dict(G).items()})
    opts = {
        "encoder_type": "BackboneEncoder",
        "input_nc": 6,
        "output_size": resolution,
        "start_from_latent_avg": True,
        "learn_in_w": False,
        "dataset_type": "ffhq_encode",
    }
    latent_avg = G.w_avg.detach().clone()[None].repeat(n, 1)  # [n_styles, 512]
    encoder_path = folder / "restyle_psp_random.pt"
    torch.save({"state_dict": state, "opts": opts, "latent_avg": latent_avg}, encoder_path)
    return generator_path, encoder_path, G


def smile_for(num_ws: int) -> Micromotion | str:
    """The shipped smile (18 W+ entries), or its first ``num_ws`` entries for a smaller net."""
    smile = load_micromotion("smile")
    if num_ws == smile.num_ws:
        return "smile"
    metadata = {"name": f"smile (first {num_ws} W+ entries)"}
    return Micromotion(smile.direction[:num_ws].clone(), smile.mask[:num_ws].clone(), metadata)


def run_job(
    photo: Path,
    output: Path,
    generator: Path,
    micromotion: Any,
    *,
    frames: int,
    photo_settings: PhotoSettings,
) -> Timeline:
    """One ``animate`` call, timed stage by stage.

    Args:
        photo: The photo to animate.
        output: The clip (``.mp4``).
        generator: The generator file.
        micromotion: A zoo name or a loaded micromotion.
        frames: Frames of the clip.
        photo_settings: The inverter and its settings.

    Returns:
        The callback's time stamps, the wrapped stages' times and the total.
    """
    timeline = Timeline()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with instrumented(timeline), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LPIPS not cached; a random net's direction; saturation
        timeline.start = time.perf_counter()
        animate(
            [micromotion],
            output=output,
            generator=str(generator),
            image=photo,
            clip=ClipSettings(frames=frames),
            photo=photo_settings,
            device="cpu",
            progress=timeline.progress,
        )
        timeline.total = time.perf_counter() - timeline.start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    timeline.ffmpeg_cpu = (after.ru_utime + after.ru_stime) - (
        children.ru_utime + children.ru_stime
    )
    return timeline


@dataclass(frozen=True)
class Breakdown:
    """Seconds per stage of one job, measured or scaled to the full job.

    Attributes:
        align: Face detection and FFHQ alignment.
        invert: The inversion (encoder, or projector with its setup).
        render: Synthesis of the frames.
        encode: Feeding and closing the MP4 encoder (wall time on the main thread).
        other: Loading the networks, the fingerprint, the crops, code and record.
        notes: What was extrapolated.
    """

    align: float
    invert: float
    render: float
    encode: float
    other: float
    notes: tuple[str, ...] = ()

    @property
    def total(self) -> float:
        """The whole job."""
        return self.align + self.invert + self.render + self.encode + self.other


def measured(t: Timeline) -> Breakdown:
    """The stages as measured in one run."""
    s = t.spans
    known = sum(s.get(k, 0.0) for k in ("align", "invert", "render", "encode"))
    return Breakdown(s.get("align", 0.0), s.get("invert", 0.0), s.get("render", 0.0),
                     s.get("encode", 0.0), t.total - known)  # fmt: skip


def projector_full(
    t: Timeline, *, steps: int, extrapolate: int, frames: int, rendered: int
) -> tuple[Breakdown, float, float]:
    """The projector job scaled to ``extrapolate`` steps and ``frames`` frames.

    Returns:
        The breakdown, the time per step and the setup time (from the callback's stamps).
    """
    stamps = t.stamps("invert")
    per_step = (stamps[-1] - stamps[0]) / (steps - 1)
    setup = t.spans["invert"] - steps * per_step
    base = measured(t)
    notes = [f"inversion extrapolated: setup {setup:.1f} s + {extrapolate} × {per_step:.2f} s"]
    scale = frames / rendered
    if rendered != frames:
        notes.append(f"render and encode scaled from {rendered} to {frames} frames")
    full = Breakdown(base.align, setup + extrapolate * per_step, base.render * scale,
                     base.encode * scale, base.other, tuple(notes))  # fmt: skip
    return full, per_step, setup


def print_breakdown(name: str, b: Breakdown) -> None:
    """One job's stages as rows of seconds and shares of the total."""
    print(f"{name}")
    for stage in ("align", "invert", "render", "encode", "other"):
        seconds = getattr(b, stage)
        print(f"  {stage:<8} {seconds:9.1f} s {100 * seconds / b.total:6.1f} %")
    print(f"  {'total':<8} {b.total:9.1f} s")
    for note in b.notes:
        print(f"  ({note})")


def main() -> None:
    """Write the networks, run both jobs and print the breakdowns, the ratio and the goals."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resolution", type=int, default=1024, help="config-f size")
    parser.add_argument("--frames", type=int, default=100, help="frames of the clip")
    parser.add_argument("--iterations", type=int, default=5, help="ReStyle iterations")
    parser.add_argument("--projector-steps", type=int, default=3,
                        help="projector steps measured (at least 2)")  # fmt: skip
    parser.add_argument("--extrapolate", type=int, default=500,
                        help="projector steps the inversion is extrapolated to")  # fmt: skip
    parser.add_argument("--projector-frames", type=int, default=None,
                        help="frames of the projector run's clip (default: --frames)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if args.projector_steps < 2:
        parser.error("--projector-steps: at least 2 (the learning rate ramps up from 0)")
    projector_frames = args.projector_frames or args.frames
    torch.set_num_threads(args.threads)
    from PIL import Image
    from skimage import data

    with tempfile.TemporaryDirectory(prefix="micromotion-bench-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        generator, encoder, G = write_networks(folder, args.resolution, args.seed)
        mm = smile_for(G.num_ws)
        del G
        photo = folder / "astronaut.png"
        Image.fromarray(data.astronaut()).save(photo)
        print(
            f"config-f {args.resolution} px (W+ [{num_styles(args.resolution)}, 512]) and "
            f"ReStyle-pSp, random weights, written in {time.perf_counter() - start:.1f} s "
            f"(generator {generator.stat().st_size / 1e6:.0f} MB, encoder checkpoint "
            f"{encoder.stat().st_size / 1e6:.0f} MB); photo: skimage astronaut "
            f"{data.astronaut().shape[1]}×{data.astronaut().shape[0]}; {args.frames} frames; "
            f"{torch.get_num_threads()} thread(s); times only (random weights)"
        )
        enc = run_job(photo, folder / "encoder.mp4", generator, mm, frames=args.frames,
                      photo_settings=PhotoSettings(inverter=str(encoder),
                                                   iterations=args.iterations))  # fmt: skip
        proj = run_job(photo, folder / "projector.mp4", generator, mm, frames=projector_frames,
                       photo_settings=PhotoSettings(inverter="projector",
                                                    steps=args.projector_steps))  # fmt: skip
    enc_b = measured(enc)
    proj_measured = measured(proj)
    proj_b, per_step, setup = projector_full(
        proj, steps=args.projector_steps, extrapolate=args.extrapolate, frames=args.frames,
        rendered=projector_frames,
    )  # fmt: skip
    render_stamps = enc.stamps("render")
    print_breakdown(f"encoder job (ReStyle-pSp, {args.iterations} iterations), measured", enc_b)
    print_breakdown(f"projector job, {args.projector_steps} steps, {projector_frames} frames, "
                    "measured", proj_measured)  # fmt: skip
    print_breakdown(f"projector job, {args.extrapolate} steps, {args.frames} frames, "
                    "EXTRAPOLATED", proj_b)  # fmt: skip
    print(
        f"callback: render {enc_b.render / args.frames:.2f} s/frame (frames done at "
        f"{render_stamps[0]:.1f} … {render_stamps[-1]:.1f} s into the encoder job); projector "
        f"{per_step:.2f} s/step after {setup:.1f} s of setup; MP4 encoder (ffmpeg) CPU "
        f"{enc.ffmpeg_cpu:.1f} s in the encoder job"
    )
    ratio = proj_b.invert / enc_b.invert
    print(f"inversion: projector ({args.extrapolate} steps, extrapolated) {proj_b.invert:.0f} s "
          f"/ encoder {enc_b.invert:.1f} s = {ratio:.0f}x "
          f"(goal ≥ 100x: {'met' if ratio >= 100 else 'NOT met'})")  # fmt: skip
    share = enc_b.render / enc_b.total
    biggest = max(("align", "invert", "render", "encode", "other"), key=lambda k: getattr(enc_b, k))
    goal = "met" if biggest == "render" else "NOT met"
    print(f"encoder job: rendering is {100 * share:.0f} % of {enc_b.total:.0f} s "
          f"(goal: rendering dominates: {goal}); whole job, projector (extrapolated) / "
          f"encoder: {proj_b.total / enc_b.total:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
