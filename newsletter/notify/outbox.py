"""The editor's notes, kept until delivered: an alert must survive a mail server that is down.

A note with a recipient is stored before it is handed to the transport and marked sent after; one
that could not be delivered is tried again by every scheduler poll, at most once a minute and for
a week (`retry_due`), so "told why not" does not depend on the mail server being up at that moment.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, String, Text, and_, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..db import Base, UTCDateTime, utcnow

RETRY_EVERY = timedelta(minutes=1)
GIVE_UP_AFTER = timedelta(days=7)


class EditorNote(Base):
    __tablename__ = "editor_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    last_error: Mapped[str | None] = mapped_column(String(1000))


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(EditorNote.sent_at.is_(None), EditorNote.created_at > now - GIVE_UP_AFTER,
                or_(EditorNote.attempted_at.is_(None), EditorNote.attempted_at <= now - RETRY_EVERY))


def retry_due(session: Session, now: datetime) -> list[EditorNote]:
    """Undelivered notes younger than a week whose last attempt is a minute old, oldest first."""
    return list(session.scalars(select(EditorNote).where(_due(now)).order_by(EditorNote.id)))


def claim_retry(session: Session, note_id: int, now: datetime) -> bool:
    """Take this minute's attempt at a note; False when another scheduler took it first."""
    taken = session.execute(update(EditorNote).where(EditorNote.id == note_id, _due(now))
                            .values(attempted_at=now))
    return bool(taken.rowcount)  # type: ignore[attr-defined]
