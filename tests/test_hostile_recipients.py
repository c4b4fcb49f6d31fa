"""International and hostile recipients, end to end over real SMTP on SQLite and PostgreSQL.

A message that cannot be composed fails its own row (`rejected`, with the reason) and never the
batch or the run; every other subscriber gets exactly one copy, addressed as the store has them.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Sequence
from email import message_from_string, policy
from email.message import EmailMessage

import pytest
from email_validator import validate_email
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from newsletter.catcher import SMTPCatcher
from newsletter.context import Newsletter
from newsletter.db import utcnow
from newsletter.db.types import new_uid
from newsletter.mail.message import Outcome, OutgoingMessage, SendResult
from newsletter.mail.personalise import single_line
from newsletter.sending.engine import Sender
from newsletter.sending.models import Delivery
from newsletter.sending.outcomes import SendReport
from newsletter.transports import make_transport
from subscribers.addresses import InvalidAddress, address_hash, normalise_email
from subscribers.models import ConsentMethod, Subscriber, SubscriberStatus

from .builders import MONTH, load_month
from .test_recipient_encoding import parsed_to, raw_to


def send(nl: Newsletter, *, resend_uncertain: bool = False) -> SendReport:
    transport = make_transport(nl.config)
    try:
        return Sender(nl, transport).send(MONTH, resend_uncertain=resend_uncertain)
    finally:
        transport.close()


def received(server: SMTPCatcher) -> dict[str, list[EmailMessage]]:
    """Messages by envelope recipient, headers read as UTF-8 (RFC 6532)."""
    by_rcpt: dict[str, list[EmailMessage]] = {}
    for item in server.messages:
        assert len(item.recipients) == 1
        head = item.data.partition(b"\r\n\r\n")[0]
        assert max(len(line) for line in head.split(b"\r\n")) <= 998
        message = message_from_string(item.data.decode("utf-8"), policy=policy.default)
        assert isinstance(message, EmailMessage)
        by_rcpt.setdefault(item.recipients[0], []).append(message)
    return by_rcpt


def to_of(message: EmailMessage) -> tuple[str, str]:
    return parsed_to(raw_to(message))


def add_raw(nl: Newsletter, people: Sequence[tuple[str, str]]) -> None:
    """Active subscribers exactly as given: the store's validation is what a hostile row got past."""
    if not people:
        return
    now = utcnow()
    with nl.session() as session:
        session.execute(insert(Subscriber), [{
            "uid": new_uid(), "email": email, "name": name,
            "email_hash": hashlib.sha256(f"{email}\0{new_uid()}".encode()).hexdigest(),
            "status": SubscriberStatus.ACTIVE, "all_topics": True, "language": "en",
            "consent_method": ConsentMethod.IMPORT, "consent_at": now, "consent_source": "test",
            "created_at": now, "updated_at": now} for name, email in people])


def ledger_rows(nl: Newsletter) -> dict[str, tuple[str, str | None]]:
    with nl.session() as session:
        rows = session.execute(select(Subscriber.email, Delivery.status, Delivery.last_error)
                               .join(Delivery, Delivery.subscriber_id == Subscriber.id)).all()
    return {email: (status.value, error) for email, status, error in rows}


def envelope_of(email: str) -> str:
    """What RCPT TO must say, by email-validator's own reading (IDNA 2008 A-labels)."""
    result = validate_email(email, check_deliverability=False)
    return f"{result.local_part}@{result.ascii_domain}"


GOOD = (("Jose", "josé.eai@example.org"), ("Ada All", "ada@example.org"),
        ("Bob", "bob@example.org"), ("Fa Street", "x@faß.example"), ("Λόγος", "y@λόγος.example"))
BAD = (("Snow", "x@☃.example"), ("Spaced", "a b@example.org"),
       ("Injected", "a@example.org\r\nBcc: victim@example.org"))


def test_an_eai_address_or_a_broken_row_fails_only_itself(newsletter: Newsletter,
                                                           smtp_server: SMTPCatcher) -> None:
    load_month(newsletter, audience=[(name, email, None) for name, email in GOOD])
    add_raw(newsletter, BAD)
    report = send(newsletter)

    got = received(smtp_server)
    assert sorted(got) == sorted(envelope_of(email) for _, email in GOOD)
    assert "x@xn--fa-hia.example" in got and "y@xn--oxapnm1c.example" in got
    for name, email in GOOD:
        (message,) = got[envelope_of(email)]
        assert to_of(message) == (name, envelope_of(email))
        assert message["Bcc"] is None
    rows = ledger_rows(newsletter)
    for _, email in BAD:
        status, error = rows[email]
        assert status == "rejected" and error and error.startswith("cannot compose")
    assert (report.sent, report.rejected, report.uncertain) == (len(GOOD), len(BAD), 0)
    assert report.complete


class AnswerLost:
    """A transport whose every answer is lost: the whole batch ends up uncertain."""

    name, batch_size = "lost", 50

    def send(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        return [SendResult(m.delivery_id, Outcome.UNCERTAIN, detail="answer lost") for m in batch]

    def close(self) -> None:
        pass


def test_resend_uncertain_reaches_an_eai_address(newsletter: Newsletter,
                                                 smtp_server: SMTPCatcher) -> None:
    load_month(newsletter, audience=[(name, email, None) for name, email in GOOD[:3]])
    assert Sender(newsletter, AnswerLost()).send(MONTH).uncertain == 3
    report = send(newsletter, resend_uncertain=True)
    got = received(smtp_server)
    assert sorted(got) == sorted(envelope_of(email) for _, email in GOOD[:3])
    assert all(len(copies) == 1 for copies in got.values())
    assert report.sent == 3 and report.complete


ATEXT = string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~"
DOMAINS = ("example.org", "Example.ORG", "faß.example", "FAß.example", "fass.example",
           "λόγος.example", "ΛΌΓΟΣ.example", "bücher.example", "xn--bcher-kva.example",
           "例え.example")
NAME_PIECES = ('"', "'", ",", "<", ">", "\\", "@", ";", ":", ".", "(x)", " ", "  ", "\t",
               "=?utf-8?q?Admin?=", "=?", "?=", "\r\nBcc: victim@example.org", "\u2028", "\x85",
               "Zoë", "李", "😀", "Ω", "x" * 70)
BAD_ADDRESSES = ("x@☃.example", "x@" + "é" * 64 + ".example", "no-at-sign.example",
                 "@example.org", "x@", "x@a..b.example", "x@-é-.example", "x@exa mple.org")


local_parts = st.lists(st.text(ATEXT + "éßøλжあÜ", min_size=1, max_size=8),
                       min_size=1, max_size=3).map(".".join).filter(lambda s: "=?" not in s)


def _valid(email: str) -> bool:
    try:
        normalise_email(email)
    except InvalidAddress:
        return False
    return True


good_addresses = st.builds(lambda local, domain: f"{local}@{domain}", local_parts,
                           st.sampled_from(DOMAINS)).filter(_valid)
bad_addresses = st.one_of(
    st.sampled_from(BAD_ADDRESSES),
    st.builds(lambda local, bad, domain: f"{local[:1]}{bad}{local[1:]}@{domain}", local_parts,
              st.sampled_from(' <>",()[];:\\\r\n\u2028'), st.sampled_from(DOMAINS)))
names = st.one_of(
    st.lists(st.one_of(st.sampled_from(NAME_PIECES), st.text(max_size=6)), max_size=12).map("".join),
    st.text(max_size=200), st.just("é" * 200), st.just('"\\' * 100), st.just("=?utf-8?b?" * 20),
).map(lambda name: name.replace("\x00", "")[:200])


@pytest.mark.slow
def test_a_seeded_mix_of_hostile_names_and_addresses(newsletter: Newsletter,
                                                      smtp_server: SMTPCatcher) -> None:
    load_month(newsletter, audience=())

    # Fixed examples; no shrinking, which would run a whole send per step for minutes.
    @settings(max_examples=20, deadline=None, derandomize=True, database=None, phases=[Phase.generate])
    @given(good=st.lists(st.tuples(names, good_addresses), max_size=6),
           bad=st.lists(st.tuples(names, bad_addresses), max_size=3, unique_by=lambda p: p[1]))
    def run(good: list[tuple[str, str]], bad: list[tuple[str, str]]) -> None:
        with newsletter.session() as session:
            session.execute(delete(Delivery))
            session.execute(delete(Subscriber))
        smtp_server.handler.messages.clear()
        keys: dict[str, tuple[str, str]] = {}
        for name, email in good:
            keys.setdefault(address_hash(email), (name, normalise_email(email)))
        add_raw(newsletter, [*keys.values(), *bad])

        report = send(newsletter)

        got = received(smtp_server)
        assert sorted(got) == sorted(envelope_of(email) for _, email in keys.values())
        for name, email in keys.values():
            (message,) = got[envelope_of(email)]
            assert to_of(message) == (single_line(name)[:200], envelope_of(email))
            assert message["Bcc"] is None
        rows = ledger_rows(newsletter)
        for _, email in bad:
            status, error = rows[email]
            assert status == "rejected" and error and error.startswith("cannot compose"), email
        assert (report.sent, report.rejected) == (len(keys), len(bad))

    run()
