"""Named presets: every setting of a published recipe behind one switch (``--preset paper``).

``paper`` is what the authors' code (github.com/wuqiuche/micromotion-styleGAN, read for
reference, never copied) ran, setting by setting; where our defaults depart from it on
purpose, the preset takes the code's side:

* robust PCA with the code's fixed ``μ`` and stopping rule (``rpca="paper"``,
  ``StyleCLIP/optimization/pca.py``), rank 4 (``pca_lowrank(..., q=4, center=False)``),
  no centring, every layer;
* the direction read off two reconstructed anchors (``method="endpoints"``, ``mixin.py``:
  ``latents_text_pca[-1] − latents_text_pca[0]``) — **including the code's slip**: ``pca.py``
  keeps one reconstruction per degree word, anchors 0-10 of the 12 it decomposed, so its
  "last" anchor is the "90%" one. The text and latents presets therefore use
  ``end_anchor=-2``. The paper's code has no video pipeline, so ``discover video --preset
  paper`` ends at the true last frame (``end_anchor=-1``), the paper's written definition;
* text anchors as ``main.py`` (custom mode) and ``StyleCLIP/optimization/text.py`` ran them:
  degrees ``no, 10%, …, 100%``, 40 Adam steps at lr 0.1 with ramps 0.05 / 0.25,
  ``l2_lambda`` 0.008, ``id_lambda`` 0.005, truncation 0.7 toward the average face, seed 1,
  the stored noise, OpenAI's ViT-B/32, and CLIP fed raw ``[-1, 1]`` pixels (StyleCLIP's
  ``criteria/clip_loss.py`` applies no CLIP normalisation: ``clip_normalize=False``);
* video anchors: ReStyle with 5 iterations (``main.py``: ``n_iters_per_batch = 5``) and no
  projector refinement; where a projector fits frames after all, it is StyleGAN2's, without
  our pull toward W or clip-aware loss (``space="w+"``, ``w_reg=0``, ``clip_aware=False``);
* rendering (``apply --preset paper``) as ``main.py`` did: rosinality's FFHQ network, the photo
  inverted by ReStyle-pSp (5 iterations) from the code's own 256 px crop, each frame stretched
  by its minimum and maximum; for one of the five shipped directions (``--category C``) 100
  frames ``w + (i/100)·5·d`` at 30 fps, i.e. strength ``4.95 = 5·99/100`` over our
  ``i/(frames−1)``; for a text micromotion (``--category custom``) 90 frames
  ``w + (i/100)·8·d`` at 60 fps, i.e. strength ``7.12 = 8·89/100``.

What a preset cannot reproduce is listed in :data:`PAPER_DIFFERENCES` and in each record's
``notes``. Values given explicitly win over the preset's; the record lists them under
``overrides`` (``{"steps": {"preset": 40, "given": 4}}``), so a result never claims to be the
paper's recipe when it is not. :func:`check_preset` makes the pipelines refuse a preset record
whose settings do not match.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from micromotion.core.defaults import DEFAULT_CLIP, DEFAULT_DEGREES
from micromotion.errors import ParameterError

Source = Literal["text", "video", "latents"]

#: What ``apply`` renders under a preset: one of the paper's shipped directions
#: (``render-official``, ``main.py --category C``) or a text micromotion (``render-text``,
#: ``main.py --category custom``).
Render = Literal["render-official", "render-text"]

#: The names :func:`resolve_preset` knows.
PRESETS = ("paper",)

#: How the paper's code turned anchors into a direction (``pca.py``, ``mixin.py``).
_PAPER_DECOMPOSITION: dict[str, Any] = {
    "rpca": "paper",  # fixed μ = m·n / (4·ΣD²), stop at ΣR²/ΣD² ≤ 1e-7·ΣD²
    "rank": 4,  # torch.pca_lowrank(L, q=4, center=False)
    "robust": True,  # RPCA_gpu before the rank-4 reconstruction
    "center": False,  # center=False
    "method": "endpoints",  # latents_text_pca[-1] - latents_text_pca[0]
    "layers": None,  # the direction moves every W+ entry
}

#: The paper code's text-anchor settings (``main.py`` custom mode, ``text.py``).
_PAPER_TEXT: dict[str, Any] = {
    "degrees": DEFAULT_DEGREES,  # main.py: no, 10%, ..., 100%
    "steps": 40,  # main.py: step = 40
    "lr": 0.1,  # main.py: "lr": 0.1
    "lr_rampup": 0.05,  # main.py: "lr_rampup": 0.05
    "lr_rampdown": 0.25,  # text.py get_lr default
    "l2_lambda": 0.008,  # main.py: "l2_lambda": 0.008
    "id_lambda": 0.005,  # main.py: "id_lambda": 0.005
    "truncation_psi": 0.7,  # main.py: "truncation": 0.7
    "seed": 1,  # main.py: --seed default 1
    "noise_mode": "const",  # text.py: randomize_noise=False
    "clip_normalize": False,  # StyleCLIP clip_loss.py: raw [-1, 1] pixels into CLIP
    "clip": DEFAULT_CLIP,  # text.py: clip.load("ViT-B/32")
}

#: The paper's inverter settings (``main.py``: ReStyle-pSp, ``n_iters_per_batch = 5``), and
#: none of our additions to the projector's fit (its code had no projector: where ``auto``
#: picks one, the preset fits as StyleGAN2's projector does).
_PAPER_VIDEO: dict[str, Any] = {
    "iterations": 5,
    "refine": 0,
    "space": "w+",
    "w_reg": 0.0,
    "clip_aware": False,
}

#: How ``main.py`` rendered every clip (both modes).
_PAPER_RENDER: dict[str, Any] = {
    "generator": "ffhq-rosinality",  # main.py: rosinality's conversion of config-f FFHQ
    "inverter": "restyle-psp-ffhq",  # main.py: ReStyle-pSp (not "auto": that picks the projector
    # for ffhq-rosinality, a zoo entry of its own)
    "iterations": 5,  # main.py: n_iters_per_batch = 5
    "refine": 0,  # main.py: the encoder's code, no optimisation after it
    "alignment": "paper",  # main.py: the FFHQ recipe straight to 256 px for the encoder
    "normalize": "minmax",  # main.py: each frame stretched by its own min and max
}

#: The clip of each mode: frames, strength (for ``w + (i/(frames-1))·s·d``) and fps.
_PAPER_CLIPS: dict[str, dict[str, Any]] = {
    # --category C: w + (i/100)·5·d for i = 0..99 at 30 fps; 5·99/100 = 4.95 at the last frame
    "render-official": {"frames": 100, "strengths": [4.95], "fps": 30.0},
    # --category custom: w + (i/100)·8·d for i = 0..89 at 60 fps; 8·89/100 = 7.12
    "render-text": {"frames": 90, "strengths": [7.12], "fps": 60.0},
}

#: Where a render differs from ``main.py``'s even under ``apply --preset paper``.
PAPER_RENDER_DIFFERENCES = (
    "the codes are w + (i/(frames-1))*s*d with s = 4.95 (or 7.12); the code's w + (i/100)*5*d "
    "(or 8*d) gives the same codes up to float32 rounding",
    "StyleGAN2 and ReStyle-pSp are our implementations: on random weights they match the "
    "reference code to 1e-4 (images), not bit for bit",
    "the clip is encoded by our writer (the -o suffix chooses MP4 or GIF), not the code's",
)

#: Where any run differs from the paper's code even under ``--preset paper``.
PAPER_DIFFERENCES = (
    "the rank-4 reconstruction is an exact SVD (the code's torch.pca_lowrank is randomised)",
    "robust PCA runs in float64 (the code: float32 on the GPU)",
    "z of the start face comes from z_from_seed(seed); the code drew it from the global RNG "
    "after building its networks, so seed 1 is not the paper's face",
    "truncation moves toward the checkpoint's w_avg (the code: mean_latent(4096), a fresh "
    "estimate from 4096 samples)",
)


@dataclass(frozen=True)
class ResolvedPreset:
    """A preset merged with the settings given explicitly.

    Attributes:
        values: Library parameter → value: the preset's values, with the given ones instead
            where both name a parameter (given parameters the preset does not set are left
            out: they are the caller's already).
        record: What to store in the result: ``{"name", "overrides", "notes"}``.
    """

    values: dict[str, Any]
    record: dict[str, Any] = field(default_factory=dict)


def preset_values(name: str, source: Source | Render) -> dict[str, Any]:
    """Every setting preset ``name`` fixes for a discovery from ``source``, or a render.

    Args:
        name: A preset (see :data:`PRESETS`).
        source: ``text``, ``video`` or ``latents``: which discovery the settings are for; or
            ``render-official`` / ``render-text``: ``apply`` of one of the paper's shipped
            directions / of a text micromotion.

    Returns:
        Library parameter names (fields of
        :class:`~micromotion.anchors.text.TextAnchorConfig`,
        :class:`~micromotion.pipelines.discover.Decomposition`, ``clip``, ``iterations``,
        ``refine``; for a render the parameters of
        :func:`~micromotion.pipelines.animate.animate` and the fields of its
        ``ClipSettings`` and ``PhotoSettings``) → values.

    Raises:
        ParameterError: An unknown preset or source.
    """
    if name not in PRESETS:
        raise ParameterError("preset", f"{name!r}: choose one of {', '.join(PRESETS)}")
    if source in _PAPER_CLIPS:
        return {**_PAPER_RENDER, **_PAPER_CLIPS[source]}
    if source not in ("text", "video", "latents"):
        raise ParameterError("preset", f"no preset for a discovery from {source!r}")
    # The slip lives in the code's decomposition step (pca.py keeps the first n - 1
    # reconstructions), which its only anchor pipeline, text, ran; video anchors had no code.
    values = {**_PAPER_DECOMPOSITION, "end_anchor": -1 if source == "video" else -2}
    if source == "text":
        values.update(_PAPER_TEXT)
    elif source == "video":
        values.update(_PAPER_VIDEO)
    return values


def resolve_preset(name: str, source: Source | Render, given: Mapping[str, Any]) -> ResolvedPreset:
    """Merge preset ``name`` with the settings given explicitly; the given ones win.

    Args:
        name: A preset (see :data:`PRESETS`).
        source: ``text``, ``video``, ``latents``, ``render-official`` or ``render-text``.
        given: Parameters the user set explicitly, by library name, with their values.

    Returns:
        The merged values and the record naming every override.
    """
    values = preset_values(name, source)
    overrides = {
        key: {"preset": _jsonable(values[key]), "given": _jsonable(value)}
        for key, value in given.items()
        if key in values and _jsonable(value) != _jsonable(values[key])
    }
    merged = {key: given.get(key, value) for key, value in values.items()}
    notes = []
    if merged.get("end_anchor") == -2:
        notes.append(
            "end_anchor -2: as the paper's code, the direction ends at the second-to-last "
            'reconstructed anchor ("90%" of the text anchors), not the last'
        )
    record = {
        "name": name,
        "overrides": overrides,
        "notes": notes,
        "differences": list(
            PAPER_RENDER_DIFFERENCES if source in _PAPER_CLIPS else PAPER_DIFFERENCES
        ),
    }
    if source in _PAPER_CLIPS:
        record["mode"] = (
            "main.py --category C (a shipped direction)"
            if source == "render-official"
            else "main.py --category custom (a text micromotion)"
        )
    return ResolvedPreset(merged, record)


def check_preset(
    preset: Mapping[str, Any], source: Source | Render, actual: Mapping[str, Any]
) -> None:
    """Refuse a preset record that the settings in use do not match.

    Args:
        preset: A record from :func:`resolve_preset` (``name`` and ``overrides``).
        source: ``text``, ``video``, ``latents``, ``render-official`` or ``render-text``.
        actual: The settings the run uses, by library parameter name.

    Raises:
        ParameterError: A setting differs from the preset's and is not listed as overridden.
    """
    if not isinstance(preset, Mapping) or not isinstance(preset.get("name"), str):
        raise ParameterError("preset", "expected a record from resolve_preset()")
    values = preset_values(preset["name"], source)
    overridden = preset.get("overrides") or {}
    wrong = [
        f"{key} is {_jsonable(actual[key])!r}, the preset's {_jsonable(value)!r}"
        for key, value in values.items()
        if key in actual and key not in overridden and _jsonable(actual[key]) != _jsonable(value)
    ]
    if wrong:
        raise ParameterError(
            "preset",
            f"{preset['name']}: " + "; ".join(wrong) + " (and not recorded as an override)",
        )


def override_texts(record: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Each override of a preset record as ``(parameter, given, preset)`` texts, for notes.

    Lists are written as the command line takes them (``no,10%,50%``).
    """

    def text(value: Any) -> str:
        return ",".join(map(str, value)) if isinstance(value, list) else str(value)

    return [
        (key, text(change["given"]), text(change["preset"]))
        for key, change in record["overrides"].items()
    ]


def _jsonable(value: Any) -> Any:
    """Compare and record tuples and lists alike (degrees come as either)."""
    return list(value) if isinstance(value, tuple | list) else value


__all__ = [
    "PAPER_DIFFERENCES",
    "PAPER_RENDER_DIFFERENCES",
    "PRESETS",
    "Render",
    "ResolvedPreset",
    "check_preset",
    "override_texts",
    "preset_values",
    "resolve_preset",
]
