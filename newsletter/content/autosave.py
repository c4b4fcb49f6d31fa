"""Autosaved summary drafts: what an editor typed in the console, kept even when it does not
validate yet, one per editor and draft (a stored summary, or a new one by its random key).

An autosave never changes a summary: it is only offered back to the form ("Restore the
autosaved draft") when it is newer than the saved version, and goes when the summary is saved.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..db import Base, UTCDateTime, utcnow

__all__ = ["SummaryAutosave", "drop_autosave", "find_autosave", "key_for", "latest_new_draft",
           "save_autosave"]

NEW_PREFIX = "new-"


class SummaryAutosave(Base):
    __tablename__ = "summary_autosaves"
    __table_args__ = (UniqueConstraint("editor_id", "draft_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    editor_id: Mapped[int] = mapped_column(ForeignKey("editors.id", ondelete="CASCADE"))
    draft_key: Mapped[str] = mapped_column(String(80))
    summary_id: Mapped[int | None] = mapped_column(ForeignKey("summaries.id", ondelete="CASCADE"))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def key_for(summary_id: int | None, new_key: str = "") -> str:
    """`summary-12` for a stored summary, `new-<key>` for one not saved yet."""
    return f"summary-{summary_id}" if summary_id is not None else NEW_PREFIX + new_key[:64]


def save_autosave(session: Session, editor_id: int, key: str, fields: dict[str, Any], *,
                  summary_id: int | None = None, now: datetime | None = None) -> SummaryAutosave:
    found = find_autosave(session, editor_id, key)
    if found is None:
        found = SummaryAutosave(editor_id=editor_id, draft_key=key, summary_id=summary_id,
                                fields=fields)
        session.add(found)
    found.fields, found.saved_at = fields, now or utcnow()
    session.flush()
    return found


def find_autosave(session: Session, editor_id: int, key: str) -> SummaryAutosave | None:
    return session.scalar(select(SummaryAutosave).where(SummaryAutosave.editor_id == editor_id,
                                                        SummaryAutosave.draft_key == key))


def latest_new_draft(session: Session, editor_id: int) -> SummaryAutosave | None:
    """The editor's newest autosave of a summary never saved."""
    return session.scalar(select(SummaryAutosave).where(
        SummaryAutosave.editor_id == editor_id, SummaryAutosave.summary_id.is_(None))
        .order_by(SummaryAutosave.saved_at.desc(), SummaryAutosave.id.desc()).limit(1))


def drop_autosave(session: Session, editor_id: int, key: str) -> None:
    session.execute(delete(SummaryAutosave).where(SummaryAutosave.editor_id == editor_id,
                                                  SummaryAutosave.draft_key == key))
