"""Read-only views of a send: the dry-run plan and the ledger's answer to "who received it"."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

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


def edition_status(nl: Newsletter, month: str) -> dict[str, Any]:
    """Counts, every delivery, the ones needing attention and the last run's throughput.

    Read-only: rows still in flight under a run that is no longer alive (a crash) are shown as
    uncertain, which is what the next `send` will record them as.
    """
    with nl.session() as session:
        edition = get_edition(session, month)
        live = ledger.live_run_ids(session, edition.id, utcnow())
        rows = session.execute(
            select(Delivery, Subscriber.email).join(Subscriber)
            .where(Delivery.edition_id == edition.id).order_by(Delivery.id)).all()
        deliveries = [_delivery(d, email, live) for d, email in rows]
        counts = ledger.status_counts(session, edition.id)
        orphaned = sum(1 for d, _ in rows if _orphaned(d, live))
        counts["in_flight"] -= orphaned
        counts["uncertain"] += orphaned
        run = ledger.last_run(session, edition.id)
        return {
            "month": month, "edition_status": edition.status.value,
            "sent_at": _iso(edition.sent_at), "counts": counts,
            "last_run": None if run is None else {
                "started_at": _iso(run.started_at), "ended_at": _iso(run.ended_at),
                "finished": run.finished, "sent": run.sent, "seconds": round(run.seconds, 3),
                "per_second": round(run.rate, 1)},
            "attention": [d for d in deliveries if d["status"] in _ATTENTION],
            "deliveries": deliveries,
        }


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
