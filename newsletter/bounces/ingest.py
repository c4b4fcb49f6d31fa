"""Reports from a source, read, matched to their delivery and recorded: one transaction per
message (`feedback.record.record_events`, idempotent on the report's Message-ID and recipient),
and only then is the message marked done at its source, so a crash in between reads it again
without a second effect."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from subscribers.models import Subscriber

from ..context import Newsletter
from ..db import utcnow
from ..errors import ConfigError, StoreError
from ..feedback.events import EventKind, InvalidEvent
from ..feedback.record import record_events
from ..sending.models import Delivery
from ..verp import Verp
from .fields import ReportError
from .match import Recipient, match_findings, tagged_delivery
from .read import MailboxReport, ReportKind, read_report
from .sources import Incoming, Source

_COUNTED = {EventKind.BOUNCE_HARD: "hard", EventKind.BOUNCE_SOFT: "soft",
            EventKind.COMPLAINT: "complaints", EventKind.DEFERRED: "deferred",
            EventKind.DELIVERED: "delivered"}


@dataclass
class IngestSummary:
    processed: int = 0
    """Messages read (refused ones included)."""
    hard: int = 0
    soft: int = 0
    complaints: int = 0
    deferred: int = 0
    delivered: int = 0
    ignored: int = 0
    """Auto-replies, mail that is no report, and report entries without effect (relayed…)."""
    unmatched: int = 0
    """Findings without a verified delivery of that recipient: no effect."""
    duplicates: int = 0
    """Events recorded before (the same report read again): no second effect."""
    refused: int = 0
    """Messages that could not be read (over the cap…): left flagged at the source."""
    notes: list[str] = field(default_factory=list)
    """One line per refused message, problem and unmatched finding, naming where it came from."""

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in
                ("processed", "hard", "soft", "complaints", "deferred", "delivered", "ignored",
                 "unmatched", "duplicates", "refused", "notes")}


def verp_of(nl: Newsletter) -> Verp:
    verp = nl.config.verp
    if verp is None:
        raise ConfigError("NEWSLETTER_BOUNCE_ADDRESS is not set: without it no send carried a "
                          "VERP tag, and no bounce can be matched to its delivery")
    return verp


def _recipient(nl: Newsletter, delivery_id: int) -> Recipient | None:
    with nl.session() as session:
        row = session.execute(
            select(Subscriber.email, Subscriber.email_hash)
            .join(Delivery, Delivery.subscriber_id == Subscriber.id)
            .where(Delivery.id == delivery_id)).first()
    return Recipient(*row) if row else None


def ingest_report(nl: Newsletter, verp: Verp, report: MailboxReport, where: str,
                  summary: IngestSummary) -> None:
    """Match one report's findings and record their events; counts go to `summary`."""
    summary.notes += [f"{where}: {problem}" for problem in report.problems]
    if report.kind in (ReportKind.AUTO_REPLY, ReportKind.OTHER) or not report.findings:
        summary.ignored += 1
        return
    delivery_id, why = tagged_delivery(report, verp)
    recipient = _recipient(nl, delivery_id) if delivery_id is not None else None
    matched = match_findings(report, delivery_id, recipient, why)
    summary.ignored += matched.ignored
    summary.unmatched += len(matched.unmatched)
    summary.notes += [f"{where}: unmatched: {line}" for line in matched.unmatched]
    if not matched.events:
        return
    try:
        recorded = record_events(nl, matched.events)
    except SQLAlchemyError as err:
        raise StoreError(f"{where}: the store failed; nothing of this message was recorded "
                         f"and it stays unread: {getattr(err, 'orig', None) or err}") from err
    summary.duplicates += recorded.duplicates
    for event in matched.events:
        name = _COUNTED.get(event.kind)
        if name:
            setattr(summary, name, getattr(summary, name) + 1)


def ingest(nl: Newsletter, source: Source, *, now: datetime | None = None,
           progress: Callable[[int, int], None] | None = None) -> IngestSummary:
    """Read every message of `source`; a message that cannot be read is named in the notes and
    flagged at its source, and the others go on. StoreError when the store fails: that message
    is left unmarked at its source, to be read again, and the run stops."""
    verp = verp_of(nl)
    summary = IngestSummary()
    total = len(source)
    for item in source:
        summary.processed += 1
        ok = _one(nl, verp, item, now or utcnow(), summary)
        source.finish(item, ok=ok)
        if progress is not None:
            progress(summary.processed, total)
    return summary


def _one(nl: Newsletter, verp: Verp, item: Incoming, now: datetime,
         summary: IngestSummary) -> bool:
    try:
        if item.data is None:
            raise ReportError(item.error)
        ingest_report(nl, verp, read_report(item.data, now=now), item.where, summary)
    except (ReportError, InvalidEvent) as err:
        summary.refused += 1
        summary.notes.append(f"{item.where}: {err}")
        return False
    return True
