"""What the store holds about one person, and erasing it: the GDPR's access and erasure answers.

It reads the subscriber record and the ledger, so it sits above both `subscribers` and `sending`.
Erasure keeps only the address's hash, as a suppression, so that no import or signup brings the
person back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from subscribers import store
from subscribers.addresses import address_hash
from subscribers.flows import parse_address
from subscribers.models import Subscriber, Suppression

from .content.models import Edition
from .context import Newsletter
from .sending.models import Delivery

__all__ = ["describe", "erase"]


def erase(nl: Newsletter, email: str) -> bool:
    """Delete everything held about the address except its hash, kept as a suppression so that
    no import or signup brings it back. True if there was a subscriber record."""
    address = parse_address(email)
    with nl.session() as session:
        subscriber = store.find(session, address)
        if subscriber is not None:
            session.delete(subscriber)  # topics and ledger rows go with it (ON DELETE CASCADE)
        suppression = store.find_suppression(session, address)
        if suppression is None:
            session.add(Suppression(email_hash=address_hash(address), email=None, reason="erased"))
        else:
            suppression.email, suppression.detail = None, ""
        return subscriber is not None


def describe(nl: Newsletter, email: str) -> dict[str, Any] | None:
    """Everything held about the address (a subject access answer), or None if nothing."""
    address = parse_address(email)
    with nl.session() as session:
        subscriber = store.find(session, address)
        suppression = store.find_suppression(session, address)
        if subscriber is None and suppression is None:
            return None
        return {"email": address,
                "subscriber": None if subscriber is None else _record(session, subscriber),
                "suppression": None if suppression is None else {
                    "reason": suppression.reason, "detail": suppression.detail,
                    "email_kept": suppression.email is not None,
                    "created_at": suppression.created_at}}


def _record(session: Session, s: Subscriber) -> dict[str, Any]:
    deliveries: Iterable[Any] = session.execute(
        select(Edition.month, Delivery.status, Delivery.sent_at, Delivery.attempts)
        .join(Edition, Edition.id == Delivery.edition_id)
        .where(Delivery.subscriber_id == s.id).order_by(Edition.month))
    return {"uid": s.uid, "email": s.email, "name": s.name, "status": s.status.value,
            "topics": None if s.all_topics else sorted(t.slug for t in s.topics),
            "language": s.language,
            "consent": {"method": s.consent_method.value, "at": s.consent_at,
                        "source": s.consent_source, "client_address_hash": s.consent_ip_hash},
            "confirmed_at": s.confirmed_at, "unsubscribed_at": s.unsubscribed_at,
            "paused_at": s.paused_at, "created_at": s.created_at, "updated_at": s.updated_at,
            "deliveries": [{"edition": month, "status": status.value, "sent_at": sent_at,
                            "attempts": attempts}
                           for month, status, sent_at, attempts in deliveries]}
