"""Video anchors: the W+ codes of a face filmed performing a micromotion.

The paper describes anchors taken from a video but its code never shipped them. Ours:

1. **Pick frames** evenly over ``[start, end]`` (``frames``) or every ``every``-th frame, and
   keep only those while decoding (a long clip never sits in memory whole; more than
   :data:`MAX_DECODED_BYTES` of picked frames is refused up front).
2. **Align** each frame the FFHQ way. Landmarks are smoothed over the picked frames before the
   crop is computed, so the crop does not jitter from frame to frame (jitter would show up as
   a spurious motion in the anchors). Frames without a usable face (none, or smaller than
   :data:`micromotion.faces.MIN_FACE`) are skipped and reported.
3. **Invert** frame by frame, in W+ with a pull of every layer toward the frame's mean
   code (``w_reg``) and a loss that ignores overshoot past clipped pixels (``clip_aware``):
   without them, codes that reproduce each frame well can still move in directions the clip
   does not (``benchmarks/video_transfer.py``). The first frame starts from ``w_avg`` with the
   full step count;
   every later frame is warm-started from the code of the last *good* frame with fewer steps,
   a smaller learning rate and no latent noise, so consecutive codes stay in one basin and
   their differences follow the motion instead of the optimiser's wandering. A frame whose
   reconstruction is much worse than the first one's (a cut, a blur, a hand over the face) is
   still kept as an anchor, but is not used as a warm start.
4. The robust decomposition (:meth:`Micromotion.from_anchors`) then treats bad frames as the
   sparse part: RPCA is what makes the direction robust to them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from micromotion import faces
from micromotion.core.numbers import check_real
from micromotion.errors import MicromotionError, ParameterError
from micromotion.inversion import InversionConfig, LossFn, invert
from micromotion.media.images import fit_square, from_uint8
from micromotion.media.video_in import VideoInfo, probe_video, read_frames_at
from micromotion.networks.encoders import EncoderModel
from micromotion.networks.stylegan2 import Generator

# Progress callback: (stage, done, total) with stage "decode", "align" or "invert".

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class VideoAnchorConfig:
    """How frames are picked, aligned and inverted.

    Attributes:
        frames: Number of frames to use, evenly spaced over ``[start, end]`` (16: about the
            paper's eleven text degrees, with room for frames to be dropped).
        every: Use every ``every``-th frame instead of ``frames``.
        start: First time used, in seconds.
        end: Last time used, in seconds (default: the end of the video).
        steps: Inversion steps of the first frame (our projector's default, 500).
        next_steps: Inversion steps of each warm-started frame (150: measured on tiny
            generators, a warm start converges in under a third of the steps).
        next_lr: Peak learning rate of warm-started frames (a fifth of the projector's 0.1:
            they start close to the answer; on the ground-truth test 0.02 recovered the
            direction better than 0.05).
        smooth: Radius, in picked frames, of the landmark smoothing (1: weights 1-2-1).
        restart_db: A frame whose reconstruction PSNR falls this far below the first frame's
            is not used to warm-start the next one.
        min_frames: Fewer usable frames than this is an error (RPCA needs a few).
        seed: Seed of the projector.
        space: Where the projector (and an encoder's ``refine`` steps) fits each frame:
            ``"w+"``, one code per layer (the paper's space, the default), or ``"w"``, one
            code for every layer (on ``benchmarks/video_transfer.py`` it recovers W motions
            about as well but reconstructs the frames far worse).
        w_reg: Weight of the pull of each layer's code toward the frame's mean code over the
            layers (:func:`micromotion.inversion.projector.w_spread`; W+ only, 0: off).
            Without it, independent W+ fits wander along directions the frames do not pin
            down. 0.3 had the best mean transfer gain of ``benchmarks/video_transfer.py`` on
            eight planted clips (+7.9 dB; 0.03: +7.7 dB, 0: +4.0 dB) and was the only weight
            never worse than no edit; lighter weights reconstruct the frames better (0.03: ~40
            dB, 0.3: ~31 dB). Its scale is the pixel loss's; with LPIPS it has not been
            measured.
        clip_aware: Let a reconstruction pass beyond a frame's clipped (0 or 255) pixels at no
            cost (:func:`micromotion.inversion.projector.clip_aware_targets`). On by default:
            a plain loss pulls such pixels back toward the clip, and where a generator often
            overshoots [-1, 1] that pull decides the codes (benchmarked: it is the largest
            single gain). ``False`` is the projector as it was.
    """

    frames: int | None = 16
    every: int | None = None
    start: float = 0.0
    end: float | None = None
    steps: int = 500
    next_steps: int = 150
    next_lr: float = 0.02
    smooth: int = 1
    restart_db: float = 6.0
    min_frames: int = 3
    seed: int = 0
    space: Literal["w+", "w"] = "w+"
    w_reg: float = 0.3
    clip_aware: bool = True

    def __post_init__(self) -> None:
        if (self.frames is None) == (self.every is None):
            raise ParameterError.worded(
                "give exactly one of {frames} N or {every} K", "frames", "every"
            )
        if self.frames is not None and self.frames < self.min_frames:
            raise ParameterError("frames", f"{self.frames}: need at least {self.min_frames}")
        if self.every is not None and self.every < 1:
            raise ParameterError("every", f"{self.every}: must be at least 1")
        if not math.isfinite(self.start) or self.start < 0:
            raise ParameterError("start", f"{self.start}: must be a time ≥ 0 in seconds")
        if self.end is not None and (not math.isfinite(self.end) or self.end <= self.start):
            raise ParameterError.worded(
                "{end} {e}: must be after {start} {s}", "end", "start", e=self.end, s=self.start
            )
        if self.steps < 1 or self.next_steps < 1:
            raise ParameterError.worded(
                "{steps} and {next_steps} must be at least 1", "steps", "next_steps"
            )
        if self.smooth < 0:
            raise ParameterError("smooth", f"{self.smooth}: must be ≥ 0")
        check_real("next_lr", self.next_lr, low=0, low_open=True)
        check_real("restart_db", self.restart_db, low=0)
        check_real("w_reg", self.w_reg, low=0)
        if self.space not in ("w+", "w"):
            raise ParameterError("space", f"{self.space!r}: choose w+ or w")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable settings for provenance."""
        return asdict(self)


@dataclass
class VideoAnchors:
    """What :func:`video_anchors` returns.

    Attributes:
        anchors: ``[n, num_ws, w_dim]`` codes of the usable frames, in time order.
        frame_indices: Index in the video of each anchor's frame.
        psnr: ``[n]`` reconstruction PSNR of each anchor (dB).
        aligned: ``uint8`` ``[n, R, R, 3]`` the aligned frames that were inverted.
        reconstructions: ``uint8`` ``[n, R, R, 3]`` what the anchors render.
        skipped: ``{frame index: reason}`` for picked frames that were not used.
        info: The video's properties.
    """

    anchors: torch.Tensor
    frame_indices: list[int]
    psnr: torch.Tensor
    aligned: np.ndarray
    reconstructions: np.ndarray
    skipped: dict[int, str] = field(default_factory=dict)
    info: VideoInfo | None = None


def pick_frames(info: VideoInfo, config: VideoAnchorConfig) -> list[int]:
    """Indices of the frames to use, in time order."""
    first = math.ceil(config.start * info.fps - 1e-9)
    last = info.num_frames - 1
    if config.end is not None:
        last = min(last, math.floor(config.end * info.fps + 1e-9))
    if first > last:
        raise MicromotionError(
            f"{info.path}: no frames between {config.start} s and "
            f"{config.end if config.end is not None else info.duration:.3g} s "
            f"(the video lasts {info.duration:.3g} s)"
        )
    if config.every is not None:
        picked = list(range(first, last + 1, config.every))
    else:
        assert config.frames is not None
        count = min(config.frames, last - first + 1)
        # Evenly spaced, both ends included: the motion's start and end are the frames that
        # matter most for the direction.
        picked = sorted({round(x) for x in np.linspace(first, last, count)})
    if len(picked) < config.min_frames:
        raise MicromotionError(
            f"{info.path}: only {len(picked)} usable frame(s), need at least "
            f"{config.min_frames} (these settings pick {len(picked)} of its "
            f"{info.num_frames} frames)"
        )
    return picked


def smooth_landmarks(landmarks: np.ndarray, radius: int = 1) -> np.ndarray:
    """Smooth ``[T, 68, 2]`` landmark tracks over time with binomial weights.

    At the ends the window is cut and renormalised, so the first and last frames are not
    pulled towards zero. ``radius=0`` returns a copy.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if radius <= 0 or landmarks.shape[0] < 2:
        return landmarks.copy()
    weights = np.array([math.comb(2 * radius, k) for k in range(2 * radius + 1)], np.float64)
    out = np.empty_like(landmarks)
    T = landmarks.shape[0]
    for t in range(T):
        lo, hi = max(0, t - radius), min(T, t + radius + 1)
        w = weights[lo - t + radius : hi - t + radius]
        out[t] = np.tensordot(w / w.sum(), landmarks[lo:hi], axes=1)
    return out


def align_frames(
    frames: dict[int, np.ndarray],
    *,
    size: int,
    smooth: int = 1,
    callback: Callable[[int], None] | None = None,
    paper: dict[int, np.ndarray] | None = None,
) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """FFHQ-align each frame with landmarks smoothed over time.

    Args:
        frames: ``{frame index: uint8 [H, W, 3]}``.
        size: The crops' size (the generator's resolution).
        smooth: Radius of the landmark smoothing, in frames.
        callback: ``callback(frames done)`` after each detection.
        paper: When given, filled with the paper code's crop of each usable frame from the
            same smoothed landmarks: the FFHQ recipe resampled straight to 256 px
            (``transform_size = 256``), what its encoder saw.

    Returns:
        ``({frame index: uint8 [size, size, 3]}, {frame index: why it was skipped})``.
    """
    faces.check_backend()
    found: dict[int, np.ndarray] = {}
    skipped: dict[int, str] = {}
    previous: np.ndarray | None = None
    for done, (i, frame) in enumerate(sorted(frames.items()), start=1):
        detections = faces.detect_faces(frame)
        if not detections:
            skipped[i] = "no face"
        elif (side := faces.quad_size(faces.ffhq_quad(detections[0].landmarks))) < faces.MIN_FACE:
            skipped[i] = f"face too small ({side:.0f} px; need at least {faces.MIN_FACE} px)"
        else:
            # Several faces: follow the one nearest the previous frame's, else the largest.
            best = detections[0]
            if previous is not None and len(detections) > 1:
                last = previous  # not None: a name the key function can rely on
                best = min(
                    detections,
                    key=lambda f: float(np.linalg.norm(f.landmarks.mean(0) - last.mean(0))),
                )
            found[i] = best.landmarks
            previous = best.landmarks
        if callback is not None:
            callback(done)
    if not found:
        return {}, skipped
    order = sorted(found)
    tracks = smooth_landmarks(np.stack([found[i] for i in order]), smooth)
    aligned: dict[int, np.ndarray] = {}
    for i, marks in zip(order, tracks, strict=True):
        try:
            crop = faces.align_face(frames[i], marks, size=size).image
            if paper is not None:  # both crops or neither: a frame is usable for both
                paper[i] = faces.align_face(frames[i], marks, size=256, transform_size=256).image
            aligned[i] = crop
        except MicromotionError as exc:
            skipped[i] = str(exc)
    return aligned, skipped


def square_frames(
    frames: dict[int, np.ndarray], *, size: int, path: str | Path
) -> dict[int, np.ndarray]:
    """Frames of an already-aligned video (``align=False``), resized to ``size``."""
    hint = "with --no-align the video must show FFHQ-aligned face crops"
    return {i: fit_square(frame, size, path=path, hint=hint) for i, frame in frames.items()}


def invert_sequence(
    G: Generator,
    images: torch.Tensor,
    *,
    config: VideoAnchorConfig,
    loss_fn: LossFn | None = None,
    callback: Callable[[int, int], None] | None = None,
    encoder: EncoderModel | None = None,
    iterations: int = 5,
    refine: int = 0,
    encoder_inputs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Invert ``[T, 3, R, R]`` frames: in order with warm starts, or by an encoder in batches.

    With the projector each frame is warm-started from the last good code. With an
    ``encoder`` the frames go through it :data:`ENCODER_BATCH` at a time (``iterations``
    ReStyle iterations), then ``refine`` projector steps start from its codes. Every projector
    step, warm start or refinement, fits with ``config``'s ``space``, ``w_reg`` and
    ``clip_aware``.
    ``encoder_inputs [T, 3, 256, 256]``, when given, are what the encoder sees instead of the
    frames averaged down to 256 px (the paper's alignment); the codes are still measured and
    refined against ``images``.

    Returns:
        ``(ws [T, num_ws, w_dim], psnr [T], reconstructions [T, 3, R, R])``.
    """
    # How the projector fits: the first frame from scratch; refinement and warm starts below.
    first = InversionConfig(
        steps=config.steps,
        seed=config.seed,
        space=config.space,
        w_reg=config.w_reg,
        clip_aware=config.clip_aware,
    )
    if encoder is not None:
        from micromotion.inversion import psnr
        from micromotion.inversion.encoder import encode, to_encoder_input

        codes_out: list[torch.Tensor] = []
        psnr_out: list[torch.Tensor] = []
        recon_out: list[torch.Tensor] = []
        for start in range(0, images.shape[0], ENCODER_BATCH):
            batch = images[start : start + ENCODER_BATCH]
            if encoder_inputs is not None:
                inputs = encoder_inputs[start : start + ENCODER_BATCH]  # [b, 3, 256, 256]
            else:
                inputs = to_encoder_input(batch)
            # One generator check for the clip, not one fingerprint per batch.
            found = encode(G, encoder, inputs, iterations=iterations, check_generator=start == 0)
            codes, images_out = found.ws, found.final
            if refine > 0:
                fit = replace(first, steps=refine, latent_noise=0.0)
                result = invert(G, batch, config=fit, init_ws=codes, loss_fn=loss_fn)
                codes, images_out = result.ws, result.images
            codes_out.append(codes.cpu())
            recon_out.append(images_out)
            psnr_out.append(psnr(images_out, batch))
            if callback is not None:
                callback(min(start + ENCODER_BATCH, images.shape[0]), images.shape[0])
        return torch.cat(codes_out), torch.cat(psnr_out), torch.cat(recon_out)

    # Warm starts: no latent noise and no lr ramp-up; they refine, they do not explore.
    follow = replace(
        first, steps=config.next_steps, lr=config.next_lr, latent_noise=0.0, lr_rampup=0.0
    )
    ws, quality, recon = [], [], []
    warm: torch.Tensor | None = None
    reference = -math.inf
    for t in range(images.shape[0]):
        result = invert(
            G,
            images[t : t + 1],
            config=first if warm is None else follow,
            init_ws=warm,
            loss_fn=loss_fn,
        )
        value = float(result.psnr[0])
        if warm is None:
            reference = value
        if warm is None or value >= reference - config.restart_db:
            warm = result.ws
        ws.append(result.ws[0])
        quality.append(value)
        recon.append(result.images[0])
        if callback is not None:
            callback(t + 1, images.shape[0])
    return torch.stack(ws), torch.tensor(quality), torch.stack(recon)


#: Frames through the encoder together.
ENCODER_BATCH = 8


def video_anchors(
    G: Generator,
    path: str | Path,
    *,
    config: VideoAnchorConfig | None = None,
    align: bool = True,
    loss_fn: LossFn | None = None,
    progress: Progress | None = None,
    info: VideoInfo | None = None,
    encoder: EncoderModel | None = None,
    iterations: int = 5,
    refine: int = 0,
    alignment: Literal["ours", "paper"] = "ours",
) -> VideoAnchors:
    """Decode, align and invert the frames of a video of one face performing a motion.

    Args:
        G: The generator (its device is used).
        path: The video file (anything ffmpeg reads).
        config: Frame picking and inversion settings.
        align: FFHQ-align each frame (dlib); ``False`` for videos of aligned crops.
        loss_fn: Inversion loss (see :func:`micromotion.pipelines.losses.select_loss`).
        progress: ``progress(stage, done, total)`` for progress bars.
        info: The video's :func:`probe_video` result, when the caller already has it
            (probing counts frames by decoding the whole video).
        encoder: Invert the frames with this encoder (in batches) instead of the projector.
        iterations: The encoder's ReStyle iterations.
        refine: Projector steps from each frame's encoder code (0: none).
        alignment: What the encoder sees: ``ours`` (the aligned frame averaged down to 256 px)
            or ``paper`` (the paper code's crop: the recipe straight to 256 px, from the same
            smoothed landmarks). The projector, and the PSNR, always use our crop.

    Returns:
        The anchors and what was kept and skipped.

    Raises:
        MicromotionError: Unreadable or empty video, no face in any frame, or fewer than
            ``config.min_frames`` usable frames.
    """
    from micromotion.media.images import to_uint8

    config = config or VideoAnchorConfig()
    path = Path(path)
    info = info or probe_video(path)
    indices = pick_frames(info, config)

    def report(stage: str, total: int) -> Callable[[int], None]:
        return lambda done: progress(stage, done, total) if progress else None

    frames = read_frames_at(path, indices, callback=report("decode", len(indices)))
    skipped = {i: "not decoded (past the end of the stream)" for i in indices if i not in frames}
    R = G.img_resolution
    if alignment not in ("ours", "paper"):
        raise ParameterError("alignment", f"{alignment!r}: choose ours or paper")
    if alignment == "paper" and not align:
        raise ParameterError.worded(
            "{alignment} paper redoes the alignment; it cannot be combined with {align}=False",
            "alignment",
            "align",
        )
    paper: dict[int, np.ndarray] | None = {} if alignment == "paper" else None
    if align:
        usable, missed = align_frames(
            frames, size=R, smooth=config.smooth, callback=report("align", len(frames)),
            paper=paper,
        )  # fmt: skip
        skipped.update(missed)
        if not usable:
            reasons = sorted({reason.split(" (")[0] for reason in missed.values()})
            raise MicromotionError(
                f"{path}: no usable face in any of {len(frames)} frames ({', '.join(reasons)})"
            )
    else:
        usable = square_frames(frames, size=R, path=path)
    if len(usable) < config.min_frames:
        raise MicromotionError(
            f"{path}: only {len(usable)} usable frame(s), need at least {config.min_frames}"
        )
    order = sorted(usable)
    aligned = np.stack([usable[i] for i in order])  # [n, R, R, 3]
    callback = (lambda done, total: progress("invert", done, total)) if progress else None
    encoder_inputs = None
    if paper is not None and encoder is not None:
        encoder_inputs = from_uint8(np.stack([paper[i] for i in order]))  # [n, 3, 256, 256]
    ws, quality, recon = invert_sequence(
        G, from_uint8(aligned), config=config, loss_fn=loss_fn, callback=callback,
        encoder=encoder, iterations=iterations, refine=refine, encoder_inputs=encoder_inputs,
    )  # fmt: skip
    return VideoAnchors(
        anchors=ws,
        frame_indices=order,
        psnr=quality,
        aligned=aligned,
        reconstructions=to_uint8(recon),
        skipped=dict(sorted(skipped.items())),
        info=info,
    )
