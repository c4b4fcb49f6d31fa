"""Feedback as stored: every event once (unique on source and key), and each alert raised once."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime, utcnow
from ..db.types import closed_enum
from .events import EventKind, Source


class Match(enum.StrEnum):
    DELIVERY = "delivery"
    """Found by the delivery id, and the message id and address agreed."""
    ADDRESS = "address"
    """No delivery matched; the address is a subscriber's (logged as unmatched)."""


class Effect(enum.StrEnum):
    NONE = "none"
    SUPPRESSED = "suppressed"
    SOFT_COUNTED = "soft_counted"
    UNSUBSCRIBED = "unsubscribed"


class FeedbackEventRow(Base):
    __tablename__ = "feedback_events"
    __table_args__ = (
        UniqueConstraint("source", "event_key", name="uq_feedback_events_source_event_key"),
        Index("ix_feedback_events_subscriber_kind", "subscriber_id", "kind", "occurred_at"),
        Index("ix_feedback_events_edition_kind", "edition_id", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[Source] = mapped_column(closed_enum(Source, "feedback_source"))
    event_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[EventKind] = mapped_column(closed_enum(EventKind, "feedback_kind"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"))
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id", ondelete="SET NULL"))
    edition_id: Mapped[int | None] = mapped_column(ForeignKey("editions.id", ondelete="SET NULL"))
    matched_by: Mapped[Match] = mapped_column(closed_enum(Match, "feedback_match"))
    effect: Mapped[Effect] = mapped_column(closed_enum(Effect, "feedback_effect"), default=Effect.NONE)
    address_hash: Mapped[str | None] = mapped_column(String(64))
    provider_message_id: Mapped[str | None] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(String(1000), default="")
    payload: Mapped[str | None] = mapped_column(Text)
    """The provider's JSON, addresses hashed, at most MAX_PAYLOAD characters; set to NULL once
    older than `feedback_payload_days`."""


class FeedbackAlert(Base):
    """An alert told to the editor: once per edition and measure, however many events follow."""

    __tablename__ = "feedback_alerts"
    __table_args__ = (UniqueConstraint("edition_id", "measure", name="uq_feedback_alerts_edition_measure"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    measure: Mapped[str] = mapped_column(String(30))
    rate: Mapped[float] = mapped_column(Float)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
