"""One verified HTTP download: stream, check the length and the sha256, rename into place.

Only the standard library's ``urllib`` is used, so the package needs no HTTP dependency.

A weight file is never HTML, so an HTML answer is read (a little of it) and never saved under
the weight's name. Google Drive, where most of this field's weights live, answers large files
with a "can't scan this file for viruses" page whose form (or, on older pages, ``confirm``
link and ``download_warning`` cookie) leads to the file: that step is followed. Its
quota-exceeded and sign-in pages, and any other HTML page, are a one-line failure naming the
cause, after which the caller tries the next mirror.
"""

from __future__ import annotations

import hashlib
import html
import http.client
import http.cookiejar
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from micromotion._version import __version__
from micromotion.core.io import atomic_path
from micromotion.errors import DownloadError

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for the server at each step (connecting, each read), not for the whole file."""

_CHUNK = 1 << 20
#: Most of an HTML page read to tell what it is (Drive's pages are ~10-100 kB).
_HTML_PEEK = 1 << 20
#: Confirmation pages followed at most (Drive needs one).
_MAX_CONFIRMS = 3


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
    size: int | None = None,
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
        size: Expected size in bytes, where known: a server that announces another size is
            refused before the body is read, and the size is checked before the hash.
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
    # Drive's confirmation step sets a cookie that the confirmed request must send back.
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    response, first = _open_file(opener, url, timeout)

    digest = hashlib.sha256()
    received = 0
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if size is not None and total is not None and total != size:
            raise DownloadFailure(url, f"the server announces {total} bytes, expected {size}")
        if size is not None:
            total = size
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
                chunk = first
                while chunk or (chunk := response.read(_CHUNK)):
                    fh.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                    chunk = b""
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


def _open(opener: urllib.request.OpenerDirector, url: str, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": f"micromotion/{__version__}"})
    try:
        return opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise DownloadFailure(url, f"HTTP {exc.code}") from None
    except urllib.error.URLError as exc:  # DNS failure, refused connection, TLS error
        raise DownloadFailure(url, f"unreachable: {exc.reason}") from None
    except TimeoutError:
        raise DownloadFailure(url, "timed out") from None
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadFailure(url, f"unreachable: {exc}") from None


def _looks_like_html(response: Any, first: bytes) -> bool:
    kind = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    head = first[:512].lstrip().lower()
    return kind in ("text/html", "application/xhtml+xml") or head.startswith(
        (b"<!doctype html", b"<html")
    )


def _open_file(
    opener: urllib.request.OpenerDirector, url: str, timeout: float
) -> tuple[Any, bytes]:
    """Open ``url`` past Drive's confirmation pages: the response and its first bytes.

    The first bytes are never HTML: an HTML answer is either followed or refused.

    Raises:
        DownloadFailure: For any HTML page that is not a confirmation step, named by cause.
    """
    current = url
    for _ in range(_MAX_CONFIRMS + 1):
        response = _open(opener, current, timeout)
        try:
            first = response.read(_CHUNK)
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            response.close()
            raise DownloadFailure(url, f"connection lost ({exc})") from None
        if not _looks_like_html(response, first):
            return response, first
        with response:
            page = (first + response.read(max(0, _HTML_PEEK - len(first)))).decode(
                "utf-8", "replace"
            )
            landed = response.geturl()
        confirmed = _drive_confirmation(page, landed)
        if confirmed is None:
            raise DownloadFailure(url, _html_cause(page, landed))
        current = confirmed
    raise DownloadFailure(url, "too many confirmation pages (Google Drive)")


def _drive_confirmation(page: str, base: str) -> str | None:
    """The download URL behind Drive's "can't scan for viruses" page, or ``None``."""
    form = re.search(r'<form[^>]*id="download-form"[^>]*>(.*?)</form>', page, re.S | re.I)
    if form is not None:
        action = re.search(r'action="([^"]+)"', form.group(0), re.I)
        fields = re.findall(
            r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form.group(1), re.I
        )
        if action is not None and fields:
            target = urllib.parse.urljoin(base, html.unescape(action.group(1)))
            query = urllib.parse.urlencode([(k, html.unescape(v)) for k, v in fields])
            return f"{target}?{query}"
    # Older pages: a link with a confirm token (also set as a download_warning cookie).
    link = re.search(r'href="([^"]*[?&](?:amp;)?confirm=[^"]+)"', page, re.I)
    if link is not None:
        return urllib.parse.urljoin(base, html.unescape(link.group(1)))
    return None


def _html_cause(page: str, landed: str) -> str:
    """Why an HTML page came back instead of the file, in a few words."""
    text = page.lower()
    if "too many users have viewed or downloaded this file" in text or "quota" in text:
        return (
            "Google Drive's download quota for this file is exceeded (an HTML page came back, "
            "not the file); try again in a day, or download it in a browser"
        )
    host = urllib.parse.urlsplit(landed).netloc.lower()
    if host.startswith("accounts.google.") or "servicelogin" in text or "sign in" in text:
        return "the file is not public: a sign-in page came back instead of the file"
    return "the server sent an HTML page, not the file"
