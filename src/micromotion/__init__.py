"""micromotion: decode micromotions in StyleGAN latent space and transfer them to any face.

The package follows the paper's three steps (see ARCHITECTURE.md): :mod:`micromotion.anchors`
(step 1), :mod:`micromotion.subspace` (step 2), :mod:`micromotion.render` (step 3), and runs
them end to end in :mod:`micromotion.pipelines`.
"""

from micromotion._version import __version__
from micromotion.errors import CheckpointError, DownloadError, MicromotionError, ParameterError
from micromotion.networks.stylegan2 import Generator, GeneratorConfig
from micromotion.subspace.micromotion import Micromotion
from micromotion.weights.generator import load_generator, save_generator
from micromotion.weights.micromotion import load_micromotion

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
