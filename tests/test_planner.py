"""Set-based planning (`newsletter.sending.planner`) against the Python planner it replaced.

The oracle below is that planner: the audience a chunk at a time (`iter_audience`), each reader's
key from `variant_for` and `variant_key` in their language, pending rows for those with a key.
Both run on the same seeded audience of 20 000 with every pattern that decides who gets what.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select, text, update

from newsletter.content.store import assemble_edition, edition_content, get_edition, upsert_summary
from newsletter.content.variants import variant_for, variant_key
from newsletter.context import Newsletter
from newsletter.db.models import Topic
from newsletter.domain import EditionContent
from newsletter.sending.models import Delivery, DeliveryStatus
from newsletter.sending.plan import PlanCounts
from newsletter.sending.planner import count_variants, plan_deliveries
from newsletter.sending.report import plan_without_sending
from newsletter.sending.store import Recipient, SqlSendStore
from subscribers.models import ConsentMethod, Subscriber, SubscriberStatus, Suppression, subscriber_topics
from subscribers.store import iter_audience
from tests.builders import MONTH, SUMMARIES

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
EDITION_TOPICS = sorted({slug for draft in SUMMARIES for slug in draft.topics})


def clock() -> datetime:
    return NOW


def oracle_plan(nl: Newsletter, edition: EditionContent) -> tuple[set[tuple[int, str]], PlanCounts]:
    """The Python planner as it was, with the reader's language: (subscriber, key) rows, counts."""
    counts = PlanCounts()
    rows: set[tuple[int, str]] = set()
    with nl.sessions() as session:
        for chunk in iter_audience(session, chunk_size=777):
            keys = [variant_key(variant_for(edition, r.topics), r.language) for r in chunk]
            counts.add(keys)
            rows.update((r.id, k) for r, k in zip(chunk, keys, strict=True) if k)
    return rows, counts


def three_summaries_out_of_id_order(nl: Newsletter) -> EditionContent:
    """The sample summaries, assembled newest id first, so edition order is not id order."""
    with nl.session() as session:
        ids = [upsert_summary(session, draft).summary.id for draft in SUMMARIES]
        assemble_edition(session, MONTH, order=ids[::-1])
        edition = edition_content(get_edition(session, MONTH))
    assert [item.id for item in edition.items] == ids[::-1]
    return edition


def seed_audience(nl: Newsletter, n: int, seed: int, first_id: int = 1) -> None:
    """N subscribers by Core insert, each pattern drawn at random: status, pause, suppression,
    language, and topics (all; chosen from the edition's, matching one or several summaries;
    chosen elsewhere, matching none; no topic at all)."""
    rng = random.Random(seed)
    with nl.engine.begin() as conn:
        topic_id = dict(conn.execute(select(Topic.slug, Topic.id)).all())
    others = [slug for slug in topic_id if slug not in EDITION_TOPICS]
    people, choices, suppressed = [], [], []
    for sid in range(first_id, first_id + n):
        email = f"reader{sid}@example.org"
        status = rng.choices(list(SubscriberStatus), weights=[10, 70, 10, 5, 5])[0]
        pattern = rng.choice(("all", "one", "several", "elsewhere", "mixed", "empty"))
        people.append({
            "id": sid, "uid": f"{sid:032x}", "email": email,
            "email_hash": hashlib.sha256(email.encode()).hexdigest(), "name": f"Reader {sid}",
            "status": status, "all_topics": pattern == "all",
            "language": rng.choices(("en", "fr", "de"), weights=[60, 35, 5])[0],
            "consent_method": ConsentMethod.IMPORT, "consent_at": NOW, "consent_source": "test",
            "confirmed_at": NOW, "paused_at": NOW if rng.random() < 0.1 else None,
            "created_at": NOW, "updated_at": NOW})
        chosen = {"all": [], "empty": [], "one": rng.sample(EDITION_TOPICS, 1),
                  "several": rng.sample(EDITION_TOPICS, rng.randint(2, 5)),
                  "elsewhere": rng.sample(others, rng.randint(1, 4)),
                  "mixed": rng.sample(EDITION_TOPICS, 1) + rng.sample(others, 2)}[pattern]
        choices += [{"subscriber_id": sid, "topic_id": topic_id[slug]} for slug in chosen]
        if rng.random() < 0.08:
            suppressed.append({"email_hash": people[-1]["email_hash"], "email": email,
                               "reason": "hard-bounce", "detail": "", "created_at": NOW})
    with nl.engine.begin() as conn:
        conn.execute(insert(Subscriber), people)
        conn.execute(insert(subscriber_topics), choices)
        conn.execute(insert(Suppression), suppressed)


def ledger_rows(nl: Newsletter, edition_id: int) -> dict[int, tuple[str, DeliveryStatus, int]]:
    with nl.session() as session:
        return {sid: (variant, status, attempts) for sid, variant, status, attempts in session.execute(
            select(Delivery.subscriber_id, Delivery.variant, Delivery.status, Delivery.attempts)
            .where(Delivery.edition_id == edition_id))}


@pytest.mark.slow
def test_set_based_plan_writes_exactly_the_python_planners_rows(newsletter: Newsletter) -> None:
    edition = three_summaries_out_of_id_order(newsletter)
    assert edition.id is not None
    seed_audience(newsletter, 20_000, seed=15)
    expected, expected_counts = oracle_plan(newsletter, edition)
    keys = {key for _, key in expected}
    assert any(key.startswith("fr:") for key in keys) and any(":" not in key for key in keys)
    assert len(keys) > 12 and expected_counts.no_match > 1000  # every pattern is in the draw

    with newsletter.sessions() as session:
        assert count_variants(session, edition) == expected_counts
        assert plan_deliveries(session, edition, clock, chunk=3_333) == len(expected)
    rows = ledger_rows(newsletter, edition.id)
    assert {(sid, variant) for sid, (variant, _, _) in rows.items()} == expected
    assert {(status, attempts) for _, status, attempts in rows.values()} == {(DeliveryStatus.PENDING, 0)}
    with newsletter.session() as session:
        assert {d.created_at for d in session.scalars(select(Delivery))} == {NOW}


@pytest.mark.slow
def test_planning_again_keeps_every_row_and_adds_only_the_missing(newsletter: Newsletter) -> None:
    edition = three_summaries_out_of_id_order(newsletter)
    assert edition.id is not None
    seed_audience(newsletter, 4_000, seed=16)
    with newsletter.sessions() as session:
        first = plan_deliveries(session, edition, clock, chunk=1_000)
    before = ledger_rows(newsletter, edition.id)
    some = sorted(before)[::5]
    with newsletter.session() as session:  # a send in progress: rows moved on, a variant kept
        session.execute(update(Delivery).where(Delivery.subscriber_id.in_(some))
                        .values(status=DeliveryStatus.SENT, attempts=1, variant="999"))
        session.execute(update(Subscriber).where(Subscriber.id.in_(some))
                        .values(language="fr", all_topics=True))
    moved = ledger_rows(newsletter, edition.id)
    seed_audience(newsletter, 500, seed=17, first_id=4_001)
    expected, _ = oracle_plan(newsletter, edition)
    new = {sid for sid, _ in expected if sid > 4_000}
    with newsletter.sessions() as session:
        assert plan_deliveries(session, edition, clock, chunk=1_000) == len(new) > 0
        assert plan_deliveries(session, edition, clock) == 0
    after = ledger_rows(newsletter, edition.id)
    assert {sid: after[sid] for sid in moved} == moved
    assert {(sid, after[sid][0]) for sid in new} == {(s, k) for s, k in expected if s in new}
    assert first == len(before)


def test_the_send_store_plans_in_sql_and_the_dry_run_counts_the_same(newsletter: Newsletter) -> None:
    edition = three_summaries_out_of_id_order(newsletter)
    assert edition.id is not None
    seed_audience(newsletter, 1_500, seed=18)
    expected, expected_counts = oracle_plan(newsletter, edition)

    def never(chunk: object) -> list[str]:
        raise AssertionError("the SQL store must not walk the audience in Python")

    dry = plan_without_sending(newsletter, MONTH)
    assert (dry.by_variant, dry.no_match) == (expected_counts.by_variant, expected_counts.no_match)
    assert SqlSendStore(newsletter).plan(edition.id, never, clock) == expected_counts
    assert {(sid, v) for sid, (v, _, _) in ledger_rows(newsletter, edition.id).items()} == expected


def test_a_reader_in_another_language_gets_their_own_variant_key(newsletter: Newsletter) -> None:
    edition = three_summaries_out_of_id_order(newsletter)
    first, _, third = (item.id for item in edition.items)
    chosen = {"alliance-and-therapeutic-relationship", "empathy"}  # the first and third summary
    people = [Recipient(1, "u1", "a@example.org", "A", None),
              Recipient(2, "u2", "b@example.org", "B", frozenset(chosen), "fr"),
              Recipient(3, "u3", "c@example.org", "C", frozenset({"neuroscience-and-brain"}), "fr")]
    assert [variant_key(variant_for(edition, r.topics), r.language) for r in people] == [
        f"{first},{edition.items[1].id},{third}", f"fr:{first},{third}", ""]
    with newsletter.session() as session:
        for r in people:
            session.add(Subscriber(id=r.id, uid=r.uid, email=r.email, email_hash=r.uid,
                                   name=r.name, status=SubscriberStatus.ACTIVE,
                                   all_topics=r.topics is None, language=r.language,
                                   consent_method=ConsentMethod.ADMIN,
                                   topics=list(session.scalars(select(Topic).where(
                                       Topic.slug.in_(r.topics or ()))))))
    assert edition.id is not None
    with newsletter.sessions() as session:
        assert plan_deliveries(session, edition, clock) == 2
    assert {sid: v for sid, (v, _, _) in ledger_rows(newsletter, edition.id).items()} == {
        1: f"{first},{edition.items[1].id},{third}", 2: f"fr:{first},{third}"}


def test_an_edition_without_summaries_plans_nobody(newsletter: Newsletter) -> None:
    edition = three_summaries_out_of_id_order(newsletter)
    seed_audience(newsletter, 300, seed=19)
    empty = EditionContent(month=edition.month, subject="", preheader="", items=(), id=edition.id)
    with newsletter.sessions() as session:
        counts = count_variants(session, empty)
        assert (counts.recipients, counts.no_match) == (0, oracle_plan(newsletter, empty)[1].no_match)
        assert counts.no_match > 0
        assert plan_deliveries(session, empty, clock) == 0


def _plan_of(newsletter: Newsletter, sql: str) -> str:
    with newsletter.engine.connect() as connection:
        return "\n".join(row[0] for row in connection.execute(text("EXPLAIN " + sql)))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_after_planning_postgresql_updates_a_batch_by_its_ids_and_claims_by_status(
        newsletter: Newsletter) -> None:
    """The claim and result writes are UPDATE … WHERE id = ANY(a batch's array), as the ledger
    writes them on PostgreSQL (`db.sql.one_of`): right after a plan filled the ledger,
    PostgreSQL without statistics of deliveries.id scans the whole table for each.
    And the claim keeps walking the (edition, status, id) index, not the primary key past every
    row already sent."""
    edition = three_summaries_out_of_id_order(newsletter)
    seed_audience(newsletter, 20_000, seed=16)
    with newsletter.sessions() as session:
        assert plan_deliveries(session, edition, clock) > 5_000
    batch = ",".join(str(i) for i in range(1_001, 1_201))
    update_plan = _plan_of(newsletter, "UPDATE deliveries SET status = 'in_flight' "
                                       f"WHERE id = ANY('{{{batch}}}'::integer[])")
    assert "Seq Scan" not in update_plan and "pk_deliveries" in update_plan, update_plan
    claim_plan = _plan_of(newsletter, (
        f"SELECT id FROM deliveries WHERE edition_id = {edition.id} AND status = 'pending' "
        "ORDER BY id LIMIT 200 FOR UPDATE SKIP LOCKED"))
    assert "ix_deliveries_edition_status" in claim_plan, claim_plan
