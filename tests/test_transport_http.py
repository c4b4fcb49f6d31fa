"""HTTP providers end to end: the store, the ledger, and each provider's documented API on loopback.

Each fake below is a real HTTP server (ThreadingHTTPServer on 127.0.0.1) that checks what the real
API checks (credentials, batch limits, required fields), answers in its documented format, merges
per-recipient values the way the provider does, and keeps what each recipient would receive in
`delivered`. `script` makes it answer the next requests differently (429, 500, 401…), or accept
a request and lose the answer (HANG, DROP).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parseaddr
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from lxml import html as lxml_html
from sqlalchemy import select

from newsletter.config import load_config
from newsletter.context import Newsletter
from newsletter.errors import ConfigError
from newsletter.mail.message import OutgoingMessage, ResultCallback, SendResult
from newsletter.sending.engine import Sender, SendReport
from newsletter.sending.models import Delivery
from newsletter.sending.report import edition_status
from newsletter.sending.retry import RetryPolicy
from newsletter.tokens import Purpose, TokenSigner
from newsletter.transports import (
    HTTPSettings,
    MailgunTransport,
    PostmarkTransport,
    SendGridTransport,
    Transport,
    make_transport,
)
from newsletter.transports.http import fill, retry_after_seconds
from subscribers.models import Subscriber, SubscriberStatus
from subscribers.store import find

from .builders import AUDIENCE, MONTH, SUMMARIES, load_month
from .conftest import TEST_SECRET

Reply = tuple[int, dict[str, str], bytes]
HANG, DROP = "hang", "drop"
"""Script entries: accept the request, then never answer / close the connection unanswered."""
TOM = ("Tom <Cat> & Jerry", "tom&jerry@example.org", None)
EXPECTED = {
    "ada@example.org": [s.headline for s in SUMMARIES],
    "bob@example.org": [SUMMARIES[0].headline],
    "cy@example.org": [SUMMARIES[0].headline, SUMMARIES[2].headline],
    "tom&jerry@example.org": [s.headline for s in SUMMARIES],
}
LEFTOVER = re.compile(r"nl[0-9a-f]{16}|%recipient\.")


def reply(status: int, body: Any = None, **headers: str) -> Reply:
    data = b"" if body is None else json.dumps(body).encode()
    return status, {"Content-Type": "application/json", **headers}, data


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int]

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> list[tuple[str, str]]:
        return parse_qsl(self.body.decode(), keep_blank_values=True, strict_parsing=True)


@dataclass
class Delivered:
    """What one recipient would get, after the provider merged their values."""

    email: str
    name: str
    subject: str
    text: str
    html: str
    headers: dict[str, str]
    delivery_id: str
    provider_id: str


@dataclass
class FakeProvider:
    key: str = field(default_factory=lambda: "key-" + secrets.token_hex(8))
    requests: list[Received] = field(default_factory=list)
    delivered: list[Delivered] = field(default_factory=list)
    script: deque[Reply | str | None] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def dispatch(self, received: Received) -> Reply | str:
        """The reply, or HANG or DROP once the request is accepted (its answer is lost)."""
        with self.lock:
            self.requests.append(received)
            scripted = self.script.popleft() if self.script else None
        if isinstance(scripted, str):
            self.answer(received)  # accepted and delivered: only the answer is lost
            return scripted
        return scripted or self.answer(received)

    def answer(self, received: Received) -> Reply:
        raise NotImplementedError


def _handler_for(provider: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = provider.dispatch(Received(self.path, headers, body, self.client_address))
            if isinstance(answer, str):
                self.close_connection = True
                if answer == HANG:
                    self.connection.settimeout(10)
                    self.rfile.read(1)  # returns once the client gives up and closes
                return
            status, out_headers, data = answer
            try:
                self.send_response(status)
                for name, value in out_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class FakePostmark(FakeProvider):
    """https://postmarkapp.com/developer/api/email-api#send-batch-emails"""

    inactive: set[str]

    def __post_init__(self) -> None:
        super().__post_init__()
        self.inactive = set()
        self.sender_confirmed = True

    def answer(self, received: Received) -> Reply:
        if received.path != "/email/batch":
            return reply(404, {"ErrorCode": 404, "Message": "Not found"})
        if received.headers.get("x-postmark-server-token") != self.key:
            return reply(401, {"ErrorCode": 10, "Message": "No Account or Server API tokens "
                                                           "were supplied in the HTTP headers."})
        if not received.headers.get("content-type", "").startswith("application/json"):
            return reply(422, {"ErrorCode": 409, "Message": "JSON required"})
        messages = received.json()
        if len(messages) > 500:
            return reply(422, {"ErrorCode": 410, "Message": f"Too many batch messages "
                                                            f"({len(messages)}). Maximum is 500."})
        return reply(200, [self.one(m) for m in messages])

    def one(self, message: dict[str, Any]) -> dict[str, Any]:
        if not all(message.get(f) for f in ("From", "To", "Subject")) or not (
                message.get("HtmlBody") or message.get("TextBody")):
            return {"ErrorCode": 300, "Message": "Invalid email request"}
        if not self.sender_confirmed:
            return {"ErrorCode": 401, "Message": "Sender signature not confirmed"}
        name, email = parseaddr(message["To"])
        if email.lower() in self.inactive:
            return {"ErrorCode": 406, "Message": f"You tried to send to recipient(s) that have been "
                    f"marked as inactive. Found inactive addresses: {email}. Inactive recipients "
                    f"are ones that have generated a hard bounce, a spam complaint, or a manual "
                    f"suppression."}
        message_id = str(uuid.uuid4())
        self.delivered.append(Delivered(
            email, name, message["Subject"], message["TextBody"], message["HtmlBody"],
            {h["Name"]: h["Value"] for h in message.get("Headers", [])},
            message.get("Metadata", {}).get("delivery_id", ""), message_id))
        return {"To": message["To"], "SubmittedAt": datetime.now(UTC).isoformat(),
                "MessageID": message_id, "ErrorCode": 0, "Message": "OK"}


def _substitute(text: str, substitutions: dict[str, str]) -> str:
    for key, value in substitutions.items():
        text = text.replace(key, value)
    return text


class FakeSendGrid(FakeProvider):
    """https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send"""

    def answer(self, received: Received) -> Reply:
        if received.path != "/v3/mail/send":
            return reply(404, {"errors": [{"message": "not found", "field": None}]})
        if received.headers.get("authorization") != f"Bearer {self.key}":
            return reply(401, {"errors": [{"message": "The provided authorization grant is "
                                           "invalid, expired, or revoked", "field": None}]})
        body = received.json()
        problems = self.problems(body)
        if problems:
            return reply(400, {"errors": [{"message": m, "field": f, "help": None}
                                          for f, m in problems]})
        message_id = secrets.token_urlsafe(16)
        content = {c["type"]: c["value"] for c in body["content"]}
        for p in body["personalizations"]:
            subs = p.get("substitutions", {})
            self.delivered.append(Delivered(
                p["to"][0]["email"], p["to"][0].get("name", ""), _substitute(body["subject"], subs),
                _substitute(content["text/plain"], subs), _substitute(content["text/html"], subs),
                {**body.get("headers", {}), **p.get("headers", {})},
                p.get("custom_args", {}).get("delivery_id", ""), message_id))
        return 202, {"X-Message-Id": message_id}, b""

    @staticmethod
    def problems(body: dict[str, Any]) -> list[tuple[str, str]]:
        found = []
        personalizations = body.get("personalizations") or []
        if not 1 <= len(personalizations) <= 1000:
            found.append(("personalizations", f"The personalization block is limited to 1000 "
                          f"personalizations per API request. You have provided "
                          f"{len(personalizations)} personalizations."))
        emails = [p["to"][0]["email"].lower() for p in personalizations]
        if len(set(emails)) != len(emails):
            found.append(("personalizations", "Each unique email address in the personalizations "
                                              "array should only be included once."))
        for i, p in enumerate(personalizations):
            if len(json.dumps(p.get("substitutions", {}))) > 10000:
                found.append((f"personalizations.{i}.substitutions", "too large"))
        if not (body.get("from") or {}).get("email"):
            found.append(("from.email", "The from email is required."))
        types = [c.get("type") for c in body.get("content", [])]
        if types != ["text/plain", "text/html"]:
            found.append(("content", "If present, text/plain and text/html may only be provided "
                                     "in that order."))
        return found


class FakeMailgun(FakeProvider):
    """https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/batch-sending"""

    domain = "mg.example.org"

    def answer(self, received: Received) -> Reply:
        match = re.fullmatch(r"/v3/([^/]+)/messages", received.path)
        expected = "Basic " + base64.b64encode(f"api:{self.key}".encode()).decode()
        if received.headers.get("authorization") != expected:
            return 401, {"Content-Type": "text/plain"}, b"Forbidden"
        if match is None or match.group(1) != self.domain:
            return reply(404, {"message": f"Domain not found: {match and match.group(1)}"})
        form = received.form()
        fields = dict(form)
        to = [v for k, v in form if k == "to"]
        if len(to) > 1000:
            return reply(400, {"message": "Too many recipients: the maximum is 1000"})
        if not all(fields.get(f) for f in ("from", "subject")) or not to:
            return reply(400, {"message": "'from', 'to' and 'subject' are required"})
        variables = json.loads(fields.get("recipient-variables", "{}"))
        message_id = f"{time.strftime('%Y%m%d%H%M%S')}.{secrets.token_hex(6)}@{self.domain}"
        for address in to:
            name, email = parseaddr(address)
            values = variables.get(email, {})

            def merge(text: str, values: dict[str, str] = values) -> str:
                return re.sub(r"%recipient\.([\w:-]+)%", lambda m: str(values.get(m.group(1), "")),
                              text)

            self.delivered.append(Delivered(
                email, name, merge(fields["subject"]), merge(fields.get("text", "")),
                merge(fields.get("html", "")),
                {k[2:]: merge(v) for k, v in form if k.startswith("h:")},
                merge(fields.get("v:delivery_id", "")), message_id))
        return reply(200, {"id": f"<{message_id}>", "message": "Queued. Thank you."})


FAKES: dict[str, Callable[[], FakeProvider]] = {
    "postmark": FakePostmark, "sendgrid": FakeSendGrid, "mailgun": FakeMailgun}


@pytest.fixture(params=list(FAKES))
def provider(request: pytest.FixtureRequest) -> Iterator[tuple[str, FakeProvider]]:
    with FAKES[request.param]() as server:
        yield request.param, server


@pytest.fixture
def postmark() -> Iterator[FakePostmark]:
    with FakePostmark() as server:
        yield server


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as server:
        yield server


@pytest.fixture
def mailgun() -> Iterator[FakeMailgun]:
    with FakeMailgun() as server:
        yield server


def using(nl: Newsletter, transport: str, server: FakeProvider, **overrides: Any) -> Newsletter:
    """The same store, configured to send through `server`."""
    values = {"transport": transport, "api_key": server.key, "api_base_url": server.url,
              "mailgun_domain": FakeMailgun.domain if transport == "mailgun" else ""}
    config = nl.config.with_overrides(**{**values, **overrides})
    return Newsletter(config, nl.engine, nl.sessions)


def send(nl: Newsletter, transport: Transport | None = None, *, tries: int = 5,
         resend_uncertain: bool = False) -> SendReport:
    """One run; `tries` per row within it (the engine retries temporary failures itself)."""
    transport = transport or make_transport(nl.config)
    try:
        return Sender(nl, transport, retry=RetryPolicy(max_attempts=tries)).send(
            MONTH, resend_uncertain=resend_uncertain)
    finally:
        transport.close()


def settings_for(nl: Newsletter, **overrides: Any) -> HTTPSettings:
    c = nl.config
    return HTTPSettings(api_key=c.api_key, base_url=c.api_base_url,
                        **{"timeout": c.http_timeout, **overrides})


def ledger(nl: Newsletter) -> dict[str, dict[str, Any]]:
    return {d["email"]: d for d in edition_status(nl, MONTH)["deliveries"]}


def delivery_ids(nl: Newsletter) -> dict[str, str]:
    """{email: ledger row id}, as the providers should echo it back."""
    with nl.session() as session:
        rows = session.execute(select(Subscriber.email, Delivery.id).join(Delivery)).all()
    return {email: str(row_id) for email, row_id in rows}


def headlines(html: str) -> list[str]:
    return [" ".join(h.text_content().split()) for h in lxml_html.fromstring(html).iter("h2")]


def load_audience(nl: Newsletter, count: int) -> None:
    load_month(nl, audience=tuple((f"Reader {i}", f"reader{i:05d}@example.org", None)
                                  for i in range(count)))


# --- every provider: what each recipient receives ---------------------------------------------


def test_each_recipient_gets_their_variant_and_signed_links(
        newsletter: Newsletter, provider: tuple[str, FakeProvider]) -> None:
    name, server = provider
    nl = using(newsletter, name, server)
    load_month(nl, audience=(*AUDIENCE, TOM))
    report = send(nl)

    assert (report.sent, report.failed, report.rejected, report.complete) == (4, 0, 0, True)
    received = {d.email: d for d in server.delivered}
    assert len(server.delivered) == len(received) == 4
    assert {e: headlines(d.html) for e, d in received.items()} == EXPECTED
    signer, rows, ids = TokenSigner([TEST_SECRET]), ledger(nl), delivery_ids(nl)
    for email, message in received.items():
        with nl.session() as session:
            uid = find(session, email).uid  # type: ignore[union-attr]
        assert message.subject.endswith(" · January 2015")
        assert not LEFTOVER.search(message.text + message.html)
        one_click, mailto = (t.strip().strip("<>")
                             for t in message.headers["List-Unsubscribe"].split(","))
        assert signer.verify(Purpose.UNSUBSCRIBE, urlsplit(one_click).path[3:]) == uid
        assert mailto.startswith("mailto:unsubscribe@pprnet.example?subject=unsubscribe")
        assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "digest.example.org" in message.headers["List-Id"]
        tree = lxml_html.fromstring(message.html)
        links = {a.text_content().strip(): a.get("href") for a in tree.iter("a")}
        assert links["Unsubscribe"] == one_click
        preferences = links["Change your topics"]
        assert signer.verify(Purpose.PREFERENCES, preferences.rsplit("/", 1)[1]) == uid
        assert f"Unsubscribe:\n{one_click}\n" in message.text
        assert f"Change your topics:\n{preferences}\n" in message.text
        assert email in message.text and email in tree.text_content()
        row = rows[email]
        assert row["status"] == "sent"
        assert row["provider_message_id"] == message.provider_id.strip("<>")
        assert message.delivery_id == ids[email]  # echoed back by the provider's webhooks
        assert message.headers["X-Newsletter-Message-ID"].startswith(f"<{MONTH}.{ids[email]}.")
    tom = received["tom&jerry@example.org"]
    assert tom.name == "Tom <Cat> & Jerry"
    assert "with tom&amp;jerry@example.org for" in tom.html
    assert "with:\ntom&jerry@example.org\n" in tom.text


def test_wrong_api_key_stops_the_send_and_fails_nobody(
        newsletter: Newsletter, provider: tuple[str, FakeProvider]) -> None:
    name, server = provider
    nl = using(newsletter, name, server, api_key="not-the-key")
    load_month(nl)
    with pytest.raises(ConfigError, match="refused the API key .*NEWSLETTER_API_KEY"):
        send(nl)
    status = edition_status(nl, MONTH)
    assert status["counts"]["pending"] == 3
    assert status["counts"]["failed"] == status["counts"]["in_flight"] == 0
    assert all(d["attempts"] == 0 and d["last_error"] is None for d in status["deliveries"])
    assert server.delivered == []


def test_429_is_retried_after_retry_after_on_the_same_connection(
        newsletter: Newsletter, provider: tuple[str, FakeProvider]) -> None:
    name, server = provider
    nl = using(newsletter, name, server)
    load_month(nl, audience=AUDIENCE[:1])
    server.script.append(reply(429, {"message": "slow down"}, **{"Retry-After": "1"}))
    transport, slept = make_transport(nl.config), []
    transport.sleep = slept.append  # type: ignore[attr-defined]
    report = send(nl, transport)
    assert slept == [1.0]
    assert report.sent == 1
    assert len(server.requests) == 2
    assert server.requests[0].peer == server.requests[1].peer  # keep-alive


def test_500_once_is_retried_with_backoff(newsletter: Newsletter,
                                          provider: tuple[str, FakeProvider]) -> None:
    name, server = provider
    nl = using(newsletter, name, server)
    load_month(nl, audience=AUDIENCE[:1])
    server.script.append(reply(500, {"message": "internal error"}))
    transport, slept = make_transport(nl.config), []
    transport.sleep = slept.append  # type: ignore[attr-defined]
    assert send(nl, transport).sent == 1
    assert slept == [1.0]
    assert len(server.requests) == 2


def test_5xx_three_times_leaves_the_messages_due_again(
        newsletter: Newsletter, provider: tuple[str, FakeProvider]) -> None:
    name, server = provider
    nl = using(newsletter, name, server)
    load_month(nl, audience=AUDIENCE[:1])
    server.script.extend([reply(503, {"message": "maintenance, back soon"},
                                **{"Retry-After": "0"})] * 3)
    report = send(nl, tries=1)
    assert (report.sent, report.failed, report.complete) == (0, 1, False)
    assert len(server.requests) == 3
    for row in ledger(nl).values():
        assert row["status"] == "failed"
        assert f"{name}: HTTP 503 after 3 tries" in row["last_error"]
        assert "maintenance, back soon" in row["last_error"]


@pytest.mark.parametrize(("lost", "error"), [(HANG, "timed out"), (DROP, "connection lost")])
def test_an_answer_lost_after_the_request_went_out_is_uncertain_and_not_posted_again(
        newsletter: Newsletter, provider: tuple[str, FakeProvider], lost: str, error: str) -> None:
    name, server = provider
    nl = using(newsletter, name, server, http_timeout=0.3)
    load_audience(nl, 2)
    server.script.append(lost)

    report = send(nl)

    assert (report.sent, report.failed, report.retried, report.uncertain) == (0, 0, 0, 2)
    assert len(server.requests) == 1 and len(server.delivered) == 2
    for row in ledger(nl).values():
        assert (row["status"], row["attempts"]) == ("uncertain", 1)
        assert row["last_error"].startswith(f"{name}: {error}")
    assert send(nl).sent == 0
    assert len(server.requests) == 1
    assert send(nl, resend_uncertain=True).sent == 2
    assert len(server.requests) == 2 and len(server.delivered) == 4


def test_a_redirect_is_a_config_error_not_followed(newsletter: Newsletter,
                                                   postmark: FakePostmark) -> None:
    nl = using(newsletter, "postmark", postmark)
    load_month(nl)
    postmark.script.append(reply(301, None, Location="https://api.postmarkapp.com/email/batch"))
    with pytest.raises(ConfigError, match="redirects to https://api.postmarkapp.com/email/batch"):
        send(nl)
    assert len(postmark.requests) == 1
    assert edition_status(nl, MONTH)["counts"]["pending"] == 3


def test_connection_refused_is_temporary(newsletter: Newsletter) -> None:
    with FakePostmark() as server:  # started and stopped: its port now refuses connections
        pass
    nl = using(newsletter, "postmark", server)
    load_month(nl)
    report = send(nl, tries=1)
    assert (report.sent, report.failed) == (0, 3)
    assert "connection failed" in ledger(nl)["bob@example.org"]["last_error"]


LIMITS = {
    "postmark": (500, "postmark: HTTP 422: 410 Too many batch messages (501). Maximum is 500."),
    "sendgrid": (1000, "sendgrid: HTTP 400: personalizations: The personalization block is "
                       "limited to 1000 personalizations per API request."),
    "mailgun": (1000, "mailgun: HTTP 400: Too many recipients: the maximum is 1000"),
}


def test_over_the_limit_the_fake_rejects_the_request_as_the_real_api_does(
        newsletter: Newsletter, provider: tuple[str, FakeProvider]) -> None:
    name, server = provider
    limit, reason = LIMITS[name]
    nl = using(newsletter, name, server)
    load_audience(nl, limit + 1)
    transport = make_transport(nl.config)
    transport.max_per_request = transport.batch_size = limit + 1  # type: ignore[attr-defined,misc]
    report = send(nl, transport)
    assert report.rejected == limit + 1
    assert len(report.reasons) == 1
    assert next(iter(report.reasons)).startswith(reason)


# --- Postmark -----------------------------------------------------------------------------------


def test_postmark_payload(newsletter: Newsletter, postmark: FakePostmark) -> None:
    nl = using(newsletter, "postmark", postmark, postmark_message_stream="digest",
               reply_to="editor@pprnet.example")
    load_month(nl)
    send(nl)
    (request,) = postmark.requests
    assert request.headers["x-postmark-server-token"] == postmark.key
    assert request.headers["accept"] == "application/json"
    messages, ids = request.json(), delivery_ids(nl)
    assert [parseaddr(m["To"])[1] for m in messages] == ["ada@example.org", "bob@example.org",
                                                         "cy@example.org"]
    rows = ledger(nl)
    for message in messages:
        assert message["From"] == "PPRNet Research Digest <digest@pprnet.example>"
        assert message["ReplyTo"] == "editor@pprnet.example"
        assert message["MessageStream"] == "digest"
        assert message["Metadata"] == {"delivery_id": ids[parseaddr(message["To"])[1]]}
        names = [h["Name"] for h in message["Headers"]]
        assert names == ["List-Unsubscribe", "List-Unsubscribe-Post", "List-Id",
                         "X-Newsletter-Message-ID"]
        assert "Message-ID" not in names  # Postmark sets its own
        assert rows[parseaddr(message["To"])[1]]["status"] == "sent"


def test_postmark_inactive_recipient_is_rejected_and_suppressed(
        newsletter: Newsletter, postmark: FakePostmark) -> None:
    nl = using(newsletter, "postmark", postmark)
    load_month(nl)
    postmark.inactive.add("bob@example.org")
    report = send(nl)
    assert (report.sent, report.rejected) == (2, 1)
    rows = ledger(nl)
    assert rows["bob@example.org"]["status"] == "rejected"
    assert rows["bob@example.org"]["last_error"].startswith("postmark 406: You tried to send")
    with nl.session() as session:
        assert find(session, "bob@example.org").status is SubscriberStatus.BOUNCED  # type: ignore[union-attr]
        assert find(session, "ada@example.org").status is SubscriberStatus.ACTIVE  # type: ignore[union-attr]


def test_postmark_chunks_to_500(newsletter: Newsletter, postmark: FakePostmark) -> None:
    nl = using(newsletter, "postmark", postmark)
    load_audience(nl, 600)
    report = send(nl, PostmarkTransport(settings_for(nl), batch_size=1000))
    assert report.sent == 600
    assert [len(r.json()) for r in postmark.requests] == [500, 100]


def test_postmark_keeps_each_call_under_its_size_limit(newsletter: Newsletter,
                                                       postmark: FakePostmark) -> None:
    nl = using(newsletter, "postmark", postmark)
    load_audience(nl, 3)
    transport = PostmarkTransport(settings_for(nl))
    transport.max_request_bytes = 1  # type: ignore[misc]  (smaller than any message: one a call)
    assert send(nl, transport).sent == 3
    assert [len(r.json()) for r in postmark.requests] == [1, 1, 1]


def test_an_unreadable_success_leaves_the_messages_uncertain(newsletter: Newsletter,
                                                             postmark: FakePostmark) -> None:
    nl = using(newsletter, "postmark", postmark)
    load_month(nl)
    postmark.script.append(reply(200, {"Message": "OK"}))  # not one entry per message
    report = send(nl)
    assert (report.sent, report.uncertain) == (0, 3)
    assert len(postmark.requests) == 1  # never posted again
    assert edition_status(nl, MONTH)["counts"]["uncertain"] == 3


def test_postmark_unconfirmed_sender_is_a_config_error(newsletter: Newsletter,
                                                       postmark: FakePostmark) -> None:
    nl = using(newsletter, "postmark", postmark)
    load_month(nl)
    postmark.sender_confirmed = False
    with pytest.raises(ConfigError, match="Sender signature not confirmed"):
        send(nl)
    assert edition_status(nl, MONTH)["counts"]["pending"] == 3


def test_key_refused_after_a_chunk_went_out_fails_only_the_rest(newsletter: Newsletter,
                                                                postmark: FakePostmark) -> None:
    nl = using(newsletter, "postmark", postmark)
    load_audience(nl, 600)
    postmark.script.extend([None, reply(401, {"ErrorCode": 10, "Message": "Bad token"})])
    report = send(nl, PostmarkTransport(settings_for(nl), batch_size=1000), tries=1)
    assert (report.sent, report.failed) == (500, 100)
    assert "refused the API key" in next(iter(report.reasons))


# --- SendGrid -----------------------------------------------------------------------------------


def test_sendgrid_payload(newsletter: Newsletter, sendgrid: FakeSendGrid) -> None:
    nl = using(newsletter, "sendgrid", sendgrid, reply_to="Editor <editor@pprnet.example>")
    load_month(nl, audience=(*AUDIENCE, TOM))
    send(nl)
    assert len(sendgrid.requests) == 3  # one per variant
    rows, ids = ledger(nl), delivery_ids(nl)
    delivered = {d.email: d for d in sendgrid.delivered}
    for request in sendgrid.requests:
        assert request.headers["authorization"] == f"Bearer {sendgrid.key}"
        body = request.json()
        assert body["from"] == {"email": "digest@pprnet.example", "name": "PPRNet Research Digest"}
        assert body["reply_to"] == {"email": "editor@pprnet.example", "name": "Editor"}
        assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
        html_part, text_part = body["content"][1]["value"], body["content"][0]["value"]
        for p in body["personalizations"]:
            (to,) = p["to"]
            row = rows[to["email"]]
            assert p["custom_args"] == {"delivery_id": ids[to["email"]]}
            assert p["headers"]["List-Unsubscribe"].startswith("<https://digest.example.org/u/")
            html_keys = [k for k in p["substitutions"] if k.endswith("-html-")]
            text_keys = [k for k in p["substitutions"] if k.endswith("-text-")]
            assert html_keys and text_keys
            assert all(k in html_part and k not in text_part for k in html_keys)
            assert all(k in text_part and k not in html_part for k in text_keys)
            assert row["provider_message_id"] == delivered[to["email"]].provider_id
    tom = next(p for r in sendgrid.requests for p in r.json()["personalizations"]
               if p["to"][0]["email"] == "tom&jerry@example.org")
    assert tom["to"][0]["name"] == "Tom <Cat> & Jerry"
    values = set(tom["substitutions"].values())
    assert {"tom&jerry@example.org", "tom&amp;jerry@example.org"} <= values


def test_sendgrid_quotes_names_it_would_split(newsletter: Newsletter,
                                              sendgrid: FakeSendGrid) -> None:
    nl = using(newsletter, "sendgrid", sendgrid)
    load_month(nl, audience=(("Smith, Jo", "jo@example.org", None),))
    send(nl)
    (personalization,) = sendgrid.requests[0].json()["personalizations"]
    assert personalization["to"] == [{"email": "jo@example.org", "name": '"Smith, Jo"'}]


@pytest.mark.slow
def test_sendgrid_1200_recipients_take_two_requests(newsletter: Newsletter,
                                                    sendgrid: FakeSendGrid) -> None:
    nl = using(newsletter, "sendgrid", sendgrid)
    load_audience(nl, 1200)
    report = send(nl)
    assert report.sent == 1200
    assert [len(r.json()["personalizations"]) for r in sendgrid.requests] == [1000, 200]
    ids = {d["provider_message_id"] for d in ledger(nl).values()}
    assert len(ids) == 2 and None not in ids


def test_sendgrid_bad_request_rejects_the_request(newsletter: Newsletter,
                                                  sendgrid: FakeSendGrid) -> None:
    nl = using(newsletter, "sendgrid", sendgrid)
    load_month(nl, audience=AUDIENCE[:1])
    sendgrid.script.append(reply(400, {"errors": [
        {"message": "The from address does not match a verified Sender Identity.",
         "field": "from", "help": None}]}))
    report = send(nl)
    assert report.rejected == 1
    assert ledger(nl)["ada@example.org"]["last_error"] == (
        "sendgrid: HTTP 400: from: The from address does not match a verified Sender Identity.")


# --- Mailgun ------------------------------------------------------------------------------------


def test_mailgun_payload(newsletter: Newsletter, mailgun: FakeMailgun) -> None:
    nl = using(newsletter, "mailgun", mailgun)
    load_month(nl, audience=(AUDIENCE[0], TOM))  # both get every summary: one variant
    send(nl)
    (request,) = mailgun.requests
    form = request.form()
    fields = dict(form)
    assert [parseaddr(v)[1] for k, v in form if k == "to"] == ["ada@example.org",
                                                               "tom&jerry@example.org"]
    assert fields["from"] == "PPRNet Research Digest <digest@pprnet.example>"
    assert "%recipient.unsubscribe_url_html%" in fields["html"]
    assert "%recipient.unsubscribe_url%" in fields["text"]
    assert "%recipient.email%" not in fields["html"]
    assert fields["h:List-Unsubscribe"] == "%recipient.list_unsubscribe%"
    assert fields["h:List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert fields["v:delivery_id"] == "%recipient.delivery_id%"
    variables = json.loads(fields["recipient-variables"])
    tom = variables["tom&jerry@example.org"]
    assert (tom["email"], tom["email_html"]) == ("tom&jerry@example.org",
                                                 "tom&amp;jerry@example.org")
    assert tom["list_unsubscribe"].startswith("<https://digest.example.org/u/")
    rows, ids = ledger(nl), delivery_ids(nl)
    assert {e: v["delivery_id"] for e, v in variables.items()} == ids
    assert rows["ada@example.org"]["provider_message_id"].endswith(f"@{FakeMailgun.domain}")


def test_mailgun_unknown_domain_is_a_config_error(newsletter: Newsletter,
                                                  mailgun: FakeMailgun) -> None:
    nl = using(newsletter, "mailgun", mailgun, mailgun_domain="mg.elsewhere.example")
    load_month(nl)
    with pytest.raises(ConfigError, match="NEWSLETTER_MAILGUN_DOMAIN"):
        send(nl)
    assert edition_status(nl, MONTH)["counts"]["pending"] == 3


# --- pieces -------------------------------------------------------------------------------------


def test_retry_after_accepts_seconds_and_dates_and_caps_at_60() -> None:
    now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("1") == 1.0
    assert retry_after_seconds("3600") == 60.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0
    assert retry_after_seconds(format_datetime(now + timedelta(hours=2), usegmt=True), now) == 60
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_fill_escapes_only_for_html() -> None:
    markers = {"name": "nlaaaaaaaaaaaaaaaanamex", "email": "nlaaaaaaaaaaaaaaaaemailx"}
    text = "Hi nlaaaaaaaaaaaaaaaanamex <nlaaaaaaaaaaaaaaaaemailx>"
    values = {"name": "A&B <C>", "email": "a&b@example.org"}
    assert fill(text, markers, values, escape=False) == "Hi A&B <C> <a&b@example.org>"
    assert fill(text, markers, values, escape=True) == (
        "Hi A&amp;B &lt;C&gt; <a&amp;b@example.org>")


def test_settings_for_http_transports(sqlite_url: str) -> None:
    def config(**values: Any):  # type: ignore[no-untyped-def]
        return load_config(overrides={"database_url": sqlite_url, **values},
                           environ={"NEWSLETTER_CONFIG": "/nonexistent.toml"})

    for name in ("postmark", "sendgrid", "mailgun"):
        with pytest.raises(ConfigError, match="NEWSLETTER_API_KEY is not set"):
            config(transport=name)
    with pytest.raises(ConfigError, match="NEWSLETTER_MAILGUN_DOMAIN is not set"):
        config(transport="mailgun", api_key="k")
    with pytest.raises(ConfigError, match="api_base_url"):
        config(transport="sendgrid", api_key="k", api_base_url="api.sendgrid.com")
    with pytest.raises(ConfigError, match="not one of smtp, outbox, postmark, sendgrid, mailgun"):
        config(transport="pigeon")
    env = load_config(environ={"NEWSLETTER_CONFIG": "/nonexistent.toml",
                               "NEWSLETTER_TRANSPORT": "postmark", "NEWSLETTER_API_KEY": "secret"})
    transport = make_transport(env)
    assert isinstance(transport, PostmarkTransport)
    assert transport.base_url == "https://api.postmarkapp.com"
    assert transport.message_stream == "broadcast"
    assert transport.settings.timeouts == (10.0, 30.0)
    assert transport.batch_size == 500
    transport.close()
    for name, cls, batch in (("sendgrid", SendGridTransport, 1000),
                             ("mailgun", MailgunTransport, 1000)):
        made = make_transport(config(transport=name, api_key="k", mailgun_domain="mg.example.org"))
        assert isinstance(made, cls) and made.batch_size == batch
        made.close()


# --- on_result: each request's results as it is answered --------------------------------------


class Telling:
    """A transport passed on with its own on_result, noting how many requests the provider had
    received when each result was told."""

    def __init__(self, inner: Transport, server: FakeProvider) -> None:
        self.inner, self.server = inner, server
        self.name, self.batch_size = inner.name, inner.batch_size
        self.told: list[tuple[int, str, int]] = []
        self.returned: list[SendResult] = []

    def send(self, batch: Sequence[OutgoingMessage], *,
             on_result: ResultCallback | None = None) -> list[SendResult]:
        def tell(result: SendResult) -> None:
            self.told.append((result.delivery_id, result.outcome.value,
                              len(self.server.requests)))
            if on_result is not None:
                on_result(result)

        results = self.inner.send(batch, on_result=tell)
        self.returned.extend(results)
        return results

    def close(self) -> None:
        self.inner.close()


def test_every_provider_tells_each_result_once(newsletter: Newsletter,
                                               provider: tuple[str, FakeProvider]) -> None:
    name, server = provider
    nl = using(newsletter, name, server)
    load_audience(nl, 7)
    transport = Telling(make_transport(nl.config), server)
    assert send(nl, transport).sent == 7
    assert sorted(d for d, _, _ in transport.told) == sorted(r.delivery_id
                                                             for r in transport.returned)
    assert len(transport.told) == 7
    assert {o for _, o, _ in transport.told} == {"sent"}


def test_postmark_tells_each_request_as_it_is_answered(newsletter: Newsletter,
                                                       postmark: FakePostmark) -> None:
    nl = using(newsletter, "postmark", postmark)
    load_audience(nl, 600)
    transport = Telling(PostmarkTransport(settings_for(nl), batch_size=1000), postmark)
    assert send(nl, transport).sent == 600
    assert [n for _, _, n in transport.told] == [1] * 500 + [2] * 100
    assert [d for d, _, _ in transport.told] == [r.delivery_id for r in transport.returned]


def test_results_made_up_after_a_refused_key_are_told_too(newsletter: Newsletter,
                                                          postmark: FakePostmark) -> None:
    nl = using(newsletter, "postmark", postmark)
    load_audience(nl, 600)
    postmark.script.extend([None, reply(401, {"ErrorCode": 10, "Message": "Bad token"})])
    transport = Telling(PostmarkTransport(settings_for(nl), batch_size=1000), postmark)
    report = send(nl, transport, tries=1)
    assert (report.sent, report.failed) == (500, 100)
    assert [(o, n) for _, o, n in transport.told] == [("sent", 1)] * 500 + [("temporary", 2)] * 100
