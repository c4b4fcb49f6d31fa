"""Parallel workers with real processes: `newsletter send --workers N` on SQLite and PostgreSQL,
one worker SIGKILLed mid-send while the others finish, and pause or cancel reaching every
worker. An aiosmtpd server in this process counts what each recipient received."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.config import load_config
from newsletter.context import Newsletter
from newsletter.schedule.process import send_scheduled
from newsletter.sending import control
from newsletter.sending.models import Delivery, DeliveryStatus, SendRun
from newsletter.sending.worker import LocalCrew, send_with_workers
from subscribers.models import Subscriber

from .builders import MONTH, load_month
from .conftest import REPO, TEST_SECRET, make_config
from .fault_server import FaultyHandler, faulty_server
from .test_crash import add_subscribers, finished, newsletter, status
from .test_scheduling import AT, set_scheduled

SUBSCRIBERS = 2400
BATCH = 40
CONNECTIONS = 2
KILL_AFTER = 300
STEER_AFTER = 200
SERVER_DELAY = 0.01
"""Seconds the server takes per message: 100 a second per connection, so that the send lasts
well past the few seconds a worker takes to start."""

pytestmark = [pytest.mark.process, pytest.mark.slow]


class Store:
    def __init__(self, url: str, env: dict[str, str], emails: list[str]) -> None:
        self.url, self.env, self.emails = url, env, emails
        self.nl = Newsletter.open(make_config(url))

    def run_of(self, address: str) -> SendRun | None:
        """The run that claimed `address`'s row, if a worker (not the send) claimed it."""
        with self.nl.session() as session:
            run = session.scalar(select(SendRun).join(Delivery, Delivery.run_id == SendRun.id)
                                 .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                                 .where(Subscriber.email == address))
            if run is not None:
                session.expunge(run)
            return run if run is not None and run.leader_id is not None else None

    def runs(self) -> list[SendRun]:
        with self.nl.session() as session:
            runs = list(session.scalars(select(SendRun)))
            session.expunge_all()
            return runs

    def uncertain_runs(self) -> list[str | None]:
        with self.nl.session() as session:
            return list(session.scalars(select(Delivery.run_id).where(
                Delivery.status == DeliveryStatus.UNCERTAIN)))


@pytest.fixture
def store(database_url: str, handler: FaultyHandler, tmp_path: Path) -> Iterator[Store]:
    with faulty_server(handler) as server:
        nl = Newsletter.open(make_config(database_url))
        nl.init()
        load_month(nl, audience=())
        emails = add_subscribers(nl, SUBSCRIBERS)
        nl.close()
        env = {**os.environ, "PYTHONPATH": str(REPO), "NEWSLETTER_CONFIG": "/nonexistent.toml",
               "NEWSLETTER_DATABASE_URL": database_url, "NEWSLETTER_SECRET_KEY": TEST_SECRET,
               "NEWSLETTER_TRANSPORT": "smtp", "NEWSLETTER_SMTP_HOST": server.host,
               "NEWSLETTER_SMTP_PORT": str(server.port), "NEWSLETTER_SMTP_SECURITY": "none",
               "NEWSLETTER_BATCH_SIZE": str(BATCH), "NEWSLETTER_SMTP_CONNECTIONS": str(CONNECTIONS),
               "NEWSLETTER_JOURNAL_DIR": str(tmp_path / "journal"),
               "NEWSLETTER_FROM": "Digest <digest@pprnet.example>",
               "NEWSLETTER_BASE_URL": "https://digest.example.org"}
        opened = Store(database_url, env, emails)
        yield opened
        opened.nl.close()


def workers_for(url: str) -> int:
    return 3 if url.startswith("postgresql") else 2


@dataclass
class Joined:
    """Set once `count` processes work on the send, with the messages received by then: a
    steering hook waits for it, so that every worker is under way when it acts."""

    event: threading.Event = field(default_factory=threading.Event)
    received: int = 0

    def ready(self, total: int, after: int) -> bool:
        return self.event.is_set() and total >= self.received + after


def when_all_joined(store: Store, count: int, handler: FaultyHandler) -> Joined:
    joined = Joined()

    def watch() -> None:
        while len(store.runs()) < count:
            threading.Event().wait(0.05)
        joined.received = sum(handler.received.values())
        joined.event.set()

    threading.Thread(target=watch, daemon=True).start()
    return joined


def test_a_worker_killed_mid_send_leaves_only_its_wire_uncertain_and_the_others_finish(
        store: Store, handler: FaultyHandler) -> None:
    count = workers_for(store.url)
    victim: list[SendRun] = []
    handler.delay = SERVER_DELAY
    joined = when_all_joined(store, count, handler)

    def kill_a_worker_while_it_waits_for_this_reply(address: str, total: int) -> None:
        if victim or not joined.ready(total, KILL_AFTER):
            return
        run = store.run_of(address)
        if run is not None:
            victim.append(run)
            os.kill(run.pid, signal.SIGKILL)

    handler.on_accept = kill_a_worker_while_it_waits_for_this_reply
    out, err = finished(newsletter(store.env, "send", MONTH, "--workers", str(count)))

    assert victim, "no worker was killed"
    assert set(handler.received.values()) == {1}, "somebody was mailed twice"
    after = status(store.env)
    counts = after["counts"]
    assert after["edition_status"] == "sent"
    assert counts["pending"] == counts["in_flight"] == counts["failed"] == 0
    assert 1 <= counts["uncertain"] <= CONNECTIONS
    assert set(store.uncertain_runs()) == {victim[0].id}
    uncertain = {row["email"] for row in after["attention"] if row["status"] == "uncertain"}
    assert set(store.emails) - set(handler.received) <= uncertain
    assert counts["sent"] + counts["uncertain"] == SUBSCRIBERS
    assert f"Warning: {counts['uncertain']} deliveries are uncertain" in err
    assert after["last_run"]["sent"] == counts["sent"] and after["last_run"]["finished"]
    runs = {w["run"]: w for w in after["workers"]}
    assert len(runs) == count and sum(w["sent"] for w in runs.values()) == counts["sent"]
    assert all(w["sent"] > 0 for run, w in runs.items() if run != victim[0].id)
    print(f"\n{count} workers, one killed: sent by each {[w['sent'] for w in runs.values()]}, "
          f"{counts['uncertain']} uncertain (connections per worker: {CONNECTIONS})")
    assert f"sent {counts['sent']}," in out


@pytest.mark.parametrize("verb", ["pause", "cancel"])
def test_pause_and_cancel_reach_every_worker_at_its_next_claim(
        store: Store, handler: FaultyHandler, verb: str) -> None:
    handler.delay = SERVER_DELAY
    command = getattr(control, verb)
    steered: list[int] = []
    joined = when_all_joined(store, 3, handler)

    def steer(address: str, total: int) -> None:
        if joined.ready(total, STEER_AFTER) and not steered:
            steered.append(total)
            threading.Thread(target=command, args=(store.nl, MONTH)).start()

    handler.on_accept = steer
    leader = newsletter(store.env, "send", MONTH, "--workers", "3")
    out, _ = finished(leader)

    state = "paused" if verb == "pause" else "cancelled"
    assert f"The edition was {state}; stopped after the current batch." in out
    runs = store.runs()
    assert len(runs) == 3 and all(run.finished_at is not None for run in runs), \
        "every worker ended its run itself"
    after = status(store.env)
    counts = after["counts"]
    assert after["edition_status"] == state
    assert counts["in_flight"] == counts["uncertain"] == 0
    assert counts["sent"] == sum(handler.received.values())
    # after the pause each worker finishes at most the batch it had on the wire
    assert steered[0] <= counts["sent"] <= steered[0] + 3 * BATCH
    assert counts["pending"] == SUBSCRIBERS - counts["sent"]
    if verb == "pause":
        finished(newsletter(store.env, "resume", MONTH))
        finished(newsletter(store.env, "send", MONTH, "--workers", "3"))
        assert status(store.env)["edition_status"] == "sent"
        assert set(handler.received) == set(store.emails)
    else:
        _, err = finished(newsletter(store.env, "send", MONTH), code=1)
        assert "cancelled" in err
    assert set(handler.received.values()) == {1}


def test_a_scheduled_send_runs_as_many_workers_as_the_setting_says(
        store: Store, handler: FaultyHandler) -> None:
    """The scheduler's configuration here comes from a mapping and an option, not from the
    process environment its workers inherit: they must still reach the same store and server."""
    handler.delay = SERVER_DELAY
    config = load_config(overrides={"workers": 2}, environ=store.env)
    nl = Newsletter.open(config)
    try:
        set_scheduled(nl, AT)
        report = send_scheduled(nl, MONTH, now=AT)
    finally:
        nl.close()
    assert report is not None and report.sent == SUBSCRIBERS and report.workers == 2
    assert set(handler.received) == set(store.emails)
    assert set(handler.received.values()) == {1}
    sent_by_each = [w["sent"] for w in status(store.env)["workers"]]
    assert len(sent_by_each) == 2 and all(sent_by_each), sent_by_each


def test_the_progress_of_a_send_with_workers_adds_every_worker_up(
        store: Store, handler: FaultyHandler) -> None:
    handler.delay = SERVER_DELAY
    seen: list[tuple[int, int]] = []
    nl = Newsletter.open(load_config(environ=store.env))
    try:
        report = send_with_workers(nl, MONTH, 2, progress=lambda done, total: seen.append(
            (done, total)))
    finally:
        nl.close()
    assert report.sent == SUBSCRIBERS and report.workers == 2
    assert {total for _, total in seen} == {SUBSCRIBERS}
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == SUBSCRIBERS and len(set(done)) > 2, done


def test_a_worker_joins_a_running_send_and_exits_when_none_runs(store: Store) -> None:
    process = subprocess.run([sys.executable, "-m", "newsletter", "worker", MONTH], env=store.env,
                             cwd=REPO, capture_output=True, text=True, timeout=60)
    assert process.returncode == 1
    assert f"Error: no send of {MONTH} is running; start one with `newsletter send MONTH`" \
        in process.stderr


def test_workers_launched_for_a_send_that_never_planned_exit_without_working(store: Store) -> None:
    """`send --workers` starts its workers while it plans; when the send ends before its plan
    is written (another send runs, the edition is paused, Ctrl-C) they hear the end of their
    input and exit, having joined nothing."""
    with LocalCrew(store.nl, MONTH, 2, [sys.executable, "-m", "newsletter", "worker", MONTH,
                                        "--when-planned"],
                   spawn=lambda argv: subprocess.Popen(argv, stdin=subprocess.PIPE, env=store.env,
                                                       cwd=REPO, stdout=subprocess.DEVNULL)) as crew:
        pass  # the send ended before its plan: `start` never ran
    assert crew.exit_codes == [0, 0]
    assert store.runs() == []
