"""Google Drive downloads against a local server that imitates Drive's pages (no mocks)."""

from __future__ import annotations

import urllib.parse
from dataclasses import replace

import pytest

from helpers import zoo_entry
from local_http import PAYLOAD, PAYLOAD_SHA, leftovers
from micromotion import hub
from micromotion.errors import DownloadError
from micromotion.hub import Zoo
from micromotion.hub.download import DownloadFailure, download

#: The shape of Drive's "can't scan this file for viruses" page (a form that leads on).
CONFIRM_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>
</head><body><p>Google Drive can't scan this file for viruses.</p>
<form id="download-form" action="{action}" method="get">
<input type="submit" value="Download anyway"/>
<input type="hidden" name="id" value="FILEID">
<input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t">
<input type="hidden" name="uuid" value="1234-abcd">
</form></body></html>"""
QUOTA_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head>
<body><p>Too many users have viewed or downloaded this file recently. Please try accessing
the file again later.</p></body></html>"""
LOGIN_PAGE = """<html><head><title>Sign in - Google Accounts</title></head><body>
<form action="/ServiceLogin">Sign in to continue to Google Drive</form></body></html>"""
OLD_PAGE = """<html><body><a id="uc-download-link" href="/old/uc?export=download&amp;confirm=AbCd&amp;id=FILEID">Download anyway</a></body></html>"""  # noqa: E501


def _query(request) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(request.path).query))


@pytest.fixture
def drive(http_server):
    """Routes that answer as drive.google.com and drive.usercontent.google.com do."""
    server = http_server

    def uc(request):  # the first request: the confirmation page
        request.answer(
            CONFIRM_PAGE.format(action=server.url("/usercontent/download")).encode(),
            kind="text/html; charset=utf-8",
        )

    def usercontent(request):  # the confirmed request: the file, only with every field
        q = _query(request)
        if (q.get("id"), q.get("confirm"), q.get("uuid")) == ("FILEID", "t", "1234-abcd"):
            request.answer(PAYLOAD)
        else:
            request.answer(b"<html>bad request</html>", kind="text/html", code=400)

    def old(request):  # an older page: confirm link plus cookie, checked on the second hop
        q = _query(request)
        if q.get("confirm") == "AbCd" and "download_warning_1=AbCd" in (
            request.headers.get("Cookie") or ""
        ):
            request.answer(PAYLOAD)
        else:
            request.answer(
                OLD_PAGE.encode(),
                kind="text/html",
                headers={"Set-Cookie": "download_warning_1=AbCd; Path=/"},
            )

    def quota(request):
        request.answer(QUOTA_PAGE.encode(), kind="text/html; charset=utf-8")

    def login(request):
        request.send_response(302)
        request.send_header("Location", server.url("/ServiceLogin"))
        request.send_header("Content-Length", "0")
        request.end_headers()

    def signin(request):
        request.answer(LOGIN_PAGE.encode(), kind="text/html")

    def untyped_html(request):  # no Content-Type: recognised by its first bytes
        request.answer(b"<!DOCTYPE html><html><body>hello</body></html>", kind="")

    server.routes.update({
        "/uc": uc, "/usercontent/download": usercontent, "/old/uc": old, "/quota": quota,
        "/login": login, "/ServiceLogin": signin, "/untyped": untyped_html,
    })  # fmt: skip
    return server


def test_the_large_file_confirmation_step_is_followed(drive, tmp_path):
    dest = tmp_path / "w.pt"
    assert download(drive.url("/uc?id=FILEID&export=download"), dest, progress=False) == PAYLOAD_SHA
    assert dest.read_bytes() == PAYLOAD
    assert [h.split("?")[0] for h in drive.hits] == ["/uc", "/usercontent/download"]


def test_an_older_confirm_link_with_its_cookie_is_followed(drive, tmp_path):
    dest = tmp_path / "w.pt"
    download(
        drive.url("/old/uc?id=FILEID&export=download"), dest, sha256=PAYLOAD_SHA, progress=False
    )
    assert dest.read_bytes() == PAYLOAD


@pytest.mark.parametrize(
    ("path", "cause"),
    [
        ("/quota", "download quota for this file is exceeded"),
        ("/login", "the file is not public: a sign-in page came back"),
        ("/untyped", "the server sent an HTML page, not the file"),
    ],
)
def test_html_pages_are_named_and_never_saved(drive, tmp_path, path, cause):
    dest = tmp_path / "w.pt"
    with pytest.raises(DownloadFailure) as caught:
        download(drive.url(path), dest, progress=False)
    assert cause in caught.value.reason and "\n" not in str(caught.value)
    assert not dest.exists() and leftovers(tmp_path) == []


def test_a_quota_page_falls_through_to_the_next_mirror(drive):
    reg = Zoo([zoo_entry([drive.url("/quota"), drive.url("/uc?id=FILEID")], sha256=PAYLOAD_SHA)])
    path = hub.fetch("thing", registry=reg, progress=False)
    assert path.read_bytes() == PAYLOAD


def test_every_mirror_an_html_page_is_one_line(drive):
    reg = Zoo([zoo_entry([drive.url("/quota"), drive.url("/login")])])
    with pytest.raises(DownloadError) as caught:
        hub.fetch("thing", registry=reg, progress=False)
    message = str(caught.value)
    assert "quota" in message and "sign-in page" in message and "\n" not in message
    assert not hub.cache_path(reg.get("thing")).exists()


def test_a_known_size_is_checked_before_the_body(drive, http_server, tmp_path):
    with pytest.raises(DownloadFailure, match=f"announces {len(PAYLOAD)} bytes, expected 10"):
        download(http_server.url("/good.bin"), tmp_path / "g.bin", size=10, progress=False)
    assert leftovers(tmp_path) == [] and not (tmp_path / "g.bin").exists()
    reg = Zoo([zoo_entry([http_server.url("/good.bin")], sha256=None)])
    sized = Zoo([replace(reg.get("thing"), size=len(PAYLOAD))])
    assert hub.fetch("thing", registry=sized, progress=False).read_bytes() == PAYLOAD
