"""The rules that turn events into effects, as pure functions: which status an event may set,
when soft bounces add up to a suppression, and how a stored payload forgets addresses."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from subscribers.models import SubscriberStatus

from .events import EventKind

__all__ = ["SOFT_BOUNCE_DECAY", "SOFT_BOUNCE_LIMIT", "Sighting", "forward_status", "mask_addresses",
           "stored_payload", "soft_bounce_streak"]

SOFT_BOUNCE_LIMIT = 3
"""Soft bounces on this many different deliveries, with no delivery between, suppress."""
SOFT_BOUNCE_DECAY = timedelta(days=180)
MAX_PAYLOAD = 16_000

_RANK = {SubscriberStatus.UNCONFIRMED: 0, SubscriberStatus.ACTIVE: 0,
         SubscriberStatus.UNSUBSCRIBED: 1, SubscriberStatus.BOUNCED: 2,
         SubscriberStatus.COMPLAINED: 3}
_ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:@]{1,200}@[^\s<>()\[\]\"',;:@]{1,255}")


def forward_status(current: SubscriberStatus, wanted: SubscriberStatus) -> SubscriberStatus:
    """The status after an event that wants `wanted`: it never moves back (a bounce does not
    undo a complaint, nothing brings an unsubscribed person back)."""
    return wanted if _RANK[wanted] > _RANK[current] else current


@dataclass(frozen=True)
class Sighting:
    """One stored event of a subscriber, as the soft-bounce rule needs it."""

    kind: EventKind
    delivery_id: int | None
    occurred_at: datetime


def soft_bounce_streak(sightings: Iterable[Sighting], now: datetime) -> int:
    """How many different deliveries soft-bounced since the last delivered one, within the decay."""
    recent = sorted((s for s in sightings if s.occurred_at >= now - SOFT_BOUNCE_DECAY),
                    key=lambda s: s.occurred_at)
    bounced: set[int] = set()
    for sighting in recent:
        if sighting.kind is EventKind.DELIVERED:
            bounced.clear()
        elif sighting.kind is EventKind.BOUNCE_SOFT and sighting.delivery_id is not None:
            bounced.add(sighting.delivery_id)
    return len(bounced)


def _address_token(match: re.Match[str]) -> str:
    digest = hashlib.sha256(match.group(0).casefold().encode("utf-8")).hexdigest()
    return f"sha256:{digest[:32]}"


def mask_addresses(text: str) -> str:
    """`text` with every address-like word replaced by a short hash of it."""
    return _ADDRESS.sub(_address_token, text) if "@" in text else text


def stored_payload(value: Any) -> str:
    """What is kept of a provider's payload: its JSON with every address hashed, cut to
    MAX_PAYLOAD characters (one regular-expression pass over the text, not a walk per field)."""
    text = mask_addresses(json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":")))
    return text if len(text) <= MAX_PAYLOAD else json.dumps({"truncated": text[:MAX_PAYLOAD]})
