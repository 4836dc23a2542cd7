"""Options and helpers shared by CLI commands."""

from __future__ import annotations

from typing import Any

import click
import torch

from micromotion.errors import MicromotionError


def decomposition_options(func: Any) -> Any:
    """``--rank``, ``--method``, ``--layers`` and ``--name``: how anchors become a micromotion."""
    options = [
        click.option(
            "--rank", default="4", show_default=True, help="Low rank k (the paper: 4) or auto."
        ),
        click.option(
            "--method",
            type=click.Choice(["endpoints", "slope", "robust-slope"]),
            default=None,
            help="How to read the direction off the denoised anchors  [default: library's]",
        ),
        click.option(
            "--layers", default=None, metavar="LIST", help="Layers the edit moves, e.g. 0-7."
        ),
        click.option("--name", default=None, help="Name to record (default: the output's stem)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def parse_rank(text: str) -> int | str:
    """Parse ``--rank``: a positive integer or ``auto``."""
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise MicromotionError(f"--rank {text!r}: expected an integer or auto") from None
    if value < 1:
        raise MicromotionError(f"--rank {text!r}: must be at least 1")
    return value


def resolve_device(name: str) -> torch.device:
    """Turn ``auto``/``cpu``/``cuda[:i]`` into a device, with a clear error if unavailable."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise MicromotionError(f"--device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise MicromotionError(f"--device {name}: use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise MicromotionError(f"--device {name}: CUDA is not available on this machine")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise MicromotionError(
            f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    return device


def device_option(func: Any) -> Any:
    """The ``--device`` option."""
    return click.option(
        "--device",
        default="auto",
        show_default=True,
        metavar="DEVICE",
        help="auto, cpu, cuda or cuda:N.",
    )(func)


def truncation_option(func: Any) -> Any:
    """The ``--truncation`` option (psi toward the average face)."""
    return click.option(
        "--truncation",
        type=click.FloatRange(0.0, 2.0),
        default=0.7,
        show_default=True,
        help="Truncation psi toward the average face (0.7: the paper's start faces).",
    )(func)


DEFAULT_GENERATOR = "ffhq"
"""The generator ``apply`` uses when none is named: the paper's FFHQ 1024 px StyleGAN2."""


def generator_option(func: Any = None, *, default: str | None = None) -> Any:
    """The ``--generator`` option; required unless a ``default`` zoo name is given."""

    def decorate(f: Any) -> Any:
        return click.option(
            "--generator",
            "generator_spec",
            required=default is None,
            default=default,
            show_default=default is not None,
            metavar="SPEC",
            help="Checkpoint file (.pkl, .pt, .safetensors) or zoo name "
            "(see `micromotion zoo list`).",
        )(f)

    return decorate(func) if func is not None else decorate
