"""What the editor reads about one person: their bounces, complaints and unsubscribes with the
raw reason, the edition and what each did."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from subscribers.addresses import address_hash
from subscribers.models import Subscriber

from ..content.models import Edition
from ..context import Newsletter
from .models import FeedbackEventRow

__all__ = ["history_in", "subscriber_history"]


def subscriber_history(nl: Newsletter, email: str) -> list[dict[str, Any]]:
    """Every stored event about the address, oldest first: by its subscriber's row or by its
    hash (events applied by address, and those kept after an erasure)."""
    with nl.session() as session:
        return history_in(session, email)


def history_in(session: Session, email: str, *, last: int | None = None) -> list[dict[str, Any]]:
    """`subscriber_history` in the caller's unit of work; `last` keeps the newest N (still
    oldest first)."""
    key = address_hash(email)
    subscriber_id = session.scalar(select(Subscriber.id).where(Subscriber.email_hash == key))
    who = FeedbackEventRow.address_hash == key
    if subscriber_id is not None:
        who = or_(who, FeedbackEventRow.subscriber_id == subscriber_id)
    query = (select(FeedbackEventRow, Edition.month)
             .outerjoin(Edition, Edition.id == FeedbackEventRow.edition_id).where(who)
             .order_by(FeedbackEventRow.occurred_at.desc(), FeedbackEventRow.id.desc()))
    rows = list(session.execute(query if last is None else query.limit(last)).all())
    rows.reverse()
    return [{"at": row.occurred_at, "kind": row.kind.value, "source": row.source.value,
             "edition": month, "reason": row.reason, "effect": row.effect.value,
             "matched_by": row.matched_by.value} for row, month in rows]
