"""LPIPS-VGG (Zhang et al. 2018, v0.1): a learned perceptual distance for GAN inversion.

The metric compares two images through a frozen VGG16 ImageNet classifier: both images are
shifted and scaled by LPIPS's fixed per-channel constants, the activations after ``relu1_2``,
``relu2_2``, ``relu3_3``, ``relu4_3`` and ``relu5_3`` are unit-normalised along channels,
their squared differences are weighted per channel by five learned non-negative 1×1 layers,
averaged over space and summed over the five taps: one distance per image.

Everything here is our own implementation; neither torchvision nor the ``lpips`` package is
imported. :class:`VGG16Features` has the same ``features.{i}.weight`` / ``features.{i}.bias``
keys as torchvision's ``vgg16()``, and the linear heads those of LPIPS's ``weights/v0.1/vgg.pth``;
:mod:`micromotion.weights.lpips` loads both files.

:func:`perceptual_loss` turns a model into the ``loss_fn`` that
:func:`micromotion.inversion.invert` takes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "LPIPS",
    "VGG16_CHANNELS",
    "VGG16Features",
    "perceptual_loss",
]

VGG16_CHANNELS: tuple[int, ...] = (64, 128, 256, 512, 512)
"""Output channels of VGG16's five conv stages (Simonyan & Zisserman 2015, config D)."""
_CONVS_PER_STAGE = (2, 2, 3, 3, 3)  # VGG16 config D

# LPIPS v0.1's input normalisation for images in [-1, 1]: (x - shift) / scale per RGB channel.
# They map [-1, 1] images onto roughly the ImageNet statistics the trunk was trained with.
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_NORM_EPS = 1e-10  # added to the channel norm before dividing, as LPIPS does

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

    # Input normalisation buffers, registered in __init__.
    shift: torch.Tensor
    scale: torch.Tensor

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
                conv = head.model[1]
                assert isinstance(conv, nn.Conv2d)  # _LinearHead's layout: Identity, Conv2d
                conv.weight.abs_()
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
    """Wrap ``model`` as a ``loss_fn(x, y) -> [N]`` for :func:`micromotion.inversion.invert`.

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
