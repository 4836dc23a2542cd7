"""micromotion: decode micromotions in StyleGAN latent space and transfer them to any face."""

from micromotion._version import __version__
from micromotion.checkpoints import load_generator, save_generator
from micromotion.errors import CheckpointError, DownloadError, MicromotionError
from micromotion.networks.stylegan2 import Generator, GeneratorConfig

__all__ = [
    "CheckpointError",
    "DownloadError",
    "Generator",
    "GeneratorConfig",
    "MicromotionError",
    "__version__",
    "load_generator",
    "save_generator",
]
