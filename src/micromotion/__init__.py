"""micromotion: decode micromotions in StyleGAN latent space and transfer them to any face.

The package follows the paper's three steps (see ARCHITECTURE.md): :mod:`micromotion.anchors`
(step 1), :mod:`micromotion.subspace` (step 2), :mod:`micromotion.render` (step 3), and runs
them end to end in :mod:`micromotion.pipelines`.

The names below load on first use, so ``import micromotion`` (and the command line's start)
does not wait for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from micromotion._version import __version__
from micromotion.errors import CheckpointError, DownloadError, MicromotionError, ParameterError

if TYPE_CHECKING:
    from micromotion.networks.stylegan2 import Generator, GeneratorConfig
    from micromotion.subspace.micromotion import Micromotion
    from micromotion.weights.generator import load_generator, save_generator
    from micromotion.weights.micromotion import load_micromotion

_LAZY = {
    "Generator": "micromotion.networks.stylegan2",
    "GeneratorConfig": "micromotion.networks.stylegan2",
    "Micromotion": "micromotion.subspace.micromotion",
    "load_generator": "micromotion.weights.generator",
    "save_generator": "micromotion.weights.generator",
    "load_micromotion": "micromotion.weights.micromotion",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'micromotion' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "CheckpointError",
    "DownloadError",
    "Generator",
    "GeneratorConfig",
    "Micromotion",
    "MicromotionError",
    "ParameterError",
    "__version__",
    "load_generator",
    "load_micromotion",
    "save_generator",
]
