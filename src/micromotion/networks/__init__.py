"""Network definitions."""

from micromotion.networks.stylegan2 import Generator, GeneratorConfig

__all__ = ["Generator", "GeneratorConfig"]
