"""The asset hub: a registry of pretrained networks and directions, verified downloads, a cache.

* :mod:`.entries` — the table of assets (data only: add a network by adding a row).
* :mod:`.registry` — :class:`ZooEntry` and :class:`Zoo`, the lookup mechanism.
* :mod:`.cache` — where files live, :func:`fetch` with sha256 checks and trust on first use.
* :mod:`.download` — one verified HTTP download.
* :mod:`.resolve` — :func:`resolve`, the one rule for "an existing file, else a zoo name".

Tests and plugins can build their own :class:`Zoo` and pass it as ``registry=``.
"""

from micromotion.hub.cache import cache_path, fetch, get, home, is_cached, list_entries, register
from micromotion.hub.download import DEFAULT_TIMEOUT, DownloadFailure, download
from micromotion.hub.entries import DEFAULT_ZOO, default_registry
from micromotion.hub.registry import Zoo, ZooEntry
from micromotion.hub.resolve import looks_like_path, resolve

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_ZOO",
    "DownloadFailure",
    "Zoo",
    "ZooEntry",
    "cache_path",
    "default_registry",
    "download",
    "fetch",
    "get",
    "home",
    "is_cached",
    "list_entries",
    "looks_like_path",
    "register",
    "resolve",
]
