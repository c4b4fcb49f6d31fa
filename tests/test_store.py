"""The store on SQLite and PostgreSQL: migrations, taxonomy, constraints, time zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from newsletter.archive.search import include_object
from newsletter.config import load_config
from newsletter.content.models import Edition
from newsletter.context import Newsletter
from newsletter.db import Base
from newsletter.db.migrate import alembic_config, current_revision, head_revision
from newsletter.db.models import ResearchType, Topic
from newsletter.errors import StoreError
from newsletter.schema import content_models  # noqa: F401  (every table on Base)
from newsletter.sending.engine import Sender
from newsletter.sending.report import first_and_last_sent, live_counts
from newsletter.taxonomy import slugify
from newsletter.transports import make_transport
from subscribers.store import add_subscriber, find

from .builders import MONTH, load_month
from .conftest import make_config


@pytest.fixture
def store(database_url: str):  # type: ignore[no-untyped-def]
    nl = Newsletter.open(make_config(database_url))
    yield nl
    nl.close()


@pytest.mark.parametrize(("name", "slug"), [
    ("Trauma and/or PTSD", "trauma-and-or-ptsd"),
    ("Cognitive Therapy (CT) and Cognitive-Behavioural Therapy (CBT)",
     "cognitive-therapy-ct-and-cognitive-behavioural-therapy-cbt"),
    ("Attendance, Attrition, and Drop-Out", "attendance-attrition-and-drop-out"),
    ("Medications/Pharmacotherapy", "medications-pharmacotherapy"),
    ("  --Odd   spacing!! ", "odd-spacing"),
])
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_init_creates_upgrades_and_is_idempotent(store: Newsletter) -> None:
    with pytest.raises(StoreError, match="run `newsletter init` first"):
        store.require_ready()
    assert store.init() == (44, 44)
    assert store.init() == (0, 44)
    store.require_ready()
    assert current_revision(store.engine) == head_revision(store.engine)
    tables = set(inspect(store.engine).get_table_names())
    assert {"topics", "research_types", "summaries", "editions", "edition_items", "subscribers",
            "subscriber_topics", "suppressions", "deliveries", "send_runs"} <= tables
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Topic)) == 36
        types = set(session.scalars(select(ResearchType.slug)))
    assert {"meta-analysis", "randomized-controlled-trial", "review", "book-chapter",
            "naturalistic-study", "qualitative-study", "other"} <= types


def test_addresses_are_unique_whatever_their_case(store: Newsletter) -> None:
    store.init()
    with store.session() as session:
        first = add_subscriber(session, "Ada@Example.ORG", name="Ada")
        again = add_subscriber(session, "ada@example.org", name="Ada L.")
        assert first.id == again.id
        assert find(session, "ADA@EXAMPLE.ORG") is first
        assert first.email == "Ada@example.org"


def test_times_are_stored_in_utc_and_come_back_aware(store: Newsletter) -> None:
    store.init()
    toronto = timezone(timedelta(hours=-5))
    local = datetime(2026, 12, 1, 9, 0, tzinfo=toronto)
    with store.session() as session:
        session.add(Edition(month="2026-12", subject="s", scheduled_at=local))
    with store.session() as session:
        stored = session.scalar(select(Edition.scheduled_at))
    assert stored == local and stored.tzinfo is not None
    assert stored.astimezone(UTC).hour == 14
    with pytest.raises(Exception, match="naive datetime"), store.session() as session:
        session.add(Edition(month="2026-11", subject="s", scheduled_at=datetime(2026, 11, 1)))


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    nl = Newsletter.open(load_config(overrides={"database_url": f"sqlite:///{tmp_path}/x.db"},
                                     environ={"NEWSLETTER_CONFIG": "/nonexistent.toml"}))
    with nl.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 10000
    nl.close()


def test_migrations_build_the_schema_the_models_describe(store: Newsletter) -> None:
    store.init()
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": include_object})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


ROWS_POINTING_AT_EDITIONS = ("edition_items", "deliveries", "send_runs", "subscriber_topics")


def _counts(store: Newsletter) -> dict[str, int]:
    with store.engine.connect() as connection:
        return {table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ROWS_POINTING_AT_EDITIONS}


def test_migrating_down_and_up_keeps_every_row(store: Newsletter, tmp_path: Path) -> None:
    """On SQLite 0002 rebuilds `editions`: the rows pointing at it (items, deliveries) must survive
    both ways, and the status vocabulary narrows and widens with it."""
    store.init()
    load_month(store)
    outbox = store.config.with_overrides(transport="outbox", outbox_dir=str(tmp_path / "outbox"))
    assert Sender(store, make_transport(outbox)).send(MONTH).sent == 3
    before = _counts(store)
    assert min(before.values()) > 0
    command.downgrade(alembic_config(store.engine), "0001")
    assert _counts(store) == before
    with store.engine.begin() as connection, pytest.raises(IntegrityError), connection.begin_nested():
        connection.execute(text("UPDATE editions SET status = 'missed'"))
    store.init()
    assert _counts(store) == before
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE editions SET status = 'missed'"))
        assert connection.execute(text("SELECT month, status FROM editions")).all() == [(MONTH, "missed")]
        with pytest.raises(IntegrityError), connection.begin_nested():
            connection.execute(text("UPDATE editions SET status = 'lost'"))


def _sent_index_condition(store: Newsletter) -> str:
    """The WHERE of ix_deliveries_edition_sent_at, as SQLAlchemy reflects it from the database."""
    dialect = store.engine.dialect.name
    index, = (i for i in inspect(store.engine).get_indexes("deliveries")
              if i["name"] == "ix_deliveries_edition_sent_at")
    return str(index.get("dialect_options", {}).get(f"{dialect}_where", "")).strip("()").lower()


def test_the_sent_at_index_holds_only_rows_that_were_sent(store: Newsletter) -> None:
    """Partial (0015): planning and claiming write rows without sent_at and so no entry in it.
    On SQLite, which decides from the SQL alone, every statement the watch and the report send
    about sent times (captured as the driver gets them, bound values and all) uses it."""
    store.init()
    assert _sent_index_condition(store) == "sent_at is not null"
    if store.engine.dialect.name != "sqlite":
        return
    load_month(store)
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "deliveries.sent_at" in statement.partition("WHERE")[2]:
            sent.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        live_counts(store, MONTH)
        first_and_last_sent(store, MONTH)
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)
    # the last minute's count, the first send, the last send (the watch asks for both too)
    assert len({statement for statement, _ in sent}) == 3, sent
    with store.engine.connect() as connection:
        for statement, parameters in sent:
            plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            assert any("ix_deliveries_edition_sent_at" in str(row[-1]) for row in plan), (
                statement, plan)
