"""End to end over real SMTP: the store, the ledger and an aiosmtpd server on loopback."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parseaddr
from urllib.parse import parse_qs, urlsplit

import pytest
from lxml import html as lxml_html

from newsletter.catcher import SMTPCatcher
from newsletter.context import Newsletter
from newsletter.mail.message import OutgoingMessage, ResultCallback, SendResult, Transport
from newsletter.sending.engine import Sender
from newsletter.sending.report import edition_status
from newsletter.tokens import Purpose, TokenSigner
from newsletter.transports import make_transport
from subscribers.store import find

from .builders import AUDIENCE, MONTH, SUMMARIES, load_month
from .conftest import TEST_SECRET

EXPECTED = {
    "ada@example.org": [s.headline for s in SUMMARIES],
    "bob@example.org": [SUMMARIES[0].headline],
    "cy@example.org": [SUMMARIES[0].headline, SUMMARIES[2].headline],
}


def send(nl: Newsletter):  # type: ignore[no-untyped-def]
    transport = make_transport(nl.config)
    try:
        return Sender(nl, transport).send(MONTH)
    finally:
        transport.close()


def by_recipient(server: SMTPCatcher) -> dict[str, list[EmailMessage]]:
    received: dict[str, list[EmailMessage]] = {}
    for item in server.messages:
        assert len(item.recipients) == 1
        received.setdefault(item.recipients[0], []).append(item.parse())
    return received


def headlines(message: EmailMessage) -> list[str]:
    part = message.get_body(("html",))
    assert part is not None
    tree = lxml_html.fromstring(part.get_content())
    return [" ".join(h.text_content().split()) for h in tree.iter("h2")]


def test_each_subscriber_gets_exactly_their_summaries_once(newsletter: Newsletter,
                                                           smtp_server: SMTPCatcher) -> None:
    load_month(newsletter)
    report = send(newsletter)

    received = by_recipient(smtp_server)
    assert sorted(received) == sorted(EXPECTED)
    for address, messages in received.items():
        assert len(messages) == 1
        assert headlines(messages[0]) == EXPECTED[address]
    assert (report.sent, report.failed, report.rejected, report.planned.no_match) == (3, 0, 0, 1)
    assert report.variants_rendered == 3
    assert report.complete


def test_second_send_delivers_nothing_new(newsletter: Newsletter,
                                          smtp_server: SMTPCatcher) -> None:
    load_month(newsletter)
    send(newsletter)
    again = send(newsletter)
    assert again.sent == 0
    assert len(smtp_server.messages) == 3
    status = edition_status(newsletter, MONTH)
    assert status["edition_status"] == "sent"
    assert status["counts"]["sent"] == 3


def test_headers_and_mime_structure(newsletter: Newsletter, smtp_server: SMTPCatcher) -> None:
    load_month(newsletter)
    send(newsletter)
    message = by_recipient(smtp_server)["bob@example.org"][0]

    assert parseaddr(str(message["From"])) == ("PPRNet Research Digest", "digest@pprnet.example")
    assert message["To"].addresses[0].display_name == "Bob Alliance"
    assert message["To"].addresses[0].addr_spec == "bob@example.org"
    assert message["Subject"] == "1 research summary · January 2015"
    assert message["Date"].datetime.tzinfo is not None
    assert message["Message-ID"].startswith("<") and message["Message-ID"].endswith(
        "@pprnet.example>")
    assert message["MIME-Version"] == "1.0"
    assert "digest.example.org" in message["List-Id"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert SUMMARIES[0].headline in parts[0].get_content()
    head, _, body = smtp_server.messages[0].data.partition(b"\r\n\r\n")
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    assert max(len(line) for line in body.split(b"\r\n")) <= 76


def test_links_are_signed_and_point_at_the_base_url(newsletter: Newsletter,
                                                     smtp_server: SMTPCatcher) -> None:
    load_month(newsletter)
    send(newsletter)
    message = by_recipient(smtp_server)["cy@example.org"][0]
    with newsletter.session() as session:
        uid = find(session, "cy@example.org").uid  # type: ignore[union-attr]
    signer = TokenSigner([TEST_SECRET])

    targets = [t.strip().strip("<>") for t in str(message["List-Unsubscribe"]).split(",")]
    one_click, mailto = targets
    mail_target = urlsplit(mailto)
    assert (mail_target.scheme, mail_target.path) == ("mailto", "unsubscribe@pprnet.example")
    subject = parse_qs(mail_target.query, strict_parsing=True)["subject"]
    parts = urlsplit(one_click)
    assert (parts.scheme, parts.netloc) == ("https", "digest.example.org")
    assert parts.path.startswith("/u/")
    assert signer.verify(Purpose.UNSUBSCRIBE, parts.path[3:]) == uid
    assert subject == [f"unsubscribe {parts.path[3:]}"]

    html_part = message.get_body(("html",))
    tree = lxml_html.fromstring(html_part.get_content())  # type: ignore[union-attr]
    hrefs = {a.text_content().strip(): a.get("href") for a in tree.iter("a")}
    assert hrefs["Unsubscribe"] == one_click
    preferences = urlsplit(hrefs["Change your topics"])
    assert preferences.netloc == "digest.example.org"
    assert signer.verify(Purpose.PREFERENCES, preferences.path.split("/")[-1]) == uid
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert one_click in text and hrefs["Change your topics"] in text
    assert "cy@example.org" in text and "Empathy, Training" in text


def test_unicode_names_and_idn_addresses_survive(newsletter: Newsletter,
                                                 smtp_server: SMTPCatcher) -> None:
    audience = (("José Müller-Żółw", "jose@müller.example", None),
                ("Evil\r\nBcc: victim@example.org", "evil@example.org", None))
    load_month(newsletter, audience=audience)
    report = send(newsletter)
    assert report.sent == 2
    received = by_recipient(smtp_server)
    assert set(received) == {"jose@xn--mller-kva.example", "evil@example.org"}
    jose = received["jose@xn--mller-kva.example"][0]
    assert jose["To"].addresses[0].display_name == "José Müller-Żółw"
    evil = received["evil@example.org"][0]
    assert evil["Bcc"] is None
    assert evil["To"].addresses[0].addr_spec == "evil@example.org"


def test_unsubscribed_or_suppressed_subscribers_get_nothing(newsletter: Newsletter,
                                                            smtp_server: SMTPCatcher) -> None:
    from subscribers.models import SubscriberStatus
    from subscribers.store import suppress
    load_month(newsletter)
    with newsletter.session() as session:
        find(session, "ada@example.org").status = SubscriberStatus.UNSUBSCRIBED  # type: ignore[union-attr]
        suppress(session, "bob@example.org", "complaint")
    send(newsletter)
    assert sorted(by_recipient(smtp_server)) == ["cy@example.org"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_outbox_transport_writes_parseable_eml(newsletter: Newsletter, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from email import message_from_bytes, policy
    outbox = tmp_path / "outbox"
    nl = Newsletter(newsletter.config.with_overrides(transport="outbox", outbox_dir=str(outbox)),
                    newsletter.engine, newsletter.sessions)
    load_month(nl)
    assert send(nl).sent == 3
    files = sorted(outbox.glob("*.eml"))
    assert len(files) == 3
    recipients = {str(message_from_bytes(f.read_bytes(), policy=policy.default)["To"])
                  for f in files}
    assert recipients == {f"{n} <{e}>" for n, e, t in AUDIENCE[:3]}


class HookAfterFirstBatch:
    """The real SMTP transport, one message per batch, running `hook` once the first has gone."""

    def __init__(self, inner: Transport, hook: Callable[[], None]) -> None:
        self.inner, self.hook, self.name, self.batch_size = inner, hook, inner.name, 1
        self.batches = 0

    def send(self, batch: Sequence[OutgoingMessage], *,
             on_result: ResultCallback | None = None) -> list[SendResult]:
        results = self.inner.send(batch, on_result=on_result)
        self.batches += 1
        if self.batches == 1:
            self.hook()
        return results

    def close(self) -> None:
        self.inner.close()


def test_leaving_or_pausing_during_a_send_takes_effect_at_once(newsletter: Newsletter,
                                                              smtp_server: SMTPCatcher) -> None:
    from subscribers.models import SubscriberStatus
    load_month(newsletter)

    def leave_and_pause() -> None:
        with newsletter.session() as session:
            find(session, "bob@example.org").paused_at = datetime.now(UTC)  # type: ignore[union-attr]
            find(session, "cy@example.org").status = SubscriberStatus.UNSUBSCRIBED  # type: ignore[union-attr]

    transport = HookAfterFirstBatch(make_transport(newsletter.config.with_overrides(batch_size=1)),
                                    leave_and_pause)
    report = Sender(newsletter, transport).send(MONTH)
    transport.close()
    assert sorted(by_recipient(smtp_server)) == ["ada@example.org"]
    status = edition_status(newsletter, MONTH)
    assert (report.sent, report.left, report.complete) == (1, 2, True)
    assert (status["counts"]["sent"], status["counts"]["rejected"]) == (1, 2)
    rows = {r["email"]: r for r in status["deliveries"]}
    assert {email: (r["status"], r["last_error"]) for email, r in rows.items()} == {
        "ada@example.org": ("sent", None),
        "bob@example.org": ("rejected", "subscriber unsubscribed, paused or was suppressed before delivery"),
        "cy@example.org": ("rejected", "subscriber unsubscribed, paused or was suppressed before delivery")}
