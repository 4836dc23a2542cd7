"""LPIPS-VGG v0.1 weights: torchvision's VGG16 trunk and LPIPS's linear heads, from the zoo.

* ``vgg16-imagenet``: torchvision's ``vgg16-397923af.pth``; its ``classifier.*`` keys are
  recognised and dropped.
* ``lpips-vgg-v0.1``: LPIPS's calibrated linear layers, the file the ``lpips`` package ships
  as ``weights/v0.1/vgg.pth`` (keys ``lin0.model.1.weight`` ... ``lin4.model.1.weight``).

Both are read with :func:`micromotion.weights.state.load_torch_file` (``weights_only=True``)
and checked key by key and shape by shape (:func:`~micromotion.weights.state.check_state_dict`).
:func:`lpips_available` tells a caller, without any network access, whether LPIPS can be
loaded or the pixel loss should be used instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from micromotion import hub
from micromotion.errors import MicromotionError
from micromotion.networks.lpips import LPIPS
from micromotion.weights.assets import fetch_checked
from micromotion.weights.state import as_state_dict, check_state_dict, load_torch_file

__all__ = ["LIN_ENTRY", "VGG16_ENTRY", "load_lpips", "lpips_available"]

VGG16_ENTRY = "vgg16-imagenet"
"""Zoo name of torchvision's VGG16 ImageNet weights (the LPIPS trunk)."""
LIN_ENTRY = "lpips-vgg-v0.1"
"""Zoo name of the LPIPS v0.1 linear layers for the VGG trunk."""


# Keys of torchvision's full vgg16() state dict that the feature extractor does not use.
_TORCHVISION_CLASSIFIER = frozenset(
    f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")
)


def lpips_available(*, registry: hub.Zoo | None = None) -> bool:
    """True if both LPIPS weight files are in the zoo cache (no network, no hashing).

    Callers can use LPIPS when this is true and fall back to the pixel loss with a warning
    otherwise. The files are verified by :func:`load_lpips`, not here.

    Args:
        registry: Registry to look in (default: :data:`micromotion.hub.DEFAULT_ZOO`).
    """
    reg = registry if registry is not None else hub.default_registry()
    names = (VGG16_ENTRY, LIN_ENTRY)
    return all(name in reg and hub.is_cached(reg.get(name, kind="lpips")) for name in names)


def load_lpips(
    *,
    device: torch.device | str = "cpu",
    progress: bool = True,
    vgg_path: str | os.PathLike[str] | None = None,
    lin_path: str | os.PathLike[str] | None = None,
    registry: hub.Zoo | None = None,
) -> LPIPS:
    """Build LPIPS-VGG v0.1 with its published weights.

    Each file is taken from the given path, or else fetched through the zoo (downloaded on
    first use, sha256-checked on every use). Both are read with ``weights_only=True`` and
    checked key by key and shape by shape.

    Args:
        device: Where to put the model.
        progress: Show a progress bar while downloading.
        vgg_path: A local copy of torchvision's ``vgg16-397923af.pth`` (or any state dict
            with its ``features.*`` keys); default: the ``vgg16-imagenet`` zoo entry.
        lin_path: A local copy of LPIPS's ``weights/v0.1/vgg.pth``; default: the
            ``lpips-vgg-v0.1`` zoo entry.
        registry: Registry to fetch from (default: :data:`micromotion.hub.DEFAULT_ZOO`).

    Returns:
        The frozen model, in eval mode, on ``device``.

    Raises:
        DownloadError: If a file must be downloaded and cannot be (the one-line message says
            where to save a copy fetched by hand).
        MicromotionError: If a file is missing, not plain weights, or does not fit.
    """
    # The 7 kB file first: a problem with it shows before the 528 MB one is downloaded.
    if lin_path is None:
        lin_path = fetch_checked(LIN_ENTRY, registry=registry, kind="lpips", progress=progress)
    model = LPIPS()
    expected = model.state_dict()
    lin_state = _load_lin_state(lin_path, expected)
    if vgg_path is None:
        vgg_path = fetch_checked(VGG16_ENTRY, registry=registry, kind="lpips", progress=progress)
    vgg_state = _load_vgg_state(vgg_path, expected)
    model.load_state_dict({**vgg_state, **lin_state}, strict=True)
    return model.to(device)


def _load_vgg_state(
    path: str | os.PathLike[str], expected: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Read a torchvision VGG16 state dict; return it under our ``vgg.`` prefix."""
    what = "VGG16 weights (torchvision layout)"
    state = as_state_dict(load_torch_file(path, what=what, mmap=True), path, what=what)
    want = {k.removeprefix("vgg."): v for k, v in expected.items() if k.startswith("vgg.")}
    # The classifier of a full torchvision checkpoint is known and dropped; anything else
    # that does not belong is an error.
    state = {k: v for k, v in state.items() if k not in _TORCHVISION_CLASSIFIER}
    check_state_dict(state, want, path, problem=f"not {what}")
    return {f"vgg.{k}": v for k, v in state.items()}


def _load_lin_state(
    path: str | os.PathLike[str], expected: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Read LPIPS's linear layers (``lin{k}.model.1.weight``) and check they are >= 0."""
    what = "LPIPS v0.1 VGG linear weights"
    state = as_state_dict(load_torch_file(path, what=what, mmap=True), path, what=what)
    want = {k: v for k, v in expected.items() if k.startswith("lin")}
    check_state_dict(state, want, path, problem=f"not {what}")
    for key, value in state.items():
        if (value < 0).any():
            raise MicromotionError(f"{path}: not {what}: {key} has negative weights")
    return state
