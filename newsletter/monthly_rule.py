"""Pure: the monthly rule ("first tuesday 09:00") and when it falls, in UTC.

A rule names one local time per month: an ordinal weekday (`first`…`fourth`, `last`) or a day
of the month (`day 1`…`day 28`, every month has them), and a wall-clock time in the editor's
zone. The edition a rule sends is the month it falls in. Daylight saving time cannot make a
rule skip a month: a time inside a spring-forward gap is read on the old offset (02:30 becomes
03:30 summer time) and a time that happens twice is the first of the two.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .errors import ConfigError

__all__ = ["Occurrence", "RecurringRule", "month_after", "month_of", "occurrences_between",
           "parse_rule"]

ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
WEEKDAYS = {name.lower(): number for number, name in enumerate(calendar.day_name)}
_FILLER = re.compile(r"\b(of|each|every|the|month|at|on)\b")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
EXAMPLES = '"first tuesday 09:00", "last friday 16:30" or "day 1 09:00"'


@dataclass(frozen=True)
class RecurringRule:
    """`weekday` None means `day` is a day of the month; else `day` is the ordinal (-1: last)."""

    day: int
    weekday: int | None
    at: time
    text: str

    def local_date(self, year: int, month: int) -> date:
        if self.weekday is None:
            return date(year, month, self.day)
        days_in_month = calendar.monthrange(year, month)[1]
        matching = [d for d in range(1, days_in_month + 1)
                    if date(year, month, d).weekday() == self.weekday]
        return date(year, month, matching[self.day - 1 if self.day > 0 else -1])

    def __str__(self) -> str:
        return self.text


def parse_rule(text: str) -> RecurringRule:
    """Read a rule; anything else is a `ConfigError` naming the setting and showing examples."""
    words = _FILLER.sub(" ", text.lower()).split()
    problem = f"recurring_rule: {text!r} is not a monthly rule; write e.g. {EXAMPLES}"
    if len(words) != 3 or not _TIME.match(words[2]):
        raise ConfigError(problem)
    hour, minute = (int(part) for part in words[2].split(":"))
    first, second = words[0], words[1]
    if first == "day":
        if not second.isdigit() or not 1 <= int(second) <= 28:
            raise ConfigError(f"recurring_rule: day {second} is not a day every month has; "
                              f"use 1 to 28, or an ordinal weekday such as \"last friday\"")
        return RecurringRule(int(second), None, time(hour, minute), " ".join(words))
    if first not in ORDINALS or second not in WEEKDAYS:
        raise ConfigError(problem)
    return RecurringRule(ORDINALS[first], WEEKDAYS[second], time(hour, minute), " ".join(words))


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time; a gap is read on the old offset, an overlap as its first."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Occurrence:
    """One month's automatic send and the editor's reminder before it, both in UTC."""

    month: str
    send_at: datetime
    remind_at: datetime


def month_of(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def month_after(year: int, month: int, step: int = 1) -> tuple[int, int]:
    index = year * 12 + month - 1 + step
    return index // 12, index % 12 + 1


def occurrence(rule: RecurringRule, year: int, month: int, zone: ZoneInfo,
               reminder_days: int) -> Occurrence:
    day = rule.local_date(year, month)
    return Occurrence(month_of(year, month), local_instant(day, rule.at, zone),
                      local_instant(day - timedelta(days=reminder_days), rule.at, zone))


def occurrences_between(rule: RecurringRule, zone: ZoneInfo, reminder_days: int,
                        start: datetime, end: datetime) -> list[Occurrence]:
    """Every month whose send or reminder falls in [start, end], oldest first."""
    local_start = start.astimezone(zone)
    year, month = month_after(local_start.year, local_start.month, -1)
    found: list[Occurrence] = []
    while True:
        current = occurrence(rule, year, month, zone, reminder_days)
        if current.remind_at > end and current.send_at > end:
            return found
        if current.send_at >= start or current.remind_at >= start:
            found.append(current)
        year, month = month_after(year, month)
