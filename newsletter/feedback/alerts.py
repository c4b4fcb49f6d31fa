"""When an edition's complaints or hard bounces pass what mailbox providers tolerate, the editor
is told once per edition and measure (the row in `feedback_alerts` is the "once")."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..content.models import Edition
from .models import FeedbackAlert
from .report import EditionFeedback, editions_feedback

__all__ = ["THRESHOLDS", "Alert", "raise_alerts"]

THRESHOLDS = {"complaints": 0.001, "hard_bounces": 0.02}
"""Gmail and Yahoo hold bulk senders under 0.3 % complaints; we warn well before."""
_WORDS = {"complaints": "spam complaints", "hard_bounces": "hard bounces"}


@dataclass(frozen=True)
class Alert:
    month: str
    measure: str
    count: int
    sent: int
    rate: float

    @property
    def subject(self) -> str:
        return f"ALERT {self.month}: {_WORDS[self.measure]} at {self.rate:.2%}"

    @property
    def body(self) -> str:
        limit = THRESHOLDS[self.measure]
        return (f"The {self.month} edition has {self.count} {_WORDS[self.measure]} for "
                f"{self.sent} messages sent ({self.rate:.2%}, above {limit:.1%}).\n"
                "Mailbox providers throttle or block senders whose lists complain or bounce this "
                "much. The addresses are suppressed already; check how they were collected.\n"
                f"See `newsletter status {self.month}`.")


def over(figures: EditionFeedback) -> list[str]:
    return [m for m, limit in THRESHOLDS.items() if figures.sent and figures.rate(m) > limit]


def raise_alerts(session: Session, edition_ids: Collection[int], now: datetime) -> list[Alert]:
    """Alerts newly due for these editions, recorded so that none is raised twice."""
    figures = editions_feedback(session, edition_ids)
    due = [(f, m) for f in figures.values() for m in over(f)]
    if not due:
        return []
    months = dict(session.execute(select(Edition.id, Edition.month)
                                  .where(Edition.id.in_({f.edition_id for f, _ in due}))).all())
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    raised = []
    for f, measure in due:
        inserted = session.execute(
            module.insert(FeedbackAlert)
            .values(edition_id=f.edition_id, measure=measure, rate=f.rate(measure), raised_at=now)
            .on_conflict_do_nothing(index_elements=["edition_id", "measure"])
            .returning(FeedbackAlert.id)).first()
        if inserted is not None:
            raised.append(Alert(months[f.edition_id], measure, getattr(f, measure), f.sent,
                                f.rate(measure)))
    return raised
