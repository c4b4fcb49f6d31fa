"""Crash safety with real processes: `python -m newsletter send` killed with SIGKILL mid-send,
then resumed, leaving uncertain at most one message per connection (the result journal); and
two sends of one edition started at once. An aiosmtpd server in this process
counts what each recipient received; the ledger is SQLite, as in the embedded default."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from newsletter.content.store import get_edition
from newsletter.context import Newsletter
from newsletter.db import utcnow
from newsletter.db.types import new_uid
from newsletter.errors import SendInProgress
from newsletter.sending import ledger
from newsletter.sending.models import SendRun
from subscribers.addresses import address_hash
from subscribers.models import ConsentMethod, Subscriber, SubscriberStatus

from .builders import MONTH, load_month
from .conftest import REPO, TEST_SECRET, make_config
from .fault_server import FaultyHandler, faulty_server

SUBSCRIBERS = 3000
BATCH = 50
CONNECTIONS = 4  # the SMTP transport's default
KILL_AT = 1013  # mid-batch: some of the batch accepted, some not yet


def add_subscribers(nl: Newsletter, count: int) -> list[str]:
    """Bulk insert: one executemany, not 3000 ORM objects."""
    now = utcnow()
    emails = [f"reader{i:05d}@example.org" for i in range(count)]
    with nl.session() as session:
        session.execute(insert(Subscriber), [{
            "uid": new_uid(), "email": e, "email_hash": address_hash(e), "name": f"Reader {i}",
            "status": SubscriberStatus.ACTIVE, "all_topics": True, "language": "en",
            "consent_method": ConsentMethod.IMPORT, "consent_at": now, "consent_source": "test",
            "created_at": now, "updated_at": now} for i, e in enumerate(emails)])
    return emails


@pytest.fixture
def handler() -> FaultyHandler:
    return FaultyHandler()


@pytest.fixture
def store(tmp_path: Path, handler: FaultyHandler) -> Iterator[tuple[dict[str, str], list[str]]]:
    """A loaded SQLite store, a counting SMTP server, and the environment for `newsletter`."""
    url = f"sqlite:///{tmp_path / 'newsletter.db'}"
    with faulty_server(handler) as server:
        nl = Newsletter.open(make_config(url))
        nl.init()
        load_month(nl, audience=())
        emails = add_subscribers(nl, SUBSCRIBERS)
        nl.close()
        env = {**os.environ, "PYTHONPATH": str(REPO), "NEWSLETTER_CONFIG": "/nonexistent.toml",
               "NEWSLETTER_DATABASE_URL": url, "NEWSLETTER_SECRET_KEY": TEST_SECRET,
               "NEWSLETTER_TRANSPORT": "smtp", "NEWSLETTER_SMTP_HOST": server.host,
               "NEWSLETTER_SMTP_PORT": str(server.port), "NEWSLETTER_SMTP_SECURITY": "none",
               "NEWSLETTER_BATCH_SIZE": str(BATCH),
               "NEWSLETTER_FROM": "Digest <digest@pprnet.example>",
               "NEWSLETTER_BASE_URL": "https://digest.example.org"}
        yield env, emails


def newsletter(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "newsletter", *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen[str], code: int = 0) -> tuple[str, str]:
    out, err = process.communicate(timeout=120)
    assert process.returncode == code, out + err
    return out, err


def status(env: dict[str, str]) -> dict[str, Any]:
    out, _ = finished(newsletter(env, "status", MONTH, "--json"))
    document: dict[str, Any] = json.loads(out)
    return document


@pytest.mark.process
def test_sigkill_mid_send_then_resume_never_mails_anyone_twice(
        store: tuple[dict[str, str], list[str]], handler: FaultyHandler) -> None:
    env, emails = store
    process = newsletter(env, "send", MONTH)
    handler.on_accept = lambda address, total: (
        os.kill(process.pid, signal.SIGKILL) if total == KILL_AT else None)
    finished(process, -signal.SIGKILL)
    killed_at = sum(handler.received.values())

    after_crash = status(env)
    uncertain = {row["email"] for row in after_crash["attention"] if row["status"] == "uncertain"}
    # the journal leaves uncertain only what was on the wire: one message per connection
    assert 0 < len(uncertain) == after_crash["counts"]["uncertain"] <= CONNECTIONS
    assert after_crash["counts"]["in_flight"] == 0
    assert after_crash["counts"]["sent"] + len(uncertain) >= KILL_AT
    never_left = set(emails) - set(handler.received)
    assert after_crash["counts"]["pending"] >= len(never_left - uncertain) > 0

    out, err = finished(newsletter(env, "send", MONTH))
    assert f"Warning: {len(uncertain)} deliveries are uncertain" in err
    assert set(handler.received.values()) == {1}
    assert set(emails) - set(handler.received) == uncertain - set(handler.received)
    received_uncertain = uncertain & set(handler.received)
    print(f"\nkilled after {killed_at} accepted; uncertain window {len(uncertain)} rows "
          f"(batch {BATCH}); {len(received_uncertain)} of them had been accepted")

    finished(newsletter(env, "send", MONTH, "--resend-uncertain"))
    assert set(handler.received) == set(emails)
    twice = {e for e, n in handler.received.items() if n > 1}
    assert twice == received_uncertain and max(handler.received.values()) == 2
    final = status(env)
    assert final["counts"]["sent"] == SUBSCRIBERS and final["edition_status"] == "sent"
    assert final["last_run"]["sent"] == len(uncertain) and final["last_run"]["finished"]


@pytest.mark.process
def test_two_sends_of_one_edition_at_once_one_sends_the_other_stops(
        store: tuple[dict[str, str], list[str]], handler: FaultyHandler) -> None:
    env, emails = store
    first, second = newsletter(env, "send", MONTH), newsletter(env, "send", MONTH)
    outcomes = [(p.communicate(timeout=120), p.returncode) for p in (first, second)]

    codes = sorted(code for _, code in outcomes)
    assert codes == [0, 1], outcomes
    [(_, loser_err)] = [streams for streams, code in outcomes if code == 1]
    assert "Error: another send of this edition is running (pid" in loser_err
    assert set(handler.received.values()) == {1} and set(handler.received) == set(emails)


@pytest.mark.process
def test_a_live_run_blocks_a_second_start_and_a_dead_one_does_not(tmp_path: Path) -> None:
    nl = Newsletter.open(make_config(f"sqlite:///{tmp_path / 'n.db'}"))
    nl.init()
    load_month(nl, audience=())
    now = utcnow()
    with nl.session() as session:
        edition_id = get_edition(session, MONTH).id
        ledger.start_run(session, edition_id, now)
    with pytest.raises(SendInProgress, match="another send"), nl.session() as session:
        ledger.start_run(session, edition_id, now + timedelta(seconds=60))
    with nl.session() as session:  # heartbeat older than two minutes: the run is dead
        ledger.start_run(session, edition_id, now + timedelta(seconds=121))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    with nl.session() as session:  # fresh heartbeat, but its process is gone
        for run in session.scalars(select(SendRun)):
            run.finished_at, run.heartbeat_at, run.pid = None, now, int(dead.stdout)
        ledger.start_run(session, edition_id, now + timedelta(seconds=1))
    nl.close()


def test_starting_runs_is_race_free(database_url: str) -> None:
    """Both starters check for a live run before either commits: only the first may win."""
    import threading
    import time
    nl = Newsletter.open(make_config(database_url))
    nl.init()
    load_month(nl, audience=())
    with nl.session() as session:
        edition_id = get_edition(session, MONTH).id
    barrier, outcomes = threading.Barrier(2), []

    def start() -> None:
        barrier.wait()
        try:
            with nl.session() as session:
                ledger.start_run(session, edition_id, utcnow())
                time.sleep(0.3)  # hold the transaction open: a racy check would pass twice
            outcomes.append("started")
        except SendInProgress:
            outcomes.append("refused")

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    nl.close()
    assert sorted(outcomes) == ["refused", "started"]


@pytest.mark.process
def test_sigterm_finishes_the_batch_and_exits_cleanly(
        store: tuple[dict[str, str], list[str]], handler: FaultyHandler) -> None:
    env, emails = store
    process = newsletter(env, "send", MONTH)
    handler.on_accept = lambda address, total: (
        os.kill(process.pid, signal.SIGTERM) if total == 500 else None)
    out, err = finished(process)
    assert "SIGTERM: finishing the current batch" in err
    assert "Stopped after the current batch" in out
    after = status(env)
    assert after["counts"]["in_flight"] == after["counts"]["uncertain"] == 0
    assert after["last_run"]["finished"]
    assert 500 <= after["counts"]["sent"] == sum(handler.received.values()) < SUBSCRIBERS
    finished(newsletter(env, "send", MONTH))
    assert set(handler.received.values()) == {1} and set(handler.received) == set(emails)
