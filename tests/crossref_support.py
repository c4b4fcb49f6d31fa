"""A Crossref REST API on loopback, answering in Crossref's documented JSON (the `message`
envelope of `/works/{doi}` and the `work-list` of `/works?filter=updates:{doi}`), plus the ways a
real server fails: 404, 500, a stall, invalid JSON, a 20 MB body."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

ARTICLE_DOI = "10.1037/a0037815"
CORRECTED_DOI = "10.1037/pst0000175"
CHAPTER_DOI = "10.1002/9781118781890.ch2"
ORGANISATION_DOI = "10.1016/s0140-6736(20)30000-1"
NOT_FOUND, FAILING, SLOW, BROKEN, HUGE = (f"10.5555/{name}" for name in
                                          ("missing", "fails", "slow", "broken", "huge"))
RETRACTION_DOI = "10.1037/a0099999"
CORRECTION_DOI = "10.1037/pst0000199"
SLOW_SECONDS = 3.0
HUGE_BYTES = 20 * 1024 * 1024


def _work(message: dict[str, Any]) -> dict[str, Any]:
    return {"status": "ok", "message-type": "work", "message-version": "1.0.0",
            "message": message}


ARTICLE = _work({
    "DOI": "10.1037/A0037815", "type": "journal-article", "publisher": "American Psychological "
    "Association (APA)", "title": ["Alliance Ruptures, Impasses, and Enactments: A Relational "
                                   "Perspective"],
    "container-title": ["Psychotherapy"], "volume": "51", "issue": "3", "page": "381-387",
    "author": [{"given": "Jeremy D.", "family": "Safran", "sequence": "first",
                "affiliation": []},
               {"given": "Jennifer", "family": "Kraus", "sequence": "additional",
                "affiliation": []}],
    "issued": {"date-parts": [[2014, 9]]}, "published-print": {"date-parts": [[2014]]},
    "ISSN": ["1939-1536", "0033-3204"]})

CHAPTER = _work({
    "DOI": CHAPTER_DOI, "type": "book-chapter", "publisher": "Wiley",
    "title": ["Research on Training in Psychotherapy"],
    "container-title": ["Bergin and Garfield's Handbook of Psychotherapy and Behavior Change"],
    "page": "298-340", "edition-number": "6", "ISBN": ["9781118038208", "9781118781890"],
    "author": [{"given": "Clara E.", "family": "Hill"}, {"given": "Sarah", "family": "Knox"}],
    "editor": [{"given": "Michael J.", "family": "Lambert"}],
    "published-online": {"date-parts": [[2013, 5, 1]]}})

ORGANISATION = _work({
    "DOI": ORGANISATION_DOI, "type": "journal-article",
    "title": ["Global burden of <i>mental</i> disorders &amp; suicide"],
    "container-title": ["The Lancet"], "volume": "396", "page": "1204-1222",
    "author": [{"name": "GBD 2019 Mental Disorders Collaborators", "sequence": "first"}],
    "issued": {"date-parts": [[2020]]}})

NOTICES: dict[str, list[dict[str, Any]]] = {
    ARTICLE_DOI: [{
        "DOI": RETRACTION_DOI, "type": "journal-article", "title": ["Retraction notice"],
        "update-to": [{"updated": {"date-parts": [[2024, 3, 5]]}, "DOI": ARTICLE_DOI.upper(),
                       "type": "retraction", "source": "publisher", "label": "Retraction"}],
        "issued": {"date-parts": [[2024, 3]]}}],
    CORRECTED_DOI: [{
        "DOI": CORRECTION_DOI, "type": "journal-article", "title": ["Correction to Elliott et al."],
        "update-to": [{"updated": {"date-parts": [[2019, 1, 2]]}, "DOI": CORRECTED_DOI,
                       "type": "correction", "label": "Correction"},
                      {"updated": {"date-parts": [[2019, 1, 2]]}, "DOI": "10.1037/other",
                       "type": "retraction", "label": "Retraction"}]}],
}


@dataclass
class FakeCrossref:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)


def _handler(fake: FakeCrossref) -> type[BaseHTTPRequestHandler]:
    works = {ARTICLE_DOI: ARTICLE, CHAPTER_DOI: CHAPTER, ORGANISATION_DOI: ORGANISATION}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            fake.requests.append({"path": parts.path, "query": query,
                                  "user_agent": self.headers.get("User-Agent", "")})
            if parts.path == "/works" and "filter" in query:
                doi = query["filter"][0].removeprefix("updates:")
                items = NOTICES.get(doi, [])
                self._send(200, json.dumps({"status": "ok", "message-type": "work-list",
                                            "message": {"items": items,
                                                        "total-results": len(items)}}).encode())
                return
            doi = unquote(parts.path.removeprefix("/works/"))
            if doi in works:
                self._send(200, json.dumps(works[doi]).encode())
            elif doi == FAILING:
                self._send(500, b"Internal Server Error", "text/plain")
            elif doi == SLOW:
                time.sleep(SLOW_SECONDS)
                self._send(200, json.dumps(ARTICLE).encode())
            elif doi == BROKEN:
                self._send(200, b'{"status": "ok", "message-type": "work", "message": {')
            elif doi == HUGE:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                chunk = b" " * (1024 * 1024)
                with suppress(BrokenPipeError, ConnectionResetError):
                    for _ in range(HUGE_BYTES // len(chunk)):
                        self.wfile.write(chunk)
            else:
                self._send(404, b"Resource not found.", "text/plain")

    return Handler


@contextmanager
def fake_crossref() -> Iterator[FakeCrossref]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(FakeCrossref("")))
    fake = FakeCrossref(f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(fake)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
