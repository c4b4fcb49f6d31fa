"""Stored payloads live `feedback_payload_days`, then only the event stays: it is the history,
and what makes a provider's late retry a duplicate. Every recording of new events prunes, so no
separate job has to remember to."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from ..config import Config
from ..context import Newsletter
from ..db import utcnow
from .models import FeedbackEventRow

__all__ = ["payload_cutoff", "prune_payloads", "prune_session"]


def payload_cutoff(config: Config, now: datetime) -> datetime:
    return now - timedelta(days=config.feedback_payload_days)


def prune_session(session: Session, cutoff: datetime) -> int:
    """Drop the payloads of events received before `cutoff`; how many."""
    result = session.execute(update(FeedbackEventRow)
                             .where(FeedbackEventRow.received_at < cutoff,
                                    FeedbackEventRow.payload.is_not(None))
                             .values(payload=None))
    return int(getattr(result, "rowcount", 0) or 0)


def prune_payloads(nl: Newsletter, now: datetime | None = None) -> int:
    with nl.session() as session:
        return prune_session(session, payload_cutoff(nl.config, now or utcnow()))
