"""IR-SE50, the ArcFace face-recognition backbone behind StyleCLIP's and pSp's identity loss.

A 50-layer improved-residual network with squeeze-and-excitation units (Deng et al.,
*ArcFace*, 2019), written here from its description. Module names follow the layout of the
public ``model_ir_se50.pth`` (TreB1eN's InsightFace_Pytorch, as redistributed by pSp and
StyleCLIP), so that file loads with ``strict=True``:

- ``input_layer``: 3×3 conv (3→64), batch norm, PReLU.
- ``body.{i}`` for 24 units in four stages (3, 4, 14, 3 units; 64, 128, 256, 512 channels;
  the first unit of each stage has stride 2), each ``res_layer`` = BN, 3×3 conv, PReLU,
  3×3 conv (strided), BN, squeeze-excitation (``fc1``, ``fc2``, reduction 16), plus a
  ``shortcut_layer`` (1×1 strided conv and BN when the width changes, else subsampling).
- ``output_layer``: BN, dropout, flatten, linear (512·7·7 → 512), BN1d; the embedding is
  L2-normalised.

The identity loss is StyleCLIP's (``criteria/id_loss.py``): images average-pooled to 256 px,
the face region ``[35:223, 32:220]`` cropped, average-pooled to 112 px, embedded; the loss is
``1 − cos`` against the start image's embedding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

#: IR-SE50: units per stage and their widths (ArcFace's 50-layer configuration).
IRSE50_DEPTHS = (3, 4, 14, 3)
IRSE50_WIDTHS = (64, 128, 256, 512)

#: StyleCLIP's face crop on a 256 px FFHQ-aligned image: rows 35-222, columns 32-219.
FACE_CROP_256 = (35, 223, 32, 220)


class _SqueezeExcite(nn.Module):
    """Channel gating: global average → 1×1 conv down → ReLU → 1×1 conv up → sigmoid."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=False)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = x.mean(dim=(2, 3), keepdim=True)  # [N, C, 1, 1]
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(gate))))
        return x * gate


class _Subsample(nn.Module):
    """Identity shortcut at a stride: every ``stride``-th pixel (no parameters)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride]


class _Unit(nn.Module):
    """One improved-residual SE unit: ``res_layer(x) + shortcut_layer(x)``."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        if c_in == c_out:
            self.shortcut_layer: nn.Module = _Subsample(stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(c_out),
            )
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(c_in),
            nn.Conv2d(c_in, c_out, kernel_size=3, stride=1, padding=1, bias=False),
            nn.PReLU(c_out),
            nn.Conv2d(c_out, c_out, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            _SqueezeExcite(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class IRSE(nn.Module):
    """An IR-SE face-embedding network on 112 px crops; :func:`irse50` is the real one.

    Args:
        depths: Units per stage (IR-SE50: 3, 4, 14, 3).
        widths: Channels per stage (64, 128, 256, 512); the stem has ``widths[0]``.
        embed_dim: Embedding size (512).
        input_size: Input resolution (112; four stride-2 stages leave 7×7).
        drop_ratio: Dropout before the linear layer (StyleCLIP builds it with 0.6; inactive
            in eval mode).
    """

    def __init__(
        self,
        *,
        depths: Sequence[int] = IRSE50_DEPTHS,
        widths: Sequence[int] = IRSE50_WIDTHS,
        embed_dim: int = 512,
        input_size: int = 112,
        drop_ratio: float = 0.6,
    ) -> None:
        super().__init__()
        if len(depths) != len(widths) or not depths:
            raise ValueError("depths and widths must have the same, non-zero length")
        self.init_kwargs = dict(
            depths=tuple(depths),
            widths=tuple(widths),
            embed_dim=embed_dim,
            input_size=input_size,
            drop_ratio=drop_ratio,
        )
        self.input_size = input_size
        self.input_layer = nn.Sequential(
            nn.Conv2d(3, widths[0], kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.PReLU(widths[0]),
        )
        units: list[nn.Module] = []
        c_in = widths[0]
        for depth, width in zip(depths, widths, strict=True):
            for k in range(depth):
                units.append(_Unit(c_in, width, stride=2 if k == 0 else 1))
                c_in = width
        side = input_size // 2 ** len(depths)
        # Registered before ``body`` so the state dict lists keys in the reference file's order.
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(c_in),
            nn.Dropout(drop_ratio),
            nn.Flatten(),
            nn.Linear(c_in * side * side, embed_dim),
            nn.BatchNorm1d(embed_dim),
        )
        self.body = nn.Sequential(*units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Faces ``[N, 3, 112, 112]`` in [-1, 1] → unit-norm embeddings ``[N, embed_dim]``."""
        if x.ndim != 4 or x.shape[1:] != (3, self.input_size, self.input_size):
            raise ValueError(
                f"expected [N, 3, {self.input_size}, {self.input_size}], got {list(x.shape)}"
            )
        x = self.output_layer(self.body(self.input_layer(x)))
        return F.normalize(x, dim=1)


def irse50() -> IRSE:
    """IR-SE50 as StyleCLIP's identity loss builds it (randomly initialised)."""
    return IRSE()


def face_crop(images: torch.Tensor, *, size: int = 112) -> torch.Tensor:
    """StyleCLIP's face crop of ``[N, 3, R, R]`` images → ``[N, 3, size, size]``.

    Average-pool to 256 px (unless already 256), crop rows 35:223 and columns 32:220,
    average-pool to ``size`` px.
    """
    if images.shape[-1] != 256 or images.shape[-2] != 256:
        images = F.adaptive_avg_pool2d(images, (256, 256))
    top, bottom, left, right = FACE_CROP_256
    return F.adaptive_avg_pool2d(images[:, :, top:bottom, left:right], (size, size))


class IdentityLoss(nn.Module):
    """``1 − cos`` between ArcFace embeddings of edited images and reference faces.

    Args:
        model: An :class:`IRSE` (frozen, eval mode).
    """

    def __init__(self, model: IRSE) -> None:
        super().__init__()
        self.model = model

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Unit-norm face embeddings ``[N, D]`` of generator images ``[N, 3, R, R]`` in [-1, 1]."""
        return self.model(face_crop(images, size=self.model.input_size))

    def forward(self, images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Per-image loss ``[N]``; ``reference`` holds embeddings ``[N or 1, D]`` (no gradient)."""
        return 1 - (self.embed(images) * reference.detach()).sum(dim=1)
