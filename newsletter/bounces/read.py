"""One message from the bounce mailbox, read into what it reports: a DSN, an ARF complaint, a
non-standard bounce (flufl.bounce's detectors), an auto-reply, or nothing of ours.

Pure: bytes in, a `MailboxReport` out. Only the report's own top-level parts are read: a
message/rfc822 nested in the returned message (a bounce of a bounce, a forwarded report) is the
returned message's content, never a second report. Nothing here is trusted yet: which delivery a
report is about is decided by its VERP tag (`match`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import default as default_policy
from enum import StrEnum

from flufl.bounce import all_failures

from ..feedback.events import EventKind
from .arf import read_feedback_report
from .dsn import read_delivery_status
from .fields import ReportError, addresses, bare_address, field_text, field_texts, message_id, report_date

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""A DSN or ARF report returns at most one edition (~40 KB) or only its headers; bigger is not
one of ours, and is refused before it is parsed."""
MAX_HEADERS_TEXT = 256 * 1024
MAX_DASH_LINES = 500
"""Lines starting with `--` (MIME boundaries among them): a report has a handful. Python's parser
takes quadratic time over parts (50 000 of them: most of a minute), so more are refused unread."""
MAX_MULTIPARTS = 20
"""`multipart/` mentions: bounds the nesting, which the parser and walkers follow recursively."""
MAX_HEADER_FIELDS = 1000
MAX_FALLBACK_BYTES = 256 * 1024
"""flufl.bounce's detectors run regular expressions over every part: only on small messages."""
_RETURNED = ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers")
_TAG_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To")
_AUTO_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Vacation")
_AUTO_SUBJECTS = ("auto:", "automatic reply", "autoreply", "auto-reply", "out of office",
                  "out of the office", "vacation")
_DAEMONS = ("mailer-daemon", "postmaster", "mail delivery")


class ReportKind(StrEnum):
    DSN = "dsn"
    ARF = "arf"
    BOUNCE = "bounce"
    """A bounce that is not RFC 3464 (old qmail, Exchange 5.5, …), read by flufl.bounce."""
    AUTO_REPLY = "auto_reply"
    OTHER = "other"


@dataclass(frozen=True)
class Finding:
    """What the report says about one recipient."""

    kind: EventKind
    address: str | None
    """The recipient as the report names it (Final-Recipient, Original-Rcpt-To); None when the
    provider redacted it."""
    also: tuple[str, ...]
    """Other names of the same recipient (Original-Recipient, the returned message's To)."""
    reason: str
    occurred_at: datetime
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MailboxReport:
    kind: ReportKind
    message_id: str | None
    digest: str
    """sha256 of the bytes: names the report when it has no Message-ID."""
    tag_addresses: tuple[str, ...]
    """Where a VERP tag may be, best first: the addresses the report was delivered to, then the
    returned message's envelope sender."""
    returned_message_id: str | None
    findings: tuple[Finding, ...]
    problems: tuple[str, ...] = ()
    subject: str = ""


def parse_message(data: bytes) -> Message:
    """The message, or ReportError when it is over a cap: its size, its number of MIME parts,
    their nesting or its number of header fields. Each is checked on the bytes or right after
    the (lazy) parse, so a hostile message costs milliseconds, not minutes."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise ReportError(f"the message is {len(data):,} bytes, over the "
                          f"{MAX_MESSAGE_BYTES:,}-byte cap: not read")
    dashes = data.count(b"\n--")
    if dashes > MAX_DASH_LINES:
        raise ReportError(f"{dashes:,} lines start with '--', more MIME parts than a report has "
                          f"(at most {MAX_DASH_LINES}): not read")
    nested = data.lower().count(b"multipart/")
    if nested > MAX_MULTIPARTS:
        raise ReportError(f"multipart/ appears {nested:,} times, nested deeper than a report is "
                          f"(at most {MAX_MULTIPARTS}): not read")
    try:
        message = BytesParser(policy=default_policy).parsebytes(data)
    except RecursionError as err:
        raise ReportError("the MIME structure is nested too deeply: not read") from err
    if len(message) > MAX_HEADER_FIELDS:
        raise ReportError(f"{len(message):,} header fields, more than the {MAX_HEADER_FIELDS:,} "
                          "a report could have: not read")
    return message


def read_report(data: bytes, *, now: datetime) -> MailboxReport:
    message = parse_message(data)
    parts: dict[str, Message] = {}
    if message.is_multipart():
        for part in message.iter_parts():  # type: ignore[attr-defined]
            parts.setdefault(part.get_content_type(), part)
    returned = next((_returned_headers(parts[t]) for t in _RETURNED if t in parts), None)
    base = _Base(message, returned, now, hashlib.sha256(data).hexdigest(), len(data))
    if "message/delivery-status" in parts:
        return base.dsn(parts["message/delivery-status"])
    if "message/feedback-report" in parts:
        return base.arf(parts["message/feedback-report"])
    if is_auto_reply(message):
        return base.report(ReportKind.AUTO_REPLY, ())
    return base.fallback()


def is_auto_reply(message: Message) -> bool:
    """RFC 3834 `Auto-Submitted` (other than `no`), the common X- headers, `Precedence:
    auto_reply`, or an out-of-office subject, from anyone but a mailer daemon."""
    sender = field_text(message, "From").lower()
    if any(daemon in sender for daemon in _DAEMONS):
        return False
    auto = field_text(message, "Auto-Submitted").lower()
    subject = field_text(message, "Subject").lower()
    return ((bool(auto) and not auto.startswith("no"))
            or any(field_text(message, name) for name in _AUTO_HEADERS)
            or field_text(message, "Precedence").lower() == "auto_reply"
            or subject.startswith(_AUTO_SUBJECTS))


def _returned_headers(part: Message) -> Message | None:
    """The headers of the returned or reported message (a whole message or only its headers)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload[0] if payload and isinstance(payload[0], Message) else None
    raw = part.get_payload(decode=True)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload)
    return HeaderParser(policy=default_policy).parsestr(text[:MAX_HEADERS_TEXT],
                                                        headersonly=True)


@dataclass(frozen=True)
class _Base:
    """What every kind of report shares: its id, its date, and where its tag may be."""

    message: Message
    returned: Message | None
    now: datetime
    digest: str
    size: int

    @property
    def dated(self) -> datetime | None:
        return report_date(field_text(self.message, "Date"), now=self.now)

    @property
    def when(self) -> datetime:
        return self.dated or self.now

    def returned_field(self, name: str) -> str:
        return field_text(self.returned, name) if self.returned is not None else ""

    def report(self, kind: ReportKind, findings: tuple[Finding, ...], *, extra_tags: tuple[
            str | None, ...] = (), problems: tuple[str, ...] = ()) -> MailboxReport:
        delivered_to = [a for name in _TAG_HEADERS
                        for a in addresses(v for value in field_texts(self.message, name)
                                           for v in value.split(","))]
        tags = [*delivered_to, *extra_tags, bare_address(self.returned_field("Return-Path"))]
        return MailboxReport(
            kind=kind, message_id=message_id(field_text(self.message, "Message-ID")),
            digest=self.digest, tag_addresses=tuple(dict.fromkeys(t for t in tags if t))[:20],
            returned_message_id=message_id(self.returned_field("Message-ID")),
            findings=findings, problems=problems, subject=field_text(self.message, "Subject"))

    def also(self) -> tuple[str, ...]:
        return tuple(addresses(self.returned_field("To").split(",")))[:5]

    def dsn(self, part: Message) -> MailboxReport:
        status = read_delivery_status(part, now=self.now)
        findings = tuple(
            Finding(kind=r.kind, address=r.final_recipient,
                    also=(r.original_recipient,) if r.original_recipient not in (
                        None, r.final_recipient) else (),
                    reason=" ".join(x for x in (r.status, r.diagnostic) if x) or r.action,
                    occurred_at=r.last_attempt or self.dated or status.arrival or self.now,
                    details={"report": "dsn", "action": r.action, "status": r.status,
                             "reporting_mta": status.reporting_mta})
            for r in status.recipients)
        return self.report(ReportKind.DSN, findings, extra_tags=(status.sender,),
                           problems=status.problems)

    def arf(self, part: Message) -> MailboxReport:
        feedback = read_feedback_report(part, now=self.now)
        recipients = feedback.original_rcpt_to
        finding = Finding(
            kind=feedback.kind, address=recipients[0] if recipients else None,
            also=(*recipients[1:], *self.also()),
            reason=" ".join(x for x in (f"feedback-type {feedback.feedback_type or '?'}",
                                        feedback.user_agent) if x),
            occurred_at=feedback.arrival or self.when,
            details={"report": "arf", "feedback_type": feedback.feedback_type,
                     "user_agent": feedback.user_agent,
                     "reported_domain": feedback.reported_domain})
        return self.report(ReportKind.ARF, (finding,), extra_tags=(feedback.original_mail_from,),
                           problems=feedback.problems)

    def fallback(self) -> MailboxReport:
        """Mailman's detectors for bounces that are not RFC 3464; anything else is not ours."""
        if self.size > MAX_FALLBACK_BYTES:
            return self.report(ReportKind.OTHER, (), problems=(
                f"no report part, and at {self.size:,} bytes too big to be a non-standard bounce "
                f"(at most {MAX_FALLBACK_BYTES:,}): ignored",))
        try:
            temporary, permanent = all_failures(self.message)
        except Exception as err:  # heuristics over hostile text: a detector's crash is no bounce  # noqa: BLE001
            return self.report(ReportKind.OTHER, (),
                               problems=(f"flufl.bounce could not read it: {err}",))
        findings = tuple(
            Finding(kind=kind, address=address, also=self.also(),
                    reason=f"non-standard bounce ({'temporary' if soft else 'permanent'}, "
                           "read by flufl.bounce)",
                    occurred_at=self.when, details={"report": "bounce"})
            for kind, soft, found in ((EventKind.BOUNCE_HARD, False, permanent),
                                      (EventKind.BOUNCE_SOFT, True, temporary))
            for address in sorted(a for a in (bare_address(_text(raw)) for raw in found) if a))
        return self.report(ReportKind.BOUNCE if findings else ReportKind.OTHER, findings[:10])


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
