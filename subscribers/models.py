"""The audience as stored: subscribers, their topic choices and consent, and suppressions."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from newsletter.db import Base, UTCDateTime, utcnow
from newsletter.db.models import Topic
from newsletter.db.types import closed_enum, new_uid


class SubscriberStatus(enum.StrEnum):
    UNCONFIRMED = "unconfirmed"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class ConsentMethod(enum.StrEnum):
    ADMIN = "admin"
    IMPORT = "import"
    WEB_FORM = "web-form"


subscriber_topics = Table(
    "subscriber_topics", Base.metadata,
    Column("subscriber_id", ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True),
    Column("topic_id", ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True),
)


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    email: Mapped[str] = mapped_column(String(320))
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[SubscriberStatus] = mapped_column(
        closed_enum(SubscriberStatus, "subscriber_status"), default=SubscriberStatus.UNCONFIRMED,
        index=True)
    all_topics: Mapped[bool] = mapped_column(Boolean, default=True)
    language: Mapped[str] = mapped_column(String(10), default="en")
    consent_method: Mapped[ConsentMethod] = mapped_column(
        closed_enum(ConsentMethod, "consent_method"))
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    consent_source: Mapped[str] = mapped_column(String(500), default="")
    consent_ip_hash: Mapped[str | None] = mapped_column(String(64))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Set while the person has paused emails: they stay subscribed, with their topics kept."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    topics: Mapped[list[Topic]] = relationship(secondary=subscriber_topics,
                                               order_by=Topic.position)

    @property
    def topic_slugs(self) -> frozenset[str] | None:
        """None means every topic, including topics added later."""
        return None if self.all_topics else frozenset(t.slug for t in self.topics)


class Suppression(Base):
    """An address that must never be mailed again; only the hash survives an erasure."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(50))
    detail: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
