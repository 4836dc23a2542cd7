"""The asset zoo: pretrained generators and the paper's directions, with verified downloads.

Each :class:`ZooEntry` says where an asset lives (one or more mirror URLs), its sha256 where
one is published (never invented), its format, license and origin. :func:`fetch` returns a
verified file from the cache, downloading it first if needed:

* downloads stream into a temporary file beside the destination with a progress bar, are
  checked for truncation and against the sha256, and only then renamed into place
  (see :func:`download`);
* mirrors are tried in order;
* cache hits are re-verified every time, so a damaged file is noticed and fetched again;
* entries without a published sha256 are *trusted on first use*: the hash of the first
  download is recorded in a JSON sidecar next to the file (``<file>.json``, with the URL,
  time and micromotion version) and later cache hits and re-downloads must match it;
* without network access, the one-line error names the URL and the exact path to save the
  file at, so it can be fetched by hand.

The cache root is ``$MICROMOTION_HOME`` or the platform's user cache directory; files live at
``<root>/zoo/<name>/<filename>``.

Tests and plugins can build their own :class:`Zoo` and pass it as ``registry=``.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from micromotion._download import DEFAULT_TIMEOUT, DownloadFailure, download
from micromotion._io import provenance, sha256_file, write_json_atomic
from micromotion.errors import DownloadError, MicromotionError

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_ZOO",
    "Zoo",
    "ZooEntry",
    "cache_path",
    "download",
    "fetch",
    "get",
    "home",
    "is_cached",
    "list_entries",
    "register",
    "resolve",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ZooEntry:
    """One downloadable asset.

    Attributes:
        name: Registry name (looked up case-insensitively).
        kind: ``generator``, ``direction`` or ``lpips`` (later: ``clip``, ``arcface``...).
        urls: Mirrors, tried in order; all must serve the same bytes.
        filename: File name in the cache.
        sha256: Published lowercase hex digest, or ``None`` when its publisher gives none
            (then the first download is trusted and recorded; see :func:`fetch`).
        format: ``nvidia-pkl``, ``rosinality-pt``, ``official-direction``...
        license: License of the asset.
        origin: Who made it and where the URL is documented.
        description: One line for ``zoo list``.
        resolution: Image resolution in pixels, or ``None`` where it does not apply.
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

    def __post_init__(self) -> None:
        # Caught at import time rather than as a confusing mismatch after a long download.
        if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", self.name) or ".." in self.name:
            # The name becomes a cache directory: no separators, no '..'.
            raise ValueError(f"zoo entry {self.name!r}: name must be letters, digits, . _ -")
        if not self.urls:
            raise ValueError(f"zoo entry {self.name!r}: no URLs")
        if self.sha256 is not None and not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"zoo entry {self.name!r}: sha256 must be 64 lowercase hex digits")
        if not self.filename or Path(self.filename).name != self.filename:
            raise ValueError(f"zoo entry {self.name!r}: filename must be a plain file name")


class Zoo:
    """A registry of :class:`ZooEntry`; names and aliases are unique, case-insensitively."""

    def __init__(self, entries: Iterable[ZooEntry] = ()) -> None:
        self._entries: dict[str, ZooEntry] = {}
        self._lookup: dict[str, str] = {}  # lowercase name or alias -> name
        for entry in entries:
            self.register(entry)

    def register(self, entry: ZooEntry) -> None:
        """Add ``entry``.

        Raises:
            ValueError: If its name or one of its aliases is already taken (in any case).
        """
        keys = [entry.name, *entry.aliases]
        for key in keys:
            if key.lower() in self._lookup:
                raise ValueError(f"zoo name {key!r} is already registered")
        self._entries[entry.name] = entry
        for key in keys:
            self._lookup[key.lower()] = entry.name

    def unregister(self, name: str) -> ZooEntry:
        """Remove an entry and its aliases, and return it (for tests and plugins)."""
        entry = self.get(name)
        del self._entries[entry.name]
        for key in [entry.name, *entry.aliases]:
            self._lookup.pop(key.lower(), None)
        return entry

    def get(self, name: str, *, kind: str | None = None) -> ZooEntry:
        """Return the entry called ``name`` (or an alias, in any case), optionally of a kind.

        Raises:
            MicromotionError: For an unknown name (suggesting close ones) or the wrong kind.
        """
        key = self._lookup.get(name.lower())
        if key is None:
            raise MicromotionError(
                f"{name!r} is not a zoo name{self._did_you_mean(name)} (see `micromotion zoo list`)"
            )
        entry = self._entries[key]
        if kind is not None and entry.kind != kind:
            raise MicromotionError(f"{name}: the zoo entry is a {entry.kind}, not a {kind}")
        return entry

    def list_entries(self, *, kind: str | None = None) -> list[ZooEntry]:
        """All entries (of ``kind``, if given), in registration order."""
        return [e for e in self._entries.values() if kind is None or e.kind == kind]

    def names(self, *, kind: str | None = None) -> list[str]:
        """The names of :meth:`list_entries`."""
        return [e.name for e in self.list_entries(kind=kind)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lookup

    def __len__(self) -> int:
        return len(self._entries)

    def _did_you_mean(self, name: str) -> str:
        close = difflib.get_close_matches(name.lower(), list(self._lookup), n=3, cutoff=0.6)
        names = dict.fromkeys(self._lookup[c] for c in close)  # aliases -> names, deduplicated
        return f"; did you mean {', '.join(names)}?" if names else ""


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


_LPIPS_RAW = "lpips/weights/v0.1/vgg.pth"
_LPIPS_ORIGIN = (
    "Zhang et al., The Unreasonable Effectiveness of Deep Features as a Perceptual Metric "
    "(CVPR 2018); github.com/richzhang/PerceptualSimilarity (also shipped in the PyPI lpips "
    "package as lpips/weights/v0.1/vgg.pth), (c) 2018 Richard Zhang, Phillip Isola, "
    "Alexei A. Efros, Eli Shechtman, Oliver Wang"
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


DEFAULT_ZOO: Zoo = Zoo(
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
        ZooEntry(
            name="vgg16-imagenet",
            kind="lpips",
            urls=("https://download.pytorch.org/models/vgg16-397923af.pth",),
            filename="vgg16-397923af.pth",
            # torchvision publishes only the first 8 hex digits (in the file name). The full
            # digest is the one independent projects record and check for this download
            # (e.g. Disco Diffusion's model loader); it begins with that published prefix.
            sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
            format="torchvision-state-dict",
            license="BSD-3-Clause (torchvision)",
            origin=(
                "torchvision (pytorch/vision) VGG16_Weights.IMAGENET1K_V1, trained on ImageNet "
                "(torchvision notes that weights may carry their training data's terms); "
                "architecture: Simonyan & Zisserman, ICLR 2015"
            ),
            description="VGG16 ImageNet weights, the LPIPS-VGG trunk (528 MB; conv layers used)",
        ),
        ZooEntry(
            name="lpips-vgg-v0.1",
            kind="lpips",
            urls=(
                f"https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/{_LPIPS_RAW}",
                f"https://github.com/richzhang/PerceptualSimilarity/raw/master/{_LPIPS_RAW}",
            ),
            filename="lpips-vgg-v0.1.pth",
            # sha256 of the same bytes in the PyPI lpips 0.1.4 package.
            sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
            format="lpips-linear",
            license="BSD-2-Clause",
            origin=_LPIPS_ORIGIN,
            description="LPIPS v0.1 linear layers calibrated on human judgements, VGG trunk",
        ),
    ]
)
"""The registry the CLI, :func:`fetch` and :func:`resolve` use unless given another."""


def register(entry: ZooEntry) -> None:
    """Add ``entry`` to the default registry (see :meth:`Zoo.register`)."""
    DEFAULT_ZOO.register(entry)


def get(name: str, *, kind: str | None = None) -> ZooEntry:
    """Look ``name`` up in the default registry (see :meth:`Zoo.get`)."""
    return DEFAULT_ZOO.get(name, kind=kind)


def list_entries(*, kind: str | None = None) -> list[ZooEntry]:
    """The default registry's entries (of ``kind``, if given), in registration order."""
    return DEFAULT_ZOO.list_entries(kind=kind)


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


def is_cached(entry: ZooEntry) -> bool:
    """True if the entry's file is in the cache (not verified: :func:`fetch` does that)."""
    return cache_path(entry).is_file()


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _expected_sha256(entry: ZooEntry, path: Path) -> str | None:
    """The published hash, else the one recorded on first use, else None."""
    if entry.sha256 is not None:
        return entry.sha256
    record = _record_path(path)
    if not record.is_file():
        return None
    try:
        digest = str(json.loads(record.read_text())["sha256"]).lower()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # Ignoring it would silently turn verification off.
        raise MicromotionError(
            f"{record}: unreadable trust-on-first-use record ({exc}); delete it to trust "
            "the cached file again"
        ) from None
    if not _SHA256.fullmatch(digest):
        raise MicromotionError(f"{record}: the recorded sha256 is not a hex digest; delete it")
    return digest


def _write_record(path: Path, entry: ZooEntry, digest: str, *, url: str) -> None:
    write_json_atomic(
        _record_path(path),
        provenance(name=entry.name, sha256=digest, url=url, trust="first use"),
    )


def fetch(
    name: str | ZooEntry,
    *,
    registry: Zoo | None = None,
    kind: str | None = None,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Return the verified cached file of a zoo entry, downloading it first if needed.

    A cached file is hashed on every call and compared with the entry's sha256. For an entry
    without a published sha256 the first download is trusted: its hash is recorded in
    ``<file>.json`` beside it (with URL, time and version), and from then on cache hits and
    re-downloads must match that record (delete it to trust a new file). A file put in the
    cache by hand is trusted and recorded the same way. A cached file that fails the check is
    moved aside (``<file>.corrupt``) and downloaded again; the copy aside is deleted once the
    new download is verified.

    Args:
        name: Entry name or alias (any case), or the entry itself.
        registry: Registry to look in (default: :data:`DEFAULT_ZOO`).
        kind: Require this kind of entry (``generator``, ``direction``...).
        progress: Show a progress bar on stderr while downloading.
        timeout: Seconds to wait for a server at each step.

    Returns:
        The path of the verified file.

    Raises:
        DownloadError: If no mirror delivers a verified file; the one-line message names the
            URL and the exact path to save a hand-downloaded copy at.
        MicromotionError: For an unknown name or the wrong kind.
    """
    if isinstance(name, ZooEntry):
        entry = name
    else:
        entry = (registry if registry is not None else DEFAULT_ZOO).get(name, kind=kind)
    path = cache_path(entry)
    expected = _expected_sha256(entry, path)
    if not path.is_file():
        return _download_entry(entry, path, expected, progress=progress, timeout=timeout)
    actual = sha256_file(path)
    if expected is None:
        _write_record(path, entry, actual, url="found in the cache (placed there by hand)")
        return path
    if actual == expected:
        return path
    # Damaged, or replaced by another file: keep it aside (it may be the user's) until a
    # verified copy is in place.
    aside = path.with_name(path.name + ".corrupt")
    os.replace(path, aside)
    try:
        _download_entry(entry, path, expected, progress=progress, timeout=timeout)
    except DownloadError as exc:
        raise DownloadError(
            f"{path.name} in the cache failed its sha256 check (moved aside to {aside.name}), "
            f"and {exc}"
        ) from None
    with contextlib.suppress(OSError):
        aside.unlink()
    return path


def _download_entry(
    entry: ZooEntry, path: Path, expected: str | None, *, progress: bool, timeout: float
) -> Path:
    failures: list[DownloadFailure] = []
    for url in entry.urls:
        try:
            digest = download(url, path, sha256=expected, progress=progress, timeout=timeout)
        except DownloadFailure as exc:
            failures.append(exc)
            continue
        if entry.sha256 is None and expected is None:
            _write_record(path, entry, digest, url=url)
        return path
    tried = ", ".join(f"{f.url} ({f.reason})" for f in failures)
    hint = ""
    if entry.sha256 is None and expected is not None:
        hint = (
            f" (its sha256 was recorded on first use in {_record_path(path).name}; delete that "
            "file to trust a new download)"
        )
    raise DownloadError(
        f"could not download {entry.name} from {tried}. "
        f"Download it yourself and save it as {path}{hint}"
    )


def resolve(
    spec: str | os.PathLike[str],
    *,
    kind: str | None = None,
    registry: Zoo | None = None,
    progress: bool = True,
) -> Path:
    """Turn a user's spec into a file: an existing file as is, else a zoo name, fetched.

    Args:
        spec: A file path, or the name (or alias) of a zoo entry.
        kind: Require a zoo entry of this kind.
        registry: Registry to look in (default: :data:`DEFAULT_ZOO`).
        progress: Show a progress bar if a download is needed.

    Returns:
        The path of an existing file or of a verified cached download.

    Raises:
        MicromotionError: If ``spec`` is neither an existing file nor a zoo name (of ``kind``).
        DownloadError: If the zoo entry cannot be downloaded.
    """
    path = Path(spec)
    if path.is_file():
        return path
    reg = registry if registry is not None else DEFAULT_ZOO
    if path.is_dir() and spec not in reg:
        # A folder named like a zoo entry (a dataset, the paper's pregen_latents/<name>)
        # must not hide that entry.
        raise MicromotionError(f"{spec}: is a directory, not a file")
    text = str(spec)
    if text not in reg:
        known = ", ".join(reg.names(kind=kind)) or "none"
        raise MicromotionError(
            f"{text}: no such file, and not a zoo name (known: {known}){reg._did_you_mean(text)}"
        )
    return fetch(text, registry=reg, kind=kind, progress=progress)
