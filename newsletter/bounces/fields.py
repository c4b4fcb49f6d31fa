"""Reading one field of a report someone else wrote: every value is hostile until it is one short,
clean line. Pure helpers shared by the DSN and ARF readers."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime

from ..errors import NewsletterError
from ..text import single_line

MAX_FIELD = 2000
"""Characters kept of one field (a Diagnostic-Code can be long; nothing we use is longer)."""
MAX_ADDRESS = 254
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")


class ReportError(NewsletterError):
    """A report that cannot be read; the message names the source and the field."""


def field_text(message: Message, name: str) -> str:
    """One header or report field as one clean line ('' when absent or unreadable): folding,
    CR/LF and control characters become spaces, runs of spaces one."""
    try:
        value = message.get(name)
    except (ValueError, TypeError, IndexError):  # a header the parser could not make sense of
        return ""
    return clean(value)


def field_texts(message: Message, name: str) -> list[str]:
    """Every occurrence of a field (Delivered-To, Original-Rcpt-To), cleaned like `field_text`."""
    try:
        values = message.get_all(name) or []
    except (ValueError, TypeError, IndexError):
        return []
    return [text for text in (clean(v) for v in values) if text]


def clean(value: object) -> str:
    if value is None:
        return ""
    text = str(value).encode("utf-8", "replace").decode("utf-8")  # lone surrogates of 8-bit bytes
    return " ".join(single_line(text[:MAX_FIELD * 2]).split())[:MAX_FIELD]


def typed_address(value: str) -> str | None:
    """The address of `rfc822; addr` (RFC 3464 address-type; `utf-8` of RFC 6533 too), else
    None: another type, no @, too long, or anything that could break a line."""
    kind, semicolon, rest = value.partition(";")
    if semicolon and kind.strip().lower() not in ("rfc822", "utf-8"):
        return None
    return bare_address(rest if semicolon else value)


def bare_address(value: str) -> str | None:
    """`addr` from `<addr>`, `Name <addr>` or `addr`; None when it is not one plain address."""
    text = value.strip()
    if "<" in text:
        text = text.rpartition("<")[2].partition(">")[0]
    text = text.strip()
    local, at, domain = text.rpartition("@")
    if (not at or not local or not domain or len(text) > MAX_ADDRESS
            or any(ch.isspace() or ch in "<>,;\"()[]\\" for ch in text)):
        return None
    return text


def addresses(values: Iterable[str]) -> list[str]:
    return [a for a in (bare_address(v) for v in values) if a is not None]


def message_id(value: str) -> str | None:
    """The first `<id@host>` of a Message-ID field, or None."""
    found = _MESSAGE_ID.search(value)
    return found.group(0) if found else None


def report_date(value: str, *, now: datetime) -> datetime | None:
    """An RFC 5322 date as an aware UTC time, never later than `now` (a date in the future would
    keep a soft bounce counting for ever); None when it cannot be read."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": the zone is unknown, the time is UTC (RFC 5322 3.3)
        when = when.replace(tzinfo=UTC)
    return min(when.astimezone(UTC), now)
