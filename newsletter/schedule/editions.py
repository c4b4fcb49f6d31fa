"""Scheduling an edition: when it goes out, whether it may, and who gets to send it.

The schedule lives on the edition row (`status = scheduled`, `scheduled_at` in UTC), so the CLI,
the web app and any number of scheduler processes agree on it. The editor speaks local time in
their zone; `local_to_utc` refuses times a DST change makes non-existent or ambiguous. `decide`
is the pure rule every scheduler applies; `claim` applies it under the edition's row lock so that
only one process ever starts a send. A schedule missed beyond the grace period becomes `missed`
(its `scheduled_at` kept) until the editor schedules it again or cancels it.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, update

from ..content.assemble import for_variant
from ..content.models import Edition, EditionStatus, SummaryStatus
from ..content.store import edition_content, get_edition
from ..content.updates import retraction_problems
from ..content.variants import variant_key
from ..context import Newsletter
from ..db import utcnow
from ..errors import ContentError, NewsletterError, StateError
from ..mail.compose import make_renderer
from ..mail.render import check_rendered

__all__ = ["Decision", "ScheduleError", "ScheduleRow", "check_sendable", "check_time", "claim",
           "decide", "grace_of", "list_schedules", "local_to_utc", "schedule", "schedule_utc",
           "unschedule"]

TIME_FORMAT = "%Y-%m-%d %H:%M"
TIME_FORMATS = (TIME_FORMAT, TIME_FORMAT + ":%S")
"""What `local_to_utc` reads: minutes, or seconds too (the console's picker gives them)."""
RESCHEDULABLE = (EditionStatus.DRAFT, EditionStatus.SCHEDULED, EditionStatus.MISSED)


class ScheduleError(ContentError):
    """The schedule was refused; the message says why and what to do."""


class Decision(enum.StrEnum):
    SEND = "send"
    WAIT = "wait"
    MISSED = "missed"


def decide(now: datetime, scheduled_at: datetime, grace: timedelta) -> Decision:
    """Pure: before the time wait; up to `grace` late send at once; later than that it is missed."""
    if now < scheduled_at:
        return Decision.WAIT
    return Decision.SEND if now - scheduled_at <= grace else Decision.MISSED


def grace_of(nl: Newsletter) -> timedelta:
    return timedelta(hours=nl.config.schedule_grace_hours)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ScheduleError(f"unknown time zone {name!r}: use an Area/City name such as "
                            "America/Toronto", field="timezone") from err


def local_to_utc(at: str, tz: str) -> datetime:
    """`YYYY-MM-DD HH:MM[:SS]` on the wall clock of `tz` → aware UTC; DST gaps and overlaps refused."""
    naive = _parse_local(at)
    where = zone(tz)
    earlier, later = naive.replace(tzinfo=where, fold=0), naive.replace(tzinfo=where, fold=1)
    if earlier.astimezone(UTC).astimezone(where).replace(tzinfo=None) != naive:
        raise ScheduleError(f"{at} does not exist in {tz}: the clocks jump forward over it "
                            "(daylight saving time); pick a time outside the gap", field="at")
    if earlier.utcoffset() != later.utcoffset():
        raise ScheduleError(
            f"{at} happens twice in {tz} (the clocks go back): at {earlier.astimezone(UTC):%H:%M} "
            f"and at {later.astimezone(UTC):%H:%M} UTC; pick a time outside that hour",
            field="at")
    return earlier.astimezone(UTC)


def _parse_local(at: str) -> datetime:
    for form in TIME_FORMATS:
        try:
            return datetime.strptime(at.strip(), form)
        except ValueError:
            continue
    raise ScheduleError(f"{at!r} is not a time like 2026-12-01 09:00", field="at")


def check_time(at: str, tz: str, now: datetime) -> datetime:
    """The UTC time of `at` in `tz`, refused when it does not exist, is ambiguous or has passed:
    what `schedule` checks first, for a form that asks before it schedules."""
    when = local_to_utc(at, tz)
    if when <= now:
        raise ScheduleError(f"{at} ({tz}) is in the past; it is now "
                            f"{now.astimezone(zone(tz)):%Y-%m-%d %H:%M} there", field="at")
    return when


def check_sendable(nl: Newsletter, month: str, *, ask_crossref: bool = True) -> list[str]:
    """Why the month's edition may not go out (empty: it may): 2–3 ready summaries, and every
    variant renders, stays under Gmail's clipping size and has only absolute links; no summarised
    DOI has an unacknowledged retraction (docs/crossref.md; `ask_crossref` false: the notices
    already stored, as the console's edition page shows them without a network call)."""
    with nl.session() as session:
        edition = get_edition(session, month)
        summaries = [item.summary for item in edition.items]
        problems = [f"summary #{s.id} ({s.headline}) is {s.status.value}, not ready"
                    for s in summaries if s.status is not SummaryStatus.READY]
        content = edition_content(edition)
    if not 2 <= len(summaries) <= 3:
        problems.insert(0, f"the edition has {len(summaries)} summaries; it needs 2 or 3")
    renderer = make_renderer(nl)
    ids = [item.id for item in content.items]
    for size in range(1, len(ids) + 1):
        for variant in itertools.combinations(ids, size):
            try:
                rendered = renderer.render_variant(for_variant(content, variant), variant)
            except NewsletterError as err:
                problems.append(f"variant {variant_key(variant)}: {err}")
                continue
            problems.extend(f"variant {variant_key(variant)}: {p}" for p in check_rendered(rendered))
    problems.extend(retraction_problems(nl, month, ask=ask_crossref))
    return problems


@dataclass(frozen=True)
class ScheduleRow:
    month: str
    state: str
    scheduled_at: datetime | None
    local: str

    def as_dict(self) -> dict[str, str | None]:
        return {"month": self.month, "state": self.state, "local": self.local,
                "utc": f"{self.scheduled_at:%Y-%m-%d %H:%M} UTC" if self.scheduled_at else None}


def schedule(nl: Newsletter, month: str, at: str, tz: str | None = None, *,
             now: datetime | None = None) -> ScheduleRow:
    """Schedule (or reschedule) the month's edition; refused with every reason it is not sendable."""
    tz = tz or nl.config.timezone
    return _put_on_schedule(nl, month, check_time(at, tz, now or utcnow()), tz)


def schedule_utc(nl: Newsletter, month: str, when: datetime, *,
                 now: datetime | None = None) -> ScheduleRow:
    """`schedule` for a time already in UTC (the console's "send now" plus its undo window)."""
    now = now or utcnow()
    if when <= now:
        raise ScheduleError(f"{when:%Y-%m-%d %H:%M:%S} UTC is in the past", field="at")
    return _put_on_schedule(nl, month, when, nl.config.timezone)


def _put_on_schedule(nl: Newsletter, month: str, when: datetime, tz: str) -> ScheduleRow:
    problems = check_sendable(nl, month)
    if problems:
        raise ScheduleError(f"the {month} edition is not sendable: " + "; ".join(problems),
                            field="month")
    with nl.session() as session:
        edition = get_edition(session, month)
        if edition.status not in RESCHEDULABLE:
            raise StateError(f"the {month} edition is {edition.status.value}; only a draft, "
                             "scheduled or missed edition can be scheduled")
        edition.status, edition.scheduled_at = EditionStatus.SCHEDULED, when
        return _row(edition, tz)


def unschedule(nl: Newsletter, month: str) -> ScheduleRow:
    """Take the edition off the schedule (back to draft); a running send is not affected.

    One conditional UPDATE, as `claim` makes its own: when a scheduler claims the edition at the
    same moment (the console's undo near the end of its window), exactly one of them wins, and an
    edition already sending is never turned back into a draft."""
    with nl.session() as session:
        edition = get_edition(session, month)
        hit = session.execute(update(Edition).where(
            Edition.id == edition.id,
            Edition.status.in_((EditionStatus.SCHEDULED, EditionStatus.MISSED)))
            .values(status=EditionStatus.DRAFT, scheduled_at=None)
            .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
        session.refresh(edition)
        if hit != 1:
            raise StateError(f"the {month} edition is {edition.status.value}, not scheduled")
        return _row(edition, nl.config.timezone)


def list_schedules(nl: Newsletter, tz: str | None = None) -> list[ScheduleRow]:
    """Every edition that has or had a send time, newest month first."""
    with nl.session() as session:
        editions = session.scalars(select(Edition).where(Edition.scheduled_at.is_not(None))
                                   .order_by(Edition.month.desc()))
        return [_row(e, tz or nl.config.timezone) for e in editions]


def _row(edition: Edition, tz: str) -> ScheduleRow:
    when = edition.scheduled_at
    local = f"{when.astimezone(zone(tz)):%Y-%m-%d %H:%M %Z} ({tz})" if when else ""
    return ScheduleRow(edition.month, edition.status.value, when, local)


def claim(nl: Newsletter, month: str, now: datetime) -> tuple[Decision, datetime | None]:
    """Apply `decide` to a scheduled edition, under its row lock: SEND moves it to `sending`,
    MISSED to `missed`. Only the one caller whose update changed the row gets SEND or MISSED;
    everyone else (another scheduler, an unscheduled or already sent edition) gets WAIT."""
    with nl.session() as session:
        # Write first: SQLite takes its write lock and PostgreSQL the row lock right here.
        session.execute(update(Edition).where(Edition.month == month).values(updated_at=now))
        edition = session.scalar(select(Edition).where(Edition.month == month))
        if edition is None or edition.status is not EditionStatus.SCHEDULED \
                or edition.scheduled_at is None:
            return Decision.WAIT, None
        decision = decide(now, edition.scheduled_at, grace_of(nl))
        if decision is Decision.WAIT:
            return decision, edition.scheduled_at
        target = EditionStatus.SENDING if decision is Decision.SEND else EditionStatus.MISSED
        hit = session.execute(update(Edition).where(
            Edition.id == edition.id, Edition.status == EditionStatus.SCHEDULED)
            .values(status=target)).rowcount  # type: ignore[attr-defined]
        return (decision if hit == 1 else Decision.WAIT), edition.scheduled_at
