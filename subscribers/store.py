"""Reading and writing the audience. Everything that touches subscriber rows goes through here."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, exists, select
from sqlalchemy.orm import Session

from newsletter.db import utcnow
from newsletter.db.models import Topic
from newsletter.errors import ContentError

from .addresses import address_hash, normalise_email
from .csv_io import SubscriberRow
from .models import ConsentMethod, Subscriber, SubscriberStatus, Suppression, subscriber_topics

INACTIVE = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)


@dataclass(frozen=True)
class Recipient:
    """What the send loop needs about one subscriber, and nothing else."""

    id: int
    uid: str
    email: str
    name: str
    topics: frozenset[str] | None


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    resubscribed: int = 0
    """Rows that brought back someone who had left or was suppressed (only with force_resubscribe)."""
    skipped: dict[str, list[int]] = field(default_factory=dict)

    def skip(self, reason: str, line: int) -> None:
        self.skipped.setdefault(reason, []).append(line)


def _topics_by_slug(session: Session, slugs: Collection[str]) -> list[Topic]:
    found = list(session.scalars(select(Topic).where(Topic.slug.in_(slugs)).order_by(Topic.position)))
    missing = set(slugs) - {t.slug for t in found}
    if missing:
        raise ContentError(f"unknown topic(s): {', '.join(sorted(missing))}", field="topics")
    return found


def set_topics(session: Session, subscriber: Subscriber, slugs: frozenset[str] | None) -> None:
    subscriber.all_topics = slugs is None
    subscriber.topics = [] if slugs is None else _topics_by_slug(session, slugs)


def find(session: Session, email: str) -> Subscriber | None:
    return session.scalar(select(Subscriber).where(
        Subscriber.email_hash == address_hash(normalise_email(email))))


def find_by_uid(session: Session, uid: str) -> Subscriber | None:
    """The subscriber a signed link was made for (links carry the public uid, never a row id)."""
    return session.scalar(select(Subscriber).where(Subscriber.uid == uid))


def is_suppressed(session: Session, email_hash: str) -> bool:
    return bool(session.scalar(select(exists().where(Suppression.email_hash == email_hash))))


def add_subscriber(session: Session, email: str, *, name: str = "",
                   topics: frozenset[str] | None = None, method: ConsentMethod = ConsentMethod.ADMIN,
                   source: str = "", status: SubscriberStatus = SubscriberStatus.ACTIVE) -> Subscriber:
    """Create (or update the name and topics of) a subscriber recorded with how they consented."""
    normalised = normalise_email(email)
    key = address_hash(normalised)
    if is_suppressed(session, key):
        raise ContentError(f"{normalised} is suppressed and cannot be added", field="email")
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email_hash == key))
    now = utcnow()
    if subscriber is None:
        subscriber = Subscriber(email=normalised, email_hash=key, consent_method=method,
                                consent_source=source, consent_at=now, status=status,
                                confirmed_at=now if status is SubscriberStatus.ACTIVE else None)
        session.add(subscriber)
    subscriber.name = name or subscriber.name
    set_topics(session, subscriber, topics)
    session.flush()
    return subscriber


def _row_changes(subscriber: Subscriber, row: SubscriberRow) -> bool:
    return subscriber.name != row.name or subscriber.topic_slugs != row.topics


def import_rows(session: Session, rows: Sequence[SubscriberRow], source: str, *,
                force_resubscribe: bool = False) -> ImportReport:
    """Add new rows, update changed ones, never revive anyone who left or is suppressed.

    `force_resubscribe` is the exception, for a list whose owner has fresh consent: suppressed
    addresses (bounces, complaints, erasures) are released and everyone in the file becomes
    active again, counted as `resubscribed`.
    """
    report = ImportReport()
    for row in rows:
        key = address_hash(row.email)
        if is_suppressed(session, key):
            if not force_resubscribe:
                report.skip("suppressed", row.line)
                continue
            unsuppress(session, row.email)
            report.resubscribed += 1
            _import_resubscribe(session, row, source, key)
            continue
        subscriber = session.scalar(select(Subscriber).where(Subscriber.email_hash == key))
        if subscriber is not None and subscriber.status in INACTIVE:
            if force_resubscribe:
                report.resubscribed += 1
                _import_resubscribe(session, row, source, key)
            else:
                report.skip(f"already {subscriber.status.value}", row.line)
        elif subscriber is None:
            add_subscriber(session, row.email, name=row.name, topics=row.topics,
                           method=ConsentMethod.IMPORT, source=source)
            report.added += 1
        elif _row_changes(subscriber, row):
            subscriber.name = row.name
            set_topics(session, subscriber, row.topics)
            report.updated += 1
        else:
            report.unchanged += 1
    session.flush()
    return report


def _import_resubscribe(session: Session, row: SubscriberRow, source: str, key: str) -> None:
    """Active again and receiving (a fresh consent ends an old pause), with the import recorded
    as the new consent."""
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email_hash == key))
    if subscriber is None:
        add_subscriber(session, row.email, name=row.name, topics=row.topics,
                       method=ConsentMethod.IMPORT, source=source)
        return
    now = utcnow()
    subscriber.status, subscriber.unsubscribed_at = SubscriberStatus.ACTIVE, None
    subscriber.paused_at = None
    subscriber.consent_method, subscriber.consent_source = ConsentMethod.IMPORT, source[:500]
    subscriber.consent_at = subscriber.confirmed_at = now
    subscriber.consent_ip_hash = None
    subscriber.name = row.name or subscriber.name
    set_topics(session, subscriber, row.topics)


def list_subscribers(session: Session, status: SubscriberStatus | None = None) -> list[Subscriber]:
    query = select(Subscriber).order_by(Subscriber.id)
    if status is not None:
        query = query.where(Subscriber.status == status)
    return list(session.scalars(query))


def chosen_topics(session: Session, ids: list[int]) -> dict[int, set[str]]:
    chosen: dict[int, set[str]] = {}
    rows = session.execute(
        select(subscriber_topics.c.subscriber_id, Topic.slug)
        .join(Topic, Topic.id == subscriber_topics.c.topic_id)
        .where(subscriber_topics.c.subscriber_id.in_(ids)))
    for subscriber_id, slug in rows:
        chosen.setdefault(subscriber_id, set()).add(slug)
    return chosen


def receives_mail() -> ColumnElement[bool]:
    """Active, not paused, not suppressed: who an edition may go to, at planning and at claim."""
    return and_(Subscriber.status == SubscriberStatus.ACTIVE, Subscriber.paused_at.is_(None),
                ~exists().where(Suppression.email_hash == Subscriber.email_hash))


def iter_audience(session: Session, chunk_size: int = 2000) -> Iterator[list[Recipient]]:
    """Active, unpaused, unsuppressed subscribers in id order, a chunk at a time (keyset
    pagination). Pause is a plain column test on the row already read: no join, no extra index."""
    last_id = 0
    while True:
        rows = session.execute(
            select(Subscriber.id, Subscriber.uid, Subscriber.email, Subscriber.name,
                   Subscriber.all_topics)
            .where(Subscriber.id > last_id, receives_mail())
            .order_by(Subscriber.id).limit(chunk_size)).all()
        if not rows:
            return
        chosen = chosen_topics(session, [r.id for r in rows if not r.all_topics])
        yield [Recipient(r.id, r.uid, r.email, r.name,
                         None if r.all_topics else frozenset(chosen.get(r.id, ())))
               for r in rows]
        last_id = rows[-1].id


def suppress(session: Session, email: str, reason: str, detail: str = "",
             status: SubscriberStatus | None = None) -> None:
    """Never mail this address again; optionally record why on the subscriber too."""
    key = address_hash(email)
    if not is_suppressed(session, key):
        session.add(Suppression(email_hash=key, email=email, reason=reason, detail=detail[:1000]))
    if status is not None:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.email_hash == key))
        if subscriber is not None:
            subscriber.status = status
    session.flush()


def find_suppression(session: Session, email: str) -> Suppression | None:
    return session.scalar(select(Suppression).where(Suppression.email_hash == address_hash(email)))


def unsuppress(session: Session, email: str) -> str | None:
    """Allow this address to be mailed again; the reason it was suppressed, or None if it was not.

    The subscriber's own status is left as it is: a bounced or unsubscribed person stays so.
    """
    suppression = find_suppression(session, email)
    if suppression is None:
        return None
    session.delete(suppression)
    session.flush()
    return suppression.reason


def purge_unconfirmed(session: Session, cutoff: datetime) -> int:
    """Delete unconfirmed subscribers not touched since `cutoff`; how many went."""
    result = session.execute(delete(Subscriber).where(
        Subscriber.status == SubscriberStatus.UNCONFIRMED, Subscriber.updated_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
