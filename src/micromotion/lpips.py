"""LPIPS-VGG (Zhang et al. 2018, v0.1): a learned perceptual distance for GAN inversion.

The metric compares two images through a frozen VGG16 ImageNet classifier: both images are
shifted and scaled by LPIPS's fixed per-channel constants, the activations after ``relu1_2``,
``relu2_2``, ``relu3_3``, ``relu4_3`` and ``relu5_3`` are unit-normalised along channels,
their squared differences are weighted per channel by five learned non-negative 1×1 layers,
averaged over space and summed over the five taps: one distance per image.

Everything here is our own implementation; neither torchvision nor the ``lpips`` package is
imported. The two weight files come from the zoo, hash-checked:

* ``vgg16-imagenet``: torchvision's ``vgg16-397923af.pth``. :class:`VGG16Features` has the
  same ``features.{i}.weight`` / ``features.{i}.bias`` keys as torchvision's ``vgg16()``, so
  the file loads with strict key and shape checks (its ``classifier.*`` keys are recognised
  and dropped).
* ``lpips-vgg-v0.1``: LPIPS's calibrated linear layers, the file the ``lpips`` package ships
  as ``weights/v0.1/vgg.pth`` (keys ``lin0.model.1.weight`` ... ``lin4.model.1.weight``).

Every file is read with ``torch.load(..., weights_only=True)``: a pickle that would run code
is refused, and anything but the expected tensors is a one-line :class:`MicromotionError`
that names the file.

:func:`perceptual_loss` turns a model into the ``loss_fn`` that
:func:`micromotion.invert.invert` takes; :func:`lpips_available` tells a caller, without any
network access, whether LPIPS can be loaded or the pixel loss should be used instead.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from micromotion import zoo
from micromotion._io import require_file
from micromotion.errors import MicromotionError

__all__ = [
    "LIN_ENTRY",
    "LPIPS",
    "VGG16_CHANNELS",
    "VGG16_ENTRY",
    "VGG16Features",
    "load_lpips",
    "lpips_available",
    "perceptual_loss",
]

VGG16_ENTRY = "vgg16-imagenet"
"""Zoo name of torchvision's VGG16 ImageNet weights (the LPIPS trunk)."""
LIN_ENTRY = "lpips-vgg-v0.1"
"""Zoo name of the LPIPS v0.1 linear layers for the VGG trunk."""

VGG16_CHANNELS: tuple[int, ...] = (64, 128, 256, 512, 512)
"""Output channels of VGG16's five conv stages (Simonyan & Zisserman 2015, config D)."""
_CONVS_PER_STAGE = (2, 2, 3, 3, 3)  # VGG16 config D

# LPIPS v0.1's input normalisation for images in [-1, 1]: (x - shift) / scale per RGB channel.
# They map [-1, 1] images onto roughly the ImageNet statistics the trunk was trained with.
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_NORM_EPS = 1e-10  # added to the channel norm before dividing, as LPIPS does

# Keys of torchvision's full vgg16() state dict that the feature extractor does not use.
_TORCHVISION_CLASSIFIER = frozenset(
    f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")
)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------
# Networks.


class VGG16Features(nn.Module):
    """VGG16's convolutional trunk up to ``relu5_3``, returning the five LPIPS taps.

    ``features`` is laid out exactly as torchvision's ``vgg16().features`` (conv, ReLU and
    max-pool at the same indices), so its state dict has the same ``features.{i}.*`` keys.
    The final max-pool (index 30) is left out: nothing after ``relu5_3`` is needed.

    Args:
        channels: Output channels of the five stages; other values than
            :data:`VGG16_CHANNELS` give narrower test networks that no weight file fits.
    """

    def __init__(self, *, channels: Sequence[int] = VGG16_CHANNELS) -> None:
        super().__init__()
        if len(channels) != len(_CONVS_PER_STAGE) or min(channels) < 1:
            raise ValueError(f"channels must be 5 positive widths, got {tuple(channels)}")
        self.init_kwargs: dict[str, Any] = {"channels": tuple(channels)}
        layers: list[nn.Module] = []
        taps: list[int] = []
        cin = 3
        for stage, (cout, convs) in enumerate(zip(channels, _CONVS_PER_STAGE, strict=True)):
            if stage > 0:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            for _ in range(convs):
                layers.append(nn.Conv2d(cin, cout, kernel_size=3, padding=1))
                layers.append(nn.ReLU())
                cin = cout
            taps.append(len(layers) - 1)  # the stage's last ReLU: relu1_2, ..., relu5_3
        self.features = nn.Sequential(*layers)
        self.taps: tuple[int, ...] = tuple(taps)  # (3, 8, 15, 22, 29) for VGG16
        self.channels: tuple[int, ...] = tuple(channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the activations ``[N, C_k, H / 2^k, W / 2^k]`` at the five taps."""
        outputs = []
        for i, layer in enumerate(self.features):  # ends at relu5_3, the last tap
            x = layer(x)
            if i in self.taps:
                outputs.append(x)
        return outputs


class _LinearHead(nn.Module):
    """One LPIPS 1×1 layer (``C -> 1``, no bias); the weight sits at ``model.1.weight``.

    Slot 0 of ``model`` is where the reference applies dropout while training the layers; an
    identity keeps the weight at the key the published files use.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, kernel_size=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """LPIPS v0.1 with the VGG16 trunk: ``forward(x, y) -> [N]`` distances.

    A fresh module has *random* weights (PyTorch's default initialisation, linear weights
    made non-negative): it is a valid but uncalibrated distance, useful for tests. Use
    :func:`load_lpips` for the published metric. The module is frozen
    (``requires_grad_(False)``, eval mode); gradients still flow to the inputs.

    State-dict keys: ``vgg.features.{i}.weight`` / ``.bias`` (torchvision's, under ``vgg.``)
    and ``lin{k}.model.1.weight`` (the ``lpips`` package's).

    Args:
        channels: Trunk widths (see :class:`VGG16Features`); only the default loads weights.
    """

    def __init__(self, *, channels: Sequence[int] = VGG16_CHANNELS) -> None:
        super().__init__()
        self.init_kwargs: dict[str, Any] = {"channels": tuple(channels)}
        self.vgg = VGG16Features(channels=channels)
        self.lin0 = _LinearHead(self.vgg.channels[0])
        self.lin1 = _LinearHead(self.vgg.channels[1])
        self.lin2 = _LinearHead(self.vgg.channels[2])
        self.lin3 = _LinearHead(self.vgg.channels[3])
        self.lin4 = _LinearHead(self.vgg.channels[4])
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        with torch.no_grad():
            for head in self.heads:
                head.model[1].weight.abs_()
        self.requires_grad_(False)
        self.eval()

    @property
    def heads(self) -> tuple[_LinearHead, ...]:
        """The five linear layers, in tap order."""
        return (self.lin0, self.lin1, self.lin2, self.lin3, self.lin4)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Channel-normalised trunk activations of ``x`` ``[N, 3, H, W]`` in [-1, 1].

        Returns:
            Five tensors ``[N, C_k, H_k, W_k]``, each of unit norm along channels (or zero).
        """
        _check_images(x, "x")
        h = (x - self.shift) / self.scale  # [N, 3, H, W]
        out = []
        for f in self.vgg(h):  # [N, C_k, H_k, W_k]
            norm = torch.linalg.vector_norm(f, dim=1, keepdim=True)  # [N, 1, H_k, W_k]
            out.append(f / (norm + _NORM_EPS))
        return out

    def distance(
        self, features_x: Sequence[torch.Tensor], features_y: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        """The LPIPS distance ``[N]`` between two outputs of :meth:`features`."""
        terms = [
            head((fx - fy).square()).mean(dim=(1, 2, 3))  # [N, 1, H_k, W_k] -> [N]
            for head, fx, fy in zip(self.heads, features_x, features_y, strict=True)
        ]
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """LPIPS distance per image between ``x`` and ``y``, ``[N, 3, H, W]`` in [-1, 1].

        Returns:
            ``[N]`` non-negative distances (zero for identical images).

        Raises:
            ValueError: If the batches differ in shape, are not RGB, or are under 16 px (the
                trunk halves the size four times).
        """
        if x.shape != y.shape:
            raise ValueError(f"LPIPS: x and y differ in shape: {list(x.shape)} != {list(y.shape)}")
        return self.distance(self.features(x), self.features(y))


def _check_images(x: torch.Tensor, name: str) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"LPIPS: {name} must be [N, 3, H, W], got {list(x.shape)}")
    if min(x.shape[-2:]) < 16:
        raise ValueError(f"LPIPS: {name} must be at least 16x16 px, got {list(x.shape[-2:])}")


# ---------------------------------------------------------------------------------------------
# The inversion loss.


def perceptual_loss(model: LPIPS, *, resolution: int = 256) -> LossFn:
    """Wrap ``model`` as a ``loss_fn(x, y) -> [N]`` for :func:`micromotion.invert.invert`.

    As in StyleGAN2's projector, images larger than ``resolution`` (256 px) are
    area-downsampled (``F.interpolate(mode="area")``, the longer side to ``resolution``,
    keeping the aspect ratio) before LPIPS: VGG16 was trained on 224 px ImageNet crops, and
    it keeps a 1024 px inversion affordable. Smaller images are used as they are.

    Gradients flow to ``x``. The features of ``y`` (the fixed target of an inversion) are
    computed once and reused while the same, unmodified tensor is passed again (``model``
    must not change meanwhile); the cache holds one target and its features until the
    returned function is discarded.

    Args:
        model: A frozen :class:`LPIPS` on the images' device.
        resolution: Size above which images are downsampled first.

    Returns:
        The loss function.
    """
    if resolution < 16:
        raise ValueError(f"resolution must be at least 16 (the LPIPS minimum), got {resolution}")
    cache: dict[str, Any] = {}

    def target_features(y: torch.Tensor) -> list[torch.Tensor]:
        if y.requires_grad:
            return model.features(_downsample(y, resolution))
        key = (y._version, y.shape, y.device, y.dtype)
        if cache.get("target") is not y or cache.get("key") != key:
            with torch.no_grad():
                feats = model.features(_downsample(y, resolution))
            cache.update(target=y, key=key, features=feats)
        return cache["features"]

    def loss_fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape:
            raise ValueError(f"loss: x and y differ in shape: {list(x.shape)} != {list(y.shape)}")
        return model.distance(model.features(_downsample(x, resolution)), target_features(y))

    return loss_fn


def _downsample(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Area-downsample ``[N, C, H, W]`` so its longer side is ``resolution``; else as is."""
    h, w = x.shape[-2:]
    if max(h, w) <= resolution:
        return x
    s = resolution / max(h, w)
    return F.interpolate(x, size=(max(1, round(h * s)), max(1, round(w * s))), mode="area")


# ---------------------------------------------------------------------------------------------
# Loading.


def lpips_available(*, registry: zoo.Zoo | None = None) -> bool:
    """True if both LPIPS weight files are in the zoo cache (no network, no hashing).

    Callers can use LPIPS when this is true and fall back to the pixel loss with a warning
    otherwise. The files are verified by :func:`load_lpips`, not here.

    Args:
        registry: Registry to look in (default: :data:`micromotion.zoo.DEFAULT_ZOO`).
    """
    reg = registry if registry is not None else zoo.DEFAULT_ZOO
    names = (VGG16_ENTRY, LIN_ENTRY)
    return all(name in reg and zoo.is_cached(reg.get(name, kind="lpips")) for name in names)


def load_lpips(
    *,
    device: torch.device | str = "cpu",
    progress: bool = True,
    vgg_path: str | os.PathLike[str] | None = None,
    lin_path: str | os.PathLike[str] | None = None,
    registry: zoo.Zoo | None = None,
) -> LPIPS:
    """Build LPIPS-VGG v0.1 with its published weights.

    Each file is taken from the given path, or else fetched through the zoo (downloaded on
    first use, sha256-checked on every use). Both are read with ``weights_only=True`` and
    checked key by key and shape by shape.

    Args:
        device: Where to put the model.
        progress: Show a progress bar while downloading.
        vgg_path: A local copy of torchvision's ``vgg16-397923af.pth`` (or any state dict
            with its ``features.*`` keys); default: the ``vgg16-imagenet`` zoo entry.
        lin_path: A local copy of LPIPS's ``weights/v0.1/vgg.pth``; default: the
            ``lpips-vgg-v0.1`` zoo entry.
        registry: Registry to fetch from (default: :data:`micromotion.zoo.DEFAULT_ZOO`).

    Returns:
        The frozen model, in eval mode, on ``device``.

    Raises:
        DownloadError: If a file must be downloaded and cannot be (the one-line message says
            where to save a copy fetched by hand).
        MicromotionError: If a file is missing, not plain weights, or does not fit.
    """
    # The 7 kB file first: a problem with it shows before the 528 MB one is downloaded.
    if lin_path is None:
        lin_path = zoo.fetch(LIN_ENTRY, registry=registry, kind="lpips", progress=progress)
    model = LPIPS()
    expected = model.state_dict()
    lin_state = _load_lin_state(lin_path, expected)
    if vgg_path is None:
        vgg_path = zoo.fetch(VGG16_ENTRY, registry=registry, kind="lpips", progress=progress)
    vgg_state = _load_vgg_state(vgg_path, expected)
    model.load_state_dict({**vgg_state, **lin_state}, strict=True)
    return model.to(device)


def _load_vgg_state(
    path: str | os.PathLike[str], expected: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Read a torchvision VGG16 state dict; return it under our ``vgg.`` prefix."""
    what = "VGG16 weights (torchvision layout)"
    state = _read_state_dict(path, what)
    want = {k.removeprefix("vgg."): v for k, v in expected.items() if k.startswith("vgg.")}
    # The classifier of a full torchvision checkpoint is known and dropped; anything else
    # that does not belong is an error.
    state = {k: v for k, v in state.items() if k not in _TORCHVISION_CLASSIFIER}
    _check_state(path, what, state, want)
    return {f"vgg.{k}": v for k, v in state.items()}


def _load_lin_state(
    path: str | os.PathLike[str], expected: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Read LPIPS's linear layers (``lin{k}.model.1.weight``) and check they are >= 0."""
    what = "LPIPS v0.1 VGG linear weights"
    state = _read_state_dict(path, what)
    want = {k: v for k, v in expected.items() if k.startswith("lin")}
    _check_state(path, what, state, want)
    for key, value in state.items():
        if (value < 0).any():
            raise MicromotionError(f"{path}: not {what}: {key} has negative weights")
    return state


def _read_state_dict(path: str | os.PathLike[str], what: str) -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True)`` a flat ``{name: tensor}`` dict, or fail on one line."""
    p = require_file(path, what=f"a file of {what}")
    try:
        # Zip-format checkpoints are memory-mapped: the 500 MB VGG16 file's classifier,
        # which is dropped, is then never read into memory.
        state = torch.load(p, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(p))
    except pickle.UnpicklingError as exc:
        # The weights-only unpickler refuses every global outside its allow-list (a class to
        # build, a function to call) before anything runs; say what the file asked for.
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if found is None:
            raise MicromotionError(_unreadable(path, what)) from None
        raise MicromotionError(
            f"{path}: refused to load {what}: the file holds Python objects, not only "
            f"tensors (it needs {found.group(1)}); only plain weights are loaded "
            "(torch.load weights_only=True)"
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile):
        # Truncated or foreign files fail in many ways, with multi-line or cryptic messages.
        raise MicromotionError(_unreadable(path, what)) from None
    if not isinstance(state, Mapping):
        raise MicromotionError(
            f"{path}: not {what}: expected a dict of tensors, got {type(state).__name__}"
        )
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise MicromotionError(
                f"{path}: not {what}: entry {key!r} is a {type(value).__name__}, not a tensor"
            )
    return dict(state)


def _unreadable(path: str | os.PathLike[str], what: str) -> str:
    return f"{path}: cannot read {what}: damaged, or not a PyTorch weights file"


def _check_state(
    path: str | os.PathLike[str],
    what: str,
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Tensor],
) -> None:
    """Exactly the expected keys, shapes and finite floating-point values, or one line."""
    missing = sorted(set(expected) - set(state), key=_natural)
    unexpected = sorted(set(state) - set(expected), key=_natural)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_some(missing)}")
        if unexpected:
            parts.append(f"unexpected {_some(unexpected)}")
        raise MicromotionError(f"{path}: not {what}: {'; '.join(parts)}")
    for key, ref in expected.items():
        value = state[key]
        if value.shape != ref.shape:
            raise MicromotionError(
                f"{path}: not {what}: {key} has shape {list(value.shape)}, "
                f"expected {list(ref.shape)}"
            )
        if not value.is_floating_point():
            raise MicromotionError(f"{path}: not {what}: {key} is {value.dtype}, not floating")
        if not torch.isfinite(value).all():
            raise MicromotionError(f"{path}: not {what}: {key} holds NaN or inf")


def _some(keys: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(keys[:limit])
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"key{'s' if len(keys) > 1 else ''} {shown}{more}"


def _natural(key: str) -> tuple[Any, ...]:
    """Sort ``features.10.weight`` after ``features.2.weight``."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in key.split("."))
