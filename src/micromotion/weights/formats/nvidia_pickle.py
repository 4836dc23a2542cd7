"""Read NVIDIA StyleGAN2 ``.pkl`` network pickles as data, never running the code they embed.

NVIDIA's stylegan2-ada-pytorch and stylegan3 repositories pickle their networks with a class
decorator that stores the source code of each network's Python module in the pickle; loading
such a file with :func:`pickle.load` *executes* that source. This module reads the same files
with a restricted unpickler instead:

* ``find_class`` hands out only an explicit allow-list of data constructors (containers, the
  tensor rebuild functions, numpy scalars and arrays). Every other global — ``os.system``,
  ``builtins.eval``, NVIDIA's network classes — is refused with a :class:`CheckpointError`.
* NVIDIA's ``_reconstruct_persistent_obj`` hook is replaced by a function that turns the
  recorded metadata (class name, module source, ``__dict__`` state) into a
  :class:`PersistentRecord`. The module source is hashed, never executed.
* Tensor storages, which a plain pickle stores as nested ``torch.save`` blobs, are read with
  ``torch.load(..., weights_only=True)``.

Layout of one persistent object in a pickle, as written by NVIDIA's ``persistence`` module::

    _reconstruct_persistent_obj({
        "type": "class", "version": 6, "module_src": "<whole .py file>",
        "class_name": "Generator",
        "state": {  # the torch.nn.Module's __dict__
            "training": False, "_parameters": {...}, "_buffers": {...},
            "_non_persistent_buffers_set": set(), "_modules": {...}, <hook dicts>,
            "z_dim": 512, ...,  # plain attributes set in __init__
            "_init_args": (), "_init_kwargs": {...},
        },
    })
"""

from __future__ import annotations

import _codecs
import collections
import hashlib
import io
import os
import pickle
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from micromotion.errors import CheckpointError

#: Top-level key of the exponential-moving-average generator, the one NVIDIA's tools use.
DEFAULT_GENERATOR_KEY = "G_ema"

_MAX_LISTED = 8


class _Refused(Exception):
    """Raised inside the unpickler; the message is completed with the file name by the caller."""


# ---------------------------------------------------------------------------------------------
# Records.


@dataclass(frozen=True, eq=False)
class PersistentRecord:
    """One network (``torch.nn.Module``) from an NVIDIA pickle, as plain data.

    The dicts are not copied on access; treat them as read-only.

    Attributes:
        class_name: The class's name in its module, e.g. ``"Generator"`` or ``"SynthesisLayer"``
            (for a plain ``torch.nn`` container: ``"ModuleList"`` etc.).
        module_src_sha256: sha256 of the embedded module source (UTF-8), identifying the code
            version that wrote the file; ``None`` for plain ``torch.nn`` containers, which carry
            no source.
        init_args: Positional arguments the network was constructed with.
        init_kwargs: Keyword arguments the network was constructed with, as plain nested
            dicts (NVIDIA's ``EasyDict`` becomes ``dict``, numpy scalars become Python numbers).
        attributes: The other public attributes of the module's ``__dict__`` (``z_dim``,
            ``block_resolutions``, …), converted like ``init_kwargs``; numpy arrays are kept.
        children: Submodules by attribute name, in registration order.
        parameters: Parameters by name (``None`` entries such as a disabled bias are left out).
        buffers: All buffers by name, non-persistent ones included.
        non_persistent_buffers: Names of buffers that ``torch.nn.Module.state_dict`` skips.
    """

    class_name: str
    module_src_sha256: str | None = None
    init_args: tuple[Any, ...] = ()
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    children: dict[str, PersistentRecord] = field(default_factory=dict)
    parameters: dict[str, torch.Tensor] = field(default_factory=dict)
    buffers: dict[str, torch.Tensor] = field(default_factory=dict)
    non_persistent_buffers: frozenset[str] = frozenset()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Return flat dotted keys exactly as ``module.state_dict()`` would.

        Parameters come first, then persistent buffers, then each child's entries under its
        name, in registration order (the order ``torch.nn.Module`` uses).
        """
        out: dict[str, torch.Tensor] = {}
        for path, record in self.named_records():
            prefix = f"{path}." if path else ""
            for name, tensor in record.parameters.items():
                out[prefix + name] = tensor
            for name, tensor in record.buffers.items():
                if name not in record.non_persistent_buffers:
                    out[prefix + name] = tensor
        return out

    def named_records(self, prefix: str = "") -> Iterator[tuple[str, PersistentRecord]]:
        """Yield ``(dotted path, record)`` for this record and every descendant, pre-order."""
        yield prefix, self
        for name, child in self.children.items():
            yield from child.named_records(f"{prefix}.{name}" if prefix else name)

    def get_record(self, path: str) -> PersistentRecord | None:
        """Return the descendant at dotted ``path`` (``""`` is this record), or ``None``."""
        record: PersistentRecord | None = self
        for part in path.split(".") if path else []:
            record = record.children.get(part) if record is not None else None
        return record

    def is_stylegan3_generator(self) -> bool:
        """Tell whether this is a StyleGAN3 (alias-free) generator.

        StyleGAN3's synthesis network starts from a ``SynthesisInput`` layer of Fourier
        features (``synthesis.input.freqs``) instead of StyleGAN2's learned constant; both
        NVIDIA repositories name their generator class ``Generator``.
        """
        if self.class_name != "Generator":
            return False
        if any(r.class_name == "SynthesisInput" for _, r in self.named_records()):
            return True
        synthesis_input = self.get_record("synthesis.input")
        return synthesis_input is not None and "freqs" in synthesis_input.buffers


# ---------------------------------------------------------------------------------------------
# Safe stand-ins for the globals a network pickle names.


class _EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a plain dict (converted to ``dict`` afterwards)."""


class _TorchModuleStub:
    """Stand-in for a plain ``torch.nn`` container: keeps its pickled ``__dict__`` as data."""

    torch_class_name: ClassVar[str] = "Module"

    def __setstate__(self, state: Any) -> None:
        # Called by the BUILD opcode instead of torch.nn.Module.__setstate__.
        self.pickled_state = state


def _torch_module_stub(name: str) -> type[_TorchModuleStub]:
    return type(name, (_TorchModuleStub,), {"torch_class_name": name})


def _safe_reconstructor(cls: Any, base: Any, state: Any) -> _TorchModuleStub:
    """``copyreg._reconstructor`` (protocol 0/1 objects), for our container stubs only."""
    if not (isinstance(cls, type) and issubclass(cls, _TorchModuleStub)) or base is not object:
        raise _Refused("refuses to load copyreg._reconstructor of a non-data class")
    if state is not None:
        raise _Refused("refuses to load copyreg._reconstructor with a base-class state")
    return cls.__new__(cls)


def _latin1_encode(text: Any, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it to store ``bytes`` (always latin-1)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused("refuses to load _codecs.encode other than for latin-1 bytes")
    return _codecs.encode(text, encoding)


def _empty_bytes(*args: Any) -> bytes:
    """``bytes()``, which protocol-2 pickles use for ``b""``; nothing else."""
    if args:
        raise _Refused("refuses to load builtins.bytes with arguments")
    return b""


def _load_storage_from_bytes(blob: Any) -> torch.storage.TypedStorage | torch.UntypedStorage:
    """Safe ``torch.storage._load_from_bytes``: a nested ``torch.save`` blob of one storage.

    The original calls ``torch.load`` with ``weights_only=False``, which would run whatever
    the blob's own pickle names.
    """
    if not isinstance(blob, bytes | bytearray):
        raise _Refused(f"tensor storage is {type(blob).__name__}, not bytes")
    try:
        storage = torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        raise _Refused(
            f"refused a tensor storage that is not plain data ({_first_line(exc)})"
        ) from exc
    if not isinstance(storage, torch.storage.TypedStorage | torch.UntypedStorage):
        raise _Refused(f"tensor storage blob holds {type(storage).__name__}, not a storage")
    return storage


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any,
    backward_hooks: Any,
    metadata: Any = None,
) -> torch.Tensor:
    """``torch._utils._rebuild_tensor_v2`` with its arguments checked to be plain data."""
    if not isinstance(storage, torch.storage.TypedStorage | torch.UntypedStorage):
        raise _Refused(f"tensor built on {type(storage).__name__}, not a storage")
    if not (_is_int(storage_offset) and _is_int_tuple(size) and _is_int_tuple(stride)):
        raise _Refused("tensor with a malformed offset, size or stride")
    if len(size) != len(stride) or storage_offset < 0 or min((*size, *stride), default=0) < 0:
        raise _Refused("tensor with a malformed offset, size or stride")
    # Hooks are callables: a data file has none (torch writes an empty OrderedDict).
    if backward_hooks:
        raise _Refused("tensor with backward hooks (not data)")
    if metadata is not None and not isinstance(metadata, dict):
        raise _Refused("tensor with malformed metadata")
    # torch's own function bounds-checks size/stride against the storage (Tensor.set_).
    tensor = torch._utils._rebuild_tensor_v2(
        storage, storage_offset, size, stride, False, collections.OrderedDict(), metadata
    )
    return tensor.detach()


def _rebuild_parameter(
    data: Any, requires_grad: Any, backward_hooks: Any, state: Any = None
) -> torch.Tensor:
    """``torch._utils._rebuild_parameter[_with_state]``: the plain tensor, no ``Parameter``.

    Records hold tensors only; whether a tensor was a parameter is kept by which dict of the
    record it lands in. A parameter's extra Python state, if any, is dropped.
    """
    if not isinstance(data, torch.Tensor):
        raise _Refused(f"parameter built on {type(data).__name__}, not a tensor")
    if backward_hooks:
        raise _Refused("parameter with backward hooks (not data)")
    return data.detach()


# numpy values (NVIDIA's attributes such as ``weight_gain`` are numpy scalars; StyleGAN3 layers
# keep small arrays) are rebuilt through stand-ins, so that numpy's own ``__setstate__`` never
# sees file data: a dtype state can carry flags and field layouts that numpy trusts.

_NUMERIC_KINDS = "biufc"  # bool, signed, unsigned, float, complex


class _NumpyDtype:
    """Stand-in for ``numpy.dtype`` while unpickling: a plain numeric type code and byte order."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.byteorder: Literal["<", ">", "=", "|"] = "="

    def __setstate__(self, state: Any) -> None:
        # numpy's state: (version, byteorder, subarray, names, fields, elsize, alignment, flags).
        if not isinstance(state, tuple) or len(state) < 5 or state[1] not in ("<", ">", "=", "|"):
            raise _Refused("malformed numpy dtype")
        if any(part is not None for part in state[2:5]):
            raise _Refused("structured numpy dtypes are not data this reader accepts")
        self.byteorder = state[1]

    def to_numpy(self) -> np.dtype[Any]:
        order = self.byteorder if self.byteorder in ("<", ">") else "="
        return np.dtype(self.code).newbyteorder(order)


def _numpy_dtype(code: Any, align: Any = False, copy: Any = False) -> _NumpyDtype:
    """``numpy.dtype(code, align, copy)`` as pickles spell it, for numeric types only."""
    if not isinstance(code, str) or len(code) > 8:
        raise _Refused("numpy dtype from a non-string specification")
    try:
        kind = np.dtype(code).kind
    except TypeError as exc:
        raise _Refused(f"unknown numpy dtype {code!r}") from exc
    if kind not in _NUMERIC_KINDS:
        raise _Refused(f"numpy dtype {code!r} is not numeric (not data this reader accepts)")
    return _NumpyDtype(code)


def _real_dtype(dtype: Any) -> np.dtype[Any]:
    if not isinstance(dtype, _NumpyDtype):
        raise _Refused(f"numpy value with a {type(dtype).__name__} instead of a dtype")
    return dtype.to_numpy()


def _numpy_scalar(dtype: Any, raw: Any = None) -> np.generic:
    """``numpy.core.multiarray.scalar(dtype, raw_bytes)``: one number."""
    real = _real_dtype(dtype)
    if not isinstance(raw, bytes) or len(raw) != real.itemsize:
        raise _Refused("numpy scalar with the wrong number of bytes")
    return np.frombuffer(raw, dtype=real)[0].copy()


def _array_from_bytes(raw: Any, dtype: Any, shape: Any, fortran: bool) -> np.ndarray:
    real = _real_dtype(dtype)
    if not _is_int_tuple(shape) or min(shape, default=0) < 0:
        raise _Refused("numpy array with a malformed shape")
    if not isinstance(raw, bytes | bytearray) or len(raw) != int(np.prod(shape)) * real.itemsize:
        raise _Refused("numpy array whose data does not match its shape")
    order: Literal["F", "C"] = "F" if fortran else "C"
    return np.frombuffer(bytes(raw), dtype=real).reshape(shape, order=order).copy()


class _NumpyArray:
    """Stand-in for the empty array ``_reconstruct`` makes; BUILD then supplies the data."""

    array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        # numpy's state: (version, shape, dtype, is_fortran, raw bytes).
        if not isinstance(state, tuple) or len(state) != 5:
            raise _Refused("malformed numpy array")
        _, shape, dtype, fortran, raw = state
        self.array = _array_from_bytes(raw, dtype, shape, bool(fortran))


class TFNetwork:
    """Inert stand-in for TensorFlow StyleGAN2's ``dnnlib.tflib.network.Network``.

    The real class rebuilds its TensorFlow graph by *executing* the Python source it carries
    (``build_module_src``); this one only receives the pickled state dict — ``version``,
    ``name``, ``static_kwargs``, ``components``, ``build_module_src``, ``build_func_name``,
    ``variables`` — and runs nothing.
    """

    state: dict[str, Any]

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise _Refused("malformed TensorFlow network (its state is not a dict)")
        self.state = state


class _NdarrayName:
    """What ``numpy.ndarray`` resolves to: a marker that is neither callable nor a class."""


_NDARRAY = _NdarrayName()


def _numpy_reconstruct(subtype: Any, shape: Any, typecode: Any) -> _NumpyArray:
    """``numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b"b")``."""
    if subtype is not _NDARRAY:
        raise _Refused("refuses to load a numpy array subclass (not data)")
    return _NumpyArray()


def _numpy_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """``numpy.core.numeric._frombuffer``: how numpy pickles arrays with protocol 5."""
    if isinstance(buf, pickle.PickleBuffer):
        buf = bytes(buf.raw())
    return _array_from_bytes(buf, dtype, shape, order == "F")


def _reconstruct_persistent_obj(meta: Any) -> PersistentRecord:
    """Stand-in for NVIDIA's ``persistence._reconstruct_persistent_obj``: build a record.

    NVIDIA's version executes ``meta["module_src"]`` and instantiates the class; this one only
    hashes the source.
    """
    if not isinstance(meta, dict):
        raise _Refused(f"persistent object metadata is {type(meta).__name__}, not a dict")
    if meta.get("type") != "class":
        raise _Refused(f"unsupported persistent object type {meta.get('type')!r}")
    class_name, src = meta.get("class_name"), meta.get("module_src")
    if not isinstance(class_name, str) or not isinstance(src, str):
        raise _Refused("persistent object without a class name or module source")
    digest = hashlib.sha256(src.encode("utf-8", "surrogatepass")).hexdigest()
    return _record_from_state(class_name, digest, meta.get("state"))


_NUMPY_CORE = ("numpy.core.multiarray", "numpy._core.multiarray")  # numpy 1.x, 2.x spellings
_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict")

#: ``(module, name)`` a pickle may name → the safe object handed to the unpickler instead.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    # Protocol 2/3 pickles spell sets (e.g. _non_persistent_buffers_set) as a call.
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    # Protocol 2 stores bytes (tensor storages) as _codecs.encode(str, "latin1"), b"" as bytes().
    ("_codecs", "encode"): _latin1_encode,
    ("builtins", "bytes"): _empty_bytes,
    ("__builtin__", "bytes"): _empty_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("dnnlib", "EasyDict"): _EasyDict,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _numpy_dtype,
    # Protocol 0/1 spelling of plain objects; only our container stubs get through it.
    ("copyreg", "_reconstructor"): _safe_reconstructor,
    ("copy_reg", "_reconstructor"): _safe_reconstructor,
    ("builtins", "object"): object,
    ("__builtin__", "object"): object,
    ("torch.nn.modules.module", "Module"): _torch_module_stub("Module"),
    # TensorFlow-era pickles: the network class becomes an inert state holder.
    ("dnnlib.tflib.network", "Network"): TFNetwork,
}
for _core in _NUMPY_CORE:
    _ALLOWED[(_core, "scalar")] = _numpy_scalar
    _ALLOWED[(_core, "_reconstruct")] = _numpy_reconstruct
    _ALLOWED[(_core.replace("multiarray", "numeric"), "_frombuffer")] = _numpy_frombuffer
for _name in _CONTAINERS:
    _ALLOWED[("torch.nn.modules.container", _name)] = _torch_module_stub(_name)
del _core, _name


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in ``_ALLOWED``."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED.get((module, name))
        if allowed is not None:
            return allowed
        raise _Refused(f"refuses to load {module}.{name} (not data)")

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("refuses to load a persistent id (not a network pickle)")


# ---------------------------------------------------------------------------------------------
# Turning pickled state into records.


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_int_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and all(_is_int(v) for v in value)


def _as_str(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _plain(value: Any) -> Any:
    """Turn unpickled values into plain data.

    ``EasyDict``/``OrderedDict`` become ``dict``, numpy scalars Python numbers, and the numpy
    and ``torch.nn`` stand-ins what they stand for.
    """
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, _NumpyArray):
        if value.array is None:
            raise _Refused("numpy array without data")
        return value.array
    if isinstance(value, _NumpyDtype):
        return value.to_numpy()
    if isinstance(value, _TorchModuleStub):
        return _record_from_stub(value)
    return value


def _tensors(value: Any, what: str, class_name: str) -> dict[str, torch.Tensor]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _Refused(f"{class_name}: {what} are {type(value).__name__}, not a dict")
    out: dict[str, torch.Tensor] = {}
    for name, tensor in value.items():
        if tensor is None:  # e.g. a layer built with bias=False keeps bias=None
            continue
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise _Refused(f"{class_name}: {what} entry {name!r} is not a tensor")
        out[name] = tensor
    return out


def _as_child(value: Any, name: str, class_name: str) -> PersistentRecord:
    if isinstance(value, PersistentRecord):
        return value
    if isinstance(value, _TorchModuleStub):
        return _record_from_stub(value)
    raise _Refused(f"{class_name}: submodule {name!r} is {type(value).__name__}, not a network")


def _record_from_stub(stub: _TorchModuleStub) -> PersistentRecord:
    return _record_from_state(stub.torch_class_name, None, getattr(stub, "pickled_state", None))


def _record_from_state(class_name: str, digest: str | None, state: Any) -> PersistentRecord:
    """Build a record from a pickled ``torch.nn.Module.__dict__``."""
    if state is None:
        state = {}
    if not isinstance(state, Mapping):
        raise _Refused(f"{class_name}: pickled state is {type(state).__name__}, not a dict")
    non_persistent = state.get("_non_persistent_buffers_set", set())
    if not isinstance(non_persistent, set | frozenset) or not all(
        isinstance(n, str) for n in non_persistent
    ):
        raise _Refused(f"{class_name}: malformed _non_persistent_buffers_set")
    modules = state.get("_modules") or {}
    if not isinstance(modules, Mapping):
        raise _Refused(f"{class_name}: submodules are {type(modules).__name__}, not a dict")
    init_args = state.get("_init_args", ())
    init_kwargs = state.get("_init_kwargs", {})
    if not isinstance(init_args, tuple | list) or not isinstance(init_kwargs, Mapping):
        raise _Refused(f"{class_name}: malformed init args")
    return PersistentRecord(
        class_name=class_name,
        module_src_sha256=digest,
        init_args=tuple(_plain(a) for a in init_args),
        init_kwargs=_plain(init_kwargs),
        # Private names are torch's bookkeeping (hooks, _parameters, …) or the decorator's.
        attributes={
            k: _plain(v)
            for k, v in state.items()
            if isinstance(k, str) and not k.startswith("_") and k != "training"
        },
        children={
            name: _as_child(child, name, class_name)
            for name, child in modules.items()
            if child is not None
        },
        parameters=_tensors(state.get("_parameters"), "parameters", class_name),
        buffers=_tensors(state.get("_buffers"), "buffers", class_name),
        non_persistent_buffers=frozenset(non_persistent),
    )


def _check_record(record: PersistentRecord) -> None:
    """Check the field types of a finished record tree, and that it is a tree.

    Records are checked when built, but a pickle's BUILD opcode can still overwrite an
    object's ``__dict__`` afterwards (frozen dataclasses included), e.g. to make a record its
    own child; this catches that before anything walks the tree.
    """
    stack: list[tuple[str, PersistentRecord, frozenset[int]]] = [("<root>", record, frozenset())]
    while stack:
        where, rec, ancestors = stack.pop()
        if id(rec) in ancestors:
            raise _Refused(f"network {where}: a module that contains itself")
        for name, value, kind in (
            ("parameters", rec.parameters, torch.Tensor),
            ("buffers", rec.buffers, torch.Tensor),
            ("children", rec.children, PersistentRecord),
        ):
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, kind) for k, v in value.items()
            ):
                raise _Refused(f"network {where}: malformed {name}")
        if not (
            isinstance(rec.class_name, str)
            and isinstance(rec.init_args, tuple)
            and isinstance(rec.init_kwargs, dict)
            and isinstance(rec.attributes, dict)
            and isinstance(rec.non_persistent_buffers, frozenset)
        ):
            raise _Refused(f"network {where}: malformed record")
        inner = ancestors | {id(rec)}
        prefix = "" if where == "<root>" else f"{where}."
        stack.extend((prefix + name, child, inner) for name, child in rec.children.items())


def _finish(data: dict[Any, Any]) -> dict[Any, Any]:
    """Turn the unpickled top-level dict into plain data and checked records."""
    result = {key: _plain(value) for key, value in data.items()}
    for value in result.values():
        if isinstance(value, PersistentRecord):
            _check_record(value)
    return result


# ---------------------------------------------------------------------------------------------
# Public entry points.


def read_nvidia_pickle(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an NVIDIA network pickle as data.

    Networks become :class:`PersistentRecord`; everything else (e.g. ``training_set_kwargs``)
    becomes plain Python data as in :class:`PersistentRecord` ``init_kwargs``. No code from
    the file is run.

    Args:
        path: A ``.pkl`` written by stylegan2-ada-pytorch or stylegan3 (a training snapshot
            with ``G``, ``D``, ``G_ema``, ``augment_pipe``, ``training_set_kwargs``, or any
            dict of such networks).

    Returns:
        The pickled top-level dict, with the same keys.

    Raises:
        CheckpointError: If the file is missing, unreadable, empty, not a pickle, truncated or
            corrupt, not a dict, or names anything that is not data (one line, naming the file).
    """
    return nvidia_networks(unpickle(path), Path(path))


def nvidia_networks(data: Any, path: Path) -> dict[str, Any]:
    """The networks of an unpickled PyTorch-era NVIDIA pickle (see :func:`read_nvidia_pickle`)."""
    if is_tensorflow(data):
        raise CheckpointError(
            f"{path}: a TensorFlow-era StyleGAN2 pickle, not a PyTorch one "
            "(micromotion.load_generator reads it)"
        )
    try:
        result = _finish(data) if isinstance(data, dict) else None
    except _Refused as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    if result is None:
        raise CheckpointError(
            f"{path}: expected a dict of networks (NVIDIA network pickle), "
            f"got {type(data).__name__}"
        )
    return result


def is_tensorflow(data: Any) -> bool:
    """Whether unpickled data is a TensorFlow StyleGAN2 pickle: a network or ``(G, D, Gs)``."""
    if isinstance(data, TFNetwork):
        return True
    return isinstance(data, tuple | list) and any(isinstance(x, TFNetwork) for x in data)


def plain(value: Any) -> Any:
    """Unpickled values as plain data: numpy stand-ins as arrays, scalars as numbers."""
    try:
        return _plain(value)
    except _Refused as exc:
        raise CheckpointError(str(exc)) from None


def unpickle(path: str | os.PathLike[str]) -> Any:
    """Read any network pickle (PyTorch or TensorFlow era) with the restricted unpickler.

    Raises:
        CheckpointError: If the file is missing, unreadable, empty, not a pickle, truncated or
            corrupt, or names anything that is not data (one line, naming the file).
    """
    path = Path(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; open errors need their own message
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    with fh:
        if not fh.read(1):
            raise CheckpointError(f"{path}: empty file, not an NVIDIA network pickle")
        fh.seek(0)
        try:
            return _RestrictedUnpickler(fh).load()
        except _Refused as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        except (pickle.UnpicklingError, EOFError) as exc:
            raise CheckpointError(
                f"{path}: not a pickle, or truncated ({_first_line(exc)})"
            ) from exc
        except Exception as exc:
            # Random or damaged bytes make the unpickler fail in many ways (ValueError,
            # KeyError, UnicodeDecodeError, MemoryError on absurd lengths, RecursionError on
            # absurd nesting, …): all mean corrupt.
            raise CheckpointError(
                f"{path}: corrupt pickle ({type(exc).__name__}: {_first_line(exc)})"
            ) from exc


def load_nvidia_generator_record(
    path: str | os.PathLike[str], key: str = DEFAULT_GENERATOR_KEY
) -> PersistentRecord:
    """Read the generator record ``key`` (default ``G_ema``) from an NVIDIA pickle.

    There is no fallback from ``G_ema`` to ``G``: ``G`` is the raw training generator, of
    visibly lower quality, so a file without ``G_ema`` is reported rather than silently read
    differently; pass ``key="G"`` to read it on purpose.

    Args:
        path: The ``.pkl`` file.
        key: Which top-level entry to return.

    Returns:
        The generator's record.

    Raises:
        CheckpointError: For anything :func:`read_nvidia_pickle` refuses, a missing ``key``, an
            entry that is not a network, or a StyleGAN3 (alias-free) generator.
    """
    path = Path(path)
    return generator_record(read_nvidia_pickle(path), path, key)


def generator_record(
    data: dict[str, Any], path: Path, key: str = DEFAULT_GENERATOR_KEY
) -> PersistentRecord:
    """The generator ``key`` of :func:`read_nvidia_pickle`'s result (see that function)."""
    if key not in data:
        keys = sorted(str(k) for k in data)
        shown = ", ".join(keys[:_MAX_LISTED]) + (", …" if len(keys) > _MAX_LISTED else "")
        raise CheckpointError(f"{path}: no {key} network in the pickle (keys: {shown or 'none'})")
    record = data[key]
    if not isinstance(record, PersistentRecord):
        raise CheckpointError(f"{path}: {key} is {type(record).__name__}, not a network")
    if record.is_stylegan3_generator():
        raise CheckpointError(f"{path}: StyleGAN3 (alias-free) generators are not supported yet")
    return record


__all__ = [
    "DEFAULT_GENERATOR_KEY",
    "PersistentRecord",
    "TFNetwork",
    "generator_record",
    "is_tensorflow",
    "load_nvidia_generator_record",
    "nvidia_networks",
    "plain",
    "read_nvidia_pickle",
    "unpickle",
]
