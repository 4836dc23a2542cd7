"""Write tiny network pickles laid out like NVIDIA's, without NVIDIA's code (a test helper).

NVIDIA's stylegan2-ada-pytorch / stylegan3 pickle every network as a call to
``torch_utils.persistence._reconstruct_persistent_obj(meta)``, where ``meta`` is a plain dict
``{type, version, module_src, class_name, state}`` and ``state`` is the ``torch.nn.Module``'s
``__dict__`` (with ``_init_args`` / ``_init_kwargs`` added). Nested init-kwarg dicts built by
their ``train.py`` are ``dnnlib.util.EasyDict``. This module writes the same opcodes with our
own stand-ins: the embedded ``module_src`` is a short placeholder, not NVIDIA source, and
nothing here imports NVIDIA's packages.

Example::

    write_nvidia_pickle(
        path,
        {"G_ema": NetSpec("Generator", init_kwargs, flat_sd, generator_module_classes(flat_sd))},
        extra={"training_set_kwargs": {"resolution": 32}},
    )
"""

from __future__ import annotations

import copy
import io
import os
import pickle
import types
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

#: What ``module_src`` holds in our pickles: readers must never execute it anyway.
PLACEHOLDER_MODULE_SRC = "# Placeholder written by micromotion's tests; not NVIDIA source.\n"

#: NVIDIA's ``torch_utils.persistence._version`` in both repositories.
PERSISTENCE_VERSION = 6

#: Last key components that NVIDIA registers as buffers (checked against real pickles of
#: stylegan2-ada-pytorch and stylegan3 networks: G, D, AugmentPipe); all others are parameters.
NVIDIA_BUFFER_NAMES = frozenset(
    {
        "resample_filter",  # SynthesisBlock/SynthesisLayer/Conv2dLayer/DiscriminatorBlock FIR
        "w_avg",  # MappingNetwork
        "noise_const",  # SynthesisLayer
        "p",  # AugmentPipe
        "Hz_geom",  # AugmentPipe
        "Hz_fbank",  # AugmentPipe
        "transform",  # StyleGAN3 SynthesisInput
        "freqs",  # StyleGAN3 SynthesisInput
        "phases",  # StyleGAN3 SynthesisInput
        "magnitude_ema",  # StyleGAN3 SynthesisLayer
        "up_filter",  # StyleGAN3 SynthesisLayer
        "down_filter",  # StyleGAN3 SynthesisLayer
    }
)


@dataclass(frozen=True)
class NetSpec:
    """One network to write as an NVIDIA persistent object.

    Attributes:
        class_name: Class name of the root module, e.g. ``"Generator"``.
        init_kwargs: The root's constructor kwargs (nested dicts are written as
            ``dnnlib.util.EasyDict`` when ``easydict`` is true, as NVIDIA's ``train.py`` makes
            them).
        state_dict: Flat dotted tensor names → tensors, as ``module.state_dict()`` gives them;
            their order within each module is kept.
        module_classes: Dotted module path → class name for every submodule (``""`` is the
            root and defaults to ``class_name``). Every tensor's module must be listed; modules
            without tensors may be listed too. Their order is the registration order (hence
            the ``state_dict()`` order); :func:`generator_module_classes` follows the
            state dict's.
        buffers: Flat names of ``state_dict`` entries to store as buffers; ``None`` picks those
            whose last component is in :data:`NVIDIA_BUFFER_NAMES`. The rest are parameters.
        non_persistent_buffers: Flat name → tensor of extra buffers kept out of
            ``state_dict()`` (registered with ``persistent=False``).
        init_args: The root's positional constructor args.
        submodule_kwargs: Module path → that submodule's init kwargs (default ``{}``).
        submodule_args: Module path → that submodule's positional init args (default ``()``;
            NVIDIA passes e.g. ``SynthesisBlock(in_channels, out_channels, ...)``).
        attributes: Module path → extra plain attributes for its ``__dict__``.
        module_src: The source text to embed.
        easydict: Write nested dicts of init kwargs as ``dnnlib.util.EasyDict``.
    """

    class_name: str
    init_kwargs: Mapping[str, Any] = field(default_factory=dict)
    state_dict: Mapping[str, torch.Tensor] = field(default_factory=dict)
    module_classes: Mapping[str, str] = field(default_factory=dict)
    buffers: Collection[str] | None = None
    non_persistent_buffers: Mapping[str, torch.Tensor] = field(default_factory=dict)
    init_args: tuple[Any, ...] = ()
    submodule_kwargs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    submodule_args: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    attributes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    module_src: str = PLACEHOLDER_MODULE_SRC
    easydict: bool = True


def generator_module_classes(state_dict: Mapping[str, torch.Tensor]) -> dict[str, str]:
    """Return NVIDIA's StyleGAN2 class names for every module path in a generator state dict.

    Args:
        state_dict: Flat NVIDIA generator keys (``mapping.fc0.weight``, ``synthesis.b4.const``…).

    Returns:
        ``{"": "Generator", "mapping": "MappingNetwork", "synthesis.b4": "SynthesisBlock", …}``.
    """
    leaf = {
        "conv0": "SynthesisLayer",
        "conv1": "SynthesisLayer",
        "torgb": "ToRGBLayer",
        "skip": "Conv2dLayer",
        "affine": "FullyConnectedLayer",
        "embed": "FullyConnectedLayer",
    }
    out = {"": "Generator"}
    for key in state_dict:
        parts = key.split(".")[:-1]
        for depth in range(1, len(parts) + 1):
            path, last = ".".join(parts[:depth]), parts[depth - 1]
            if path == "mapping":
                out[path] = "MappingNetwork"
            elif path == "synthesis":
                out[path] = "SynthesisNetwork"
            elif depth == 2 and parts[0] == "synthesis":
                out[path] = "SynthesisBlock"
            elif depth == 2 and parts[0] == "mapping":
                out[path] = "FullyConnectedLayer"
            elif last in leaf:
                out[path] = leaf[last]
            else:
                raise ValueError(f"no NVIDIA class known for module {path!r} (from {key!r})")
    return out


def write_nvidia_pickle(
    path: str | os.PathLike[str],
    networks: Mapping[str, NetSpec | Any],
    *,
    extra: Mapping[str, Any] | None = None,
    protocol: int = 4,
) -> Path:
    """Write ``{**networks, **extra}`` as an NVIDIA-style network pickle.

    Args:
        path: Destination file.
        networks: Top-level key → :class:`NetSpec` (other values, e.g. ``None`` for an absent
            ``augment_pipe``, are pickled as they are).
        extra: More top-level entries such as ``training_set_kwargs`` (plain data).
        protocol: Pickle protocol; NVIDIA's files use the default of their Python (3 or 4).

    Returns:
        The path written.
    """
    path = Path(path)
    path.write_bytes(nvidia_pickle_bytes(networks, extra=extra, protocol=protocol))
    return path


def nvidia_pickle_bytes(
    networks: Mapping[str, NetSpec | Any],
    *,
    extra: Mapping[str, Any] | None = None,
    protocol: int = 4,
) -> bytes:
    """Return the bytes :func:`write_nvidia_pickle` would write."""
    extra = dict(extra or {})
    overlap = set(networks) & set(extra)
    if overlap:
        raise ValueError(f"keys given both as networks and extra: {sorted(overlap)}")
    data = {k: _build(v) if isinstance(v, NetSpec) else v for k, v in networks.items()}
    data.update(extra)
    buf = io.BytesIO()
    _Pickler(buf, protocol).dump(data)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Stand-ins pickled under NVIDIA's global names.


def _reconstruct_stub(meta: Any) -> Any:  # pragma: no cover - only its name is pickled
    raise RuntimeError("stand-in for torch_utils.persistence._reconstruct_persistent_obj")


class _EasyDictStub(dict):
    """Pickled as ``dnnlib.util.EasyDict`` (NEWOBJ + SETITEMS, like the real dict subclass)."""


_GLOBAL_NAMES: dict[int, tuple[str, str]] = {
    id(_reconstruct_stub): ("torch_utils.persistence", "_reconstruct_persistent_obj"),
    id(_EasyDictStub): ("dnnlib.util", "EasyDict"),
}


class _Persistent:
    """Reduces exactly as NVIDIA's ``persistent_class`` decorator does."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reconstruct_stub, (self.meta,))


class _Pickler(pickle._Pickler):
    """The pure-Python pickler, naming our stand-ins by NVIDIA's module paths.

    The C pickler insists that a global's name imports back to the same object, which would
    need NVIDIA's packages installed.
    """

    def save_global(self, obj: Any, name: str | None = None) -> None:
        alias = _GLOBAL_NAMES.get(id(obj))
        if alias is None:
            super().save_global(obj, name)
            return
        module, qualname = alias
        if self.proto >= 4:
            self.save(module)
            self.save(qualname)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode())
        self.memoize(obj)

    # The base class dispatches functions straight to its own save_global, not the override.
    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]
    dispatch[types.FunctionType] = save_global


def _easydicts(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _EasyDictStub({k: _easydicts(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_easydicts(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_easydicts(v) for v in value)
    return value


def _build(spec: NetSpec) -> _Persistent:
    classes = {"": spec.class_name, **dict(spec.module_classes)}
    buffer_names = (
        {k for k in spec.state_dict if k.rsplit(".", 1)[-1] in NVIDIA_BUFFER_NAMES}
        if spec.buffers is None
        else set(spec.buffers)
    )
    unknown = buffer_names - set(spec.state_dict)
    if unknown:
        raise ValueError(f"buffers not in the state dict: {sorted(unknown)}")

    # Submodules are registered in module_classes order (parents first); a tensor whose
    # module is not listed lands in `missing`.
    owners = [p.split(".") for p in classes if p]
    owners += [k.split(".")[:-1] for k in [*spec.state_dict, *spec.non_persistent_buffers]]
    order = list(
        dict.fromkeys(["", *(".".join(o[:d]) for o in owners for d in range(1, len(o) + 1))])
    )
    missing = [p for p in order if p not in classes]
    if missing:
        raise ValueError(f"module_classes lacks modules: {missing}")

    states = {p: _module_state(p, spec) for p in order}
    for key, tensor in spec.state_dict.items():
        owner, _, name = key.rpartition(".")
        state = states[owner]
        if key in buffer_names:
            state["_buffers"][name] = tensor.detach().clone()
        else:
            state["_parameters"][name] = torch.nn.Parameter(
                tensor.detach().clone(), requires_grad=False
            )
    for key, tensor in spec.non_persistent_buffers.items():
        owner, _, name = key.rpartition(".")
        states[owner]["_buffers"][name] = tensor.detach().clone()
        states[owner]["_non_persistent_buffers_set"].add(name)

    # meta["state"] is the same dict as states[p], so children can be linked in afterwards,
    # in `order` (which fixes _modules order, hence state_dict() order).
    objects = {
        p: _Persistent(
            {
                "type": "class",
                "version": PERSISTENCE_VERSION,
                "module_src": spec.module_src,
                "class_name": classes[p],
                "state": states[p],
            }
        )
        for p in order
    }
    for p in order[1:]:
        parent, _, name = p.rpartition(".")
        states[parent]["_modules"][name] = objects[p]
    return objects[""]


def _module_state(path: str, spec: NetSpec) -> dict[str, Any]:
    """A ``__dict__`` like an evaluated, frozen NVIDIA module has under the running torch."""
    # Copy a fresh module's bookkeeping (hook dicts etc.) so the layout follows torch's.
    state = copy.deepcopy(torch.nn.Module().__dict__)
    state["training"] = False
    state.update(dict(spec.attributes.get(path, {})))
    if path:
        kwargs: Mapping[str, Any] = spec.submodule_kwargs.get(path, {})
        args = tuple(spec.submodule_args.get(path, ()))
    else:
        kwargs, args = spec.init_kwargs, tuple(spec.init_args)
    kwargs = dict(kwargs)
    if spec.easydict:
        # Their train.py passes EasyDict values; the top-level kwargs dict itself is plain.
        kwargs = {k: _easydicts(v) for k, v in kwargs.items()}
    state["_init_args"] = copy.deepcopy(args)
    state["_init_kwargs"] = copy.deepcopy(kwargs)
    return state


__all__ = [
    "NVIDIA_BUFFER_NAMES",
    "PLACEHOLDER_MODULE_SRC",
    "NetSpec",
    "generator_module_classes",
    "nvidia_pickle_bytes",
    "write_nvidia_pickle",
]
