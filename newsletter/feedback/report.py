"""The figures the editor sees per edition: hard and soft bounces, complaints and unsubscribes,
each as a count of people and a rate over the messages sent."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..content.models import Edition
from ..context import Newsletter
from ..sending.models import Delivery, DeliveryStatus
from .events import EventKind
from .models import FeedbackEventRow

__all__ = ["MEASURES", "EditionFeedback", "describe_feedback", "edition_feedback",
           "editions_feedback", "month_feedback"]

MEASURES = {"hard_bounces": EventKind.BOUNCE_HARD, "soft_bounces": EventKind.BOUNCE_SOFT,
            "complaints": EventKind.COMPLAINT, "unsubscribes": EventKind.UNSUBSCRIBE}


@dataclass(frozen=True)
class EditionFeedback:
    edition_id: int
    sent: int
    hard_bounces: int = 0
    soft_bounces: int = 0
    complaints: int = 0
    unsubscribes: int = 0

    def rate(self, measure: str) -> float:
        """The share of sent messages (0 when nothing was sent)."""
        count: int = getattr(self, measure)
        return count / self.sent if self.sent else 0.0

    def as_dict(self) -> dict[str, int | float]:
        figures: dict[str, int | float] = {"sent": self.sent}
        for measure in MEASURES:
            figures[measure] = getattr(self, measure)
            figures[f"{measure}_rate"] = round(self.rate(measure), 6)
        return figures


def editions_feedback(session: Session, edition_ids: Collection[int]) -> dict[int, EditionFeedback]:
    """Two grouped queries for any number of editions; people are counted once per measure."""
    if not edition_ids:
        return {}
    sent = dict(session.execute(
        select(Delivery.edition_id, func.count())
        .where(Delivery.edition_id.in_(edition_ids), Delivery.status == DeliveryStatus.SENT)
        .group_by(Delivery.edition_id)).all())
    counts: dict[int, dict[str, int]] = {e: {} for e in edition_ids}
    by_kind = {kind: measure for measure, kind in MEASURES.items()}
    for edition_id, kind, people in session.execute(
            select(FeedbackEventRow.edition_id, FeedbackEventRow.kind,
                   func.count(FeedbackEventRow.subscriber_id.distinct()))
            .where(FeedbackEventRow.edition_id.in_(edition_ids),
                   FeedbackEventRow.kind.in_(list(by_kind)))
            .group_by(FeedbackEventRow.edition_id, FeedbackEventRow.kind)):
        if edition_id is not None:
            counts[edition_id][by_kind[kind]] = people
    return {e: EditionFeedback(e, sent.get(e, 0), **counts[e]) for e in edition_ids}


def edition_feedback(session: Session, edition_id: int) -> EditionFeedback:
    return editions_feedback(session, [edition_id])[edition_id]


def month_feedback(nl: Newsletter, month: str) -> dict[str, int | float] | None:
    """`newsletter status MONTH`'s feedback figures; None when there is no such edition."""
    with nl.session() as session:
        edition_id = session.scalar(select(Edition.id).where(Edition.month == month))
        return None if edition_id is None else edition_feedback(session, edition_id).as_dict()


def describe_feedback(figures: Mapping[str, int | float]) -> str:
    """The one line the status command prints."""
    words = {"hard_bounces": "hard bounces", "soft_bounces": "soft bounces",
             "complaints": "complaints", "unsubscribes": "unsubscribes"}
    return "feedback: " + ", ".join(f"{words[m]} {figures[m]} ({figures[f'{m}_rate']:.2%})"
                                    for m in MEASURES)
