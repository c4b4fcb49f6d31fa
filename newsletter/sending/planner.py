"""Set-based planning: each reader's variant computed in SQL, ledger rows written by INSERT … SELECT.

A reader's variant is the set of the edition's summaries whose topics they chose (all of them for
"all topics"), in edition order, in their language; `content.variants` names it `"1,3"` or
`"fr:1,3"`. The database reads it as a bit mask per subscriber: one GROUP BY over the topic
choices that touch the edition (bit n set when a chosen topic is one of summary n's), the full
mask for "all topics". A CASE turns the mask into the key. No subscriber row crosses into Python,
so a million readers plan in seconds; the CASE has 2ⁿ − 1 branches for n summaries, seven for
the usual three. Who may receive is `subscribers.store.receives_mail()`, as at claim time.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import cast

from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    String,
    Subquery,
    Table,
    case,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from subscribers.models import Subscriber, subscriber_topics
from subscribers.store import receives_mail

from ..content.variants import DEFAULT_LANGUAGE, variant_key
from ..db import UTCDateTime
from ..db.models import Topic
from ..domain import EditionContent
from .models import Delivery, DeliveryStatus
from .plan import PlanCounts

__all__ = ["PLAN_CHUNK", "PLAN_CONNECTIONS", "count_variants", "plan_deliveries"]

PLAN_CHUNK = 100_000
"""Subscriber ids per INSERT … SELECT, one transaction each: on SQLite a signup waits at most one
chunk's write (well under the busy timeout), and a crash keeps the chunks already written."""
PLAN_CONNECTIONS = 2
"""Chunks written at once on PostgreSQL, each over its own connection. An INSERT … SELECT is the
server's work (half of it the two foreign-key checks of every row) and runs on one core; two at a
time write 1 000 000 readers' rows in two thirds of the time on two cores (three: slower).
SQLite has one writer: one at a time."""
_DELIVERIES = cast(Table, Delivery.__table__)
_PLANNED = ("edition_id", "subscriber_id", "variant", "status", "attempts", "created_at",
            "updated_at")


def _item_topics(session: Session, edition: EditionContent) -> list[list[int]]:
    """Each summary's topic ids, in edition order."""
    slugs = {slug for item in edition.items for slug in item.topic_slugs}
    topic_id = {slug: tid for slug, tid in session.execute(
        select(Topic.slug, Topic.id).where(Topic.slug.in_(slugs)))}
    return [sorted(topic_id[s] for s in item.topic_slugs if s in topic_id) for item in edition.items]


def _ids(edition: EditionContent, mask: int) -> tuple[int, ...]:
    return tuple(item.id for n, item in enumerate(edition.items) if mask >> n & 1)


def _audience(edition: EditionContent, item_topics: list[list[int]],
              ids: tuple[int, int] | None = None) -> Subquery:
    """Who receives mail (with an id in the range `ids`, if given): id, language, mask."""
    st = subscriber_topics.c
    bits = [func.max(case((st.topic_id.in_(topics), 1), else_=0)) * (1 << n)
            for n, topics in enumerate(item_topics)]
    touching = sorted({tid for topics in item_topics for tid in topics})
    chosen = (select(st.subscriber_id, sum(bits[1:], bits[0]).label("mask"))
              .where(st.topic_id.in_(touching)).group_by(st.subscriber_id))
    where = [receives_mail()]
    if ids is not None:
        chosen = chosen.where(st.subscriber_id > ids[0], st.subscriber_id <= ids[1])
        where += [Subscriber.id > ids[0], Subscriber.id <= ids[1]]
    masks = chosen.subquery("chosen")
    full = (1 << len(item_topics)) - 1
    return (select(Subscriber.id.label("subscriber_id"), Subscriber.language.label("language"),
                   case((Subscriber.all_topics, full),
                        else_=func.coalesce(masks.c.mask, 0)).label("mask"))
            .outerjoin(masks, masks.c.subscriber_id == Subscriber.id)
            .where(*where).subquery("audience"))


def _fresh_statistics(session: Session) -> None:
    """PostgreSQL chooses the join from table statistics. Tables never analysed (new, or bulk
    loaded moments before autovacuum came by) are estimated at a few rows and get nested loops:
    150 s instead of 0.05 s for 20 000 readers. So analyse those first; SQLite needs nothing."""
    if session.get_bind().dialect.name != "postgresql":
        return
    never = session.scalars(text(
        "SELECT relname FROM pg_class WHERE oid IN (to_regclass('subscribers'), "
        "to_regclass('subscriber_topics')) AND reltuples < 0")).all()
    if never:
        session.execute(text("ANALYZE " + ", ".join(never)))


def _ledger_id_statistics(session: Session) -> None:
    """After a plan added rows, PostgreSQL's statistics of `deliveries.id`: without them the
    batch UPDATE … WHERE id IN (…) of every claim and every result is a sequential scan of the
    ledger once it passes a few pages (at 70 000 rows: 11 ms of a 14 ms statement, twice per
    batch). Only the id column, and on purpose: statistics of `status` taken now would say
    "all pending", and the claim would walk the primary key past every row already sent instead
    of the (edition, status, id) index: quadratic over the send."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE deliveries (id)"))
        session.commit()


def count_variants(session: Session, edition: EditionContent) -> PlanCounts:
    """Recipients per variant key and those with no match, among everyone who receives mail:
    what `plan_deliveries` writes for a first plan, without writing it (the dry run)."""
    counts = PlanCounts()
    if not edition.items:
        counts.no_match = session.scalar(select(func.count()).where(receives_mail())) or 0
        return counts
    _fresh_statistics(session)
    audience = _audience(edition, _item_topics(session, edition))
    for language, mask, count in session.execute(
            select(audience.c.language, audience.c.mask, func.count())
            .group_by(audience.c.language, audience.c.mask)):
        key = variant_key(_ids(edition, mask), language)
        if key:
            counts.by_variant[key] += count
        else:
            counts.no_match += count
    return counts


def _key(edition: EditionContent, audience: Subquery) -> ColumnElement[str]:
    """`variant_key(ids, language)` in SQL, for a mask that is not 0."""
    ids = case({mask: literal(",".join(map(str, _ids(edition, mask))), String)
                for mask in range(1, 1 << len(edition.items))}, value=audience.c.mask)
    return case((audience.c.language == DEFAULT_LANGUAGE, ids),
                else_=audience.c.language + literal(":", String) + ids)


def plan_deliveries(session: Session, edition: EditionContent, clock: Callable[[], datetime],
                    *, chunk: int = PLAN_CHUNK) -> int:
    """A pending ledger row for every matching reader who has none, a chunk of ids per commit;
    an existing row stays as it is, so planning again (after a crash, with new subscribers) adds
    only what is missing. How many rows were added.

    Each chunk is its own transaction on the session's engine, `PLAN_CONNECTIONS` at a time on
    PostgreSQL; the session commits first, so they see its statistics."""
    assert edition.id is not None
    if not edition.items:
        return 0
    _fresh_statistics(session)
    item_topics = _item_topics(session, edition)
    last = session.scalar(select(func.max(Subscriber.id))) or 0
    session.commit()
    lows = range(0, last, chunk)

    engine = cast(Engine, session.get_bind())
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def write_chunk(low: int) -> int:
        """The chunk of ids above `low`, in its own transaction."""
        audience = _audience(edition, item_topics, ids=(low, low + chunk))
        now = literal(clock(), UTCDateTime())
        rows = select(literal(edition.id, Integer), audience.c.subscriber_id, _key(edition, audience),
                      literal(DeliveryStatus.PENDING.value, String), literal(0, Integer), now, now
                      ).where(audience.c.mask > 0)
        with engine.begin() as connection:
            result = connection.execute(
                insert(_DELIVERIES).from_select(_PLANNED, rows)
                .on_conflict_do_nothing(index_elements=["edition_id", "subscriber_id"])
                .execution_options(preserve_rowcount=True))
        return max(result.rowcount, 0)

    if engine.dialect.name == "postgresql":
        with ThreadPoolExecutor(PLAN_CONNECTIONS, thread_name_prefix="plan") as pool:
            added = sum(pool.map(write_chunk, lows))
    else:  # one writer; in this thread, where an in-memory database's one connection lives
        added = sum(map(write_chunk, lows))
    if added:
        _ledger_id_statistics(session)
    return added
