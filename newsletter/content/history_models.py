"""A summary's history as stored: every saved version, and the editorial notices about its DOI."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime, utcnow


class SummaryRevision(Base):
    """One saved version: the summary's fields in file form, so any one can be restored."""

    __tablename__ = "summary_revisions"
    __table_args__ = (UniqueConstraint("summary_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    summary_id: Mapped[int] = mapped_column(ForeignKey("summaries.id", ondelete="CASCADE"))
    number: Mapped[int]
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    saved_by: Mapped[str] = mapped_column(String(1000))
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EditorialUpdate(Base):
    """A notice (retraction, correction…) Crossref lists for a summary's DOI; a retraction blocks
    scheduling until someone acknowledges it."""

    __tablename__ = "editorial_updates"
    __table_args__ = (UniqueConstraint("summary_id", "notice_doi"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    summary_id: Mapped[int] = mapped_column(ForeignKey("summaries.id", ondelete="CASCADE"))
    doi: Mapped[str] = mapped_column(String(300))
    notice_doi: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(50))
    label: Mapped[str] = mapped_column(String(200))
    notice_date: Mapped[str | None] = mapped_column(String(10))
    title: Mapped[str | None] = mapped_column(String(500))
    found_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
