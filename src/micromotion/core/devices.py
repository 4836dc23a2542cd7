"""Devices by name: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, checked against this machine."""

from __future__ import annotations

import torch

from micromotion.errors import ParameterError


def resolve_device(name: str | torch.device) -> torch.device:
    """Turn ``auto``/``cpu``/``cuda[:i]`` into a device, with a clear error if unavailable.

    Args:
        name: A device name, or a :class:`torch.device` (checked the same way).

    Raises:
        ParameterError: For an unknown name, or a CUDA device this machine does not have.
    """
    if isinstance(name, torch.device):
        device = name
        name = str(name)
    elif name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(name)
        except RuntimeError:
            raise ParameterError("device", f"{name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ParameterError("device", f"{name}: use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ParameterError("device", f"{name}: CUDA is not available on this machine")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ParameterError(
            "device", f"{name}: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    return device
