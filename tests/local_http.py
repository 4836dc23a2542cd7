"""A real HTTP server on 127.0.0.1 for download tests (no mocks of urllib).

The ``http_server`` fixture (conftest.py) starts one :class:`LocalServer` per test.
"""

from __future__ import annotations

import hashlib
import http.server
import threading

PAYLOAD = b"micromotion test payload\n" * 4000  # 100 kB: several reads, small enough to be fast
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 serving ``files``; every request path is logged.

    Besides the files it has special paths: ``/truncated`` (announces more bytes than it
    sends, then closes), ``/nolength`` (no Content-Length: the body ends when the connection
    closes), ``/redirect`` (302 to ``/good.bin``) and ``/slow`` (answers only at teardown).
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {"/good.bin": PAYLOAD}
        #: Path (without query) -> handler(request) for pages that answer by hand.
        self.routes: dict[str, object] = {}
        self.hits: list[str] = []
        self.release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits.append(self.path)
                route = server.routes.get(self.path.split("?", 1)[0])
                if route is not None:
                    route(self)  # type: ignore[operator]
                elif self.path == "/truncated":
                    self._head(200, length=len(PAYLOAD))
                    self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3])
                    self.close_connection = True
                elif self.path == "/nolength":
                    self._head(200)
                    self.wfile.write(PAYLOAD)
                    self.close_connection = True
                elif self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/good.bin")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.path == "/slow":
                    server.release.wait(10)
                elif self.path in server.files:
                    body = server.files[self.path]
                    self._head(200, length=len(body))
                    self.wfile.write(body)
                else:
                    self.send_error(404)

            def _head(self, code: int, length: int | None = None) -> None:
                self.send_response(code)
                if length is not None:
                    self.send_header("Content-Length", str(length))
                self.end_headers()

            def answer(
                self,
                body: bytes,
                *,
                kind: str = "application/octet-stream",
                code: int = 200,
                headers: dict[str, str] | None = None,
            ) -> None:
                """Send ``body`` with a Content-Type (routes use this)."""
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        """The full URL of ``path`` on this server."""
        return self.base + path


def leftovers(directory):
    """Temporary download files left in ``directory``."""
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))
