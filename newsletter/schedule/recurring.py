"""The monthly rule at work: at the rule's time, send the month's edition if it is complete, else
tell the editor what is missing; some days before, remind the editor if it is not yet complete.

Every decision is one row of `recurring_runs`, unique per (kind, month): the process whose insert
lands is the one that acts, so two schedulers, or a restart, never act twice. A complete edition
is put on the ordinary schedule at the rule's time, in the same transaction as its decision, and
sent by the caller (`scheduler.send_scheduled`): from there it is claimed, resumed and reported like a send
the editor scheduled by hand, and a crash right after the decision still leaves it scheduled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..config import Config
from ..content.models import Edition, EditionStatus, Summary, SummaryStatus
from ..content.store import assemble_edition, list_summaries
from ..context import Newsletter
from ..errors import ContentError, StateError
from ..monthly_rule import Occurrence, RecurringRule, occurrence, occurrences_between, parse_rule
from ..notify.notifier import Notifier
from .editions import Decision, check_sendable, decide, grace_of
from .models import RecurringKind, RecurringOutcome, RecurringRun, RuleActivation

__all__ = ["Due", "MonthlyRule", "describe", "pending", "run_recurring"]

log = logging.getLogger(__name__)
LOOK_BACK = timedelta(days=93)
"""How far back a restarted scheduler looks for occurrences nobody decided (a quarter)."""
LOOK_AHEAD = timedelta(days=62)


@dataclass(frozen=True)
class Due:
    kind: RecurringKind
    month: str
    at: datetime


@dataclass(frozen=True)
class MonthlyRule:
    """The configured rule with its zone and reminder offset; None from `of` when it is off."""

    rule: RecurringRule
    zone: ZoneInfo
    reminder_days: int

    @classmethod
    def of(cls, config: Config) -> MonthlyRule | None:
        if not config.recurring_rule.strip():
            return None
        return cls(parse_rule(config.recurring_rule), ZoneInfo(config.timezone),
                   config.reminder_days_before)

    @property
    def key(self) -> str:
        return f"{self.rule} ({self.zone.key}), reminder {self.reminder_days} days before"

    def occurrence(self, month: str) -> Occurrence:
        year, number = (int(part) for part in month.split("-"))
        return occurrence(self.rule, year, number, self.zone, self.reminder_days)

    def due_between(self, start: datetime, end: datetime) -> list[Due]:
        """Sends and reminders falling in [start, end], in time order (no reminder when 0 days)."""
        found = []
        for current in occurrences_between(self.rule, self.zone, self.reminder_days, start, end):
            if self.reminder_days and start <= current.remind_at <= end:
                found.append(Due(RecurringKind.REMINDER, current.month, current.remind_at))
            if start <= current.send_at <= end:
                found.append(Due(RecurringKind.SEND, current.month, current.send_at))
        return sorted(found, key=lambda due: due.at)

    def local(self, when: datetime) -> str:
        return f"{when.astimezone(self.zone):%a %d %b %Y %H:%M %Z} ({self.zone.key})"


def armed_at(nl: Newsletter, monthly: MonthlyRule, now: datetime) -> datetime:
    """When schedulers first ran with this rule (now, if this is the first time)."""
    with nl.session() as session:
        found = session.scalar(select(RuleActivation.armed_at).where(RuleActivation.rule == monthly.key))
        if found is not None:
            return found
    try:
        with nl.session() as session:
            session.add(RuleActivation(rule=monthly.key, armed_at=now))
        log.info("monthly rule %s active from %s", monthly.key, now)
        return now
    except IntegrityError:
        return armed_at(nl, monthly, now)


def decided(nl: Newsletter, months: set[str]) -> set[tuple[RecurringKind, str]]:
    with nl.session() as session:
        rows = session.execute(select(RecurringRun.kind, RecurringRun.month)
                               .where(RecurringRun.month.in_(months))).all()
    return {(kind, month) for kind, month in rows}


def pending(nl: Newsletter, monthly: MonthlyRule, now: datetime) -> list[Due]:
    """Occurrences a scheduler still owes a decision: due ones (act now) and the coming ones."""
    since = max(armed_at(nl, monthly, now), now - LOOK_BACK)
    candidates = [due for due in monthly.due_between(since, now + LOOK_AHEAD) if due.at > since]
    done = decided(nl, {due.month for due in candidates})
    return [due for due in candidates if (due.kind, due.month) not in done]


def _decision(due: Due, outcome: RecurringOutcome, detail: str = "") -> RecurringRun:
    return RecurringRun(kind=due.kind, month=due.month, due_at=due.at, outcome=outcome, detail=detail)


def _record(nl: Newsletter, due: Due, outcome: RecurringOutcome, detail: str = "") -> bool:
    """Store the decision; False when another process made it first (and so acts instead)."""
    try:
        with nl.session() as session:
            session.add(_decision(due, outcome, detail))
    except IntegrityError:
        log.info("%s %s: already decided by another process", due.month, due.kind.value)
        return False
    log.info("%s %s: %s%s", due.month, due.kind.value, outcome.value, f" ({detail})" if detail else "")
    return True


def run_recurring(nl: Newsletter, monthly: MonthlyRule, kind: RecurringKind, month: str,
                  now: datetime, notifier: Notifier) -> RecurringOutcome | None:
    """Act on one occurrence; None when it is not due yet or another process decided it.
    SCHEDULED means the edition is now scheduled and due: the caller sends it."""
    current = monthly.occurrence(month)
    if kind is RecurringKind.REMINDER:
        return _remind(nl, monthly, Due(kind, month, current.remind_at), current, now, notifier)
    return _send(nl, monthly, Due(kind, month, current.send_at), now, notifier)


def _remind(nl: Newsletter, monthly: MonthlyRule, due: Due, current: Occurrence, now: datetime,
            notifier: Notifier) -> RecurringOutcome | None:
    if now < due.at:
        return None
    if now >= current.send_at:
        outcome, detail = RecurringOutcome.SKIPPED, "the send time came before the reminder ran"
        return outcome if _record(nl, due, outcome, detail) else None
    with nl.session() as session:
        summaries = [(s.headline, s.status) for s in list_summaries(session, due.month)]
    ready = sum(status is SummaryStatus.READY for _, status in summaries)
    if ready >= 2:
        return RecurringOutcome.NOT_NEEDED if _record(nl, due, RecurringOutcome.NOT_NEEDED,
                                                       f"{ready} ready") else None
    if not _record(nl, due, RecurringOutcome.REMINDED, f"{ready} ready"):
        return None
    lines = [f"- [{status.value}] {headline}" for headline, status in summaries] or ["- (none yet)"]
    notifier.note(f"Reminder: the {due.month} edition needs summaries", (
        f"The {due.month} edition goes out automatically on {monthly.local(current.send_at)} "
        f"(rule: {monthly.rule}).\nIt has {ready} ready "
        f"{'summary' if ready == 1 else 'summaries'}; it needs 2 or 3. This month's summaries:\n"
        + "\n".join(lines) + "\n\nAdd them with `newsletter summary add FILE` (status: ready). "
        "If it is still incomplete at the send time, nothing is sent and you are told what is missing."))
    return RecurringOutcome.REMINDED


def _send(nl: Newsletter, monthly: MonthlyRule, due: Due, now: datetime,
          notifier: Notifier) -> RecurringOutcome | None:
    decision = decide(now, due.at, grace_of(nl))
    if decision is Decision.WAIT:
        return None
    if decision is Decision.MISSED:
        late = f"no scheduler ran until {now:%Y-%m-%d %H:%M} UTC"
        if not _record(nl, due, RecurringOutcome.MISSED, late):
            return None
        notifier.missed(due.month, due.at)
        return RecurringOutcome.MISSED
    status = _edition_status(nl, due.month)
    if status not in (None, EditionStatus.DRAFT):
        outcome, detail = RecurringOutcome.SKIPPED, f"the editor had made the edition {status.value}"
        return outcome if _record(nl, due, outcome, detail) else None
    try:
        problems = _assemble(nl, due.month)
    except IntegrityError:
        log.info("%s send: another process is assembling the edition; it decides", due.month)
        return None
    if problems:
        if not _record(nl, due, RecurringOutcome.INCOMPLETE, "; ".join(problems)):
            return None
        notifier.note(f"ALERT {due.month}: automatic send held back, the edition is incomplete", (
            f"The {due.month} edition was due on {monthly.local(due.at)} (rule: {monthly.rule}), "
            "but it is not complete, so nothing was sent. What is missing:\n"
            + "\n".join(f"- {p}" for p in problems) + "\n\nFix it, then schedule it: "
            f"newsletter schedule {due.month} --at \"YYYY-MM-DD HH:MM\""), level=logging.ERROR)
        return RecurringOutcome.INCOMPLETE
    return RecurringOutcome.SCHEDULED if _put_on_schedule(nl, due) else None


def _edition_status(nl: Newsletter, month: str) -> EditionStatus | None:
    with nl.session() as session:
        return session.scalar(select(Edition.status).where(Edition.month == month))


def _assemble(nl: Newsletter, month: str) -> list[str]:
    """(Re)assemble the month's draft edition from its ready summaries, keeping the order the
    editor gave those already in it; return what stops it from going out (empty: nothing)."""
    try:
        with nl.session() as session:
            edition = session.scalar(select(Edition).where(Edition.month == month))
            ready = set(session.scalars(select(Summary.id).where(
                Summary.month == month, Summary.status == SummaryStatus.READY)))
            order = [item.summary_id for item in edition.items if item.summary_id in ready] \
                if edition is not None else None
            assemble_edition(session, month, order=order)
    except ContentError as err:
        problems = [err.reason]
    except StateError as err:  # another process moved the edition on since `_send` looked
        problems = [str(err)]
    else:
        problems = check_sendable(nl, month)
    return problems + [f"summary still in draft: {h}" for h in _draft_headlines(nl, month)] \
        if problems else []


def _draft_headlines(nl: Newsletter, month: str) -> list[str]:
    with nl.session() as session:
        return [s.headline for s in list_summaries(session, month) if s.status is SummaryStatus.DRAFT]


def _put_on_schedule(nl: Newsletter, due: Due) -> bool:
    """Decide and schedule in one transaction: if this process loses either, it does nothing."""
    try:
        with nl.session() as session:
            moved = session.execute(update(Edition).where(
                Edition.month == due.month, Edition.status == EditionStatus.DRAFT)
                .values(status=EditionStatus.SCHEDULED, scheduled_at=due.at)).rowcount  # type: ignore[attr-defined]
            if moved != 1:
                return False
            session.add(_decision(due, RecurringOutcome.SCHEDULED))
    except IntegrityError:
        log.info("%s send: already decided by another process", due.month)
        return False
    log.info("%s send: complete; scheduled for %s and sending", due.month, due.at)
    return True


def describe(nl: Newsletter, monthly: MonthlyRule, now: datetime, *, history: int = 12) -> dict[str, Any]:
    """The rule as the editor wants to see it: what comes next and what it decided lately."""
    with nl.session() as session:
        armed = session.scalar(select(RuleActivation.armed_at).where(RuleActivation.rule == monthly.key))
        recent = list(session.scalars(select(RecurringRun).order_by(RecurringRun.due_at.desc(),
                                                                    RecurringRun.id.desc()).limit(history)))
    coming = monthly.due_between(now, now + LOOK_AHEAD)
    return {
        "rule": str(monthly.rule), "timezone": monthly.zone.key,
        "reminder_days_before": monthly.reminder_days,
        "active_since": f"{armed:%Y-%m-%d %H:%M} UTC" if armed else None,
        "next": [{"kind": d.kind.value, "month": d.month, "local": monthly.local(d.at),
                  "utc": f"{d.at:%Y-%m-%d %H:%M} UTC"} for d in coming],
        "decisions": [{"kind": r.kind.value, "month": r.month, "due": monthly.local(r.due_at),
                       "outcome": r.outcome.value, "detail": r.detail} for r in recent],
    }
