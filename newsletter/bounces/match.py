"""Which delivery a mailbox report is about, and its findings as events.

Anyone can mail the bounce address, so a report counts only through its VERP tag, which we
signed: the tag names the delivery, the returned message's Message-ID (when it is one of ours)
must name the same one, and the recipient the report names must be that delivery's subscriber
(a redacted ARF names nobody: the tag alone decides). A report that fails any of these is
`unmatched` and has no effect, not even by address: a valid tag of one's own delivery must not
let anyone bounce someone else.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from subscribers.addresses import InvalidAddress, address_hash

from ..feedback.events import MAX_EVENT_KEY, EventKind, FeedbackEvent, Source
from ..verp import Verp
from .read import Finding, MailboxReport

_OUR_MESSAGE_ID = re.compile(r"<\d{4}-\d{2}\.(\d{1,19})\.[0-9a-f]{20}@[^<>]+>")
"""`compose._message_id` of an edition: `<MONTH.DELIVERY.random@domain>`."""


class Recipient(NamedTuple):
    """The subscriber a delivery went to, as the store holds them."""

    email: str
    email_hash: str


def tagged_delivery(report: MailboxReport, verp: Verp) -> tuple[int | None, str]:
    """(delivery id, "") from the report's VERP tag, or (None, why not)."""
    found = {verp.delivery_of(address) for address in report.tag_addresses}
    found.discard(None)
    ids = sorted(d for d in found if d is not None)
    if not ids:
        tagged = any(verp.is_tagged(a) for a in report.tag_addresses)
        return None, ("the VERP tag does not verify (forged or garbled)" if tagged
                      else "no VERP tag of ours")
    if len(ids) > 1:
        return None, f"VERP tags of {len(ids)} different deliveries"
    ours = _OUR_MESSAGE_ID.fullmatch(report.returned_message_id or "")
    if ours and int(ours.group(1)) != ids[0]:
        return None, (f"the returned Message-ID is of delivery {ours.group(1)}, the VERP tag of "
                      f"delivery {ids[0]}")
    return ids[0], ""


def _hash(address: str) -> str | None:
    try:
        return address_hash(address)
    except InvalidAddress:
        return None


def event_key(report: MailboxReport, recipient: str) -> str:
    """The report's Message-ID and the recipient (hashed when together they are too long)."""
    key = f"{report.message_id or 'sha256:' + report.digest} {recipient.lower()}"
    if len(key) <= MAX_EVENT_KEY:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass
class Matched:
    events: list[FeedbackEvent] = field(default_factory=list)
    ignored: int = 0
    unmatched: list[str] = field(default_factory=list)
    """Why each finding that names someone else, or no delivery, had no effect."""


def _named(finding: Finding, recipient: Recipient) -> str | None:
    """The name under which the finding names the subscriber: "" when it names nobody (redacted),
    None when it names only others."""
    if finding.address is None:
        return ""
    for name in (finding.address, *finding.also):
        if _hash(name) == recipient.email_hash:
            return name
    return None


def match_findings(report: MailboxReport, delivery_id: int | None, recipient: Recipient | None,
                   why: str) -> Matched:
    """Events for the findings that are about `delivery_id`'s subscriber."""
    matched = Matched()
    for finding in report.findings:
        if finding.kind in (EventKind.IGNORED, EventKind.UNKNOWN):
            matched.ignored += 1
            continue
        label = finding.address or "an undisclosed recipient"
        if delivery_id is None or recipient is None:
            matched.unmatched.append(f"{label}: {why or f'delivery {delivery_id} is not held'}")
            continue
        name = _named(finding, recipient)
        if name is None:
            matched.unmatched.append(f"{label}: not the recipient of delivery {delivery_id}")
            continue
        matched.events.append(FeedbackEvent(
            source=Source.MAILBOX, event_key=event_key(report, name or f"delivery {delivery_id}"),
            kind=finding.kind, occurred_at=finding.occurred_at, address=name or None,
            delivery_id=delivery_id, reason=finding.reason,
            payload={**finding.details, "report_message_id": report.message_id or "",
                     "returned_message_id": report.returned_message_id or "",
                     "subject": report.subject[:200]}))
    return matched
