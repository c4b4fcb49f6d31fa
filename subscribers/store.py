"""Reading and writing the audience. Everything that touches subscriber rows goes through here."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import (
    ColumnElement,
    String,
    Table,
    Text,
    and_,
    bindparam,
    column,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from newsletter.db import utcnow
from newsletter.db.models import Topic
from newsletter.db.sql import one_of
from newsletter.db.types import new_uid
from newsletter.errors import ContentError
from newsletter.i18n import DEFAULT_LANGUAGE

from .addresses import address_hash, normalise_email, normalised_hash
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
    language: str = DEFAULT_LANGUAGE


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


IMPORT_BATCH = 1000
"""Rows looked up and written per round trip: far below SQLite's limit on bound parameters."""

ImportProgress = Callable[[int, int], None]
_SUBSCRIBERS = cast(Table, Subscriber.__table__)
"""The bulk writes use Core: the ORM's per-object work is most of an import's cost."""


@dataclass
class _Known:
    """A subscriber as an import sees them: read once per batch, then kept current in memory, so
    a second row for the same address meets the first one's outcome, as it would row by row."""

    id: int | None
    status: SubscriberStatus
    name: str
    topics: frozenset[str] | None
    language: str
    write: str = ""
    """What the batch's write owes this row: "add", "resubscribe", "update" or nothing."""


def import_rows(session: Session, rows: Sequence[SubscriberRow], source: str, *,
                force_resubscribe: bool = False, progress: ImportProgress | None = None,
                dry_run: bool = False) -> ImportReport:
    """Add new rows, update changed ones, never revive anyone who left or is suppressed.

    `force_resubscribe` is the exception, for a list whose owner has fresh consent: suppressed
    addresses (bounces, complaints, erasures) are released and everyone in the file becomes
    active again, counted as `resubscribed`. Rows carry addresses `normalise_email` already
    gave (`parse_subscriber_csv` does), so nothing is validated twice. Work goes a batch at a
    time: one lookup of suppressions, one of subscribers, one of their topics, bulk writes.
    `dry_run` decides every row exactly so (the same report) and writes nothing.
    """
    report = ImportReport()
    session.flush()
    _index_lookups_only(session)
    for start in range(0, len(rows), IMPORT_BATCH):
        batch = rows[start:start + IMPORT_BATCH]
        keys = [normalised_hash(row.email) for row in batch]
        known, suppressed = _read_batch(session, keys)
        released = _decide(batch, keys, known, suppressed, force_resubscribe, report)
        if not dry_run:
            _write_batch(session, batch, keys, known, released, source)
        if progress is not None:
            progress(start + len(batch), len(rows))
    session.expire_all()  # the bulk writes went round the ORM: reload anything it holds
    return report


def _index_lookups_only(session: Session) -> None:
    """Every lookup of an import goes through a unique index (a batch of hashes or ids), but
    PostgreSQL plans them with the statistics of before the import, and the table grows inside
    this one transaction: it picked sequential scans, and 100 000 rows imported at 2 100 rows/s
    (a re-import at 490). For this transaction only, it uses the indexes: 9 700 and 17 800."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SET LOCAL enable_seqscan = off"))


def _read_batch(session: Session, keys: list[str]) -> tuple[dict[str, _Known], set[str]]:
    suppressed = set(session.scalars(select(Suppression.email_hash)
                                     .where(one_of(session, Suppression.email_hash, keys))))
    found = session.execute(select(Subscriber.id, Subscriber.email_hash, Subscriber.status,
                                   Subscriber.name, Subscriber.all_topics, Subscriber.language)
                            .where(one_of(session, Subscriber.email_hash, keys))).all()
    partial = [r.id for r in found if not r.all_topics]
    chosen = chosen_topics(session, partial) if partial else {}
    known = {r.email_hash: _Known(r.id, r.status, r.name,
                                  None if r.all_topics else frozenset(chosen.get(r.id, ())),
                                  r.language) for r in found}
    return known, suppressed


def _decide(batch: Sequence[SubscriberRow], keys: list[str], known: dict[str, _Known],
            suppressed: set[str], force: bool, report: ImportReport) -> set[str]:
    """Each row's outcome, in file order, into `report` and `known`; the suppressions released."""
    released: set[str] = set()
    for row, key in zip(batch, keys, strict=True):
        if key in suppressed:
            if not force:
                report.skip("suppressed", row.line)
                continue
            suppressed.discard(key)
            released.add(key)
            report.resubscribed += 1
            _resubscribe(known, key, row)
            continue
        subscriber = known.get(key)
        if subscriber is not None and subscriber.status in INACTIVE:
            if force:
                report.resubscribed += 1
                _resubscribe(known, key, row)
            else:
                report.skip(f"already {subscriber.status.value}", row.line)
        elif subscriber is None:
            known[key] = _new(row)
            report.added += 1
        elif _row_changes(subscriber, row):
            subscriber.name, subscriber.topics = row.name, row.topics
            subscriber.language = row.language or subscriber.language
            subscriber.write = subscriber.write or "update"
            report.updated += 1
        else:
            report.unchanged += 1
    return released


def _new(row: SubscriberRow) -> _Known:
    return _Known(None, SubscriberStatus.ACTIVE, row.name, row.topics,
                  row.language or DEFAULT_LANGUAGE, "add")


def _row_changes(subscriber: _Known, row: SubscriberRow) -> bool:
    return (subscriber.name != row.name or subscriber.topics != row.topics
            or (row.language is not None and row.language != subscriber.language))


def _resubscribe(known: dict[str, _Known], key: str, row: SubscriberRow) -> None:
    """Active again and receiving (a fresh consent ends an old pause), with the import recorded
    as the new consent."""
    subscriber = known.get(key)
    if subscriber is None:
        known[key] = _new(row)
        return
    subscriber.status = SubscriberStatus.ACTIVE
    subscriber.name = row.name or subscriber.name
    subscriber.topics = row.topics
    subscriber.language = row.language or subscriber.language
    if subscriber.write != "add":
        subscriber.write = "resubscribe"


def _write_batch(session: Session, batch: Sequence[SubscriberRow], keys: list[str],
                 known: dict[str, _Known], released: set[str], source: str) -> None:
    now, source = utcnow(), source[:500]
    if released:
        session.execute(delete(Suppression).where(Suppression.email_hash.in_(released)))
    email: dict[str, str] = {}
    for row, key in zip(batch, keys, strict=True):
        email.setdefault(key, row.email)  # a new address is added by its first row
    touched = {key: k for key, k in known.items() if k.write}
    added = [{"uid": new_uid(), "email": email[key], "email_hash": key, "name": k.name,
              "all_topics": k.topics is None, "language": k.language}
             for key, k in touched.items() if k.write == "add"]
    if added:  # what every new row shares is bound once, not per row
        _insert_many(session, _SUBSCRIBERS, added, status=SubscriberStatus.ACTIVE,
                     consent_method=ConsentMethod.IMPORT, consent_source=source, consent_at=now,
                     confirmed_at=now, created_at=now, updated_at=now)
        # a SELECT, not RETURNING: psycopg's executemany with RETURNING costs 2.5× the CPU
        for key, new_id in session.execute(select(Subscriber.email_hash, Subscriber.id).where(
                one_of(session, Subscriber.email_hash, [row["email_hash"] for row in added]))):
            touched[key].id = new_id
    _update(session, [k for k in touched.values() if k.write == "update"], now)
    _update(session, [k for k in touched.values() if k.write == "resubscribe"], now,
            status=SubscriberStatus.ACTIVE, unsubscribed_at=None, paused_at=None,
            consent_method=ConsentMethod.IMPORT, consent_source=source, consent_at=now,
            confirmed_at=now, consent_ip_hash=None)
    _link_topics(session, list(touched.values()))
    for k in touched.values():
        k.write = ""


def _update(session: Session, changed: list[_Known], now: datetime, **fixed: object) -> None:
    """Name, topics and language per row, and the same `fixed` values for all, in one
    executemany."""
    if not changed:
        return
    session.execute(
        update(_SUBSCRIBERS).where(_SUBSCRIBERS.c.id == bindparam("row_id"))
        .values(name=bindparam("row_name"), all_topics=bindparam("row_all"),
                language=bindparam("row_language"), updated_at=now, **fixed),
        [{"row_id": k.id, "row_name": k.name, "row_all": k.topics is None,
          "row_language": k.language} for k in changed])


def _link_topics(session: Session, written: list[_Known]) -> None:
    """Each written subscriber's topic rows become exactly their chosen topics."""
    old = [k.id for k in written if k.write != "add"]
    if old:
        session.execute(delete(subscriber_topics).where(
            one_of(session, subscriber_topics.c.subscriber_id, old)))
    wanted = {slug for k in written if k.topics for slug in k.topics}
    if not wanted:
        return
    topic_id = {t.slug: t.id for t in _topics_by_slug(session, wanted)}
    _insert_many(session, subscriber_topics,
                 [{"subscriber_id": k.id, "topic_id": topic_id[slug]}
                  for k in written if k.topics for slug in sorted(k.topics)])


def _insert_many(session: Session, table: Table, rows: list[dict[str, object]],
                 **shared: object) -> None:
    """`rows` (same keys each, JSON values) plus the `shared` values. On PostgreSQL one
    statement, INSERT … SELECT FROM json_to_recordset of the rows as one JSON text: psycopg's
    executemany sends a statement per row (that was most of an import's CPU there), and an array
    per column has each element checked by a regular expression as it is dumped, where
    `json.dumps` runs in C (the whole write 5.1 s instead of 6.0-6.9 s at 100 000 rows).
    Elsewhere an executemany (SQLite's runs in this process, with no round trips to save), the
    shared values converted for the driver once: SQLAlchemy converts a bound value again for
    every row it is sent with."""
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        session.execute(insert(table).values(**{
            name: literal(_for_driver(table.c[name].type, value, dialect), _AS_CONVERTED)
            for name, value in shared.items()}), rows)
        return
    names = list(rows[0])
    columns = func.json_to_recordset(bindparam("many_rows", json.dumps(rows), type_=Text())
                                     .cast(postgresql.JSON)).table_valued(
        *[column(name, table.c[name].type) for name in names]).render_derived(with_types=True)
    fixed = [literal(value, table.c[name].type) for name, value in shared.items()]
    session.execute(insert(table).from_select(
        [*names, *shared], select(*[columns.c[name] for name in names], *fixed)))


_AS_CONVERTED = String()
"""A type that converts nothing on SQLite, for a value already converted (a NULL type would take
the column's type again)."""


def _for_driver(column_type: TypeEngine[object], value: object, dialect: Dialect) -> object:
    """`value` as the column's type hands it to the DB-API driver."""
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    return process(value) if process else value


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
        .where(one_of(session, subscriber_topics.c.subscriber_id, ids)))
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
                   Subscriber.all_topics, Subscriber.language)
            .where(Subscriber.id > last_id, receives_mail())
            .order_by(Subscriber.id).limit(chunk_size)).all()
        if not rows:
            return
        chosen = chosen_topics(session, [r.id for r in rows if not r.all_topics])
        yield [Recipient(r.id, r.uid, r.email, r.name,
                         None if r.all_topics else frozenset(chosen.get(r.id, ())), r.language)
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
