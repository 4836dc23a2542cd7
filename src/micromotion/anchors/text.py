"""Text anchors: one face edited toward "a person with {degree} smile" at increasing degrees.

The paper (Wu et al., §3.1) follows StyleCLIP's latent optimisation (Patashnik et al. 2021):
for each degree word the start code ``w0`` is optimised in W+ to minimise

    (1 − s·cos(CLIP(G(w)), CLIP(prompt)) / 100) + l2_lambda·‖w − w0‖² + id_lambda·(1 − cos(
    ArcFace(G(w)), ArcFace(G(w0))))

with ``s = exp(logit_scale)`` (100 for OpenAI's CLIP, so the first term is ``1 − cos``),
the squared norm summed over every layer and channel, Adam at 0.1 with StyleGAN2's
learning-rate ramps, 40 steps, the generator's stored noise. The anchors are the start code
followed by one optimised code per degree, degree words ``no, 10%, …, 100%``.

Here every degree is optimised at once: the codes form one batch, each with its own loss,
and the losses are summed. A code affects only its own loss and Adam works element by
element, so the batch follows the same trajectories as one degree at a time up to
floating-point rounding (see the tests), while the generator and CLIP run once per step
instead of once per degree.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import torch

from micromotion.core.defaults import DEFAULT_DEGREES
from micromotion.core.numbers import check_real
from micromotion.errors import MicromotionError, ParameterError
from micromotion.inversion import check_schedule, lr_ramp
from micromotion.media.images import to_uint8
from micromotion.networks.clip import ClipModel
from micromotion.networks.irse import IdentityLoss
from micromotion.networks.sampling import sample_ws
from micromotion.networks.stylegan2 import Generator


@dataclass(frozen=True)
class TextAnchorConfig:
    """Settings of text-anchor optimisation; defaults are the paper's (micromotion-styleGAN).

    References are to github.com/wuqiuche/micromotion-styleGAN: ``main.py`` (custom mode)
    and ``StyleCLIP/optimization/text.py`` (``get_text_latent``).

    Attributes:
        template: Prompt with a ``{degree}`` slot (README's smile template).
        degrees: Degree words, in motion order (``main.py`` l.137-140: ``no, 10%, …, 100%``).
            Each gets its own optimised code; the start code is prepended as anchor 0
            (``text.py`` l.63), so there are ``len(degrees) + 1`` anchors.
        steps: Adam steps per degree (``main.py`` l.150: 40).
        lr: Peak learning rate (``main.py`` l.157: 0.1).
        lr_rampdown: Fraction of the run over which the rate falls to 0, cosine (``text.py``
            ``get_lr`` default: 0.25).
        lr_rampup: Fraction over which it rises from 0 (``main.py`` l.155: 0.05; note that
            step 0 therefore has rate 0, as in StyleCLIP).
        l2_lambda: Weight of ``‖w − w0‖²``, summed over all W+ entries (``main.py`` l.160:
            0.008; ``text.py`` l.122 uses ``.sum()``).
        id_lambda: Weight of the ArcFace identity loss (``main.py`` l.161: 0.005); applied only
            when an identity model is given.
        truncation_psi: Truncation of the start face (``main.py`` l.164: 0.7).
        seed: Seed of the start face's ``z`` (``main.py`` l.268: ``--seed`` default 1). The
            paper draws ``z`` after its generator's random initialisation has consumed the
            global RNG, so the seed does not give the paper's exact face; ours draws ``z``
            with :func:`micromotion.networks.sampling.z_from_seed` (same on every device).
        noise_mode: Generator noise during and after optimisation (``randomize_noise=False``
            in ``text.py``: the stored constant noise).
        clip_normalize: Give CLIP its images the way it was trained on them (mapped to
            [0, 1] and normalised by its mean/std). On by default, a deliberate departure:
            StyleCLIP's ``criteria/clip_loss.py`` l.15, which the paper's code uses, feeds the
            ``[-1, 1]`` pixels straight to CLIP; ``False`` reproduces that.
        batch_size: Degrees optimised together; ``None`` (default) all at once. Smaller only
            bounds memory: results are the same. With several faces
            (:func:`multi_text_anchors`) it counts codes, faces × degrees.
    """

    template: str = "a person with {degree} smile"
    degrees: tuple[str, ...] = DEFAULT_DEGREES
    steps: int = 40
    lr: float = 0.1
    lr_rampdown: float = 0.25
    lr_rampup: float = 0.05
    l2_lambda: float = 0.008
    id_lambda: float = 0.005
    truncation_psi: float = 0.7
    seed: int = 1
    noise_mode: str = "const"
    clip_normalize: bool = True
    batch_size: int | None = None

    def __post_init__(self) -> None:
        check_schedule(self.steps, self.lr, rampdown=self.lr_rampdown, rampup=self.lr_rampup)
        if not self.degrees:
            raise MicromotionError("give at least one degree")
        if self.batch_size is not None and self.batch_size < 1:
            raise ParameterError("batch_size", f"{self.batch_size}: must be at least 1")
        for name in ("l2_lambda", "id_lambda"):
            check_real(name, getattr(self, name), low=0)
        if self.truncation_psi is not None:  # None: the start was a given code
            check_real("truncation_psi", self.truncation_psi, low=0, high=2)
        if self.noise_mode not in ("const", "none"):
            raise ParameterError("noise_mode", f"{self.noise_mode!r}: choose const or none")

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable settings for provenance."""
        out = asdict(self)
        out["degrees"] = list(self.degrees)
        return out


class TextAnchors(NamedTuple):
    """What :func:`text_anchors` returns.

    Attributes:
        anchors: ``[len(prompts) + 1, num_ws, w_dim]`` the start code, then one per prompt.
        images: ``uint8`` ``[len(prompts) + 1, R, R, 3]`` the anchors rendered.
        prompts: The prompts, in anchor order (anchor ``i + 1`` belongs to ``prompts[i]``).
        clip_loss: ``[len(prompts)]`` final CLIP loss of each optimised code.
        start_clip_loss: ``[len(prompts)]`` CLIP loss of the start image for each prompt.
        losses: Mean total loss per prompt after each step (the batches' in turn).
    """

    anchors: torch.Tensor
    images: np.ndarray
    prompts: list[str]
    clip_loss: torch.Tensor
    start_clip_loss: torch.Tensor
    losses: list[float]


def format_prompts(template: str, degrees: Sequence[str]) -> list[str]:
    """Fill ``{degree}`` in ``template`` with each degree word, literally.

    Only the exact text ``{degree}`` is replaced (every occurrence); any other braces are
    kept as they are and nothing in the template is ever evaluated (the paper's code runs
    the template through ``eval``; ours never does).

    Raises:
        MicromotionError: The template has no ``{degree}``, or no degrees are given.
    """
    if "{degree}" not in template:
        raise MicromotionError(
            f"template {template!r}: must contain {{degree}}, e.g. 'a person with {{degree}} smile'"
        )
    if not degrees:
        raise MicromotionError("give at least one degree")
    return [template.replace("{degree}", str(d)) for d in degrees]


def parse_degrees(text: str) -> tuple[str, ...]:
    """``"no,10%,20%"`` → ``("no", "10%", "20%")`` (blank items are errors)."""
    items = tuple(part.strip() for part in text.split(","))
    if not items or any(not item for item in items):
        raise ParameterError("degrees", f"{text!r}: give comma-separated words, e.g. no,50%,100%")
    return items


def lr_at(step: int, config: TextAnchorConfig) -> float:
    """Learning rate of ``step`` (0-based): StyleGAN2's ramp-up and cosine ramp-down."""
    t = step / config.steps
    return config.lr * lr_ramp(t, rampdown=config.lr_rampdown, rampup=config.lr_rampup)


def clip_loss(
    clip: ClipModel, images: torch.Tensor, text: torch.Tensor, *, normalize: bool = False
) -> torch.Tensor:
    """StyleCLIP's CLIP loss per image, ``1 − exp(logit_scale)·cos / 100``: ``[N]``.

    Args:
        clip: The CLIP.
        images: ``[N, 3, R, R]`` generator images in [-1, 1].
        text: ``[N, D]`` unit-norm text embeddings, one per image.
        normalize: Apply CLIP's mean/std to the images (StyleCLIP does not).
    """
    cos = (clip.image_embeds(images, normalize=normalize) * text).sum(dim=1)
    return 1 - clip.logit_scale * cos / 100


@contextlib.contextmanager
def _frozen(*modules: torch.nn.Module | None) -> Iterator[None]:
    """Switch off gradients of the modules' weights; restore each flag afterwards."""
    params = [p for m in modules if m is not None for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


def text_anchors(
    G: Generator,
    clip: ClipModel,
    prompts: Sequence[str] | None = None,
    *,
    config: TextAnchorConfig | None = None,
    start_ws: torch.Tensor | None = None,
    id_model: IdentityLoss | None = None,
    callback: Callable[[int, float], None] | None = None,
) -> TextAnchors:
    """Optimise one W+ code per prompt from a common start face; return the anchors.

    Args:
        G: The generator (frozen during the run; its device is used).
        clip: CLIP, on ``G``'s device.
        prompts: The prompts in motion order; default: ``config.template`` filled with
            ``config.degrees``.
        config: Settings (see :class:`TextAnchorConfig`).
        start_ws: ``[num_ws, w_dim]`` (or ``[1, num_ws, w_dim]``) start code, e.g. an
            inverted photo; default: the face of ``config.seed`` at ``config.truncation_psi``.
        id_model: ArcFace identity loss; ``None`` leaves that term out.
        callback: Called as ``callback(step, loss)`` after every step of every batch.

    Returns:
        The anchors (start code first) and their images.
    """
    config = config or TextAnchorConfig()
    prompts = _prompts(prompts, config)
    if start_ws is None:
        w0 = sample_ws(G, [config.seed], truncation_psi=config.truncation_psi)  # [1, L, C]
    else:
        w0 = start_ws.detach().reshape(-1, *start_ws.shape[-2:])
        w0 = _start_codes(G, w0, start_ws, "start code", f"[{G.num_ws}, {G.w_dim}]", one=True)
    with _frozen(G, clip.model, id_model):
        run = _optimise(G, clip, prompts, config, w0, id_model, callback)
    return TextAnchors(
        anchors=run.anchors[0],
        images=run.images[0],
        prompts=prompts,
        clip_loss=run.clip_loss[0],
        start_clip_loss=run.start_clip_loss[0],
        losses=run.losses,
    )


def multi_text_anchors(
    G: Generator,
    clip: ClipModel,
    prompts: Sequence[str] | None = None,
    *,
    seeds: Sequence[int] | None = None,
    start_ws: torch.Tensor | None = None,
    config: TextAnchorConfig | None = None,
    id_model: IdentityLoss | None = None,
    callback: Callable[[int, float], None] | None = None,
) -> TextAnchors:
    """Text anchors of several faces at once: every face × prompt code in one optimisation.

    Each face gets what :func:`text_anchors` would give it alone (its own start code, its own
    ``‖w − w0‖²`` and identity terms): the ``F·P`` codes form one batch whose losses are
    summed, and no code's loss depends on another code, so the result equals one face at a
    time up to floating-point rounding, with the generator and CLIP run once per step.

    Args:
        G: The generator (frozen during the run).
        clip: CLIP, on ``G``'s device.
        prompts: The prompts in motion order (default: from ``config``).
        seeds: The faces' seeds, drawn at ``config.truncation_psi`` (``config.seed`` unused).
        start_ws: ``[F, num_ws, w_dim]`` start codes instead of ``seeds``.
        config: Settings; ``batch_size`` counts codes (faces × prompts) optimised together.
        id_model: ArcFace identity loss (each code against its own start face).
        callback: Called as ``callback(step, loss)`` after every step of every batch.

    Returns:
        :class:`TextAnchors` with a leading face axis: ``anchors`` ``[F, P + 1, num_ws,
        w_dim]``, ``images`` ``[F, P + 1, R, R, 3]``, ``clip_loss`` and ``start_clip_loss``
        ``[F, P]``.

    Raises:
        MicromotionError: Neither or both of ``seeds`` and ``start_ws``, no faces, or start
            codes of the wrong shape.
    """
    config = config or TextAnchorConfig()
    prompts = _prompts(prompts, config)
    if (seeds is None) == (start_ws is None):
        raise MicromotionError("give the faces as seeds or as start codes, one of the two")
    if seeds is not None:
        if not seeds:
            raise ParameterError("seeds", "give at least one seed")
        w0 = sample_ws(G, list(seeds), truncation_psi=config.truncation_psi)  # [F, L, C]
    else:
        assert start_ws is not None  # one of the two, checked above
        shape = f"[F, {G.num_ws}, {G.w_dim}]"
        w0 = _start_codes(G, start_ws.detach(), start_ws, "start codes", shape, one=False)
    with _frozen(G, clip.model, id_model):
        run = _optimise(G, clip, prompts, config, w0, id_model, callback)
    return run._replace(prompts=prompts)


def _start_codes(
    G: Generator, w0: torch.Tensor, given: torch.Tensor, what: str, shape: str, *, one: bool
) -> torch.Tensor:
    """Start codes ``[F, num_ws, w_dim]`` on the generator's device, checked (``one``: F = 1)."""
    w0 = w0.to(device=G.w_avg.device, dtype=torch.float32)
    fits = w0.ndim == 3 and w0.shape[0] > 0 and w0.shape[1:] == (G.num_ws, G.w_dim)
    if not fits or (one and w0.shape[0] != 1):
        raise MicromotionError(f"{what} must be {shape}, got {list(given.shape)}")
    if not torch.isfinite(w0).all():
        raise MicromotionError(f"the {what} {'contains' if one else 'contain'} NaN or inf")
    return w0


def _prompts(prompts: Sequence[str] | None, config: TextAnchorConfig) -> list[str]:
    out = list(prompts) if prompts is not None else format_prompts(config.template, config.degrees)
    if not out:
        raise MicromotionError("give at least one prompt")
    return out


def _optimise(
    G: Generator,
    clip: ClipModel,
    prompts: list[str],
    config: TextAnchorConfig,
    w0: torch.Tensor,
    id_model: IdentityLoss | None,
    callback: Callable[[int, float], None] | None,
) -> TextAnchors:
    """Optimise every (face, prompt) code from ``w0 [F, L, C]``; results have a face axis."""
    faces, num_prompts = w0.shape[0], len(prompts)
    text = clip.text_embeds(prompts)  # [P, D]
    with torch.no_grad():
        start_img = G.synthesis(w0, noise_mode=config.noise_mode)  # [F, 3, R, R]
        start_loss = torch.stack([
            clip_loss(clip, start_img[f : f + 1].expand(num_prompts, -1, -1, -1), text,
                      normalize=config.clip_normalize)
            for f in range(faces)
        ])  # [F, P]  # fmt: skip
        start_id = id_model.embed(start_img) if id_model is not None else None  # [F, D']
    use_id = id_model is not None and config.id_lambda > 0

    # Code r is face r // P at prompt r % P: faces after one another, as the anchors are kept.
    rows = faces * num_prompts
    face_of = torch.arange(rows, device=w0.device) // num_prompts  # [F·P]
    prompt_of = torch.arange(rows, device=w0.device) % num_prompts  # [F·P]
    size = config.batch_size or rows
    codes: list[torch.Tensor] = []
    final_clip: list[torch.Tensor] = []
    final_images: list[torch.Tensor] = []
    losses: list[float] = []
    for first in range(0, rows, size):
        batch_face = face_of[first : first + size]  # [B]
        batch_text = text[prompt_of[first : first + size]]  # [B, D]
        batch_w0 = w0[batch_face]  # [B, L, C]
        n = batch_text.shape[0]
        w = batch_w0.clone().requires_grad_(True)  # [B, L, C]
        optimizer = torch.optim.Adam([w], lr=config.lr)
        for step in range(config.steps):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, config)
            img = G.synthesis(w, noise_mode=config.noise_mode)  # [B, 3, R, R]
            per_prompt = clip_loss(clip, img, batch_text, normalize=config.clip_normalize)
            per_prompt = per_prompt + config.l2_lambda * (w - batch_w0).square().sum(dim=(1, 2))
            if use_id:
                assert id_model is not None and start_id is not None  # use_id implies it
                per_prompt = per_prompt + config.id_lambda * id_model(img, start_id[batch_face])
            loss = per_prompt.sum()  # each code only sees its own term: batch = one at a time
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item() / n)
            if callback is not None:
                callback(step + 1, losses[-1])
        w = w.detach()
        with torch.no_grad():
            img = G.synthesis(w, noise_mode=config.noise_mode)
            final_clip.append(clip_loss(clip, img, batch_text, normalize=config.clip_normalize))
        codes.append(w)
        final_images.append(img)

    optimised = torch.cat(codes).reshape(faces, num_prompts, *w0.shape[1:])  # [F, P, L, C]
    anchors = torch.cat([w0[:, None], optimised], dim=1)  # [F, P + 1, L, C]
    edited = torch.cat(final_images).reshape(faces, num_prompts, *start_img.shape[1:])
    images = torch.cat([start_img[:, None], edited], dim=1).flatten(0, 1)  # [F·(P+1), 3, R, R]
    pixels = to_uint8(images)
    return TextAnchors(
        anchors=anchors.cpu(),
        images=pixels.reshape(faces, num_prompts + 1, *pixels.shape[1:]),
        prompts=prompts,
        clip_loss=torch.cat(final_clip).reshape(faces, num_prompts).cpu(),
        start_clip_loss=start_loss.cpu(),
        losses=losses,
    )
