"""GAN-inversion encoders on the IR-SE50 backbone: ReStyle-pSp, ReStyle-e4e, e4e and pSp.

Written from the papers' descriptions, with module names that follow the published
checkpoints' ``encoder.*`` layout so those files load with ``strict=True``:

- ``input_layer``: 3×3 conv (``input_nc`` → 64, no bias), batch norm, PReLU. ReStyle feeds
  6 channels (the image and the current reconstruction), pSp and e4e 3.
- ``body``: the 24 IR-SE units of IR-SE50 (shared with :mod:`.irse`); a 256 px input leaves
  16×16 features of 512 channels after the last stage.
- ``styles.{k}``: one *style block* per W+ entry: stride-2 3×3 convs with leaky ReLU
  (slope 0.01) until the map is 1×1, then an equalised linear layer → a 512-d code.
- pSp and e4e also build a feature pyramid (``latlayer1`` from the 256-channel stage,
  ``latlayer2`` from the 128-channel stage, bilinear upsampling with aligned corners): W+
  entries 0–2 read the coarsest map (16×16), 3–6 the middle one (32×32), the rest the finest
  (64×64).

What each encoder returns (before the mean code is added by the inversion loop):

- :class:`BackboneEncoder` (ReStyle-pSp): one code per W+ entry from the 16×16 map.
- :class:`ProgressiveBackboneEncoder` (ReStyle-e4e): entry 0's code for every entry, plus
  per-entry offsets for entries 1 … ``stage``.
- :class:`GradualStyleEncoder` (pSp): one code per entry from the pyramid.
- :class:`Encoder4Editing` (e4e): the pyramid version of the progressive scheme.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from micromotion.networks.irse import IRSE50_DEPTHS, IRSE50_WIDTHS, _Unit

#: Feature map a pyramid encoder's W+ entries read: [0, 3) coarse, [3, 7) middle, rest fine.
COARSE, MIDDLE = 3, 7
#: The encoders' input resolution.
INPUT_SIZE = 256


def num_styles(output_size: int) -> int:
    """W+ entries of a StyleGAN2 generator of ``output_size`` px (18 at 1024)."""
    if output_size < 4 or output_size & (output_size - 1):
        raise ValueError(f"output size {output_size} is not a power of two ≥ 4")
    return 2 * int(math.log2(output_size)) - 2


class EqualLinear(nn.Module):
    """A linear layer with equalised learning rate: ``x Wᵀ·(lr_mul/√in) + b·lr_mul``."""

    def __init__(self, in_features: int, out_features: int, lr_mul: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, in]`` → ``[N, out]``."""
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class StyleBlock(nn.Module):
    """Feature map ``[N, C, s, s]`` → one code ``[N, C]``: log2(s) stride-2 convs, a linear."""

    def __init__(self, channels: int, spatial: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(int(math.log2(spatial))):
            layers += [nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(channels, channels, lr_mul=1.0)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, s, s]`` → ``[N, C]``."""
        return self.linear(self.convs(x).reshape(-1, self.channels))


class _Backbone(nn.Module):
    """Input layer and IR-SE50 body, shared by every encoder."""

    def __init__(self, input_nc: int) -> None:
        super().__init__()
        width = IRSE50_WIDTHS[0]
        self.input_nc = input_nc
        self.input_layer = nn.Sequential(
            nn.Conv2d(input_nc, width, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.PReLU(width),
        )
        units: list[nn.Module] = []
        c_in = width
        for depth, c_out in zip(IRSE50_DEPTHS, IRSE50_WIDTHS, strict=True):
            for k in range(depth):
                units.append(_Unit(c_in, c_out, stride=2 if k == 0 else 1))
                c_in = c_out
        self.body = nn.Sequential(*units)

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.input_nc:
            raise ValueError(f"expected [N, {self.input_nc}, H, W], got {list(x.shape)}")

    def _pyramid(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The outputs of the 128-, 256- and 512-channel stages (c1, c2, c3)."""
        x = self.input_layer(x)
        ends = {sum(IRSE50_DEPTHS[: i + 1]) - 1: i for i in range(1, len(IRSE50_DEPTHS))}
        taps: dict[int, torch.Tensor] = {}
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in ends:
                taps[ends[i]] = x
        return taps[1], taps[2], taps[3]


def _upsample_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y


class BackboneEncoder(_Backbone):
    """ReStyle-pSp's encoder: one code per W+ entry from the backbone's 16×16 output."""

    def __init__(self, n_styles: int, input_nc: int = 6) -> None:
        super().__init__(input_nc)
        self.styles = nn.ModuleList(StyleBlock(512, 16) for _ in range(n_styles))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, input_nc, 256, 256]`` → codes ``[N, n_styles, 512]``."""
        self._check(x)
        features = self.body(self.input_layer(x))
        return torch.stack([style(features) for style in self.styles], dim=1)


class ProgressiveBackboneEncoder(BackboneEncoder):
    """ReStyle-e4e's encoder: entry 0's code everywhere, plus offsets for entries 1 … stage.

    Args:
        n_styles: W+ entries.
        input_nc: Input channels (6).
        stage: Last W+ entry that gets its own offset; ``None`` (inference): all of them.
    """

    def __init__(self, n_styles: int, input_nc: int = 6, stage: int | None = None) -> None:
        super().__init__(n_styles, input_nc)
        self.stage = stage

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, input_nc, 256, 256]`` → codes ``[N, n_styles, 512]``."""
        self._check(x)
        features = self.body(self.input_layer(x))
        n = len(self.styles)
        w = self.styles[0](features)[:, None].repeat(1, n, 1)  # [N, n_styles, 512]
        last = n - 1 if self.stage is None else min(self.stage, n - 1)
        deltas = [self.styles[i](features) for i in range(1, last + 1)]
        if deltas:
            w = w + F.pad(torch.stack(deltas, dim=1), (0, 0, 1, n - 1 - last))
        return w


class GradualStyleEncoder(_Backbone):
    """pSp's encoder: codes from a feature pyramid (coarse, middle and fine entries)."""

    def __init__(self, n_styles: int, input_nc: int = 3) -> None:
        super().__init__(input_nc)
        spatial = [16 if i < COARSE else 32 if i < MIDDLE else 64 for i in range(n_styles)]
        self.styles = nn.ModuleList(StyleBlock(512, s) for s in spatial)
        self.latlayer1 = nn.Conv2d(256, 512, 1)
        self.latlayer2 = nn.Conv2d(128, 512, 1)

    def _maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        c1, c2, c3 = self._pyramid(x)
        p2 = _upsample_add(c3, self.latlayer1(c2))
        p1 = _upsample_add(p2, self.latlayer2(c1))
        return [c3 if i < COARSE else p2 if i < MIDDLE else p1 for i in range(len(self.styles))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, input_nc, 256, 256]`` → codes ``[N, n_styles, 512]``."""
        self._check(x)
        maps = self._maps(x)
        return torch.stack([style(m) for style, m in zip(self.styles, maps, strict=True)], 1)


class Encoder4Editing(GradualStyleEncoder):
    """e4e's encoder: entry 0's code everywhere plus pyramid offsets for entries 1 … stage."""

    def __init__(self, n_styles: int, input_nc: int = 3, stage: int | None = None) -> None:
        super().__init__(n_styles, input_nc)
        self.stage = stage

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, input_nc, 256, 256]`` → codes ``[N, n_styles, 512]``."""
        self._check(x)
        maps = self._maps(x)
        n = len(self.styles)
        w = self.styles[0](maps[0])[:, None].repeat(1, n, 1)  # [N, n_styles, 512]
        last = n - 1 if self.stage is None else min(self.stage, n - 1)
        deltas = [self.styles[i](maps[i]) for i in range(1, last + 1)]
        if deltas:
            w = w + F.pad(torch.stack(deltas, dim=1), (0, 0, 1, n - 1 - last))
        return w


#: ``opts["encoder_type"]`` → class, with the input channels its method feeds.
ENCODERS: dict[str, tuple[Callable[[int, int], nn.Module], int]] = {
    "BackboneEncoder": (BackboneEncoder, 6),
    "ProgressiveBackboneEncoder": (ProgressiveBackboneEncoder, 6),
    "GradualStyleEncoder": (GradualStyleEncoder, 3),
    "Encoder4Editing": (Encoder4Editing, 3),
}


@dataclass
class EncoderModel:
    """An encoder with what its inversion needs.

    Attributes:
        encoder: The network (eval mode, frozen).
        method: ``restyle-psp``, ``restyle-e4e``, ``psp`` or ``e4e``.
        latent_avg: ``[n_styles, 512]`` the code the encoder's output is added to.
        opts: The checkpoint's options (with defaults filled in).
        source: File and hash, for provenance.
    """

    encoder: torch.nn.Module
    method: str
    latent_avg: torch.Tensor
    opts: dict[str, Any]
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def n_styles(self) -> int:
        """W+ entries the encoder predicts."""
        return int(self.latent_avg.shape[0])

    @property
    def iterative(self) -> bool:
        """ReStyle (iterations on image + reconstruction) rather than one pass."""
        return self.method.startswith("restyle")


__all__ = [
    "ENCODERS",
    "INPUT_SIZE",
    "BackboneEncoder",
    "Encoder4Editing",
    "EncoderModel",
    "EqualLinear",
    "GradualStyleEncoder",
    "ProgressiveBackboneEncoder",
    "StyleBlock",
    "num_styles",
]
