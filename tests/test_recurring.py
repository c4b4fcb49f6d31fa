"""The monthly rule: when it falls (DST included), what it decides (send, hold back and say why,
remind, missed, leave the editor's own schedule alone), that it decides once, and that scheduler
processes running it send one copy to each subscriber against a loopback SMTP server."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

import newsletter.cli.schedule  # noqa: F401  (registers the commands)
from newsletter.catcher import SMTPCatcher
from newsletter.content.models import Edition, EditionStatus
from newsletter.context import Newsletter
from newsletter.errors import ConfigError
from newsletter.monthly_rule import ORDINALS, WEEKDAYS, parse_rule
from newsletter.notify.notifier import Notifier
from newsletter.schedule.editions import schedule
from newsletter.schedule.models import RecurringKind, RecurringOutcome, RecurringRun, RuleActivation
from newsletter.schedule.process import Scheduler
from newsletter.schedule.recurring import MonthlyRule, armed_at, pending, run_recurring
from tests.builders import load_month
from tests.conftest import POSTGRES_URL, MakeNewsletter, RunCli, _postgres_schema_url, make_config
from tests.test_scheduling import (
    EDITOR,
    SUBSCRIBERS,
    plain_text,
    poll,
    settled,
    start_scheduler,
    stop_all,
    to_subscribers,
    wait_for,
)

TORONTO = ZoneInfo("America/Toronto")
RULE = "first tuesday 09:00"
MONTH = "2030-01"
SEND_AT = datetime(2030, 1, 1, 14, 0, tzinfo=UTC)  # Tuesday 1 January 2030, 09:00 EST
REMIND_AT = datetime(2029, 12, 27, 14, 0, tzinfo=UTC)  # five days before, same wall-clock time


def monthly(rule: str = RULE, days: int = 5) -> MonthlyRule:
    return MonthlyRule(parse_rule(rule), TORONTO, days)


# --- the rule --------------------------------------------------------------------------------

@pytest.mark.parametrize(("rule", "month", "local"), [
    ("first tuesday 09:00", "2026-12", datetime(2026, 12, 1, 9, 0)),
    ("First Tuesday of each month at 09:00", "2027-01", datetime(2027, 1, 5, 9, 0)),
    ("last friday 16:30", "2026-10", datetime(2026, 10, 30, 16, 30)),
    ("fourth monday 8:05", "2026-11", datetime(2026, 11, 23, 8, 5)),
    ("day 28 09:00", "2027-02", datetime(2027, 2, 28, 9, 0)),
])
def test_rule_falls_on_the_local_date_and_time(rule: str, month: str, local: datetime) -> None:
    assert monthly(rule).occurrence(month).send_at == local.replace(tzinfo=TORONTO).astimezone(UTC)


def test_reminder_keeps_the_wall_clock_time_across_a_dst_change() -> None:
    november = monthly().occurrence("2026-11")  # Tue 3 Nov (EST); five days before is still EDT
    assert november.send_at == datetime(2026, 11, 3, 14, 0, tzinfo=UTC)
    assert november.remind_at == datetime(2026, 10, 29, 13, 0, tzinfo=UTC)


def test_dst_gap_and_overlap_never_skip_a_month() -> None:
    gap = monthly("second sunday 02:30").occurrence("2026-03")  # 8 March 2026: 02:00 → 03:00
    assert gap.send_at == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # 03:30 EDT
    overlap = monthly("first sunday 01:30").occurrence("2026-11")  # 1 November 2026: 01:00–02:00 twice
    assert overlap.send_at == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # the first 01:30 (EDT)


@pytest.mark.parametrize(("rule", "message"), [
    ("first tuesday", "is not a monthly rule; write e.g."),
    ("fifth tuesday 09:00", "is not a monthly rule"),
    ("first tuesday 25:00", "is not a monthly rule"),
    ("day 31 09:00", "day 31 is not a day every month has"),
    ("day 0 09:00", "day 0 is not a day every month has"),
])
def test_bad_rules_are_refused_when_the_config_loads(rule: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"recurring_rule: .*{message}"):
        make_config("sqlite://", recurring_rule=rule)


def test_bad_zone_and_reminder_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="timezone: 'Mars/Olympus' is not a time zone"):
        make_config("sqlite://", timezone="Mars/Olympus")
    with pytest.raises(ConfigError, match="reminder_days_before: must be 0"):
        make_config("sqlite://", reminder_days_before=40)


def test_due_between_orders_reminders_and_sends() -> None:
    found = monthly().due_between(datetime(2029, 12, 1, tzinfo=UTC), datetime(2030, 2, 1, tzinfo=UTC))
    assert [(d.kind.value, d.month, d.at) for d in found] == [
        ("send", "2029-12", datetime(2029, 12, 4, 14, 0, tzinfo=UTC)),
        ("reminder", "2030-01", REMIND_AT), ("send", "2030-01", SEND_AT),
        ("reminder", "2030-02", datetime(2030, 1, 31, 14, 0, tzinfo=UTC))]
    assert [d.kind for d in monthly(days=0).due_between(REMIND_AT, SEND_AT)] == [RecurringKind.SEND]


# --- decisions -------------------------------------------------------------------------------

RULE_CONFIG = {"recurring_rule": RULE, "timezone": "America/Toronto", "editor_email": EDITOR}


def decide_now(nl: Newsletter, kind: RecurringKind, now: datetime) -> RecurringOutcome | None:
    rule = MonthlyRule.of(nl.config)
    assert rule is not None
    return run_recurring(nl, rule, kind, MONTH, now, Notifier(nl.config))


def editor_notes(catcher: SMTPCatcher) -> list[tuple[str, str]]:
    notes = [m.parse() for m in catcher.messages if m.recipients == (EDITOR,)]
    return [(str(n["Subject"]), plain_text(n)) for n in notes]


def runs(nl: Newsletter) -> list[tuple[str, str, str]]:
    with nl.session() as session:
        return [(r.kind.value, r.month, r.outcome.value) for r in
                session.scalars(select(RecurringRun).order_by(RecurringRun.id))]


def test_incomplete_month_sends_nothing_and_tells_the_editor_what_is_missing(
        make_newsletter: MakeNewsletter, smtp_server: SMTPCatcher) -> None:
    nl = make_newsletter(**RULE_CONFIG)
    load_month(nl, month=MONTH, statuses=("ready", "draft"), assemble=False)
    assert decide_now(nl, RecurringKind.SEND, SEND_AT + timedelta(minutes=1)) is RecurringOutcome.INCOMPLETE
    assert decide_now(nl, RecurringKind.SEND, SEND_AT + timedelta(minutes=2)) is None  # decided once
    [(subject, body)] = editor_notes(smtp_server)
    assert subject == "[Psychotherapy Practice Research Network] ALERT 2030-01: automatic send held " \
                      "back, the edition is incomplete"
    flat = " ".join(body.split())  # notes are wrapped at 72 columns
    assert "due on Tue 01 Jan 2030 09:00 EST (America/Toronto)" in flat
    assert "\n- the edition has 1 summaries; it needs 2 or 3\n" in body
    assert "- summary still in draft: Transference in Psychotherapy: A Review of the Research" in flat
    assert to_subscribers(smtp_server) == []
    assert runs(nl) == [("send", MONTH, "incomplete")]
    with nl.session() as session:
        assert session.scalar(select(Edition.status).where(Edition.month == MONTH)) is EditionStatus.DRAFT


def test_month_without_any_summary_is_reported(make_newsletter: MakeNewsletter,
                                               smtp_server: SMTPCatcher) -> None:
    nl = make_newsletter(**RULE_CONFIG)
    assert decide_now(nl, RecurringKind.SEND, SEND_AT) is RecurringOutcome.INCOMPLETE
    [(_, body)] = editor_notes(smtp_server)
    assert "- no ready summaries for 2030-01: nothing to assemble\n" in body


def test_complete_month_is_assembled_and_put_on_the_schedule(make_newsletter: MakeNewsletter) -> None:
    nl = make_newsletter(**RULE_CONFIG)
    load_month(nl, month=MONTH, assemble=False)
    assert decide_now(nl, RecurringKind.SEND, SEND_AT - timedelta(seconds=1)) is None  # not yet
    assert decide_now(nl, RecurringKind.SEND, SEND_AT) is RecurringOutcome.SCHEDULED
    with nl.session() as session:
        edition = session.scalars(select(Edition).where(Edition.month == MONTH)).one()
        assert (edition.status, edition.scheduled_at, len(edition.items)) == \
            (EditionStatus.SCHEDULED, SEND_AT, 3)
    assert decide_now(nl, RecurringKind.SEND, SEND_AT) is None


def test_the_editors_own_schedule_is_left_alone(make_newsletter: MakeNewsletter,
                                                smtp_server: SMTPCatcher) -> None:
    nl = make_newsletter(**RULE_CONFIG)
    load_month(nl, month=MONTH)
    schedule(nl, MONTH, "2030-01-03 10:00", now=datetime(2029, 12, 1, tzinfo=UTC))
    assert decide_now(nl, RecurringKind.SEND, SEND_AT) is RecurringOutcome.SKIPPED
    with nl.session() as session:
        edition = session.scalars(select(Edition).where(Edition.month == MONTH)).one()
        assert (edition.status, edition.scheduled_at) == \
            (EditionStatus.SCHEDULED, datetime(2030, 1, 3, 15, 0, tzinfo=UTC))
    assert smtp_server.messages == []


def test_missed_beyond_grace_alerts_the_editor(make_newsletter: MakeNewsletter,
                                               smtp_server: SMTPCatcher) -> None:
    nl = make_newsletter(**RULE_CONFIG)
    load_month(nl, month=MONTH, assemble=False)
    assert decide_now(nl, RecurringKind.SEND, SEND_AT + timedelta(hours=6, seconds=1)) \
        is RecurringOutcome.MISSED
    [(subject, _)] = editor_notes(smtp_server)
    assert subject.endswith("ALERT 2030-01: scheduled send missed")
    assert to_subscribers(smtp_server) == []


def test_reminder_only_when_fewer_than_two_are_ready(make_newsletter: MakeNewsletter,
                                                     smtp_server: SMTPCatcher) -> None:
    nl = make_newsletter(**RULE_CONFIG)
    load_month(nl, month=MONTH, statuses=("ready", "draft"), assemble=False)
    assert decide_now(nl, RecurringKind.REMINDER, REMIND_AT - timedelta(seconds=1)) is None
    assert decide_now(nl, RecurringKind.REMINDER, REMIND_AT) is RecurringOutcome.REMINDED
    assert decide_now(nl, RecurringKind.REMINDER, REMIND_AT + timedelta(hours=1)) is None
    [(subject, body)] = editor_notes(smtp_server)
    assert subject.endswith("Reminder: the 2030-01 edition needs summaries")
    flat = " ".join(body.split())  # notes are wrapped at 72 columns
    assert "goes out automatically on Tue 01 Jan 2030 09:00 EST (America/Toronto)" in flat
    assert "It has 1 ready summary; it needs 2 or 3." in flat
    assert "\n- [ready] Methods of Repairing Alliance Ruptures\n" in body
    assert "- [draft] Transference in Psychotherapy: A Review of the Research" in flat


def test_no_reminder_when_the_month_is_ready_or_the_send_time_passed(make_newsletter: MakeNewsletter,
                                                                     smtp_server: SMTPCatcher) -> None:
    nl = make_newsletter(**RULE_CONFIG)
    load_month(nl, month=MONTH, statuses=("ready", "ready"), assemble=False)
    assert decide_now(nl, RecurringKind.REMINDER, REMIND_AT) is RecurringOutcome.NOT_NEEDED
    load_month(nl, month="2030-02", statuses=("draft",), assemble=False, audience=())
    rule = MonthlyRule.of(nl.config)
    assert rule is not None
    assert run_recurring(nl, rule, RecurringKind.REMINDER, "2030-02", datetime(2030, 2, 6, tzinfo=UTC),
                         Notifier(nl.config)) is RecurringOutcome.SKIPPED
    assert smtp_server.messages == []


def test_occurrences_before_the_rule_was_armed_are_not_owed(make_newsletter: MakeNewsletter) -> None:
    nl = make_newsletter(**RULE_CONFIG)
    rule = MonthlyRule.of(nl.config)
    assert rule is not None
    armed = SEND_AT - timedelta(days=1)
    assert armed_at(nl, rule, armed) == armed
    assert armed_at(nl, rule, SEND_AT) == armed  # the first activation stands
    owed = pending(nl, rule, SEND_AT + timedelta(days=40))
    assert [(d.kind.value, d.month) for d in owed] == [
        ("send", "2030-01"), ("reminder", "2030-02"), ("send", "2030-02"),
        ("reminder", "2030-03"), ("send", "2030-03"), ("reminder", "2030-04"), ("send", "2030-04")]
    changed = MonthlyRule(parse_rule("last friday 16:00"), TORONTO, 5)
    assert armed_at(nl, changed, SEND_AT) == SEND_AT  # a new rule is armed afresh


# --- the scheduler running the rule ----------------------------------------------------------

def test_scheduler_sends_a_complete_month_once_at_the_rule_time(make_newsletter: MakeNewsletter,
                                                               smtp_server: SMTPCatcher) -> None:
    nl = make_newsletter(**RULE_CONFIG)
    load_month(nl, month=MONTH, assemble=False)
    with nl.session() as session:
        session.add(RuleActivation(rule=MonthlyRule.of(nl.config).key,  # type: ignore[union-attr]
                                   armed_at=datetime(2029, 12, 20, tzinfo=UTC)))
    now = [REMIND_AT + timedelta(hours=1)]
    scheduler = Scheduler(nl, poll_seconds=3600, clock=lambda: now[0])
    scheduler.start()
    try:
        assert wait_for(lambda: ("reminder", MONTH, "not_needed") in runs(nl), 10), runs(nl)
        stored = {job.id: job.next_run_time for job in scheduler.aps.get_jobs(jobstore="default")}
        assert stored["recurring:send:2030-01"] == SEND_AT
        assert stored["recurring:reminder:2030-02"] == datetime(2030, 1, 31, 14, 0, tzinfo=UTC)
        now[0] = SEND_AT + timedelta(seconds=30)
        scheduler.sync()
        assert wait_for(lambda: len(to_subscribers(smtp_server)) >= 3 and len(editor_notes(smtp_server)) >= 2,
                        20), smtp_server.messages
        poll(scheduler)  # the next poll sends nothing more
    finally:
        scheduler.stop()
    assert Counter(to_subscribers(smtp_server)) == Counter(SUBSCRIBERS)
    assert [s.split("] ")[1] for s, _ in editor_notes(smtp_server)] == [
        "2030-01: sending started", "2030-01: sent"]
    assert runs(nl) == [("reminder", MONTH, "not_needed"), ("send", MONTH, "scheduled")]


@pytest.fixture
def url_with_password() -> Iterator[str]:
    """PostgreSQL (trust authentication here) accepts any password, so the URL can carry one."""
    if not POSTGRES_URL:
        pytest.skip("needs NEWSLETTER_TEST_POSTGRES_URL; .ci/run sets it")
    for url in _postgres_schema_url():
        with_password = url.replace("://postgres@", "://postgres:s3cret-pw@", 1)
        assert "s3cret-pw" in with_password, "the test URL's user is not postgres"
        yield with_password


def test_stored_jobs_hold_no_password(url_with_password: str) -> None:
    store = Newsletter.open(make_config(url_with_password, recurring_rule=RULE))
    store.init()
    scheduler = Scheduler(store, poll_seconds=3600, clock=lambda: datetime(2029, 12, 1, tzinfo=UTC))
    scheduler.start()
    try:
        assert scheduler.aps.get_jobs(jobstore="default")
        with store.engine.connect() as connection:
            states = connection.execute(text("SELECT job_state FROM apscheduler_jobs")).scalars().all()
    finally:
        scheduler.stop()
        store.close()
    assert states and not any(b"s3cret-pw" in bytes(state) for state in states)


@pytest.mark.process
def test_two_scheduler_processes_running_the_rule_send_one_copy_each(
        make_newsletter: MakeNewsletter, smtp_server: SMTPCatcher, tmp_path: Path) -> None:
    """A rule due two minutes ago (armed before): both processes find it owed at start-up."""
    nl = make_newsletter(**RULE_CONFIG)
    then = (datetime.now(UTC) - timedelta(minutes=2)).astimezone(TORONTO)
    week = (then.day - 1) // 7 + 1
    ordinal = [name for name, n in ORDINALS.items() if n == week][0] if week <= 4 else "last"
    weekday = [name for name, n in WEEKDAYS.items() if n == then.weekday()][0]
    rule = f"{ordinal} {weekday} {then:%H:%M}"
    month = f"{then:%Y-%m}"
    load_month(nl, month=month, assemble=False)
    with nl.session() as session:
        key = MonthlyRule(parse_rule(rule), TORONTO, 5).key
        session.add(RuleActivation(rule=key, armed_at=datetime.now(UTC) - timedelta(hours=1)))
    log = tmp_path / "scheduler.log"
    extra = {"NEWSLETTER_RECURRING_RULE": rule, "NEWSLETTER_TIMEZONE": "America/Toronto"}
    processes = [start_scheduler(nl, log, extra) for _ in range(2)]
    try:
        assert wait_for(lambda: ("send", month, "scheduled") in runs(nl) and len(
            to_subscribers(smtp_server)) >= 3, 30), log.read_text()
        assert settled(log, processes), log.read_text()
    finally:
        stop_all(processes)
    assert Counter(to_subscribers(smtp_server)) == Counter(SUBSCRIBERS)
    started = [s for s, _ in editor_notes(smtp_server) if "sending started" in s]
    assert len(started) == 1, log.read_text()


def test_schedule_rule_shows_what_comes_next_and_what_was_decided(make_newsletter: MakeNewsletter,
                                                                  run_cli: RunCli) -> None:
    nl = make_newsletter(**RULE_CONFIG)
    load_month(nl, month=MONTH, statuses=("ready",), assemble=False)
    decide_now(nl, RecurringKind.REMINDER, REMIND_AT)
    run_cli.env.update(NEWSLETTER_RECURRING_RULE="First Tuesday of each month at 09:00",
                       NEWSLETTER_EDITOR_EMAIL=EDITOR)
    url = ["--database-url", nl.config.database_url]
    info = json.loads(run_cli(*url, "schedule", "rule", "--json").output)
    assert (info["rule"], info["timezone"], info["reminder_days_before"]) == \
        ("first tuesday 09:00", "America/Toronto", 5)
    assert info["decisions"] == [{"kind": "reminder", "month": MONTH, "outcome": "reminded",
                                  "due": "Thu 27 Dec 2029 09:00 EST (America/Toronto)",
                                  "detail": "1 ready"}]
    sends = [d["local"] for d in info["next"] if d["kind"] == "send"]
    assert sends and all(local.startswith("Tue ") and " 09:00 " in local and int(local[4:6]) <= 7
                         for local in sends)
    text_output = run_cli(*url, "schedule", "rule").output
    assert "  reminded   reminder 2030-01  Thu 27 Dec 2029 09:00 EST (America/Toronto): 1 ready\n" \
        in text_output
    off = run_cli(*url, "schedule", "rule", code=None, NEWSLETTER_RECURRING_RULE="")
    assert off.exit_code != 0 and "no monthly rule: set recurring_rule" in off.output
