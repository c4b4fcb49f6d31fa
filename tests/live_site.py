"""The app under werkzeug's threaded HTTP server on 127.0.0.1 (`live_site`, or `Served` when the
newsletter's base URL must name the server's own port), and requests to it on a fresh connection
each, never following a redirect: what the webhook, click and browser tests send and read."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.serving import make_server

from newsletter.context import Newsletter
from newsletter.web import create_app


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class LiveSite:
    host: str
    port: int

    def request(self, path: str, *, method: str = "GET", body: bytes | None = None,
                user_agent: str = "Mozilla/5.0 test",
                headers: dict[str, str] | None = None) -> Answer:
        """One request; `path` may be a whole URL (its path and query are used)."""
        parts = urlsplit(path)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request(method, target, body=body,
                               headers={"User-Agent": user_agent, **(headers or {})})
            response = connection.getresponse()
            return Answer(response.status, response.msg, response.read())
        finally:
            connection.close()

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> Answer:
        return self.request(path, method="POST", body=body,
                            headers={"Content-Type": "application/json", **(headers or {})})


@contextmanager
def live_site(nl: Newsletter) -> Iterator[LiveSite]:
    server = make_server("127.0.0.1", 0, create_app(nl, testing=True), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveSite("127.0.0.1", server.port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Served:
    """A server whose port is known before the Newsletter is opened, so its base_url (the links
    in mail, the console's cookies) can be the server's own: `make()`, open the newsletter on
    `base`, then `serving(nl)`."""

    server: Any
    base: str
    holder: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def make(cls) -> Served:
        holder: dict[str, Any] = {}
        server = make_server("127.0.0.1", 0, lambda env, start: holder["app"](env, start),
                             threaded=True)
        return cls(server, f"http://127.0.0.1:{server.port}", holder)

    @contextmanager
    def serving(self, nl: Newsletter, *, testing: bool = True) -> Iterator[Flask]:
        """`testing=False`: production mode, where mail goes out after each response."""
        app = create_app(nl, testing=testing)
        self.holder["app"] = app
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield app
        finally:
            self.server.shutdown()
            self.server.server_close()
            thread.join(5)
