"""Read-only views of a send: the dry-run plan and the ledger's answer to "who received it"."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.orm import Session

from subscribers.models import Subscriber

from ..content.store import edition_content, get_edition
from ..content.variants import parse_variant_key
from ..context import Newsletter
from ..db import utcnow
from . import ledger
from .models import Delivery, DeliveryStatus
from .plan import PlanCounts
from .planner import count_variants


@dataclass
class DryRun(PlanCounts):
    variants: list[tuple[str, list[str], int]] = field(default_factory=list)


def plan_without_sending(nl: Newsletter, month: str) -> DryRun:
    """Plan without writing anything: recipients per variant, with the headlines each gets;
    counted by the SQL that `send` plans with."""
    with nl.session() as session:
        edition = edition_content(get_edition(session, month))
        counts = count_variants(session, edition)
    plan = DryRun(counts.by_variant, counts.no_match)
    headline = {item.id: item.headline for item in edition.items}
    plan.variants = [(key, [headline[i] for i in parse_variant_key(key)], count)
                     for key, count in plan.by_variant.most_common()]
    return plan


def edition_status(nl: Newsletter, month: str, *, deliveries: bool = True, rejected: bool = False,
                   attention_offset: int = 0, attention_limit: int | None = None) -> dict[str, Any]:
    """Counts, every delivery, the ones needing attention and the last run's throughput.

    Read-only: rows still in flight under a run that is no longer alive (a crash) are shown as
    uncertain, which is what the next `send` will record them as. Without `deliveries` the list of
    every delivery is left out and the attention list is one page (`attention_offset`,
    `attention_limit`; `attention_total` counts them all): what a page at 100 000 rows can show.
    With `rejected` the attention list also has the rejected rows (the console's report lists
    every recipient who did not get it, with the reason).
    """
    with nl.session() as session:
        edition = get_edition(session, month)
        live = ledger.live_run_ids(session, edition.id, utcnow())
        counts = ledger.status_counts(session, edition.id)
        orphaned = _orphaned_count(session, edition.id, live, counts)
        counts["in_flight"] -= orphaned
        counts["uncertain"] += orphaned
        wanted = (*_ATTENTION, DeliveryStatus.REJECTED.value) if rejected else _ATTENTION
        # One IN over the status, so the (edition, status, id) index answers it (ids only);
        # live runs' rows in flight are taken out; then the page's rows are read.
        page = select(Delivery.id).where(
            Delivery.edition_id == edition.id,
            Delivery.status.in_((*wanted, DeliveryStatus.IN_FLIGHT.value)))
        if live:
            page = page.where(_orphaned_sql(live) | (Delivery.status != DeliveryStatus.IN_FLIGHT))
        ids = page.order_by(Delivery.id).offset(attention_offset).limit(attention_limit)
        attention = (select(Delivery, Subscriber.email).join(Subscriber)
                     .where(Delivery.id.in_(ids.scalar_subquery())).order_by(Delivery.id))
        document: dict[str, Any] = {
            "month": month, "edition_status": edition.status.value,
            "sent_at": _iso(edition.sent_at), "counts": counts,
            "last_run": _run(ledger.last_run(session, edition.id)),
            "attention": [_delivery(d, email, live) for d, email in session.execute(attention)],
            "attention_total": sum(counts[status] for status in wanted),
        }
        if deliveries:
            rows = session.execute(
                select(Delivery, Subscriber.email).join(Subscriber)
                .where(Delivery.edition_id == edition.id).order_by(Delivery.id))
            document["deliveries"] = [_delivery(d, email, live) for d, email in rows]
        return document


def _run(run: ledger.RunSummary | None) -> dict[str, Any] | None:
    return None if run is None else {
        "started_at": _iso(run.started_at), "ended_at": _iso(run.ended_at),
        "finished": run.finished, "sent": run.sent, "seconds": round(run.seconds, 3),
        "per_second": round(run.rate, 1)}


def _orphaned_count(session: Session, edition_id: int, live: set[str],
                    counts: dict[str, int]) -> int:
    """Rows in flight under a run that is not alive; with no live run, every row in flight."""
    if not live:
        return counts["in_flight"]
    return session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.edition_id == edition_id, _orphaned_sql(live))) or 0


def _orphaned_sql(live: set[str]) -> ColumnElement[bool]:
    """In flight under a run that is not alive: what `_orphaned` says of one row, in SQL."""
    return and_(Delivery.status == DeliveryStatus.IN_FLIGHT,
                or_(Delivery.run_id.is_(None), Delivery.run_id.not_in(live)) if live
                else true())


def live_counts(nl: Newsletter, month: str, now: datetime | None = None, *,
                window: float = 60.0) -> dict[str, Any]:
    """What a watched send shows, from grouped counts only: the ledger's counts (dead runs'
    in-flight rows as uncertain), messages per second over the last `window` seconds (or since
    the first send, if later), the seconds left at that rate (None when unknown), the first and
    last send, and whether the send is over (nothing pending or in flight and no live run)."""
    now = now or utcnow()
    with nl.session() as session:
        edition = get_edition(session, month)
        live = ledger.live_run_ids(session, edition.id, now)
        counts = ledger.status_counts(session, edition.id)
        orphaned = _orphaned_count(session, edition.id, live, counts)
        counts["in_flight"] -= orphaned
        counts["uncertain"] += orphaned
        recent = session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.edition_id == edition.id, Delivery.status == DeliveryStatus.SENT,
            Delivery.sent_at >= now - timedelta(seconds=window))) or 0
        first, last = _first_and_last(session, edition.id)
        status = edition.status.value
    if first is not None:  # a send younger than the window: its rate over its own age
        window = min(window, max((now - first).total_seconds(), 1.0))
    rate = recent / window
    left = counts["pending"] + counts["in_flight"] + counts["failed"]
    return {"month": month, "edition_status": status, "counts": counts, "per_second": rate,
            "eta_seconds": round(left / rate) if rate and left else (0 if not left else None),
            "first_sent": first, "last_sent": last, "live_runs": len(live),
            "finished": not live and status in _OVER}


_OVER = ("sent", "cancelled", "missed")
"""Edition states in which nothing more happens to a send without the editor (stop watching)."""


def first_and_last_sent(nl: Newsletter, month: str) -> tuple[datetime | None, datetime | None]:
    """When the edition's first and its latest message went out (None: none yet)."""
    with nl.session() as session:
        return _first_and_last(session, get_edition(session, month).id)


def _first_and_last(session: Session, edition_id: int) -> tuple[datetime | None, datetime | None]:
    sent = (Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.SENT,
            Delivery.sent_at.is_not(None))
    # Apart: SQLite answers a lone min() or max() from the end of the (edition, status, sent_at)
    # index, partial on sent_at IS NOT NULL, but not the pair.
    first = session.scalar(select(func.min(Delivery.sent_at)).where(*sent))
    last = session.scalar(select(func.max(Delivery.sent_at)).where(*sent))
    return _aware(first), _aware(last)


def _aware(when: datetime | None) -> datetime | None:
    """min()/max() bypass the column type: SQLite gives back text or a naive UTC time."""
    if when is None:
        return None
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


_ATTENTION = (DeliveryStatus.UNCERTAIN.value, DeliveryStatus.FAILED.value)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _orphaned(d: Delivery, live: set[str]) -> bool:
    return d.status is DeliveryStatus.IN_FLIGHT and d.run_id not in live


def _delivery(d: Delivery, email: str, live: set[str]) -> dict[str, Any]:
    orphaned = _orphaned(d, live)
    return {
        "email": email, "status": "uncertain" if orphaned else d.status.value,
        "variant": d.variant, "attempts": d.attempts, "sent_at": _iso(d.sent_at),
        "updated_at": _iso(d.updated_at),
        "last_error": ledger.ORPHANED if orphaned else d.last_error,
        "next_attempt_at": _iso(d.next_attempt_at) if d.status is DeliveryStatus.FAILED else None,
        "provider_message_id": d.provider_message_id}
