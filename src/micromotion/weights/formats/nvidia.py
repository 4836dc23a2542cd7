"""NVIDIA stylegan2-ada-pytorch / stylegan3-repo StyleGAN2 generators (``G_ema`` in a ``.pkl``).

The pickle is read by :mod:`.nvidia_pickle`'s restricted unpickler, which rebuilds data only;
the source code these files embed is never run. The state dict already uses our names.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch

from micromotion.errors import CheckpointError
from micromotion.networks.stylegan2 import Generator, GeneratorConfig, _fir_kernel
from micromotion.weights.formats._build import build, check_fir


def read_nvidia(path: Path) -> Generator:
    """Read an NVIDIA ``.pkl`` as a generator: PyTorch era (``G_ema``) or TensorFlow (``Gs``)."""
    from micromotion.weights.formats import nvidia_pickle as pkl

    data = pkl.unpickle(path)
    if pkl.is_tensorflow(data):
        from micromotion.weights.formats.tensorflow import from_tensorflow

        return from_tensorflow(data, path)
    return from_nvidia(pkl.generator_record(pkl.nvidia_networks(data, path), path), path)


_NVIDIA_FIR_KEY = re.compile(r"(^|\.)resample_filter$")


def nvidia_state_dict(G: Generator) -> dict[str, torch.Tensor]:
    """Return ``G``'s weights with NVIDIA's key names, FIR buffers included (for tests/export)."""
    sd = {k: v.detach().clone() for k, v in G.state_dict().items()}
    for res in G.config.resolutions:
        sd[f"synthesis.b{res}.resample_filter"] = _fir_kernel()
        if res > 4:
            sd[f"synthesis.b{res}.conv0.resample_filter"] = _fir_kernel()
        sd[f"synthesis.b{res}.conv1.resample_filter"] = _fir_kernel()
    return sd


def nvidia_init_kwargs(G: Generator) -> dict[str, Any]:
    """Return NVIDIA ``Generator`` init kwargs describing ``G`` (for tests/export)."""
    c = G.config
    return {
        "z_dim": c.z_dim,
        "c_dim": 0,
        "w_dim": c.w_dim,
        "img_resolution": c.img_resolution,
        "img_channels": c.img_channels,
        "mapping_kwargs": {
            "num_layers": c.mapping_layers,
            "layer_features": c.mapping_features,
            "lr_multiplier": c.mapping_lr_mul,
        },
        "synthesis_kwargs": {
            "channel_base": c.channels[-1] * c.img_resolution,
            "channel_max": max(c.channels),
            "num_fp16_res": 0,
            "conv_clamp": c.conv_clamp,
            "architecture": "skip",
            "use_noise": c.use_noise,
        },
    }


def from_nvidia(record: Any, path: Path) -> Generator:
    """Build a generator from an unpickled NVIDIA generator record.

    Args:
        record: The ``G_ema`` record from :func:`.nvidia_pickle.load_nvidia_generator_record`.
        path: The file it came from, for error messages.

    Raises:
        CheckpointError: If the generator is of a kind not supported or incomplete.
    """
    kwargs = dict(record.init_kwargs or {})
    if record.init_args:
        raise CheckpointError(f"{path}: positional init args in the pickle are not supported")
    mapping_kwargs = dict(kwargs.get("mapping_kwargs") or {})
    # stylegan2-ada nests the synthesis settings in synthesis_kwargs; the stylegan3 repo's
    # StyleGAN2 Generator takes them (channel_base, conv_clamp, ...) as top-level kwargs.
    synthesis_kwargs = {**kwargs, **dict(kwargs.get("synthesis_kwargs") or {})}
    if int(kwargs.get("c_dim", 0) or 0) != 0:
        raise CheckpointError(f"{path}: conditional generators (c_dim > 0) are not supported yet")
    architecture = synthesis_kwargs.get("architecture", "skip")
    if architecture != "skip":
        raise CheckpointError(
            f"{path}: synthesis architecture {architecture!r} is not supported yet (only 'skip')"
        )
    sd = record.state_dict()
    for name in [k for k in sd if _NVIDIA_FIR_KEY.search(k)]:
        check_fir(name, sd.pop(name), 1.0, path)
    try:
        img_resolution = int(kwargs["img_resolution"])
        resolutions = [2**i for i in range(2, int(math.log2(img_resolution)) + 1)]
        channels = tuple(int(sd[f"synthesis.b{r}.conv1.weight"].shape[0]) for r in resolutions)
        num_layers = int(mapping_kwargs.get("num_layers", 8))
        w_dim = int(kwargs["w_dim"])
        hidden = int(sd["mapping.fc0.weight"].shape[0]) if num_layers > 1 else w_dim
        config = GeneratorConfig(
            img_resolution=img_resolution,
            channels=channels,
            z_dim=int(kwargs["z_dim"]),
            w_dim=w_dim,
            img_channels=int(kwargs.get("img_channels", 3)),
            mapping_layers=num_layers,
            mapping_features=None if hidden == w_dim else hidden,
            mapping_lr_mul=float(mapping_kwargs.get("lr_multiplier", 0.01)),
            conv_clamp=synthesis_kwargs.get("conv_clamp"),
            use_noise=bool(synthesis_kwargs.get("use_noise", True)),
        )
    except KeyError as exc:
        raise CheckpointError(f"{path}: incomplete NVIDIA generator (missing {exc})") from exc
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: unsupported NVIDIA generator ({exc})") from exc
    # NVIDIA's mapping network always tracks w_avg, so a missing one is a broken file.
    G = build(config, sd, path)
    G.source = {"format": "nvidia-pkl", "class": record.class_name, "w_avg": "checkpoint"}
    return G
