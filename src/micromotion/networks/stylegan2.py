"""StyleGAN2 generator in plain PyTorch: no C++/CUDA extensions, CPU and CUDA, batched.

The network is the one of Karras et al., "Analyzing and Improving the Image Quality of
StyleGAN" (CVPR 2020), config-e/f with the 'skip' output architecture, as found in the
checkpoints people actually have: NVIDIA's stylegan2-ada-pytorch / stylegan3 pickles and
rosinality's stylegan2-pytorch conversions. Parameters are stored raw and the equalised
learning-rate gains are applied at run time, exactly as both reference implementations do,
so checkpoints map onto this module tensor for tensor.

Two implementations of the modulated convolution are provided:

* ``"fast"`` (default): modulate the *activations* instead of the weights, run one ordinary
  convolution over the whole batch and demodulate the output. This is mathematically the
  same operation and lets the CPU use its dense convolution kernels instead of a grouped
  convolution with one group per sample.
* ``"reference"``: the textbook formulation (per-sample modulated weights, grouped conv,
  explicit zero-insertion FIR resampling). Used as the in-repo speed baseline and to test
  that the fast path computes the same function.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

NoiseMode = Literal["const", "random", "none"]
Impl = Literal["fast", "reference"]

_LRELU_SLOPE = 0.2
_LRELU_GAIN = math.sqrt(2.0)
# The FIR filter of StyleGAN2's resampling; the only one found in released checkpoints.
_RESAMPLE_TAPS = (1.0, 3.0, 3.0, 1.0)
# Bounds for configs read from files, far above any released network (FFHQ: 512 wide, 8 deep).
_MAX_WIDTH = 8192
_MAX_MAPPING_LAYERS = 64


def num_ws_for(img_resolution: int) -> int:
    """Return the number of W+ entries of a skip-architecture generator at a resolution."""
    return 2 * int(math.log2(img_resolution)) - 2


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of a StyleGAN2 generator: everything needed to rebuild it from weights.

    Attributes:
        img_resolution: Output resolution, a power of two in 4..1024 (FFHQ: 1024).
        channels: Feature channels per block, for resolutions 4, 8, ..., ``img_resolution``.
            Config-f at 1024 px (NVIDIA ``channel_base=32768``, rosinality
            ``channel_multiplier=2``) is ``(512,) * 5 + (256, 128, 64, 32)``.
        z_dim: Input latent size (FFHQ: 512).
        w_dim: Intermediate latent size (FFHQ: 512).
        img_channels: Output image channels (3 for RGB).
        mapping_layers: Fully connected layers in the mapping network (8 in the paper; 2 in
            stylegan2-ada's 'auto' configurations).
        mapping_features: Hidden width of the mapping network (defaults to ``w_dim``).
        mapping_lr_mul: Learning-rate multiplier of the mapping network, which is also a
            run-time weight gain (0.01 in every released checkpoint).
        conv_clamp: Clamp of convolution outputs (NVIDIA ``conv_clamp``; ``None`` for the
            converted TF checkpoints such as FFHQ config-f, 256 in many ada trainings).
        use_noise: Whether the synthesis layers have per-pixel noise inputs.
    """

    img_resolution: int = 1024
    channels: tuple[int, ...] = (512, 512, 512, 512, 512, 256, 128, 64, 32)
    z_dim: int = 512
    w_dim: int = 512
    img_channels: int = 3
    mapping_layers: int = 8
    mapping_features: int | None = None
    mapping_lr_mul: float = 0.01
    conv_clamp: float | None = None
    use_noise: bool = True

    def __post_init__(self) -> None:
        # Configs also come from files: check types and sizes before anything is allocated.
        ints = {
            "img_resolution": self.img_resolution,
            "z_dim": self.z_dim,
            "w_dim": self.w_dim,
            "img_channels": self.img_channels,
            "mapping_layers": self.mapping_layers,
        }
        for key, value in ints.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{key} must be an integer, got {value!r}")
        if not isinstance(self.channels, tuple | list) or not all(
            isinstance(c, int) and not isinstance(c, bool) for c in self.channels
        ):
            raise ValueError(f"channels must be a list of integers, got {self.channels!r}")
        if self.mapping_features is not None and not isinstance(self.mapping_features, int):
            raise ValueError(f"mapping_features must be an integer, got {self.mapping_features!r}")
        for key in ("mapping_lr_mul", "conv_clamp"):
            value = getattr(self, key)
            if value is None and key == "conv_clamp":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{key} must be a positive number, got {value!r}")
        if not isinstance(self.use_noise, bool):
            raise ValueError(f"use_noise must be true or false, got {self.use_noise!r}")
        widths = [*self.channels, self.z_dim, self.w_dim, self.mapping_features or 1]
        if max(widths) > _MAX_WIDTH or self.mapping_layers > _MAX_MAPPING_LAYERS:
            raise ValueError(
                f"unreasonably large network (widths up to {_MAX_WIDTH}, "
                f"at most {_MAX_MAPPING_LAYERS} mapping layers)"
            )
        if self.img_channels > 4:
            raise ValueError(f"img_channels must be 1 to 4, got {self.img_channels}")
        res = self.img_resolution
        if res < 4 or res > 1024 or res & (res - 1):
            raise ValueError(f"img_resolution must be a power of two in 4..1024, got {res}")
        expected = int(math.log2(res)) - 1
        if len(self.channels) != expected:
            raise ValueError(
                f"channels must list {expected} values (resolutions 4..{res}), "
                f"got {len(self.channels)}"
            )
        if min(self.channels) < 1 or self.z_dim < 1 or self.w_dim < 1 or self.mapping_layers < 1:
            raise ValueError("channels, z_dim, w_dim and mapping_layers must be positive")
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))

    @property
    def num_ws(self) -> int:
        """Number of W+ entries (18 at 1024 px)."""
        return num_ws_for(self.img_resolution)

    @property
    def resolutions(self) -> tuple[int, ...]:
        """Block resolutions, 4 up to ``img_resolution``."""
        return tuple(2**i for i in range(2, int(math.log2(self.img_resolution)) + 1))

    @classmethod
    def from_channel_base(
        cls,
        img_resolution: int,
        *,
        channel_base: int = 32768,
        channel_max: int = 512,
        **kwargs: Any,
    ) -> GeneratorConfig:
        """Build a config the NVIDIA way: ``min(channel_base // res, channel_max)`` channels."""
        channels = tuple(
            min(channel_base // r, channel_max)
            for r in (2**i for i in range(2, int(math.log2(img_resolution)) + 1))
        )
        return cls(img_resolution=img_resolution, channels=channels, **kwargs)

    @classmethod
    def from_channel_multiplier(
        cls, img_resolution: int, *, channel_multiplier: int = 2, **kwargs: Any
    ) -> GeneratorConfig:
        """Build a config the rosinality way (``channel_multiplier=2`` is config-f)."""
        table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
        channels = tuple(
            table[r] * (channel_multiplier if r >= 64 else 1)
            for r in (2**i for i in range(2, int(math.log2(img_resolution)) + 1))
        )
        return cls(img_resolution=img_resolution, channels=channels, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (inverse of :meth:`from_dict`)."""
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeneratorConfig:
        """Rebuild a config from :meth:`to_dict` output; unknown keys are an error."""
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown generator config keys: {sorted(unknown)}")
        d = dict(d)
        if "channels" in d:
            d["channels"] = tuple(d["channels"])
        return cls(**d)


# ---------------------------------------------------------------------------------------------
# Small functional pieces.


def _bias_act(x: torch.Tensor, bias: torch.Tensor, *, clamp: float | None) -> torch.Tensor:
    """Add a per-channel bias, leaky-ReLU with gain √2, then clamp (NVIDIA's order)."""
    shape = [1, -1] + [1] * (x.ndim - 2)
    x = F.leaky_relu(x + bias.reshape(shape), _LRELU_SLOPE) * _LRELU_GAIN
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def _fir_kernel(device: torch.device | None = None) -> torch.Tensor:
    """Return the normalised separable 2-D FIR of StyleGAN2, ``[4, 4]`` summing to one."""
    k = torch.tensor(_RESAMPLE_TAPS, dtype=torch.float32, device=device)
    k2 = torch.outer(k, k)
    return k2 / k2.sum()


def upfirdn2d_reference(
    x: torch.Tensor, kernel: torch.Tensor, *, up: int = 1, pad: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    """Upsample by zero insertion, pad, then correlate with a 2-D FIR, textbook-style.

    Args:
        x: Input ``[N, C, H, W]``.
        kernel: FIR ``[kh, kw]``; the gain (e.g. ``up**2``) must already be folded in.
        up: Integer upsampling factor.
        pad: Padding ``(before, after)`` applied to both spatial axes after upsampling.

    Returns:
        ``[N, C, H*up + pad0 + pad1 - kh + 1, ...]``.
    """
    n, c, h, w = x.shape
    if up > 1:
        # [N, C, H, 1, W, 1] -> zero-insert -> [N, C, H*up, W*up]
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    # conv2d correlates; flip so that this is a true convolution (the kernel is symmetric anyway).
    weight = kernel.flip([0, 1])[None, None].to(x.dtype).repeat(c, 1, 1, 1)
    return F.conv2d(x, weight, groups=c)


def _upsample2d_fast(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """×2 FIR upsampling as one depthwise transposed conv (polyphase; no zero-inserted copy).

    Equal to ``upfirdn2d_reference(x, kernel * 4, up=2, pad=(2, 1))`` for the symmetric
    StyleGAN2 kernel: the transposed convolution's output is that result shifted by one.
    """
    c = x.shape[1]
    weight = (kernel * 4).to(x.dtype)[None, None].expand(c, 1, -1, -1)
    y = F.conv_transpose2d(x, weight, stride=2, groups=c)  # [N, C, 2H+2, 2W+2]
    return y[:, :, 1:-1, 1:-1]


def _blur_fast(x: torch.Tensor, kernel: torch.Tensor, pad: int) -> torch.Tensor:
    """Depthwise FIR filtering with symmetric zero padding."""
    c = x.shape[1]
    weight = kernel.to(x.dtype)[None, None].expand(c, 1, -1, -1)
    return F.conv2d(x, weight, padding=pad, groups=c)


# ---------------------------------------------------------------------------------------------
# Layers. Parameter names follow NVIDIA's vocabulary so that state dicts read naturally.


class FullyConnected(nn.Module):
    """Equalised-learning-rate linear layer (weight ``[out, in]``, run-time gain)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        lr_mul: float = 1.0,
        bias_init: float = 0.0,
        activation: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)) / lr_mul)
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.bias_gain = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``[N, in]`` to ``[N, out]``."""
        w = self.weight * self.weight_gain
        b = self.bias * self.bias_gain
        if self.activation:
            return _bias_act(x @ w.t(), b, clamp=None)
        return torch.addmm(b.unsqueeze(0), x, w.t())


class MappingNetwork(nn.Module):
    """z → w: 2nd-moment normalisation, then an MLP of leaky-ReLU fully connected layers."""

    w_avg: torch.Tensor  # buffer, registered in __init__

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.z_dim = config.z_dim
        self.w_dim = config.w_dim
        self.num_ws = config.num_ws
        hidden = config.mapping_features or config.w_dim
        features = [config.z_dim] + [hidden] * (config.mapping_layers - 1) + [config.w_dim]
        self.num_layers = config.mapping_layers
        for i in range(config.mapping_layers):
            layer = FullyConnected(
                features[i], features[i + 1], lr_mul=config.mapping_lr_mul, activation=True
            )
            setattr(self, f"fc{i}", layer)
        self.register_buffer("w_avg", torch.zeros(config.w_dim))

    def forward(
        self,
        z: torch.Tensor,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        """Map latents ``z`` ``[N, z_dim]`` to W+ codes ``[N, num_ws, w_dim]``.

        Args:
            z: Input latents.
            truncation_psi: Interpolation toward ``w_avg`` (1 = none, 0.7 = the paper's).
            truncation_cutoff: Truncate only the first this many W+ entries (None = all).

        Returns:
            W+ codes with the same ``w`` broadcast to every entry (then truncated).
        """
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be [N, {self.z_dim}], got {list(z.shape)}")
        x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)  # [N, num_ws, w_dim]
        if truncation_psi != 1:
            w_avg = self.w_avg.to(ws.dtype)
            if truncation_cutoff is None:
                ws = w_avg.lerp(ws, truncation_psi)
            else:
                ws[:, :truncation_cutoff] = w_avg.lerp(ws[:, :truncation_cutoff], truncation_psi)
        return ws


class SynthesisLayer(nn.Module):
    """Modulated 3×3 convolution (optionally ×2 upsampling), noise, bias, leaky ReLU."""

    # Buffers, registered in __init__ (noise_const only when use_noise).
    noise_const: torch.Tensor
    fir: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        w_dim: int,
        resolution: int,
        up: bool,
        use_noise: bool,
        conv_clamp: float | None,
    ) -> None:
        super().__init__()
        self.up = up
        self.resolution = resolution
        self.conv_clamp = conv_clamp
        self.use_noise = use_noise
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels * 9)
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("fir", _fir_kernel(), persistent=False)

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        *,
        noise_mode: NoiseMode,
        impl: Impl,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Apply the layer to ``x`` ``[N, C_in, H, W]`` with style input ``w`` ``[N, w_dim]``.

        ``noise`` (``[N or 1, 1, H, W]``, unscaled) replaces the layer's noise for this call;
        inversion optimises it per image.
        """
        styles = self.affine(w)  # [N, C_in]
        weight = self.weight * self.weight_gain  # [C_out, C_in, 3, 3]
        if noise is not None and self.use_noise:
            noise = noise.to(x.dtype) * self.noise_strength.to(x.dtype)
        else:
            noise = self._noise(x.shape[0], noise_mode, x.device, x.dtype)  # [N|1, 1, H, W]
        if impl == "fast":
            return self._forward_fast(x, styles, weight, noise)
        x = self._modconv_reference(x, styles, weight)
        if noise is not None:
            x = x + noise
        return _bias_act(x, self.bias, clamp=self.conv_clamp)

    def _noise(
        self, n: int, noise_mode: NoiseMode, device: torch.device, dtype: torch.dtype
    ) -> torch.Tensor | None:
        """Return the scaled noise to add, ``[1 or N, 1, H, W]``, or None."""
        if not self.use_noise or noise_mode == "none":
            return None
        res = self.resolution
        if noise_mode == "const":
            noise = self.noise_const.to(dtype)[None, None]
        elif noise_mode == "random":
            noise = torch.randn(n, 1, res, res, device=device, dtype=dtype)
        else:
            raise ValueError(f"noise_mode must be const, random or none, got {noise_mode!r}")
        return noise * self.noise_strength.to(dtype)

    def _forward_fast(
        self,
        x: torch.Tensor,
        styles: torch.Tensor,
        weight: torch.Tensor,
        noise: torch.Tensor | None,
    ) -> torch.Tensor:
        # Demodulation coefficients without materialising per-sample weights:
        # sum_{i,k} (W[o,i,k] s[n,i])^2 = sum_i s[n,i]^2 * sum_k W[o,i,k]^2.
        wsq = weight.square().sum(dim=[2, 3])  # [C_out, C_in]
        dcoefs = (styles.square() @ wsq.t() + 1e-8).rsqrt()  # [N, C_out]
        x = x * styles[:, :, None, None]
        if self.up:
            # Transposed conv with stride 2, then the FIR (pad 1) -- StyleGAN2's upsampling conv.
            x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)  # [N, C_out, 2H+1, 2W+1]
            x = _blur_fast(x, self.fir * 4, pad=1)  # [N, C_out, 2H, 2W]
        else:
            x = F.conv2d(x, weight, padding=1)
        # One fused pass for demodulation, noise, bias and gain: lrelu(g·v) = g·lrelu(v) for
        # g > 0, so √2 is folded into the small operands instead of the big activation.
        shift = (self.bias * _LRELU_GAIN).to(x.dtype)[None, :, None, None]  # [1, C_out, 1, 1]
        if noise is not None:
            shift = shift + noise * _LRELU_GAIN  # [1|N, C_out, H, W]
        x = torch.addcmul(shift, x, (dcoefs * _LRELU_GAIN)[:, :, None, None])
        x = F.leaky_relu_(x, _LRELU_SLOPE)  # in place on a fresh tensor: autograd-safe (slope > 0)
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp, self.conv_clamp)
        return x

    def _modconv_reference(
        self, x: torch.Tensor, styles: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        n, c_in, h, w = x.shape
        c_out = weight.shape[0]
        wmod = weight.unsqueeze(0) * styles[:, None, :, None, None]  # [N, C_out, C_in, 3, 3]
        wmod = wmod * (wmod.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
        x = x.reshape(1, n * c_in, h, w)
        if self.up:
            wt = wmod.transpose(1, 2).reshape(n * c_in, c_out, 3, 3)
            x = F.conv_transpose2d(x, wt, stride=2, groups=n)
            x = x.reshape(n, c_out, *x.shape[2:])
            return upfirdn2d_reference(x, self.fir * 4, pad=(1, 1))
        x = F.conv2d(x, wmod.reshape(n * c_out, c_in, 3, 3), padding=1, groups=n)
        return x.reshape(n, c_out, h, w)


class ToRGB(nn.Module):
    """Modulated 1×1 convolution to RGB, without demodulation."""

    def __init__(
        self, in_channels: int, out_channels: int, *, w_dim: int, conv_clamp: float | None
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, *, impl: Impl) -> torch.Tensor:
        """Map features ``[N, C, H, W]`` to an image residual ``[N, img_channels, H, W]``."""
        styles = self.affine(w) * self.weight_gain  # [N, C]
        if impl == "fast":
            x = F.conv2d(x * styles[:, :, None, None], self.weight)
        else:
            n, c, h, wd = x.shape
            wmod = self.weight.unsqueeze(0) * styles[:, None, :, None, None]  # [N, O, C, 1, 1]
            x = F.conv2d(x.reshape(1, n * c, h, wd), wmod.reshape(-1, c, 1, 1), groups=n)
            x = x.reshape(n, -1, h, wd)
        x = x + self.bias[None, :, None, None]
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp, self.conv_clamp)
        return x


class SynthesisBlock(nn.Module):
    """One resolution of the skip-architecture synthesis network."""

    fir: torch.Tensor  # buffer, registered in __init__

    def __init__(
        self, in_channels: int, out_channels: int, *, resolution: int, config: GeneratorConfig
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.is_first = in_channels == 0
        common: dict[str, Any] = {
            "w_dim": config.w_dim,
            "resolution": resolution,
            "use_noise": config.use_noise,
            "conv_clamp": config.conv_clamp,
        }
        if self.is_first:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=True, **common)
        self.conv1 = SynthesisLayer(out_channels, out_channels, up=False, **common)
        self.torgb = ToRGB(
            out_channels, config.img_channels, w_dim=config.w_dim, conv_clamp=config.conv_clamp
        )
        self.register_buffer("fir", _fir_kernel(), persistent=False)
        # W+ entries consumed: one per conv; the ToRGB shares the next block's first entry.
        self.num_conv = 1 if self.is_first else 2

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        *,
        noise_mode: NoiseMode,
        impl: Impl,
        noise: Mapping[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the block; ``ws`` is ``[N, num_conv + 1, w_dim]``; ``noise`` keyed conv0/conv1."""
        noise = noise or {}
        if self.is_first:
            x = self.const.to(ws.dtype).unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            x = self.conv1(x, ws[:, 0], noise_mode=noise_mode, impl=impl, noise=noise.get("conv1"))
        else:
            assert x is not None
            x = self.conv0(x, ws[:, 0], noise_mode=noise_mode, impl=impl, noise=noise.get("conv0"))
            x = self.conv1(x, ws[:, 1], noise_mode=noise_mode, impl=impl, noise=noise.get("conv1"))
        y = self.torgb(x, ws[:, self.num_conv], impl=impl)
        if img is not None:
            if impl == "fast":
                img = _upsample2d_fast(img, self.fir)
            else:
                img = upfirdn2d_reference(img, self.fir * 4, up=2, pad=(2, 1))
            y = img + y
        return x, y


class SynthesisNetwork(nn.Module):
    """W+ → image: a constant 4×4 input refined block by block up to ``img_resolution``."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.w_dim = config.w_dim
        self.num_ws = config.num_ws
        self.img_resolution = config.img_resolution
        self.resolutions = config.resolutions
        prev = 0
        for res, ch in zip(config.resolutions, config.channels, strict=True):
            setattr(self, f"b{res}", SynthesisBlock(prev, ch, resolution=res, config=config))
            prev = ch

    def noise_shapes(self) -> dict[str, tuple[int, int]]:
        """Names (``"b8.conv0"``...) and ``(H, W)`` of the layers that take noise, in order."""
        shapes = {}
        for res in self.resolutions:
            block: SynthesisBlock = getattr(self, f"b{res}")
            for conv in ("conv0", "conv1"):
                layer = getattr(block, conv, None)
                if layer is not None and layer.use_noise:
                    shapes[f"b{res}.{conv}"] = (res, res)
        return shapes

    def style_affines(self) -> list[tuple[int, str, FullyConnected]]:
        """Every style affine with the W+ entry it reads: ``(entry, "b8.conv0", module)``.

        In synthesis order. Each block's convolutions read consecutive entries and its ToRGB
        reads the entry after them, which the next block's first convolution shares (so the
        last entry feeds only the last ToRGB). SeFa factorises these weights.
        """
        out: list[tuple[int, str, FullyConnected]] = []
        w_idx = 0
        for res in self.resolutions:
            block: SynthesisBlock = getattr(self, f"b{res}")
            convs = ("conv1",) if block.is_first else ("conv0", "conv1")
            for i, conv in enumerate(convs):
                out.append((w_idx + i, f"b{res}.{conv}", getattr(block, conv).affine))
            out.append((w_idx + block.num_conv, f"b{res}.torgb", block.torgb.affine))
            w_idx += block.num_conv  # as in forward(): the ToRGB's entry is shared
        return out

    def forward(
        self,
        ws: torch.Tensor,
        *,
        noise_mode: NoiseMode = "const",
        impl: Impl = "fast",
        noise: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Render W+ codes ``[N, num_ws, w_dim]`` to images ``[N, C, R, R]`` (≈[-1, 1], unclamped).

        Args:
            ws: W+ codes.
            noise_mode: ``"const"`` (the checkpoint's stored noise maps), ``"random"`` (fresh
                Gaussian noise) or ``"none"``.
            impl: ``"fast"`` (default) or ``"reference"``; both compute the same function.
            noise: Explicit unscaled noise maps by layer name (see :meth:`noise_shapes`),
                each broadcastable to ``[N, 1, H, W]``; they override ``noise_mode`` there.

        Returns:
            Images in roughly [-1, 1]; not clamped, so callers decide how to quantise.
        """
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if noise_mode not in ("const", "random", "none"):
            raise ValueError(f"noise_mode must be const, random or none, got {noise_mode!r}")
        if impl not in ("fast", "reference"):
            raise ValueError(f"impl must be fast or reference, got {impl!r}")
        if noise:
            unknown = set(noise) - set(self.noise_shapes())
            if unknown:
                raise ValueError(f"no noise input called {sorted(unknown)}")
        dtype = next(self.parameters()).dtype
        ws = ws.to(dtype)
        x = img = None
        w_idx = 0
        for res in self.resolutions:
            block: SynthesisBlock = getattr(self, f"b{res}")
            block_ws = ws[:, w_idx : w_idx + block.num_conv + 1]
            block_noise = None
            if noise:
                prefix = f"b{res}."
                block_noise = {
                    k[len(prefix) :]: v for k, v in noise.items() if k.startswith(prefix)
                }
            x, img = block(x, img, block_ws, noise_mode=noise_mode, impl=impl, noise=block_noise)
            w_idx += block.num_conv
        assert img is not None
        return img


class Generator(nn.Module):
    """A StyleGAN2 generator with explicit ``mapping`` and ``synthesis`` networks.

    Example:
        >>> G = Generator(GeneratorConfig.from_channel_base(32, channel_base=256, z_dim=8,
        ...                                                 w_dim=8, mapping_layers=2))
        >>> ws = G.mapping(torch.randn(2, G.z_dim), truncation_psi=0.7)  # [2, 8, 8]
        >>> G.synthesis(ws).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        self.z_dim = config.z_dim
        self.w_dim = config.w_dim
        self.num_ws = config.num_ws
        self.img_resolution = config.img_resolution
        self.img_channels = config.img_channels
        self.mapping = MappingNetwork(config)
        self.synthesis = SynthesisNetwork(config)
        # Where the weights came from, filled in by the loaders (format, file, notes).
        self.source: dict[str, Any] = {}

    @property
    def w_avg(self) -> torch.Tensor:
        """The average intermediate latent ``[w_dim]`` that truncation moves toward."""
        return self.mapping.w_avg

    def forward(
        self,
        z: torch.Tensor,
        *,
        truncation_psi: float = 1.0,
        noise_mode: NoiseMode = "const",
    ) -> torch.Tensor:
        """Map ``z`` ``[N, z_dim]`` and render it: ``synthesis(mapping(z))``."""
        return self.synthesis(self.mapping(z, truncation_psi=truncation_psi), noise_mode=noise_mode)

    def fingerprint(self) -> str:
        """Return the sha256 of the network's canonical tensors: its identity.

        Every format is read into the same tensors (our names, float32), so the same network
        from a TensorFlow or PyTorch NVIDIA pickle, a rosinality ``.pt``, an encoder's
        ``decoder.*`` or our ``.safetensors`` gives the same value. The hash covers every
        learned weight and noise constant, but not ``w_avg``: that is a statistic which
        files store differently (a training-time moving average, an encoder's
        ``latent_avg``, or an estimate when a file has none), so it does not tell training
        runs apart. It is computed afresh on every call (a fraction of a second for FFHQ), so
        it is never stale after weights are edited in place.
        """
        state = self.state_dict()
        return state_dict_fingerprint({k: v for k, v in state.items() if k not in NOT_IDENTITY})

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """Load weights (always strictly; see :mod:`micromotion.weights` for formats)."""
        return super().load_state_dict(state_dict, strict=True, assign=assign)


#: State-dict entries that :meth:`Generator.fingerprint` leaves out (statistics, not weights).
NOT_IDENTITY = frozenset({"mapping.w_avg"})


def state_dict_fingerprint(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Return the sha256 over sorted names, dtypes, shapes and little-endian bytes."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{list(t.shape)}\n".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
