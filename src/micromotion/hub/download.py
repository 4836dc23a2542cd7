"""One verified HTTP download: stream, check the length and the sha256, rename into place.

Only the standard library's ``urllib`` is used, so the package needs no HTTP dependency.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from micromotion._version import __version__
from micromotion.core.io import atomic_path
from micromotion.errors import DownloadError

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for the server at each step (connecting, each read), not for the whole file."""

_CHUNK = 1 << 20


class DownloadFailure(DownloadError):
    """A failed download, with a short ``reason`` that callers fold into their own message."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> str:
    """Stream ``url`` into ``dest`` atomically, checking its length and sha256.

    The body goes into a temporary file beside ``dest`` and is renamed onto ``dest`` only
    once all of it has arrived (as many bytes as the server's ``Content-Length``) and it
    matches ``sha256``; on any failure the temporary file is removed and ``dest`` is left
    as it was.

    Args:
        url: An ``http://`` or ``https://`` URL (redirects are followed).
        dest: The final path.
        sha256: Expected hex digest; ``None`` skips the check (the digest is still returned).
        progress: Show a tqdm progress bar on stderr. It is also hidden when stderr is not
            a terminal, so logs and CI output stay clean.
        timeout: Seconds to wait for the server at each step.

    Returns:
        The hex sha256 of the downloaded file.

    Raises:
        DownloadFailure: On HTTP errors, unreachable or silent servers, truncated bodies
            and hash mismatches; its ``reason`` says which, in a few words.
        MicromotionError: If ``dest``'s directory cannot be written.
    """
    # Imported here: only downloads need it, and `micromotion --help` should stay fast.
    from tqdm import tqdm

    dest = Path(dest)
    if not url.startswith(("https://", "http://")):
        # urllib would also open file:// and ftp:// URLs; a registry entry never needs them.
        raise DownloadFailure(url, "only http(s) URLs are downloaded")
    request = urllib.request.Request(url, headers={"User-Agent": f"micromotion/{__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise DownloadFailure(url, f"HTTP {exc.code}") from None
    except urllib.error.URLError as exc:  # DNS failure, refused connection, TLS error
        raise DownloadFailure(url, f"unreachable: {exc.reason}") from None
    except TimeoutError:
        raise DownloadFailure(url, "timed out") from None
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadFailure(url, f"unreachable: {exc}") from None

    digest = hashlib.sha256()
    received = 0
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
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
                    disable=None if progress else True,  # None: only on a terminal
                    leave=False,
                ) as bar,
            ):
                while chunk := response.read(_CHUNK):
                    fh.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                # Raised inside atomic_path, so the partial file is removed, never renamed.
                if total is not None and received != total:
                    raise DownloadFailure(url, f"truncated: got {received} of {total} bytes")
                actual = digest.hexdigest()
                if sha256 is not None and actual != sha256.lower():
                    raise DownloadFailure(
                        url, f"sha256 mismatch: expected {sha256.lower()}, got {actual}"
                    )
        except http.client.IncompleteRead as exc:
            got = received + len(exc.partial)
            of = f" of {total}" if total is not None else ""
            raise DownloadFailure(url, f"truncated: got {got}{of} bytes") from None
        except TimeoutError:
            raise DownloadFailure(url, f"timed out after {received} bytes") from None
        except (ConnectionError, http.client.HTTPException) as exc:
            raise DownloadFailure(url, f"connection lost after {received} bytes ({exc})") from None
    return actual
