"""What the monthly rule did, stored so that every scheduler process, and every restart, agrees."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime, utcnow
from ..db.types import closed_enum


class RecurringKind(enum.StrEnum):
    SEND = "send"
    REMINDER = "reminder"


class RecurringOutcome(enum.StrEnum):
    SCHEDULED = "scheduled"
    """Complete: the edition was put on the schedule at the rule's time and sends from there."""
    INCOMPLETE = "incomplete"
    MISSED = "missed"
    SKIPPED = "skipped"
    """The editor had already scheduled, sent or cancelled that month's edition by hand."""
    REMINDED = "reminded"
    NOT_NEEDED = "not_needed"


class RecurringRun(Base):
    """One decision per (kind, month): the unique key is how two schedulers never both act."""

    __tablename__ = "recurring_runs"
    __table_args__ = (UniqueConstraint("kind", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[RecurringKind] = mapped_column(closed_enum(RecurringKind, "recurring_kind"))
    month: Mapped[str] = mapped_column(String(7))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[RecurringOutcome] = mapped_column(
        closed_enum(RecurringOutcome, "recurring_outcome"))
    detail: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RuleActivation(Base):
    """When a scheduler first ran with this rule: occurrences before it were never promised, so
    they are neither sent nor reported missed."""

    __tablename__ = "recurring_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(300), unique=True)
    armed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
