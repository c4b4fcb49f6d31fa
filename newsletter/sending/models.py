"""The ledger: one row per (edition, subscriber), the whole truth about who was mailed."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime, utcnow
from ..db.types import closed_enum


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    SENT = "sent"
    FAILED = "failed"
    REJECTED = "rejected"
    UNCERTAIN = "uncertain"


_SENT = text("sent_at IS NOT NULL")
"""The rows ix_deliveries_edition_sent_at holds: only sent ones (migration 0015)."""


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("edition_id", "subscriber_id"),
        Index("ix_deliveries_edition_status", "edition_id", "status", "id"),
        Index("ix_deliveries_edition_sent_at", "edition_id", "status", "sent_at",  # watch (0015)
              postgresql_where=_SENT, sqlite_where=_SENT),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    variant: Mapped[str] = mapped_column(String(200))
    status: Mapped[DeliveryStatus] = mapped_column(closed_enum(DeliveryStatus, "delivery_status"),
                                                   default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    run_id: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(300))
    last_error: Mapped[str | None] = mapped_column(String(1000))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SendRun(Base):
    """One process working on an edition: the `send` that planned it (`leader_id` NULL) or a
    worker that joined it. Lets a later run tell a crash from a live run; `journal` is the
    worker's local result journal (journal.py), read back when it died."""

    __tablename__ = "send_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    leader_id: Mapped[str | None] = mapped_column(String(32), index=True)
    journal: Mapped[str | None] = mapped_column(String(1000))
