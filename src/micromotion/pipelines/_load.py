"""Loading what a pipeline needs, once: a generator given as a spec or as a loaded network.

Pipelines load their networks on each call. Front ends that run many calls in one process (a
batch of rows, a web app) wrap them in :func:`reuse_networks`, and every network loaded inside
it is kept and handed to later calls that ask for the same file on the same device.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import torch

from micromotion.core.devices import resolve_device
from micromotion.networks.stylegan2 import Generator
from micromotion.weights.generator import load_generator

GeneratorSpec = str | os.PathLike[str] | Generator
"""A checkpoint file, a zoo name, or a generator already loaded (batch jobs load once)."""

T = TypeVar("T")


class NetworkCache:
    """Networks loaded once, keyed by kind, file (with its size and time) and device.

    A file that changes on disk is loaded again: its key holds its size and modification time.
    Loading holds a lock, so threads that share a cache (a web server's workers) load each
    network once.
    """

    def __init__(self) -> None:
        self._items: dict[tuple[str, Any, str], Any] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def kinds(self) -> list[str]:
        """The kind of every network held, in load order (``generator``, ``encoder``, …)."""
        return [key[0] for key in self._items]

    def clear(self) -> None:
        """Drop every network (a batch does between groups of rows, to bound memory)."""
        with self._lock:
            self._items.clear()

    def put(self, kind: str, spec: object, key: object, value: object) -> None:
        """Hand a result computed elsewhere (a face aligned in a worker) to the next call."""
        with self._lock:
            self._items[(kind, _file_key(spec), str(key))] = value

    def take(self, kind: str, spec: object, key: object) -> Any:
        """What :meth:`put` left for this key (removed), or ``None``."""
        with self._lock:
            return self._items.pop((kind, _file_key(spec), str(key)), None)

    def get(self, kind: str, spec: object, device: object, load: Callable[[], T]) -> T:
        """The network ``load()`` returns, loaded only the first time this key is asked for."""
        key = (kind, _file_key(spec), str(device))
        with self._lock:
            if key not in self._items:
                self._items[key] = load()
            return self._items[key]


_active: NetworkCache | None = None


@contextmanager
def reuse_networks(cache: NetworkCache | None = None) -> Iterator[NetworkCache]:
    """Keep every network that pipelines load inside this block, and reuse it.

    Args:
        cache: A cache to fill and read (default: a new one, dropped at the end).

    Yields:
        The active cache.
    """
    global _active
    previous, _active = _active, cache if cache is not None else NetworkCache()
    try:
        yield _active
    finally:
        _active = previous


def active_cache() -> NetworkCache | None:
    """The cache of the enclosing :func:`reuse_networks` block, or ``None`` outside one.

    A pipeline made of other pipelines reuses it (``reuse_networks(active_cache())``), so a
    front end's cache still holds everything it loads.
    """
    return _active


def cached(kind: str, spec: object, device: object, load: Callable[[], T]) -> T:
    """``load()``, or the network an active :func:`reuse_networks` block already holds."""
    if _active is None:
        return load()
    return _active.get(kind, spec, device, load)


def precomputed(kind: str, spec: object, key: object) -> Any:
    """A result that the active cache was handed for this key (see :meth:`NetworkCache.put`)."""
    return None if _active is None else _active.take(kind, spec, key)


def _file_key(spec: object) -> object:
    if isinstance(spec, str | os.PathLike):
        path = Path(spec)
        try:
            stat = path.stat()
        except OSError:  # a zoo name, or a file that is not there (the loader will say so)
            return str(spec)
        return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    return repr(spec)


def open_generator(generator: GeneratorSpec, device: str | torch.device) -> tuple[Generator, str]:
    """The generator and the spec to record for it in provenance.

    Args:
        generator: A checkpoint file, a zoo name, or a loaded generator (used as it is, on its
            own device).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` for a generator that is loaded here.
    """
    if isinstance(generator, Generator):
        return generator, str(generator.source.get("file", "in-memory generator"))
    where = resolve_device(device)
    G = cached("generator", generator, where, lambda: load_generator(generator, device=where))
    return G, str(generator)
