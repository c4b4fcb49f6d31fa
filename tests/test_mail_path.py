"""One way to build a message: every kind of mail (edition, test copy, confirm, welcome, manage,
editor note) takes its headers from `standard_headers` and its sender from `parse_sender`, so a
header added in one place is in all of them. Each kind is sent for real, over SMTP, by the code
path that sends it in production, and read back from the bytes with email.policy.default."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from newsletter.catcher import Received, SMTPCatcher
from newsletter.context import Newsletter
from newsletter.db import utcnow
from newsletter.mail import personalise
from newsletter.mail.compose import compose_plain
from newsletter.mail.personalise import fold_header, parse_sender, standard_headers
from newsletter.notify.notifier import Notifier
from newsletter.sending.run import send_edition
from newsletter.sending.test_copy import send_test_copy
from subscribers.flows import Flows

from .builders import MONTH, load_month
from .conftest import make_config

FEEDBACK_ID = "2015-01:digest:pprnet"
EDITOR = "editor@example.org"
READER = "new.reader@example.org"
TESTER = "tester@example.org"
KINDS = ("edition", "test copy", "confirm", "welcome", "manage", "editor note")

@pytest.fixture
def nl(sqlite_url: str, smtp_server: SMTPCatcher) -> Iterator[Newsletter]:
    newsletter = Newsletter.open(make_config(
        sqlite_url, smtp_host=smtp_server.host, smtp_port=smtp_server.port, editor_email=EDITOR,
        reply_to="help@digest.example", **{"from": '"Digest, The" <news@digest.example>'}))
    newsletter.init()
    load_month(newsletter)
    yield newsletter
    newsletter.close()


def every_kind(nl: Newsletter, server: SMTPCatcher) -> dict[str, Received]:
    """One message of each kind, sent the way production sends it."""
    sent: dict[str, Received] = {}

    def last(kind: str) -> None:
        sent[kind] = server.messages[-1]

    send_edition(nl, MONTH)
    sent["edition"] = next(m for m in server.messages if m.recipients == ("ada@example.org",))
    send_test_copy(nl, MONTH, TESTER)
    last("test copy")
    flows = Flows(nl)
    flows.signup(READER, "New Reader", None, "127.0.0.1")
    last("confirm")
    token = re.search(r"/confirm/([\w.-]+)", text_of(parse(sent["confirm"])))
    assert token is not None
    flows.confirm(token.group(1), "127.0.0.1")
    last("welcome")
    flows.signup(READER, "New Reader", None, "127.0.0.1")
    last("manage")
    Notifier(nl.config).note(f"{MONTH}: sent", "Sent: 3")
    last("editor note")
    assert len({id(m) for m in sent.values()}) == len(KINDS)
    return sent


def parse(received: Received) -> EmailMessage:
    message = message_from_bytes(received.data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_a_header_added_in_one_place_is_in_every_kind_of_mail(
        nl: Newsletter, smtp_server: SMTPCatcher, monkeypatch: pytest.MonkeyPatch) -> None:
    def with_feedback_id(*args: object, **kwargs: object) -> list[tuple[str, str]]:
        return [*standard_headers(*args, **kwargs), ("Feedback-ID", FEEDBACK_ID)]  # type: ignore[arg-type]

    monkeypatch.setattr(personalise, "standard_headers", with_feedback_id)
    for kind, received in every_kind(nl, smtp_server).items():
        message = parse(received)
        assert message.get_all("Feedback-ID") == [FEEDBACK_ID], kind
        assert not message.defects, (kind, message.defects)


def test_every_kind_of_mail_shares_the_headers_and_line_rules(nl: Newsletter,
                                                              smtp_server: SMTPCatcher) -> None:
    sent = every_kind(nl, smtp_server)
    for kind, received in sent.items():
        assert re.search(rb"(?<!\r)\n", received.data) is None, kind
        message = parse(received)
        for name in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version"):
            assert len(message.get_all(name) or []) == 1, (kind, name)
        assert str(message["From"]) == '"Digest, The" <news@digest.example>', kind
    for kind in ("edition", "test copy", "confirm", "welcome", "manage"):
        message = parse(sent[kind])
        assert message["Reply-To"] == "help@digest.example", kind
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click", kind
        assert message.get_content_type() == "multipart/alternative", kind
    note = parse(sent["editor note"])
    assert note.get_content_type() == "text/plain" and not note.is_multipart()
    assert note["Auto-Submitted"] == "auto-generated"
    assert note["List-Id"] is None and note["List-Unsubscribe"] is None
    assert note.get_content().replace("\r\n", "\n") == "Sent: 3\n"


def test_the_sender_is_read_once_for_every_kind_of_mail(nl: Newsletter,
                                                        smtp_server: SMTPCatcher) -> None:
    """The envelope sender, every Message-ID's domain and the unsubscribe mailbox all come from
    one reading of `from`, whose display name here holds a comma."""
    assert parse_sender(nl.config.from_) == ("Digest, The", "news@digest.example", "digest.example")
    for kind, received in every_kind(nl, smtp_server).items():
        message = parse(received)
        assert received.mail_from == "news@digest.example", kind
        assert str(message["Message-ID"]).endswith("@digest.example>"), kind
        if kind != "editor note":
            assert "<mailto:unsubscribe@digest.example?subject=" in str(
                message["List-Unsubscribe"]), kind


@pytest.mark.parametrize(("sender", "expected"), [
    ("Research Digest <digest@example.org>", ("Research Digest", "digest@example.org", "example.org")),
    ("digest@example.org", ("", "digest@example.org", "example.org")),
    ('"Digest <beta>" <d@x.example>', ("Digest <beta>", "d@x.example", "x.example")),
    ('"Say \\"hi\\"" <d@x.example> ', ('Say "hi"', "d@x.example", "x.example")),
    ("<d@x.example>", ("", "d@x.example", "x.example")),
])
def test_parse_sender(sender: str, expected: tuple[str, str, str]) -> None:
    assert parse_sender(sender) == expected


def test_an_editor_note_follows_the_rules_of_every_mail(nl: Newsletter) -> None:
    """A non-ASCII local part goes raw in UTF-8 (RFC 6532) with SMTPUTF8; a non-ASCII subject is
    RFC 2047-encoded, as an edition's is; a line break cannot add a header."""
    message = compose_plain(sender=nl.config.from_, email="josé@faß.example",
                            subject="Études\r\nBcc: x@example.org", body="Grüße\n",
                            date=utcnow(), message_id_prefix="note", delivery_id=1)
    assert (message.recipient, message.smtputf8) == ("josé@xn--fa-hia.example", True)
    head = message.data.partition(b"\r\n\r\n")[0]
    assert b"To: jos\xc3\xa9@xn--fa-hia.example\r\n" in head
    assert b"\r\nBcc:" not in head
    parsed = message_from_bytes(message.data.replace("josé".encode(), b"jose"), policy=policy.default)
    assert str(parsed["Subject"]) == "Études Bcc: x@example.org"
    assert b"Subject: =?utf-8?" in head
    assert parsed.get_content() == "Grüße\r\n"


@pytest.mark.parametrize(("name", "value", "folded"), [
    ("Subject", "Études", b"Subject: =?utf-8?q?=C3=89tudes?=\r\n"),
    ("From", "Zoë Digest <z@example.org>", b"From: =?utf-8?q?Zo=C3=AB?= Digest <z@example.org>\r\n"),
    ("Subject", "Plain words", b"Subject: Plain words\r\n"),
])
def test_a_short_non_ascii_header_is_encoded(name: str, value: str, folded: bytes) -> None:
    """policy.SMTP leaves a short value as it is, which for non-ASCII cannot be written at all."""
    assert fold_header(name, value) == folded
