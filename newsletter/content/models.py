"""Summaries and editions as stored."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, UTCDateTime, utcnow
from ..db.models import ResearchType, Topic
from ..db.types import closed_enum, new_uid


class SummaryStatus(enum.StrEnum):
    DRAFT = "draft"
    READY = "ready"


class EditionStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"
    MISSED = "missed"
    """Its send time passed while no scheduler ran, beyond the grace period; nothing was sent."""


summary_topics = Table(
    "summary_topics", Base.metadata,
    Column("summary_id", ForeignKey("summaries.id", ondelete="CASCADE"), primary_key=True),
    Column("topic_id", ForeignKey("topics.id", ondelete="RESTRICT"), primary_key=True),
)


class Summary(Base):
    __tablename__ = "summaries"
    __table_args__ = (UniqueConstraint("month", "headline"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    headline: Mapped[str] = mapped_column(String(300))
    byline: Mapped[str | None] = mapped_column(String(200))
    citation: Mapped[dict[str, Any]] = mapped_column(JSON)
    note_md: Mapped[str | None] = mapped_column(Text)
    body_md: Mapped[str] = mapped_column(Text)
    implications_md: Mapped[str] = mapped_column(Text)
    research_type_id: Mapped[int] = mapped_column(ForeignKey("research_types.id"))
    status: Mapped[SummaryStatus] = mapped_column(closed_enum(SummaryStatus, "summary_status"),
                                                  default=SummaryStatus.READY)
    source_file: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    research_type: Mapped[ResearchType] = relationship(lazy="joined")
    topics: Mapped[list[Topic]] = relationship(secondary=summary_topics, order_by=Topic.position)


class Edition(Base):
    __tablename__ = "editions"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    month: Mapped[str] = mapped_column(String(7), unique=True)
    subject: Mapped[str] = mapped_column(String(300))
    preheader: Mapped[str] = mapped_column(String(300), default="")
    intro_md: Mapped[str | None] = mapped_column(Text)
    status: Mapped[EditionStatus] = mapped_column(closed_enum(EditionStatus, "edition_status"),
                                                  default=EditionStatus.DRAFT)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    items: Mapped[list[EditionItem]] = relationship(
        order_by="EditionItem.position", cascade="all, delete-orphan", back_populates="edition")


class EditionItem(Base):
    """A summary's place in an edition; the order is the editor's, fixed at assembly."""

    __tablename__ = "edition_items"

    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"),
                                            primary_key=True)
    summary_id: Mapped[int] = mapped_column(ForeignKey("summaries.id", ondelete="RESTRICT"),
                                            primary_key=True)
    position: Mapped[int]

    edition: Mapped[Edition] = relationship(back_populates="items")
    summary: Mapped[Summary] = relationship(lazy="joined")
