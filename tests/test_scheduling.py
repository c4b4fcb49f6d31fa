"""Scheduling: the pure rule, local-time validation, misfires, the scheduler's job mirror, and real
scheduler processes (restarted, and two at once) sending to a loopback SMTP server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from apscheduler.events import (
    EVENT_JOB_ADDED,
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from sqlalchemy import update

import newsletter.cli.schedule  # noqa: F401  (registers the commands)
from newsletter.catcher import SMTPCatcher, free_port
from newsletter.content.models import Edition, EditionStatus, Summary, SummaryStatus
from newsletter.context import Newsletter
from newsletter.errors import StateError
from newsletter.notify.notifier import Notifier
from newsletter.notify.outbox import EditorNote, claim_retry
from newsletter.schedule.editions import (
    Decision,
    ScheduleError,
    decide,
    list_schedules,
    local_to_utc,
    schedule,
    unschedule,
)
from newsletter.schedule.process import Scheduler, send_scheduled
from newsletter.sending.engine import Sender
from newsletter.transports import make_transport
from tests.builders import MONTH, load_month
from tests.conftest import REPO, TEST_SECRET, RunCli, make_config
from tests.test_send_smtp import HookAfterFirstBatch

GRACE = timedelta(hours=6)
AT = datetime(2030, 1, 1, 14, 0, tzinfo=UTC)
EDITOR = "editor@pprnet.example"
SUBSCRIBERS = {"ada@example.org", "bob@example.org", "cy@example.org"}  # di matches nothing


@pytest.fixture
def loaded_nl(newsletter: Newsletter) -> Newsletter:
    """`newsletter` with the sample month of tests.builders loaded: its edition assembled, and the
    four subscribers, three of whom get something."""
    load_month(newsletter)
    return newsletter


def set_scheduled(nl: Newsletter, at: datetime) -> None:
    with nl.session() as session:
        session.execute(update(Edition).where(Edition.month == MONTH)
                        .values(status=EditionStatus.SCHEDULED, scheduled_at=at))


def edition_status(nl: Newsletter) -> EditionStatus:
    with nl.session() as session:
        edition = session.query(Edition).filter_by(month=MONTH).one()
        return edition.status


def plain_text(message: EmailMessage) -> str:
    """A text part as read from the wire, CRLF line ends as plain newlines."""
    return str(message.get_content()).replace("\r\n", "\n")


def to_subscribers(catcher: SMTPCatcher) -> list[str]:
    return [r for m in catcher.messages for r in m.recipients if r in SUBSCRIBERS]


def poll(scheduler: Scheduler, timeout: float = 20) -> None:
    """One poll of an in-process scheduler (`sync`, deciding on its injected clock), and then every
    job it handed to the pool has ended: what that poll would send has been sent."""
    handed: set[str] = set()
    ended: set[str] = set()
    changed = threading.Condition()

    def note(event: JobEvent) -> None:
        with changed:
            if event.code == EVENT_JOB_ADDED:
                handed.add(event.job_id)
                ended.discard(event.job_id)
            else:
                ended.add(event.job_id)
            changed.notify_all()

    scheduler.aps.add_listener(note, EVENT_JOB_ADDED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR
                               | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    try:
        scheduler.sync()
        with changed:  # "now:" jobs run at once; stored ones wait for their (real) time
            assert changed.wait_for(lambda: {j for j in handed if j.startswith("now:")} <= ended, timeout)
    finally:
        scheduler.aps.remove_listener(note)


@pytest.mark.parametrize(("late", "expected"), [
    (timedelta(seconds=-1), Decision.WAIT), (timedelta(0), Decision.SEND),
    (GRACE, Decision.SEND), (GRACE + timedelta(seconds=1), Decision.MISSED)])
def test_decide(late: timedelta, expected: Decision) -> None:
    assert decide(AT + late, AT, GRACE) is expected


def test_local_time_converts_to_utc() -> None:
    assert local_to_utc("2026-12-01 09:00", "America/Toronto") == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert local_to_utc("2026-07-01 09:00", "America/Toronto") == datetime(2026, 7, 1, 13, 0, tzinfo=UTC)


def test_dst_gap_is_refused() -> None:
    with pytest.raises(ScheduleError, match="does not exist in America/Toronto"):
        local_to_utc("2026-03-08 02:30", "America/Toronto")


def test_fall_back_overlap_is_refused_with_both_times() -> None:
    with pytest.raises(ScheduleError, match=r"happens twice .* at 05:30 and at 06:30 UTC"):
        local_to_utc("2026-11-01 01:30", "America/Toronto")
    assert local_to_utc("2026-11-01 02:30", "America/Toronto").hour == 7


@pytest.mark.parametrize(("at", "tz", "message"), [
    ("2026-12-01", "America/Toronto", "is not a time like"),
    ("2026-12-01 09:00", "Mars/Olympus", "unknown time zone")])
def test_bad_input_is_refused(at: str, tz: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        local_to_utc(at, tz)


def test_past_time_is_refused(loaded_nl: Newsletter) -> None:
    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    with pytest.raises(ScheduleError, match="is in the past; it is now 2026-12-01 10:00 there"):
        schedule(loaded_nl, MONTH, "2026-12-01 09:59", "America/Toronto", now=now)


def test_unsendable_edition_is_refused_with_reasons(loaded_nl: Newsletter) -> None:
    with loaded_nl.session() as session:
        session.execute(update(Summary).values(status=SummaryStatus.DRAFT))
    with pytest.raises(ScheduleError, match="not sendable: .*is draft, not ready"):
        schedule(loaded_nl, MONTH, "2030-01-01 09:00")


def test_schedule_list_reschedule_cancel_through_the_cli(loaded_nl: Newsletter, run_cli: RunCli) -> None:
    url = ["--database-url", loaded_nl.config.database_url]
    result = run_cli(*url, "schedule", MONTH, "--at", "2030-01-01 09:00", "--tz", "America/Toronto")
    assert result.output == "2015-01: scheduled for 2030-01-01 09:00 EST (America/Toronto), " \
                            "2030-01-01 14:00 UTC.\n", result.output
    run_cli(*url, "schedule", "set", MONTH, "--at", "2030-02-01 09:00")
    result = run_cli(*url, "schedule", "list")
    assert result.output.split() == ["2015-01", "scheduled", "2030-02-01", "09:00", "EST",
                                     "(America/Toronto)", "2030-02-01", "14:00", "UTC"]
    result = run_cli(*url, "schedule", "cancel", MONTH)
    assert result.output == "2015-01: no longer scheduled (draft).\n"
    assert run_cli(*url, "schedule", "list").output == "Nothing scheduled.\n"
    result = run_cli(*url, "schedule", MONTH, "--at", "2026-03-08 02:30", code=1)
    assert "does not exist in America/Toronto" in result.output


def test_misfire_inside_grace_sends_once(loaded_nl: Newsletter, smtp_server: SMTPCatcher) -> None:
    set_scheduled(loaded_nl, AT)
    report = send_scheduled(loaded_nl, MONTH, now=AT + GRACE - timedelta(minutes=1))
    assert report is not None and report.sent == 3
    assert send_scheduled(loaded_nl, MONTH, now=AT + GRACE) is None  # claimed already: not again
    assert sorted(to_subscribers(smtp_server)) == sorted(SUBSCRIBERS)
    assert edition_status(loaded_nl) is EditionStatus.SENT


def test_misfire_outside_grace_is_missed_and_the_editor_told(loaded_nl: Newsletter,
                                                             smtp_server: SMTPCatcher) -> None:
    set_scheduled(loaded_nl, AT)
    notifier = Notifier(loaded_nl.config.with_overrides(editor_email=EDITOR))
    assert send_scheduled(loaded_nl, MONTH, now=AT + GRACE + timedelta(seconds=1), notifier=notifier) is None
    assert to_subscribers(smtp_server) == []
    [alert] = smtp_server.messages
    assert alert.recipients == (EDITOR,)
    assert "scheduled send missed" in str(alert.parse()["Subject"])
    assert [(r.month, r.state) for r in list_schedules(loaded_nl)] == [(MONTH, "missed")]
    assert edition_status(loaded_nl) is EditionStatus.MISSED
    schedule(loaded_nl, MONTH, "2030-02-01 09:00")  # a missed edition can be scheduled again
    assert edition_status(loaded_nl) is EditionStatus.SCHEDULED
    unschedule(loaded_nl, MONTH)
    assert list_schedules(loaded_nl) == [] and edition_status(loaded_nl) is EditionStatus.DRAFT


def test_report_goes_to_the_editor(loaded_nl: Newsletter, smtp_server: SMTPCatcher) -> None:
    set_scheduled(loaded_nl, AT)
    send_scheduled(loaded_nl, MONTH, now=AT,
                   notifier=Notifier(loaded_nl.config.with_overrides(editor_email=EDITOR)))
    notes = [m.parse() for m in smtp_server.messages if m.recipients == (EDITOR,)]
    assert [str(n["Subject"]).split("] ")[1] for n in notes] == ["2015-01: sending started", "2015-01: sent"]
    assert "Sent: 3\n" in plain_text(notes[1])


def test_an_alert_the_mail_server_refused_is_delivered_by_a_later_poll(loaded_nl: Newsletter,
                                                                       smtp_server: SMTPCatcher) -> None:
    down = loaded_nl.config.with_overrides(editor_email=EDITOR, smtp_port=free_port())  # refused
    set_scheduled(loaded_nl, AT)
    send_scheduled(loaded_nl, MONTH, now=AT + GRACE + timedelta(minutes=1),
                   notifier=Notifier(down, store=loaded_nl))
    assert smtp_server.messages == [] and edition_status(loaded_nl) is EditionStatus.MISSED
    with loaded_nl.session() as session:
        [kept] = session.query(EditorNote).all()
        assert (kept.attempts, kept.sent_at) == (1, None)
        assert kept.subject == "ALERT 2015-01: scheduled send missed"
        assert "Connection refused" in (kept.last_error or "")
    assert Notifier(loaded_nl.config, store=loaded_nl).retry_undelivered(
        datetime.now(UTC)) == 0  # tried < 1 min ago
    later = datetime.now(UTC) + timedelta(minutes=1)
    with loaded_nl.session() as session:  # two schedulers polling together: one takes the attempt
        assert [claim_retry(session, kept.id, later) for _ in range(2)] == [True, False]
    later += timedelta(minutes=1)
    scheduler = Scheduler(loaded_nl, poll_seconds=3600, clock=lambda: later)
    scheduler.start()  # its first poll delivers it
    try:
        assert len(smtp_server.messages) == 1
        later += timedelta(minutes=1)
        scheduler.sync()  # and never again
    finally:
        scheduler.stop()
    [alert] = [m.parse() for m in smtp_server.messages]
    assert str(alert["Subject"]).endswith("] ALERT 2015-01: scheduled send missed")
    assert plain_text(alert).startswith("(Written at ") and "was due at 2030-01-01 14:00 UTC" \
        in plain_text(alert)


def test_a_store_that_fails_does_not_stop_the_alert(smtp_server: SMTPCatcher, tmp_path: Path) -> None:
    """The alert may be about the database itself: keeping the note fails, sending it does not."""
    broken = Newsletter.open(make_config(f"sqlite:///{tmp_path / 'never-initialised.db'}",
                                         smtp_host=smtp_server.host, smtp_port=smtp_server.port,
                                         editor_email=EDITOR))
    try:
        Notifier(broken.config, store=broken).note("ALERT 2015-01: scheduled send failed",
                                                   "The store is down.")
    finally:
        broken.close()
    [received] = smtp_server.messages
    assert re.search(rb"(?<!\r)\n", received.data) is None, "bare LF on the wire (RFC 5321 2.3.8)"
    alert = received.parse()
    assert str(alert["Subject"]).endswith("] ALERT 2015-01: scheduled send failed")
    assert plain_text(alert) == "The store is down.\n"


def test_cancel_and_reschedule_while_the_scheduler_runs(loaded_nl: Newsletter) -> None:
    now = datetime.now(UTC)
    scheduler = Scheduler(loaded_nl, poll_seconds=3600, clock=lambda: now)
    scheduler.start()
    try:
        schedule(loaded_nl, MONTH, "2030-01-01 09:00", "America/Toronto")
        scheduler.sync()
        [job] = scheduler.aps.get_jobs(jobstore="default")
        assert job.next_run_time == datetime(2030, 1, 1, 14, tzinfo=UTC)
        schedule(loaded_nl, MONTH, "2030-01-02 09:00", "America/Toronto")
        scheduler.sync()
        [job] = scheduler.aps.get_jobs(jobstore="default")
        assert job.next_run_time == datetime(2030, 1, 2, 14, tzinfo=UTC)
        unschedule(loaded_nl, MONTH)
        scheduler.sync()
        assert scheduler.aps.get_jobs(jobstore="default") == []
    finally:
        scheduler.stop()


def test_stop_during_a_sync_does_not_deadlock(loaded_nl: Newsletter) -> None:
    """APScheduler's shutdown(wait=True) holds its job store lock while waiting for running jobs;
    a sync that reaches for that lock afterwards must not be running then."""
    in_sync, slow = threading.Event(), threading.Event()

    def clock() -> datetime:
        if slow.is_set():
            in_sync.set()
            time.sleep(1)
        return datetime.now(UTC)

    scheduler = Scheduler(loaded_nl, poll_seconds=3600, clock=clock)
    scheduler.start()
    slow.set()
    scheduler.aps.add_job(scheduler.sync, jobstore="local")
    assert in_sync.wait(5)
    stopper = threading.Thread(target=scheduler.stop, daemon=True)
    stopper.start()
    stopper.join(10)
    assert not stopper.is_alive(), "stop() deadlocked with a running sync"


def test_a_poll_resumes_a_scheduled_send_left_unfinished(loaded_nl: Newsletter,
                                                         smtp_server: SMTPCatcher) -> None:
    """Stopped after its first message (as by SIGTERM in another process): the next poll of a
    running scheduler finishes it, without a restart."""
    set_scheduled(loaded_nl, AT)
    scheduler = Scheduler(loaded_nl, poll_seconds=3600)
    scheduler.start()
    try:
        stopped = threading.Event()
        transport = HookAfterFirstBatch(make_transport(loaded_nl.config.with_overrides(batch_size=1)),
                                        stopped.set)
        report = Sender(loaded_nl, transport, stop=stopped).send(MONTH)
        transport.close()
        assert (report.stopped, report.sent, edition_status(loaded_nl)) == \
            ("interrupted", 1, EditionStatus.SENDING)
        scheduler.sync()
        assert wait_for(lambda: edition_status(loaded_nl) is EditionStatus.SENT, 10)
    finally:
        scheduler.stop()
    assert Counter(to_subscribers(smtp_server)) == Counter(SUBSCRIBERS)


def test_test_send_marks_the_subject(loaded_nl: Newsletter, smtp_server: SMTPCatcher,
                                     run_cli: RunCli) -> None:
    run_cli("--database-url", loaded_nl.config.database_url, "edition", "test-send", MONTH,
            "--to", EDITOR, "--topics", "empathy")
    [message] = smtp_server.messages
    assert str(message.parse()["Subject"]).startswith("[TEST] ")
    assert message.recipients == (EDITOR,)
    assert edition_status(loaded_nl) is EditionStatus.DRAFT  # outside the ledger: nothing changed


# --- real scheduler processes ---------------------------------------------------------------

EXECUTOR_LOG = ("import logging; executor = logging.getLogger('apscheduler.executors.default'); "
                "handler = logging.StreamHandler(); executor.addHandler(handler); "
                "handler.setFormatter(logging.Formatter('%(process)d executor: %(message)s')); "
                "executor.setLevel(logging.INFO); executor.propagate = False; ")
"""Prepended to the scheduler process's code: APScheduler's executor logs every job it runs (each
poll, each send) as `PID executor: ...`, which the CLI keeps quiet; `settled` reads it."""


def start_scheduler(nl: Newsletter, log: Path, extra: dict[str, str] | None = None,
                    command: tuple[str, ...] = ("scheduler", "--poll", "1")) -> subprocess.Popen[bytes]:
    c = nl.config
    env = {**os.environ, "NEWSLETTER_CONFIG": "/nonexistent.toml",
           "NEWSLETTER_DATABASE_URL": c.database_url, "NEWSLETTER_SECRET_KEY": TEST_SECRET,
           "NEWSLETTER_BASE_URL": c.base_url, "NEWSLETTER_FROM": c.from_,
           "NEWSLETTER_SMTP_HOST": c.smtp_host, "NEWSLETTER_SMTP_PORT": str(c.smtp_port),
           "NEWSLETTER_EDITOR_EMAIL": EDITOR, "PYTHONPATH": str(REPO), **(extra or {})}
    code = ("import newsletter.cli.schedule; from newsletter.cli import cli; "
            f"cli({list(command)!r}, prog_name='newsletter')")
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-c", EXECUTOR_LOG + code], env=env, cwd=REPO,
                                stdout=out, stderr=subprocess.STDOUT)


def wait_for(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _jobs(log: Path, process: subprocess.Popen[bytes]) -> tuple[int, int]:
    """(polls finished, jobs running) in `process`, from its executor's lines in `log`."""
    prefix = f"{process.pid} executor: "
    lines = [line[len(prefix):] for line in log.read_text().splitlines() if line.startswith(prefix)]
    ended = [line for line in lines if line.endswith((" executed successfully", " raised an exception"))]
    polls = sum(line.startswith('Job "Scheduler.sync ') for line in ended)
    return polls, sum(line.startswith("Running job ") for line in lines) - len(ended)


def settled(log: Path, processes: list[subprocess.Popen[bytes]], polls: int = 3) -> bool:
    """Instead of "wait a while, then check nothing else went out": each scheduler process has
    finished `polls` more polls and runs no job. Of 3 polls, 2 began after this call, and what the
    first of those started was handed to the pool before the last ended; all of it has finished."""
    start = {process.pid: _jobs(log, process)[0] for process in processes}

    def quiet() -> bool:
        return all(polled >= start[p.pid] + polls and not running
                   for p in processes for polled, running in [_jobs(log, p)])

    return wait_for(quiet, 10 + 2 * polls)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM and wait; a scheduler that ignores it is killed (never leaked) and the test fails."""
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError("the scheduler did not stop within 15 s of SIGTERM") from None
    assert code == 0


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    """Stop every process even when one fails to stop cleanly; then report the failures."""
    failures = []
    for process in processes:
        try:
            stop(process)
        except AssertionError as err:
            failures.append(err)
    assert not failures, failures


def in_seconds(seconds: int) -> datetime:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)


@pytest.mark.process
def test_restarted_scheduler_sends_once_at_the_time(loaded_nl: Newsletter, smtp_server: SMTPCatcher,
                                                    tmp_path: Path) -> None:
    log = tmp_path / "scheduler.log"
    at = in_seconds(6)
    set_scheduled(loaded_nl, at)
    first = start_scheduler(loaded_nl, log)
    assert wait_for(lambda: "job set" in log.read_text(), 10), log.read_text()
    stop(first)
    assert datetime.now(UTC) < at and smtp_server.messages == []
    second = start_scheduler(loaded_nl, log)
    try:
        assert wait_for(lambda: len(to_subscribers(smtp_server)) >= 3, 20), log.read_text()
        assert datetime.now(UTC) >= at
        assert settled(log, [second]), log.read_text()  # polls after the send: nothing else goes out
    finally:
        stop(second)
    assert sorted(to_subscribers(smtp_server)) == sorted(SUBSCRIBERS)
    assert edition_status(loaded_nl) is EditionStatus.SENT


@pytest.mark.process
def test_two_scheduler_processes_send_one_copy_each(loaded_nl: Newsletter, smtp_server: SMTPCatcher,
                                                    tmp_path: Path) -> None:
    log = tmp_path / "scheduler.log"
    set_scheduled(loaded_nl, in_seconds(4))
    processes = [start_scheduler(loaded_nl, log) for _ in range(2)]
    try:
        assert wait_for(lambda: edition_status(loaded_nl) is EditionStatus.SENT, 20), log.read_text()
        assert settled(log, processes), log.read_text()
    finally:
        stop_all(processes)
    assert Counter(to_subscribers(smtp_server)) == Counter(SUBSCRIBERS)
    started = [m for m in smtp_server.messages if "sending started" in str(m.parse()["Subject"])]
    assert len(started) == 1


@pytest.mark.process
def test_cancel_and_reschedule_reach_a_running_scheduler_process(loaded_nl: Newsletter,
                                                                 smtp_server: SMTPCatcher,
                                                                 tmp_path: Path) -> None:
    log = tmp_path / "scheduler.log"
    process = start_scheduler(loaded_nl, log)
    try:  # its time counts from when the process runs: starting takes seconds on a busy machine
        assert wait_for(lambda: "scheduler started" in log.read_text(), 20), log.read_text()
        first = in_seconds(4)
        set_scheduled(loaded_nl, first)
        assert wait_for(lambda: "send:2015-01: job set" in log.read_text(), 10), log.read_text()
        unschedule(loaded_nl, MONTH)
        assert wait_for(lambda: "send:2015-01: no longer due; removing its job" in log.read_text(), 10), \
            log.read_text()
        while datetime.now(UTC) < first:  # the time the removed job had, on the process's clock
            time.sleep(0.2)
        assert settled(log, [process]), log.read_text()
        assert smtp_server.messages == [] and edition_status(loaded_nl) is EditionStatus.DRAFT
        set_scheduled(loaded_nl, in_seconds(3))
        assert wait_for(lambda: edition_status(loaded_nl) is EditionStatus.SENT, 20), log.read_text()
        assert settled(log, [process]), log.read_text()
    finally:
        stop(process)
    assert Counter(to_subscribers(smtp_server)) == Counter(SUBSCRIBERS)


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except (urllib.error.URLError, OSError):
        return None


@pytest.mark.process
def test_run_serves_the_web_app_and_sends_on_time(loaded_nl: Newsletter, smtp_server: SMTPCatcher,
                                                   tmp_path: Path) -> None:
    """`newsletter run`, the one-machine deployment (and the systemd unit's command): the pages
    answer while the scheduler sends at its time, and SIGTERM ends both cleanly."""
    port = free_port()
    log = tmp_path / "run.log"
    at = in_seconds(5)
    set_scheduled(loaded_nl, at)
    process = start_scheduler(loaded_nl, log, command=("run", "--port", str(port)))
    try:
        assert wait_for(lambda: http_status(f"http://127.0.0.1:{port}/subscribe") == 200, 15), \
            log.read_text()
        assert wait_for(lambda: edition_status(loaded_nl) is EditionStatus.SENT, 20), log.read_text()
        assert datetime.now(UTC) >= at
        assert http_status(f"http://127.0.0.1:{port}/subscribe") == 200
    finally:
        stop(process)
    assert Counter(to_subscribers(smtp_server)) == Counter(SUBSCRIBERS)


def test_an_undo_that_meets_the_schedulers_claim_never_turns_a_send_back_into_a_draft(
        loaded_nl: Newsletter) -> None:
    """The scheduler's claim holds the edition's row (status → sending, not yet committed) while
    the console's undo arrives: the undo waits for it, then finds the edition sending and says so,
    instead of overwriting `sending` with `draft` after the send has begun."""
    set_scheduled(loaded_nl, datetime.now(UTC) + timedelta(seconds=30))
    outcome: list[object] = []
    with loaded_nl.session() as claiming:
        claiming.execute(update(Edition).where(Edition.month == MONTH)
                         .values(status=EditionStatus.SENDING))  # the row is locked from here

        def undo() -> None:
            try:
                outcome.append(unschedule(loaded_nl, MONTH))
            except StateError as err:
                outcome.append(err)

        undoing = threading.Thread(target=undo)
        undoing.start()
        undoing.join(0.5)  # SQLite: the undo waits for the write lock; PostgreSQL: for the row
        assert undoing.is_alive() and outcome == []
    undoing.join(30)
    [result] = outcome
    assert isinstance(result, StateError) and "sending, not scheduled" in str(result)
    with loaded_nl.session() as session:
        edition = session.query(Edition).filter_by(month=MONTH).one()
        assert edition.status is EditionStatus.SENDING and edition.scheduled_at is not None
