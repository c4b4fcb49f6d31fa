"""Complaint reports (ARF, RFC 5965): the `message/feedback-report` part of a feedback loop's mail
(Yahoo/AOL's CFL, Microsoft's JMRP and others send these when a reader presses "spam").

    Feedback-Type abuse     complaint   suppresses; never undone automatically
    any other type          ignored     fraud, virus, not-spam, auth-failure, other: no effect
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import Message

from ..feedback.events import EventKind
from .dsn import field_blocks
from .fields import addresses, field_text, field_texts, report_date

_KINDS = {"abuse": EventKind.COMPLAINT}


@dataclass(frozen=True)
class FeedbackReport:
    feedback_type: str
    user_agent: str
    original_mail_from: str | None
    """The envelope sender of the reported message: our VERP Return-Path, when it carries it."""
    original_rcpt_to: tuple[str, ...]
    """Often absent or redacted: many providers hide who complained."""
    arrival: datetime | None
    reported_domain: str
    kind: EventKind
    problems: tuple[str, ...]


def read_feedback_report(part: Message, *, now: datetime) -> FeedbackReport:
    blocks = field_blocks(part)
    fields = blocks[0] if blocks else Message()
    feedback_type = field_text(fields, "Feedback-Type").lower().split(" ")[0]
    problems = () if feedback_type else ("message/feedback-report: Feedback-Type is missing",)
    mail_from = addresses([field_text(fields, "Original-Mail-From")])
    arrival = (report_date(field_text(fields, "Arrival-Date"), now=now)
               or report_date(field_text(fields, "Received-Date"), now=now))
    return FeedbackReport(
        feedback_type=feedback_type, user_agent=field_text(fields, "User-Agent"),
        original_mail_from=mail_from[0] if mail_from else None,
        original_rcpt_to=tuple(addresses(field_texts(fields, "Original-Rcpt-To"))[:10]),
        arrival=arrival, reported_domain=field_text(fields, "Reported-Domain"),
        kind=_KINDS.get(feedback_type, EventKind.IGNORED), problems=problems)
