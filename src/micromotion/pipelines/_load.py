"""Loading what a pipeline needs, once: a generator given as a spec or as a loaded network."""

from __future__ import annotations

import os

import torch

from micromotion.core.devices import resolve_device
from micromotion.networks.stylegan2 import Generator
from micromotion.weights.generator import load_generator

GeneratorSpec = str | os.PathLike[str] | Generator
"""A checkpoint file, a zoo name, or a generator already loaded (batch jobs load once)."""


def open_generator(generator: GeneratorSpec, device: str | torch.device) -> tuple[Generator, str]:
    """The generator and the spec to record for it in provenance.

    Args:
        generator: A checkpoint file, a zoo name, or a loaded generator (used as it is, on its
            own device).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` for a generator that is loaded here.
    """
    if isinstance(generator, Generator):
        return generator, str(generator.source.get("file", "in-memory generator"))
    return load_generator(generator, device=resolve_device(device)), str(generator)
