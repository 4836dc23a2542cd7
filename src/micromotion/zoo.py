"""The asset zoo: pretrained generators and the paper's directions, with verified downloads.

Each :class:`ZooEntry` says where an asset lives (one or more mirror URLs), its sha256 where
one is published (never invented), its format, license and origin. :func:`fetch` returns a
verified file from the cache, downloading it first if needed:

* downloads stream into a temporary file beside the destination with a progress bar, are
  checked for truncation and against the sha256, and only then renamed into place;
* cache hits are re-verified every time;
* entries without a published sha256 are *trusted on first use*: the hash of the first
  download is recorded in a JSON sidecar next to the file and later cache hits must match it;
* without network access, the one-line error names the URL and the exact path to save the
  file at, so it can be fetched by hand.

The cache root is ``$MICROMOTION_HOME`` or the platform's user cache directory.
"""

from __future__ import annotations

import difflib
import hashlib
import http.client
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from micromotion._io import atomic_path, provenance, sha256_file, write_json_atomic
from micromotion._version import __version__
from micromotion.errors import DownloadError, MicromotionError

DEFAULT_TIMEOUT = 30.0
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ZooEntry:
    """One downloadable asset.

    Attributes:
        name: Registry name (looked up case-insensitively).
        kind: ``generator`` or ``direction`` (later: ``lpips``, ``clip``, ``arcface``...).
        urls: Mirrors, tried in order; all must serve the same bytes.
        filename: File name in the cache.
        sha256: Published hex digest, or ``None`` (then trust-on-first-use).
        format: ``nvidia-pkl``, ``rosinality-pt``, ``official-direction``...
        license: License of the asset.
        origin: Who made it and where it is documented.
        description: One line for ``zoo list``.
        resolution: Image resolution for generators.
        aliases: Other names that find this entry.
    """

    name: str
    kind: str
    urls: tuple[str, ...]
    filename: str
    sha256: str | None
    format: str
    license: str
    origin: str
    description: str
    resolution: int | None = None
    aliases: tuple[str, ...] = ()


class Zoo:
    """A registry of :class:`ZooEntry`; names and aliases are unique, case-insensitively."""

    def __init__(self, entries: Iterable[ZooEntry] = ()) -> None:
        self._entries: dict[str, ZooEntry] = {}
        self._lookup: dict[str, str] = {}
        for entry in entries:
            self.register(entry)

    def register(self, entry: ZooEntry) -> None:
        """Add ``entry``; a name or alias that is already taken raises ``ValueError``."""
        keys = [entry.name, *entry.aliases]
        for key in keys:
            if key.lower() in self._lookup:
                raise ValueError(f"zoo name {key!r} is already registered")
        self._entries[entry.name] = entry
        for key in keys:
            self._lookup[key.lower()] = entry.name

    def unregister(self, name: str) -> None:
        """Remove an entry and its aliases (for tests and plugins)."""
        entry = self.get(name)
        del self._entries[entry.name]
        for key in [entry.name, *entry.aliases]:
            self._lookup.pop(key.lower(), None)

    def get(self, name: str, *, kind: str | None = None) -> ZooEntry:
        """Return the entry called ``name`` (or an alias), optionally of a given kind.

        Raises:
            MicromotionError: For an unknown name (with close matches) or the wrong kind.
        """
        key = self._lookup.get(name.lower())
        if key is None:
            close = difflib.get_close_matches(name.lower(), list(self._lookup), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(self._lookup[c] for c in close)}?" if close else ""
            raise MicromotionError(
                f"{name}: no such file, and not a zoo name (see `micromotion zoo list`){hint}"
            )
        entry = self._entries[key]
        if kind is not None and entry.kind != kind:
            raise MicromotionError(f"{name}: the zoo entry is a {entry.kind}, not a {kind}")
        return entry

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lookup

    def entries(self) -> list[ZooEntry]:
        """All entries, in registration order."""
        return list(self._entries.values())


# ---------------------------------------------------------------------------------------------
# The default registry.

_NGC_SG2 = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
_ADA = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
_NV_LICENSE = "NVIDIA Source Code License-NC (non-commercial)"
_PAPER_RAW = "https://github.com/wuqiuche/micromotion-styleGAN/raw/main/pregen_latents/"
_PAPER_ORIGIN = (
    "Wu et al., Decoding Micromotion in Low-dimensional Latent Spaces from StyleGAN "
    "(CPAL 2024); github.com/wuqiuche/micromotion-styleGAN, (c) 2022 Qiucheng Wu"
)


def _nvidia(
    name: str, file: str, res: int, description: str, *, base: str, aliases: tuple[str, ...] = ()
) -> ZooEntry:
    source = (
        "NVlabs/stylegan3 README" if base == _NGC_SG2 else "NVlabs/stylegan2-ada-pytorch README"
    )
    return ZooEntry(
        name=name,
        kind="generator",
        urls=(base + file,),
        filename=file if base == _NGC_SG2 else f"stylegan2-ada-{file}",
        sha256=None,  # NVIDIA publishes no hashes: trust on first use
        format="nvidia-pkl",
        license=_NV_LICENSE,
        origin=f"Karras et al.; URL listed in the {source}",
        description=description,
        resolution=res,
        aliases=aliases,
    )


def _direction(name: str, sha256: str, description: str) -> ZooEntry:
    return ZooEntry(
        name=name,
        kind="direction",
        urls=(f"{_PAPER_RAW}{name}/d_latent",),
        filename=f"{name}.d_latent.pt",
        sha256=sha256,
        format="official-direction",
        license="MIT",
        origin=_PAPER_ORIGIN,
        description=description,
        resolution=1024,
    )


DEFAULT_ZOO = Zoo(
    [
        _nvidia(
            "stylegan2-ffhq-1024",
            "stylegan2-ffhq-1024x1024.pkl",
            1024,
            "StyleGAN2 config-f, FFHQ 1024 px: the network the paper used",
            base=_NGC_SG2,
            aliases=("ffhq",),
        ),
        _nvidia(
            "stylegan2-ffhq-512",
            "stylegan2-ffhq-512x512.pkl",
            512,
            "StyleGAN2 FFHQ 512 px",
            base=_NGC_SG2,
        ),
        _nvidia(
            "stylegan2-ffhq-256",
            "stylegan2-ffhq-256x256.pkl",
            256,
            "StyleGAN2 FFHQ 256 px",
            base=_NGC_SG2,
        ),
        _nvidia(
            "stylegan2-metfaces-1024",
            "stylegan2-metfaces-1024x1024.pkl",
            1024,
            "StyleGAN2 MetFaces 1024 px (portraits from art)",
            base=_NGC_SG2,
            aliases=("metfaces",),
        ),
        _nvidia(
            "stylegan2-ada-ffhq-1024",
            "ffhq.pkl",
            1024,
            "FFHQ 1024 px from the stylegan2-ada-pytorch release",
            base=_ADA,
        ),
        _nvidia(
            "stylegan2-ada-metfaces-1024",
            "metfaces.pkl",
            1024,
            "MetFaces 1024 px, ADA transfer from FFHQ",
            base=_ADA,
        ),
        _direction(
            "smile",
            "f91b21a9c9bf17b49799e873c1864118d9e72510769c112e8e553aca1d6a3fd4",
            "the paper's smile direction (FFHQ W+, 18x512)",
        ),
        _direction(
            "angry",
            "5132218d645ef613a9148958c5286cb8b879f60c6a3145a753639f304a38f9ff",
            "the paper's anger direction (FFHQ W+, 18x512)",
        ),
        _direction(
            "aging",
            "b00d9bb8ab03da8d63c1b0bea89bf7e2da7c36d0a049ba10c56c7432e865fdaf",
            "the paper's ageing direction (FFHQ W+, 18x512)",
        ),
        _direction(
            "eyesClose",
            "8d73d5175eb69fd1797fc1e6fb632d2dd51689877b0dd0241f8be2f92b6aa0fd",
            "the paper's eye-closing direction (FFHQ W+, 18x512)",
        ),
        _direction(
            "headsTurn",
            "00452120b2d87dd79ac05557238970abcbdf6157819283c260944912e5e80c61",
            "the paper's head-turn direction, from video (FFHQ W+, 18x512)",
        ),
    ]
)


# ---------------------------------------------------------------------------------------------
# Cache.


def home() -> Path:
    """The cache root: ``$MICROMOTION_HOME`` or the platform's user cache directory."""
    env = os.environ.get("MICROMOTION_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("micromotion"))


def cache_path(entry: ZooEntry) -> Path:
    """Where ``entry``'s file lives in the cache (whether or not it is there yet)."""
    return home() / "zoo" / entry.name / entry.filename


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _expected_sha256(entry: ZooEntry, path: Path) -> str | None:
    """The published hash, else the one recorded on first use, else None."""
    if entry.sha256:
        return entry.sha256.lower()
    record = _record_path(path)
    if record.is_file():
        try:
            return str(json.loads(record.read_text())["sha256"]).lower()
        except (ValueError, KeyError, OSError):
            return None
    return None


def is_cached(entry: ZooEntry) -> bool:
    """True if the entry's file is in the cache (not verified: see :func:`fetch`)."""
    return cache_path(entry).is_file()


def fetch(
    name: str | ZooEntry,
    *,
    zoo: Zoo | None = None,
    kind: str | None = None,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Return the verified cached file of a zoo entry, downloading it first if needed.

    Args:
        name: Entry name or alias (or the entry itself).
        zoo: Registry to look in (default: :data:`DEFAULT_ZOO`).
        kind: Require this kind of entry.
        progress: Show a progress bar on stderr while downloading.
        timeout: Seconds to wait for the server at each step.

    Returns:
        The path of the verified file.

    Raises:
        DownloadError: If it cannot be downloaded; the message names the URL and the path.
        MicromotionError: For an unknown name, or a cached file that fails verification and
            cannot be replaced.
    """
    entry = name if isinstance(name, ZooEntry) else (zoo or DEFAULT_ZOO).get(name, kind=kind)
    path = cache_path(entry)
    expected = _expected_sha256(entry, path)
    if path.is_file():
        actual = sha256_file(path)
        if expected is None:
            # Placed by hand (as the offline message suggests) without a published hash.
            _write_record(path, actual, url="placed in the cache by the user")
            return path
        if actual == expected:
            return path
        # A damaged or replaced file: move it aside and fetch a copy that must match the
        # published hash, or the one recorded on first use.
        bad = path.with_name(path.name + ".corrupt")
        os.replace(path, bad)
        try:
            return _download_entry(entry, path, expected, progress=progress, timeout=timeout)
        except DownloadError as exc:
            raise DownloadError(
                f"{path}: cached file failed its sha256 check (moved to {bad.name}) and {exc}"
            ) from None
    return _download_entry(entry, path, expected, progress=progress, timeout=timeout)


def _write_record(path: Path, digest: str, *, url: str) -> None:
    write_json_atomic(_record_path(path), provenance(sha256=digest, url=url, trust="first use"))


def _download_entry(
    entry: ZooEntry, path: Path, expected: str | None, *, progress: bool, timeout: float
) -> Path:
    reasons = []
    for url in entry.urls:
        try:
            digest = download(url, path, sha256=expected, progress=progress, timeout=timeout)
        except DownloadError as exc:
            reasons.append((url, exc))
            continue
        if expected is None:
            _write_record(path, digest, url=url)
        return path
    url, exc = reasons[0]
    more = f" (and {len(reasons) - 1} other mirror(s) failed)" if len(reasons) > 1 else ""
    raise DownloadError(
        f"could not download {entry.name} from {url} ({exc.reason}){more}. "
        f"Download it yourself and save it as {path}"
    )


def resolve(
    spec: str,
    *,
    kind: str | None = None,
    zoo: Zoo | None = None,
    progress: bool = True,
) -> Path:
    """Turn a user's spec into a file: an existing path as is, else a zoo name, fetched.

    Raises:
        MicromotionError: If ``spec`` is neither an existing file nor a zoo name (of ``kind``).
    """
    path = Path(spec)
    if path.is_file():
        return path
    if path.is_dir():
        raise MicromotionError(f"{spec}: is a directory, not a file")
    return fetch(spec, zoo=zoo, kind=kind, progress=progress)


# ---------------------------------------------------------------------------------------------
# Downloads.


class _Failure(DownloadError):
    """A download failure with a short ``reason`` for the combined message."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.reason = reason


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> str:
    """Stream ``url`` into ``dest`` atomically, checking length and sha256.

    Args:
        url: What to fetch.
        dest: Final path; written only if the whole file arrives and matches ``sha256``.
        sha256: Expected hex digest (None: not checked).
        progress: Show a tqdm progress bar on stderr.
        timeout: Seconds to wait for the server at each step.

    Returns:
        The sha256 of what was downloaded.

    Raises:
        DownloadError: (with a ``reason`` attribute) on HTTP errors, unreachable or silent
            servers, truncated bodies and hash mismatches; nothing is left at ``dest``.
    """
    from tqdm import tqdm

    dest = Path(dest)
    if not url.startswith(("https://", "http://")):
        raise _Failure(url, "only http(s) URLs are downloaded")
    request = urllib.request.Request(url, headers={"User-Agent": f"micromotion/{__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise _Failure(url, f"HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise _Failure(url, f"unreachable: {exc.reason}") from None
    except TimeoutError:
        raise _Failure(url, "timed out") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Failure(url, f"unreachable: {exc}") from None
    digest = hashlib.sha256()
    received = 0
    with response:
        length_header = response.headers.get("Content-Length")
        total = int(length_header) if length_header and length_header.isdigit() else None
        try:
            with (
                atomic_path(dest) as tmp,
                open(tmp, "wb") as fh,
                tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=dest.name,
                    disable=not progress or None,
                    leave=False,
                ) as bar,
            ):
                while chunk := response.read(_CHUNK):
                    fh.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                if total is not None and received != total:
                    raise _Failure(url, f"truncated: got {received} of {total} bytes")
                actual = digest.hexdigest()
                if sha256 and actual != sha256.lower():
                    raise _Failure(url, f"sha256 mismatch: expected {sha256}, got {actual}")
        except http.client.IncompleteRead as exc:
            raise _Failure(url, f"truncated: got {received + len(exc.partial)} bytes") from None
        except TimeoutError:
            raise _Failure(url, f"timed out after {received} bytes") from None
        except (ConnectionError, http.client.HTTPException) as exc:
            raise _Failure(url, f"connection lost after {received} bytes ({exc})") from None
    return actual


def get(name: str, *, kind: str | None = None) -> ZooEntry:
    """Look ``name`` up in the default registry."""
    return DEFAULT_ZOO.get(name, kind=kind)
