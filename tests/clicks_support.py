"""For the click tests: the app under a real threaded HTTP server on loopback, and requests to it
that never follow a redirect (the answer to /r/ is what is tested)."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlsplit

from werkzeug.serving import make_server

from newsletter.context import Newsletter
from newsletter.web import create_app


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Message
    body: bytes

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")


@dataclass(frozen=True)
class LiveSite:
    host: str
    port: int

    def request(self, path: str, *, method: str = "GET", user_agent: str = "Mozilla/5.0 test",
                headers: dict[str, str] | None = None) -> Answer:
        """One request on a fresh connection; `path` may be a whole URL (its path is used)."""
        parts = urlsplit(path)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request(method, target, headers={"User-Agent": user_agent, **(headers or {})})
            response = connection.getresponse()
            return Answer(response.status, response.msg, response.read())
        finally:
            connection.close()


@contextmanager
def live_site(nl: Newsletter) -> Iterator[LiveSite]:
    """`create_app(nl)` served by werkzeug's threaded server on 127.0.0.1, one thread a request."""
    server = make_server("127.0.0.1", 0, create_app(nl, testing=True), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveSite("127.0.0.1", server.port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
