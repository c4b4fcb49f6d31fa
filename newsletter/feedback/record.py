"""Events in, effects out, in one transaction: each event is stored once (unique on source and
key) and only a newly stored event acts, so a repeated or parallel delivery has one effect.

    resolve (read)  delivery id → delivery, cross-checked with message id and address;
                    else the address → subscriber ("unmatched", logged); else not stored
    store (write)   INSERT … ON CONFLICT DO NOTHING RETURNING: the write lock is taken first
    act             subscribers locked in id order; hard bounce, complaint, unsubscribe, soft
                    bounce streak; then the edition's alerts, raised once
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from subscribers.addresses import InvalidAddress, address_hash
from subscribers.flows import Unsubscribed, unsubscribe_subscriber
from subscribers.models import Subscriber, SubscriberStatus, Suppression

from ..context import Newsletter
from ..db import utcnow
from ..sending.models import Delivery
from .alerts import Alert, raise_alerts
from .effects import (
    SOFT_BOUNCE_DECAY,
    SOFT_BOUNCE_LIMIT,
    Sighting,
    forward_status,
    mask_addresses,
    soft_bounce_streak,
    stored_payload,
)
from .events import EventKind, FeedbackEvent, Source
from .models import Effect, FeedbackEventRow, Match
from .prune import payload_cutoff, prune_session

__all__ = ["STORED_KINDS", "RecordSummary", "record_events"]

log = logging.getLogger(__name__)

STORED_KINDS = frozenset({EventKind.BOUNCE_HARD, EventKind.BOUNCE_SOFT, EventKind.COMPLAINT,
                          EventKind.UNSUBSCRIBE, EventKind.DROPPED, EventKind.DEFERRED,
                          EventKind.DELIVERED})
"""Kept, because they act or count; `ignored` and `unknown` events are only counted."""
BY_ADDRESS = frozenset({EventKind.BOUNCE_HARD, EventKind.COMPLAINT, EventKind.UNSUBSCRIBE})
"""What applies by address when no delivery matches: a provider's suppression is account-wide."""
EVENTS: Any = FeedbackEventRow.__table__
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                            r"@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+\Z")
ACTS = frozenset({EventKind.BOUNCE_HARD, EventKind.BOUNCE_SOFT, EventKind.COMPLAINT,
                  EventKind.UNSUBSCRIBE})
"""Kinds that may change a subscriber; the others are only stored."""
SUPPRESSES = {EventKind.BOUNCE_HARD: ("hard-bounce", SubscriberStatus.BOUNCED),
              EventKind.COMPLAINT: ("complaint", SubscriberStatus.COMPLAINED)}


@dataclass
class RecordSummary:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    """Already stored (a retry or a parallel delivery of the same event): no second effect."""
    unmatched: int = 0
    """Applied by address: no delivery matched (or it disagreed with the event)."""
    unknown_recipient: int = 0
    """Naming nobody held: counted, not stored."""
    not_kept: int = 0
    """`ignored` and `unknown` events."""
    effects: Counter[str] = field(default_factory=Counter)
    alerts: list[Alert] = field(default_factory=list)


@dataclass(frozen=True)
class _Resolved:
    event: FeedbackEvent
    subscriber_id: int
    match: Match
    delivery_id: int | None
    edition_id: int | None
    address_hash: str | None


def record_events(nl: Newsletter, events: Sequence[FeedbackEvent], *,
                  now: datetime | None = None, raise_alerts_for_editor: bool = False) -> RecordSummary:
    """Store `events` and apply their effects; every write in one transaction, all or nothing.

    With `raise_alerts_for_editor`, the alerts these events make due are recorded as raised and
    returned in `summary.alerts`: pass it only when you hand them to the editor (`Notifier.note`,
    as `webhooks.absorb` does), since each alert is raised once. Without it, the thresholds are
    checked again by the next recording that does."""
    now = now or utcnow()
    summary = RecordSummary(received=len(events))
    kept = [e for e in events if e.kind in STORED_KINDS]
    summary.not_kept = len(events) - len(kept)
    if not kept:
        return summary
    with nl.session() as session:
        seen = _already_stored(session, kept)
        summary.duplicates = len(seen)
        resolved = _resolve(session, [e for e in kept if (e.source, e.event_key) not in seen],
                            summary)
    if not resolved:
        return summary
    with nl.session() as session:
        fresh = _store(session, resolved, now)
        summary.stored = len(fresh)
        summary.duplicates += len(resolved) - len(fresh)
        if fresh:
            effects = _act(session, fresh, now)
            summary.effects.update(effects.values())
            _mark(session, effects)
            if raise_alerts_for_editor:
                summary.alerts = raise_alerts(session, {r.edition_id for _, r in fresh
                                                        if r.edition_id is not None}, now)
            prune_session(session, payload_cutoff(nl.config, now))
    for _, r in fresh:
        if r.match is Match.ADDRESS:
            log.warning("unmatched %s event %s (%s): no delivery matched, applied by address",
                        r.event.source.value, r.event.event_key, r.event.kind.value)
    return summary


def _already_stored(session: Session, events: Sequence[FeedbackEvent]) -> set[tuple[Source, str]]:
    """Events stored by an earlier delivery: a retry costs one indexed read, not a resolve.
    (The insert's ON CONFLICT still settles a parallel delivery.)"""
    keys: dict[Source, set[str]] = defaultdict(set)
    for e in events:
        keys[e.source].add(e.event_key)
    seen: set[tuple[Source, str]] = set()
    for source, wanted in keys.items():
        seen.update((source, key) for key in session.scalars(
            select(FeedbackEventRow.event_key).where(FeedbackEventRow.source == source,
                                                     FeedbackEventRow.event_key.in_(wanted))))
    return seen


def _address_key(event: FeedbackEvent) -> str | None:
    """`address_hash` of the event's address; a plain ASCII address (nearly all) takes the short
    way to the same key, since email-validator costs a third of a millisecond per address."""
    if event.address is None:
        return None
    address = event.address.strip()
    if _PLAIN_ADDRESS.match(address) and "xn--" not in address.lower():
        local, _, domain = address.rpartition("@")
        return hashlib.sha256(f"{local.casefold()}@{domain.lower()}".encode()).hexdigest()
    try:
        return address_hash(address)
    except InvalidAddress:
        return None


def _resolve(session: Session, events: Sequence[FeedbackEvent],
             summary: RecordSummary) -> list[_Resolved]:
    """Who each event is about. A delivery counts only when its subscriber's address and its
    provider message id (when both sides know one) agree with the event."""
    keys = {id(e): _address_key(e) for e in events}
    delivery_ids = {e.delivery_id for e in events if e.delivery_id is not None}
    deliveries: dict[int, tuple[int, int, str | None, str]] = {}
    if delivery_ids:
        rows = session.execute(
            select(Delivery.id, Delivery.edition_id, Delivery.subscriber_id,
                   Delivery.provider_message_id, Subscriber.email_hash)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.id.in_(delivery_ids)))
        deliveries = {d: (edition, sub, pmid, key) for d, edition, sub, pmid, key in rows}
    hashes = {k for k in keys.values() if k is not None}
    by_hash: dict[str, int] = {}
    if hashes:
        by_hash = dict(session.execute(select(Subscriber.email_hash, Subscriber.id)
                                       .where(Subscriber.email_hash.in_(hashes))).all())
    resolved = []
    for event in events:
        key = keys[id(event)]
        found = deliveries.get(event.delivery_id) if event.delivery_id is not None else None
        if found is not None and _agrees(event, key, found[2], found[3]):
            resolved.append(_Resolved(event, found[1], Match.DELIVERY, event.delivery_id, found[0], key))
        elif key is not None and key in by_hash and event.kind in BY_ADDRESS:
            resolved.append(_Resolved(event, by_hash[key], Match.ADDRESS, None, None, key))
            summary.unmatched += 1
        else:
            summary.unknown_recipient += 1
            log.info("%s event %s (%s) names no delivery or subscriber we hold: not stored",
                     event.source.value, event.event_key, event.kind.value)
    return resolved


def _agrees(event: FeedbackEvent, key: str | None, message_id: str | None, subscriber_key: str) -> bool:
    if event.address is not None and key != subscriber_key:
        return False
    return not (event.provider_message_id and message_id
                and event.provider_message_id != message_id)


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(EVENTS).on_conflict_do_nothing(
        index_elements=["source", "event_key"])


def _store(session: Session, resolved: Sequence[_Resolved],
           now: datetime) -> list[tuple[int, _Resolved]]:
    """(row id, event) for each event not stored before; the others were delivered already."""
    rows = {}
    for r in resolved:
        e = r.event
        rows[(e.source.value, e.event_key)] = {
            "source": e.source, "event_key": e.event_key, "kind": e.kind,
            "occurred_at": e.occurred_at, "received_at": now, "subscriber_id": r.subscriber_id,
            "delivery_id": r.delivery_id, "edition_id": r.edition_id, "matched_by": r.match,
            "effect": Effect.NONE, "address_hash": r.address_hash,
            "provider_message_id": e.provider_message_id, "reason": mask_addresses(e.reason),
            "payload": stored_payload(e.payload)}
    by_key = {(r.event.source.value, r.event.event_key): r for r in resolved}
    inserted = session.connection().execute(
        _insert(session).returning(EVENTS.c.id, EVENTS.c.source, EVENTS.c.event_key),
        list(rows.values())).all()
    fresh = [(row_id, by_key[(str(source), key)]) for row_id, source, key in inserted]
    return sorted(fresh, key=lambda f: (f[1].event.occurred_at, f[0]))


@dataclass
class _Person:
    """A locked subscriber as the effects need it, written back in one statement per kind."""

    id: int
    email: str
    email_hash: str
    status: SubscriberStatus
    unsubscribed_at: datetime | None
    was: SubscriberStatus


def _act(session: Session, fresh: Sequence[tuple[int, _Resolved]], now: datetime) -> dict[int, Effect]:
    """The effect of each new event that may act (by row id), applied to subscribers locked in
    id order; deliveries, deferrals and drops are only stored."""
    fresh = [(row_id, r) for row_id, r in fresh if r.event.kind in ACTS]
    if not fresh:
        return {}
    people = _lock(session, sorted({r.subscriber_id for _, r in fresh}))
    suppressed = set(session.scalars(select(Suppression.email_hash).where(
        Suppression.email_hash.in_({p.email_hash for p in people.values()}))))
    effects: dict[int, Effect] = {}
    soft: dict[int, list[int]] = defaultdict(list)
    new_suppressions: dict[str, dict[str, Any]] = {}
    for row_id, r in fresh:
        person, kind = people[r.subscriber_id], r.event.kind
        effects[row_id] = Effect.NONE
        if kind in SUPPRESSES:
            reason, status = SUPPRESSES[kind]
            _suppress(person, reason, r.event.reason, suppressed, new_suppressions)
            person.status = forward_status(person.status, status)
            effects[row_id] = Effect.SUPPRESSED
        elif kind is EventKind.UNSUBSCRIBE and unsubscribe_subscriber(person) is Unsubscribed.NOW:
            effects[row_id] = Effect.UNSUBSCRIBED
        elif kind is EventKind.BOUNCE_SOFT and r.match is Match.DELIVERY:
            soft[person.id].append(row_id)
            effects[row_id] = Effect.SOFT_COUNTED
    if soft:
        for subscriber_id in _streaks_reached(session, soft, now):
            person = people[subscriber_id]
            _suppress(person, "soft-bounce", f"soft bounces on {SOFT_BOUNCE_LIMIT} deliveries "
                      "in a row", suppressed, new_suppressions)
            person.status = forward_status(person.status, SubscriberStatus.BOUNCED)
            effects[max(soft[subscriber_id])] = Effect.SUPPRESSED
    _write(session, people.values(), new_suppressions.values(), now)
    return effects


def _lock(session: Session, ids: list[int]) -> dict[int, _Person]:
    rows = session.execute(select(Subscriber.id, Subscriber.email, Subscriber.email_hash,
                                  Subscriber.status, Subscriber.unsubscribed_at)
                           .where(Subscriber.id.in_(ids)).order_by(Subscriber.id).with_for_update())
    return {i: _Person(i, email, key, status, left, status) for i, email, key, status, left in rows}


def _suppress(person: _Person, reason: str, detail: str, suppressed: set[str],
              new: dict[str, dict[str, Any]]) -> None:
    if person.email_hash in suppressed:
        return
    new[person.email_hash] = {"email_hash": person.email_hash, "email": person.email,
                              "reason": reason, "detail": mask_addresses(detail)[:1000]}
    suppressed.add(person.email_hash)


def _write(session: Session, people: Iterable[_Person], suppressions: Iterable[dict[str, Any]],
           now: datetime) -> None:
    connection = session.connection()
    changed = [{"b_id": p.id, "b_status": p.status, "b_left": p.unsubscribed_at, "b_now": now}
               for p in people if p.status is not p.was]
    if changed:
        table: Any = Subscriber.__table__
        connection.execute(update(table).where(table.c.id == bindparam("b_id")).values(
            status=bindparam("b_status"), unsubscribed_at=bindparam("b_left"),
            updated_at=bindparam("b_now")), changed)
    rows = [{**s, "created_at": now} for s in suppressions]
    if rows:
        connection.execute(insert(Suppression), rows)


def _streaks_reached(session: Session, soft: dict[int, list[int]], now: datetime) -> list[int]:
    """Subscribers whose soft bounces now reach the limit: one query for all of them."""
    seen: dict[int, list[Sighting]] = defaultdict(list)
    for subscriber_id, kind, delivery_id, occurred_at in session.execute(
            select(FeedbackEventRow.subscriber_id, FeedbackEventRow.kind,
                   FeedbackEventRow.delivery_id, FeedbackEventRow.occurred_at)
            .where(FeedbackEventRow.subscriber_id.in_(soft),
                   FeedbackEventRow.kind.in_((EventKind.BOUNCE_SOFT, EventKind.DELIVERED)),
                   FeedbackEventRow.occurred_at >= now - SOFT_BOUNCE_DECAY)):
        if subscriber_id is not None:
            seen[subscriber_id].append(Sighting(kind, delivery_id, occurred_at))
    return sorted(s for s, sightings in seen.items()
                  if soft_bounce_streak(sightings, now) >= SOFT_BOUNCE_LIMIT)


def _mark(session: Session, effects: dict[int, Effect]) -> None:
    changed = [{"id": row_id, "effect": effect} for row_id, effect in effects.items()
               if effect is not Effect.NONE]
    if changed:
        session.execute(update(FeedbackEventRow), changed)
