"""Delivery status notifications (RFC 3464): the per-recipient blocks of `message/delivery-status`
and what each one means in the event vocabulary (status codes of RFC 3463).

    Action failed,  Status 5.x.x   bounce_hard   the address does not work
    Action failed,  Status 4.x.x   bounce_soft   the MTA gave up on a temporary failure
    Action delayed                 deferred      still trying: no effect
    Action delivered               delivered     a success report (ends a soft-bounce streak)
    Action relayed | expanded      ignored       handed on; nothing known about the mailbox
    anything else                  unknown
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from ..feedback.events import EventKind
from .fields import field_text, report_date, typed_address

MAX_RECIPIENTS = 100
"""Recipient blocks read from one report; our messages have one recipient each."""

_STATUS = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")
_SMTP_REPLY = re.compile(r"(?<![\d.])([245])\d\d(?![\d.])")
_ACTIONS = {"delayed": EventKind.DEFERRED, "delivered": EventKind.DELIVERED,
            "relayed": EventKind.IGNORED, "expanded": EventKind.IGNORED}


@dataclass(frozen=True)
class RecipientStatus:
    """One per-recipient block, its fields already cleaned."""

    final_recipient: str | None
    original_recipient: str | None
    action: str
    status: str
    diagnostic: str
    last_attempt: datetime | None
    kind: EventKind


@dataclass(frozen=True)
class DeliveryStatus:
    reporting_mta: str
    arrival: datetime | None
    sender: str | None
    """X-Postfix-Sender (Postfix writes the envelope sender here): where a VERP tag may be."""
    recipients: tuple[RecipientStatus, ...]
    problems: tuple[str, ...]


def classify(action: str, status: str, diagnostic: str) -> EventKind:
    """The event a recipient block means; a failure without a readable status falls back on the
    SMTP reply code in Diagnostic-Code, and on `unknown` when there is none."""
    if action != "failed":
        return _ACTIONS.get(action, EventKind.UNKNOWN)
    found = _STATUS.fullmatch(status)
    klass = found.group(1) if found else None
    if klass is None:
        reply = _SMTP_REPLY.search(diagnostic)
        klass = reply.group(1) if reply else None
    return {"5": EventKind.BOUNCE_HARD, "4": EventKind.BOUNCE_SOFT}.get(klass or "",
                                                                         EventKind.UNKNOWN)


def field_blocks(part: Message) -> list[Message]:
    """The blocks of a `message/delivery-status` or `message/feedback-report` body. The parser
    makes them sub-messages when the body is plain; a body it left encoded (base64) is decoded
    and split on blank lines here."""
    payload = part.get_payload()
    encoded = str(part.get("Content-Transfer-Encoding", "")).strip().lower() in ("base64",
                                                                              "quoted-printable")
    if isinstance(payload, list) and not encoded:
        return [block for block in payload if isinstance(block, Message)]
    if isinstance(payload, list):  # the parser split the encoded text as if it were fields
        payload = "\n".join(text for block in payload if isinstance(block, Message)
                            for text in [block.get_payload()] if isinstance(text, str))
        clone = Message()
        clone["Content-Transfer-Encoding"] = str(part.get("Content-Transfer-Encoding"))
        clone.set_payload(payload)
        part = clone
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return []
    text = raw.replace(b"\r\n", b"\n")
    parser = BytesHeaderParser(policy=default_policy)
    return [parser.parsebytes(chunk.strip(b"\n") + b"\n")
            for chunk in re.split(rb"\n[ \t]*\n", text) if chunk.strip()]


def read_delivery_status(part: Message, *, now: datetime) -> DeliveryStatus:
    """The per-message fields and every recipient block; a block without a usable
    Final-Recipient is left out and named in `problems`, the others are kept."""
    blocks = field_blocks(part)
    if not blocks:
        return DeliveryStatus("", None, None, (), ("message/delivery-status: no fields",))
    head, rest = blocks[0], blocks[1:]
    problems: list[str] = []
    if len(rest) > MAX_RECIPIENTS:
        problems.append(f"message/delivery-status: {len(rest)} recipient blocks, only the first "
                        f"{MAX_RECIPIENTS} read")
    recipients = []
    for number, block in enumerate(rest[:MAX_RECIPIENTS], 1):
        raw_final = field_text(block, "Final-Recipient")
        final = typed_address(raw_final)
        if final is None:
            problems.append(f"recipient block {number}: Final-Recipient "
                            f"{'is missing' if not raw_final else 'is not an address'}")
            continue
        action = field_text(block, "Action").lower().split(" ")[0]
        status = field_text(block, "Status").split(" ")[0]
        diagnostic = field_text(block, "Diagnostic-Code")
        recipients.append(RecipientStatus(
            final_recipient=final,
            original_recipient=typed_address(field_text(block, "Original-Recipient")),
            action=action, status=status, diagnostic=diagnostic,
            last_attempt=report_date(field_text(block, "Last-Attempt-Date"), now=now),
            kind=classify(action, status, diagnostic)))
    sender = field_text(head, "X-Postfix-Sender")
    return DeliveryStatus(
        reporting_mta=field_text(head, "Reporting-MTA"),
        arrival=report_date(field_text(head, "Arrival-Date"), now=now),
        sender=typed_address(sender) if sender else None,
        recipients=tuple(recipients), problems=tuple(problems))
