"""Read-only views of a send: the dry-run plan and the ledger's answer to "who received it"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from subscribers.models import Subscriber
from subscribers.store import iter_audience

from ..content.store import edition_content, get_edition
from ..context import Newsletter
from . import ledger
from .models import Delivery
from .plan import PlanCounts, parse_variant_key, variant_for, variant_key


@dataclass
class DryRun(PlanCounts):
    variants: list[tuple[str, list[str], int]] = field(default_factory=list)


def plan_without_sending(nl: Newsletter, month: str) -> DryRun:
    """Plan without writing anything: recipients per variant, with the headlines each gets."""
    plan = DryRun()
    with nl.session() as session:
        edition = edition_content(get_edition(session, month))
        for chunk in iter_audience(session):
            plan.add(variant_key(variant_for(edition, r.topics)) for r in chunk)
    headline = {item.id: item.headline for item in edition.items}
    plan.variants = [(key, [headline[i] for i in parse_variant_key(key)], count)
                     for key, count in plan.by_variant.most_common()]
    return plan


def edition_status(nl: Newsletter, month: str) -> dict[str, Any]:
    with nl.session() as session:
        edition = get_edition(session, month)
        rows = session.execute(
            select(Delivery, Subscriber.email).join(Subscriber)
            .where(Delivery.edition_id == edition.id).order_by(Delivery.id)).all()
        return {
            "month": month, "edition_status": edition.status.value,
            "sent_at": edition.sent_at.isoformat() if edition.sent_at else None,
            "counts": ledger.status_counts(session, edition.id),
            "deliveries": [{
                "email": email, "status": d.status.value, "variant": d.variant,
                "attempts": d.attempts,
                "sent_at": d.sent_at.isoformat() if d.sent_at else None,
                "updated_at": d.updated_at.isoformat(), "last_error": d.last_error,
                "provider_message_id": d.provider_message_id} for d, email in rows],
        }
