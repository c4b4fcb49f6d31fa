"""What the store holds about one person, and erasing it: the GDPR's access and erasure answers.

It reads the subscriber record and the ledger, so it sits above both `subscribers` and `sending`.
Erasure keeps only the address's hash, as a suppression, so that no import or signup brings the
person back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from subscribers import store
from subscribers.addresses import address_hash
from subscribers.flows import parse_address
from subscribers.models import Subscriber, Suppression

from .content.models import Edition
from .context import Newsletter
from .editors import audit
from .sending.models import Delivery

__all__ = ["describe", "describe_in", "erase", "erase_in"]


def erase(nl: Newsletter, email: str, *, actor: str = "cli", client: str = audit.CLI_CLIENT) -> bool:
    """Delete everything held about the address except its hash, kept as a suppression so that
    no import or signup brings it back. True if there was a subscriber record."""
    with nl.session() as session:
        return erase_in(session, email, actor=actor, client=client)


def erase_in(session: Session, email: str, *, actor: str, client: str = audit.CLI_CLIENT) -> bool:
    """`erase` in the caller's unit of work (the console's), audited as `subscriber.erase` with
    the address's hash only: the log must not keep what the erasure removed."""
    address = parse_address(email)
    subscriber = store.find(session, address)
    if subscriber is not None:
        session.delete(subscriber)  # topics and ledger rows go with it (ON DELETE CASCADE)
    suppression = store.find_suppression(session, address)
    if suppression is None:
        session.add(Suppression(email_hash=address_hash(address), email=None, reason="erased"))
    else:
        suppression.email, suppression.detail = None, ""
    audit.record(session, "subscriber.erase", actor=actor, client=client,
                 detail={"address_hash": address_hash(address), "had_record": subscriber is not None})
    session.flush()
    return subscriber is not None


def describe(nl: Newsletter, email: str) -> dict[str, Any] | None:
    """Everything held about the address (a subject access answer), or None if nothing."""
    with nl.session() as session:
        return describe_in(session, email)


def describe_in(session: Session, email: str, *,
                last_deliveries: int | None = None) -> dict[str, Any] | None:
    """`describe` in the caller's unit of work; `last_deliveries` keeps only the newest N
    editions (the console's page), with `deliveries_total` counting them all."""
    address = parse_address(email)
    subscriber = store.find(session, address)
    suppression = store.find_suppression(session, address)
    if subscriber is None and suppression is None:
        return None
    return {"email": address,
            "subscriber": None if subscriber is None else _record(session, subscriber,
                                                                  last_deliveries),
            "suppression": None if suppression is None else {
                "reason": suppression.reason, "detail": suppression.detail,
                "email_kept": suppression.email is not None,
                "created_at": suppression.created_at}}


def _record(session: Session, s: Subscriber, last: int | None = None) -> dict[str, Any]:
    query = (select(Edition.month, Delivery.status, Delivery.sent_at, Delivery.attempts,
                    Delivery.last_error)
             .join(Edition, Edition.id == Delivery.edition_id)
             .where(Delivery.subscriber_id == s.id).order_by(Edition.month.desc()))
    deliveries: list[Any] = list(session.execute(query if last is None else query.limit(last)))
    deliveries.reverse()  # oldest first, as ever
    total = len(deliveries) if last is None else session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.subscriber_id == s.id))
    return {"uid": s.uid, "email": s.email, "name": s.name, "status": s.status.value,
            "topics": None if s.all_topics else sorted(t.slug for t in s.topics),
            "language": s.language,
            "consent": {"method": s.consent_method.value, "at": s.consent_at,
                        "source": s.consent_source, "client_address_hash": s.consent_ip_hash},
            "confirmed_at": s.confirmed_at, "unsubscribed_at": s.unsubscribed_at,
            "paused_at": s.paused_at, "created_at": s.created_at, "updated_at": s.updated_at,
            "deliveries": [{"edition": month, "status": status.value, "sent_at": sent_at,
                            "attempts": attempts, "reason": error}
                           for month, status, sent_at, attempts, error in deliveries],
            "deliveries_total": total}
