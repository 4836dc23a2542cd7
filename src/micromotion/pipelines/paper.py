"""The paper's ``main.py`` as one pipeline: ``micromotion paper`` in the command line.

The authors' code (github.com/wuqiuche/micromotion-styleGAN, read for reference, never copied)
has two modes, and :func:`reproduce_paper` runs each with every setting of ``--preset paper``
(:mod:`micromotion.pipelines.presets`):

* ``--category C`` (``smile``, ``angry``, ``aging``, ``eyesClose``, ``headsTurn``): invert the
  photo and render the authors' own direction ``C`` (:func:`~micromotion.pipelines.animate.
  animate` under the ``render-official`` preset);
* ``--category custom --template T``: optimise the face of each seed toward ``T`` at every
  degree, decompose the anchors, and render the photo along the new direction
  (:func:`~micromotion.pipelines.discover.discover_text` under the ``text`` preset, then
  :func:`~micromotion.pipelines.animate.animate` under ``render-text``). ``--num_latent K``
  ran seeds ``seed … seed+K−1`` one after another, each with its own direction and clip; so
  does ``num_latent`` here.

The face is found before any optimisation starts, so a photo without one fails at once, and
networks are loaded once for every step (:func:`~micromotion.pipelines._load.reuse_networks`).
The run is one result: a run that fails leaves the files of a previous run as they were and
none of its own, so a micromotion discovered before the failure goes too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from micromotion.anchors.text import TextAnchorConfig, format_prompts
from micromotion.core.defaults import PAPER_CATEGORIES
from micromotion.core.devices import resolve_device
from micromotion.core.numbers import check_real
from micromotion.core.outputs import check_writes, input_files
from micromotion.core.progress import Progress
from micromotion.core.seeds import MAX_SEED
from micromotion.errors import ParameterError
from micromotion.faces import check_backend
from micromotion.media.images import read_rgb
from micromotion.media.video_out import check_output_path
from micromotion.networks.stylegan2 import Generator
from micromotion.pipelines import _load
from micromotion.pipelines.animate import Animation, ClipSettings, PhotoSettings, animate
from micromotion.pipelines.discover import Decomposition, Discovery, discover_text
from micromotion.pipelines.outputs import output_paths, photo_outputs
from micromotion.pipelines.photo import FACE_CROP, crop_key, face_crop
from micromotion.pipelines.presets import (
    Render,
    ResolvedPreset,
    override_texts,
    preset_values,
    resolve_preset,
)
from micromotion.weights.assets import fetch_all
from micromotion.weights.clip import load_clip
from micromotion.weights.micromotion import load_micromotion

#: ``main.py --category``: the five shipped directions, or ``custom`` (a new one from text).
CATEGORIES = PAPER_CATEGORIES

#: ``main.py``'s ``d_latent * scale`` for ``--category C`` (``--scale`` default 5) ...
OFFICIAL_SCALE = 5.0
#: ... and for ``custom`` (``scale_list = [8]``; ``--scale`` is not read in that mode).
CUSTOM_SCALE = 8.0

#: Seeds one run may decode (``--num_latent``), as ``discover text --seeds`` bounds them.
MAX_NUM_LATENT = 64


@dataclass(frozen=True)
class PaperRun:
    """What :func:`reproduce_paper` wrote.

    Attributes:
        category: The mode that ran.
        seeds: The seeds of the custom mode's start faces (empty for a shipped direction).
        clips: One per seed (one for a shipped direction), in seed order.
        discoveries: The custom mode's micromotions, one per seed.
        notes: Every preset override, note and default used, as one line each.
    """

    category: str
    seeds: tuple[int, ...]
    clips: tuple[Animation, ...]
    discoveries: tuple[Discovery, ...]
    notes: tuple[str, ...]


def reproduce_paper(
    category: str,
    *,
    image: str | os.PathLike[str],
    output: str | os.PathLike[str],
    template: str | None = None,
    seed: int = 1,
    num_latent: int = 1,
    scale: float | None = None,
    generator: _load.GeneratorSpec | None = None,
    inverter: str | None = None,
    clip: str | None = None,
    id_weights: str | os.PathLike[str] | None = None,
    direction: str | os.PathLike[str] | None = None,
    device: str | torch.device = "auto",
    progress: Progress | None = None,
) -> PaperRun:
    """Run the paper's ``main.py`` on one photo, with every setting of ``--preset paper``.

    Args:
        category: ``main.py --category``: one of :data:`CATEGORIES`.
        image: The photo (``--input``): aligned, inverted by ReStyle-pSp, then animated.
        output: The clip, ``.mp4``, ``.gif`` or ``.png``. With ``custom`` the micromotion
            is written beside it as ``STEM.safetensors`` (plus ``STEM_anchors.npy``,
            ``STEM_strip.png``, ``STEM.json``); with ``num_latent > 1`` every file of seed
            ``s`` is named ``STEM_s{s}…``.
        template: The prompt with a ``{degree}`` slot (``custom`` only, and required there).
        seed: The first start face (``--seed``, default 1 as in ``main.py``); ``custom`` only.
        num_latent: How many seeds from ``seed`` on (``--num_latent``); ``custom`` only.
        scale: The direction's multiplier (``--scale``): the last of ``main.py``'s frames is
            ``w + (frames−1)/100 · scale · d``. Default 5 for a shipped direction, 8 for
            ``custom`` (where ``main.py`` ignored ``--scale`` and used 8; here it is read).
        generator: Another generator than the paper's ``ffhq-rosinality`` (an override).
        inverter: Another inverter than ``restyle-psp-ffhq`` (an override).
        clip: Another CLIP than OpenAI's ViT-B/32 (an override; ``custom`` only).
        id_weights: ArcFace IR-SE50 weights for the identity loss (``custom``; off without).
        direction: The category's direction file, where ``main.py`` read
            ``pregen_latents/C/d_latent`` (default: the packaged copy of the authors' file);
            it must be one of theirs (``import-official`` writes one), not a custom one.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        progress: Progress reporting (each pipeline's stages).

    Returns:
        The clips, the micromotions and the notes.

    Raises:
        ParameterError: A bad setting, named.
        MicromotionError: An unreadable photo, no face in it, missing weights; nothing of
            the run is left behind.
    """
    # Step 0 — check inputs: everything the user can get wrong fails before a network loads.
    if category not in CATEGORIES:
        raise ParameterError("category", f"{category!r}: choose one of {', '.join(CATEGORIES)}")
    custom = category == "custom"
    if custom and not template:
        raise ParameterError("template", "is required with --category custom")
    if custom and direction is not None:
        raise ParameterError("direction", "is the file of a shipped category, not custom")
    if not custom:
        for name, value in (("template", template), ("clip", clip), ("id_weights", id_weights)):
            if value is not None:
                raise ParameterError(name, "only applies to --category custom")
        if seed != 1 or num_latent != 1:
            raise ParameterError.worded(
                "{seed} and {num_latent} pick the start faces of --category custom",
                "seed",
                "num_latent",
            )
    if custom:
        assert template is not None
        format_prompts(template, ("no",))  # a template without {degree} fails here
    if isinstance(num_latent, bool) or not isinstance(num_latent, int):
        raise ParameterError("num_latent", f"{num_latent!r}: expected an integer")
    if not 1 <= num_latent <= MAX_NUM_LATENT:
        raise ParameterError("num_latent", f"{num_latent}: choose 1 to {MAX_NUM_LATENT}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ParameterError("seed", f"{seed!r}: must be an integer from 0 to {MAX_SEED}")
    if seed + num_latent - 1 > MAX_SEED:
        raise ParameterError.worded(
            f"{{seed}} {seed} with {{num_latent}} {num_latent} passes the last seed, {MAX_SEED}",
            "seed",
            "num_latent",
        )
    if scale is not None:
        scale = check_real("scale", scale, low=0, high=1e6)
        if scale == 0:
            raise ParameterError("scale", "0 would not move the face")
    out = check_output_path(Path(output))
    photo_path = Path(image)
    read_rgb(photo_path)  # an unreadable photo fails before any download
    check_backend()
    seeds = tuple(seed + i for i in range(num_latent)) if custom else ()

    render: Render = "render-text" if custom else "render-official"
    chosen = {"generator": generator, "inverter": inverter}
    given: dict[str, Any] = {k: str(v) for k, v in chosen.items() if v is not None}
    if generator is not None and not isinstance(generator, str | os.PathLike):
        given["generator"] = "in-memory generator"
    frames = int(preset_values("paper", render)["frames"])
    if scale is not None:
        given["strengths"] = [scale * (frames - 1) / 100]
    rendered = resolve_preset("paper", render, given)
    values = rendered.values
    if generator is not None:
        values["generator"] = generator  # a loaded network stays one (recorded by name)
    spec = values["generator"]
    notes = _override_notes(rendered)

    # Every asset at once: offline, one message names every missing file.
    shipped = category if direction is None else direction
    if direction is not None:
        source = load_micromotion(direction).metadata.get("source")
        if source != "official":
            raise ParameterError(
                "direction",
                f"{direction}: a micromotion from {source or 'an unknown source'}; give one of "
                "the paper's directions (micromotion import-official converts its d_latent)",
            )
    fetch_all([values["generator"], values["inverter"], *([] if custom else [shipped])])

    clip_settings = _settings(ClipSettings, values)
    photo_settings = _settings(PhotoSettings, values)
    stem = out.name.rsplit(".", 1)[0]
    clips_at = (
        [out] if len(seeds) <= 1 else [out.with_name(f"{stem}_s{s}{out.suffix}") for s in seeds]
    )
    # Every file of the run, checked against every input before anything runs: each step
    # checks its own, but the discovery does not know the photo (-o me.gif --image
    # me_strip.png would write its strip over the photo).
    writes = _files_of(clips_at, custom)
    clip_files = clip.split(":", 1) if isinstance(clip, str) else []
    reads = [photo_path, direction, id_weights, *clip_files, spec, values["inverter"]]
    check_writes({str(p): p for p in writes}, reads=input_files(*reads))

    clips: list[Animation] = []
    found: list[Discovery] = []
    # Each step asks for the generator by its spec (so each record names it) and gets the
    # network loaded here.
    with (
        _load.reuse_networks(_load.active_cache()) as cache,
        _one_result(writes),
    ):
        if custom:  # CLIP before the generator, as discover text loads them (the same key)
            where = spec.w_avg.device if isinstance(spec, Generator) else resolve_device(device)
            clip_spec = str(clip or preset_values("paper", "text")["clip"])
            _load.cached("clip", clip_spec, where, lambda: load_clip(clip_spec, device=where))
        G, _ = _load.open_generator(spec, device)
        # The face first: a photo without one fails before minutes of optimisation.
        key = crop_key(G.img_resolution, photo_settings.align, photo_settings.face)
        crop = face_crop(
            photo_path, resolution=G.img_resolution, align=photo_settings.align,
            face=photo_settings.face,
        )  # fmt: skip
        for i, clip_path in enumerate(clips_at):
            micromotion: str | os.PathLike[str] = shipped
            if custom:
                assert template is not None
                discovery, text_notes = _discover(
                    template, seeds[i], clip_path.with_suffix(".safetensors"), spec, clip,
                    id_weights, device, progress,
                )  # fmt: skip
                found.append(discovery)
                notes.extend(n for n in text_notes if n not in notes)
                micromotion = discovery.files["micromotion"]
            cache.put(FACE_CROP, photo_path, key, crop)  # handed over, not found again
            done = animate(
                [micromotion], output=clip_path, strengths=values["strengths"],
                generator=spec, image=photo_path, clip=clip_settings, photo=photo_settings,
                device=device, progress=progress, preset=rendered.record,
            )  # fmt: skip
            clips.append(done)
    return PaperRun(category, seeds, tuple(clips), tuple(found), tuple(notes))


def _discover(
    template: str,
    seed: int,
    output: Path,
    generator: _load.GeneratorSpec,
    clip: str | None,
    id_weights: str | os.PathLike[str] | None,
    device: str | torch.device,
    progress: Progress | None,
) -> tuple[Discovery, list[str]]:
    """``discover text --preset paper`` for one seed; its override notes."""
    given: dict[str, Any] = {} if seed == 1 else {"seed": seed}
    if clip is not None:
        given["clip"] = clip
    text = resolve_preset("paper", "text", given)
    values = text.values
    discovery = discover_text(
        output=output,
        generator=generator,
        config=_settings(TextAnchorConfig, {**values, "template": template}),
        clip=values["clip"],
        id_weights=id_weights,
        decomposition=_settings(Decomposition, values),
        device=device,
        progress=progress,
        preset=text.record,
    )
    notes = _override_notes(text) + list(discovery.notes)
    return discovery, notes


def _settings(cls: Any, values: Mapping[str, Any]) -> Any:
    """The settings dataclass ``cls`` from the preset values named as its fields."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


def _override_notes(resolved: ResolvedPreset) -> list[str]:
    """One line per setting given that differs from the preset's, then the preset's notes."""
    lines = [
        f"{key}: {given} instead of the paper's {preset}"
        for key, given, preset in override_texts(resolved.record)
    ]
    return lines + list(resolved.record["notes"])


def _files_of(clips: list[Path], custom: bool) -> list[Path]:
    """Every file a run writes: each clip with its record and photo files, each micromotion."""
    files: list[Path] = []
    for clip in clips:
        files += [clip, clip.with_name(clip.name + ".json"), *photo_outputs(clip).values()]
        if custom:
            files += output_paths(clip.with_suffix(".safetensors")).values()
    return files


@contextlib.contextmanager
def _one_result(files: list[Path]) -> Iterator[None]:
    """Make the run's files one result: all of the new ones, or all of the old ones.

    Each pipeline writes its own files whole or not at all; a run is several pipelines. So
    the files a previous run left at these paths are moved aside (hidden, beside them) first:
    if the run fails, everything it wrote is removed and they are put back; if it succeeds,
    they are deleted. A micromotion discovered before the clip failed never sits beside an
    older clip.
    """
    tag = f".micromotion-old-{os.getpid()}"
    aside = {p: p.with_name(f".{p.name}{tag}") for p in files if p.exists()}
    moved: list[Path] = []
    try:
        for path, backup in aside.items():
            os.replace(path, backup)
            moved.append(path)
        yield
    except BaseException:
        for path in files:
            with contextlib.suppress(OSError):
                path.unlink()
        for path in moved:
            with contextlib.suppress(OSError):
                os.replace(aside[path], path)
        raise
    for path in moved:
        with contextlib.suppress(OSError):
            aside[path].unlink()


__all__ = ["CATEGORIES", "CUSTOM_SCALE", "OFFICIAL_SCALE", "PaperRun", "reproduce_paper"]
