"""The one vocabulary of what comes back after a send: every provider webhook and every mailbox
report (DSN, ARF) is turned into `FeedbackEvent`s, and only `record.record_events` acts on them.

Pure: values in, values out. Everything in an event came from outside, so `FeedbackEvent` checks
its own fields when it is made: an address with a line break, a naive time or an oversized key is
refused here, once, for every source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ..errors import NewsletterError
from ..text import breaks_line, single_line

__all__ = ["MAX_EVENT_KEY", "MAX_REASON", "EventKind", "FeedbackEvent", "InvalidEvent", "Source",
           "clip_reason"]

MAX_EVENT_KEY = 200
MAX_REASON = 1000
MAX_ADDRESS = 254
MAX_MESSAGE_ID = 300


class EventKind(StrEnum):
    BOUNCE_HARD = "bounce_hard"
    BOUNCE_SOFT = "bounce_soft"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    DROPPED = "dropped"
    """The provider refused to send because of its own suppression list."""
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    IGNORED = "ignored"
    """Known and deliberately without effect (opens, clicks, reactivations, auto-replies)."""
    UNKNOWN = "unknown"


class Source(StrEnum):
    POSTMARK = "postmark"
    SENDGRID = "sendgrid"
    MAILGUN = "mailgun"
    MAILBOX = "mailbox"


class InvalidEvent(NewsletterError):
    """An event field that cannot be trusted (the message names the field)."""

    def __init__(self, field_name: str, problem: str) -> None:
        self.field = field_name
        super().__init__(f"{field_name}: {problem}")


def clip_reason(raw: object) -> str:
    """A provider's reason or diagnostic as one stored line, capped: kept raw, never trusted."""
    text = raw if isinstance(raw, str) else "" if raw is None else str(raw)
    return single_line(text)[:MAX_REASON]


@dataclass(frozen=True)
class FeedbackEvent:
    source: Source
    event_key: str
    """Unique per source: SendGrid sg_event_id, Postmark ID, Mailgun token, DSN Message-ID+recipient."""
    kind: EventKind
    occurred_at: datetime
    address: str | None
    """The recipient the event names, as the provider wrote it (not yet normalised)."""
    delivery_id: int | None = None
    """From provider metadata or the VERP tag; only a hint until cross-checked."""
    provider_message_id: str | None = None
    reason: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)
    """What is stored; `record` replaces every address in it by its hash before storing."""

    def __post_init__(self) -> None:
        if not isinstance(self.source, Source):
            object.__setattr__(self, "source", Source(self.source))
        if not isinstance(self.kind, EventKind):
            object.__setattr__(self, "kind", EventKind(self.kind))
        if self.address is not None:
            _check_line("address", self.address, MAX_ADDRESS, required=True)
        _check_line("event_key", self.event_key, MAX_EVENT_KEY, required=True)
        if self.occurred_at.tzinfo is None:
            raise InvalidEvent("occurred_at", "a time without a time zone")
        object.__setattr__(self, "occurred_at", self.occurred_at.astimezone(UTC))
        if self.provider_message_id is not None:
            _check_line("provider_message_id", self.provider_message_id, MAX_MESSAGE_ID)
        if self.delivery_id is not None and (isinstance(self.delivery_id, bool)
                                             or not isinstance(self.delivery_id, int)
                                             or not 0 < self.delivery_id < 2**63):
            raise InvalidEvent("delivery_id", "not a positive integer")
        object.__setattr__(self, "reason", clip_reason(self.reason))


def _check_line(name: str, value: object, limit: int, *, required: bool = False) -> None:
    if not isinstance(value, str):
        raise InvalidEvent(name, "not a string")
    if required and not value.strip():
        raise InvalidEvent(name, "empty")
    if len(value) > limit:
        raise InvalidEvent(name, f"longer than {limit} characters")
    if breaks_line(value):
        raise InvalidEvent(name, "contains a line break or control character")
