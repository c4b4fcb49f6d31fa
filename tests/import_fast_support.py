"""Oracles and audiences for the fast-import and set-based-planning tests.

`oracle_parse` and `oracle_import` are the CSV importer as it was before batching (row by row:
four queries and four address validations per row), copied here verbatim so the fast importer can
be held to the same report, row for row. They are test oracles, not library code.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.content.summary_file import decode_utf8, unknown_message
from newsletter.errors import ContentError, ContentErrors
from subscribers.addresses import InvalidAddress, address_hash, address_key, normalise_email
from subscribers.flows import validate_name
from subscribers.models import ConsentMethod, Subscriber, SubscriberStatus
from subscribers.store import INACTIVE, add_subscriber, is_suppressed, set_topics, unsuppress

MAX_CSV_BYTES = 50 * 1024 * 1024
MAX_LISTED_ERRORS = 1000
_COLUMNS = ("email", "name", "topics")
_QUOTED = re.compile(r"'+[=+\-@\t\r]")


@dataclass(frozen=True)
class OracleRow:
    line: int
    email: str
    name: str
    topics: frozenset[str] | None


@dataclass
class OracleReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    resubscribed: int = 0
    skipped: dict[str, list[int]] = field(default_factory=dict)

    def skip(self, reason: str, line: int) -> None:
        self.skipped.setdefault(reason, []).append(line)


# -- the parser, as it was ---------------------------------------------------------------------

def _file_error(message: str, source: str, line: int | None = None) -> ContentErrors:
    return ContentErrors([ContentError(message, source=source, line=line)])


def _records(text: str, source: str) -> Iterator[tuple[int, list[str] | ContentError]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        line = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            hint = " (a quote opened here is never closed)" if "end of data" in str(err) else ""
            yield line, ContentError(f"not valid CSV: {err}{hint}", source=source, line=line)
            continue
        if any(cell.strip() for cell in record):
            yield line, record


def _header(records: Iterator[tuple[int, list[str] | ContentError]], source: str) -> dict[str, int]:
    for line, record in records:
        if isinstance(record, ContentError):
            raise ContentErrors([record])
        names = [cell.strip().lower() for cell in record]
        doubled = sorted({name for name in names if name in _COLUMNS and names.count(name) > 1})
        if doubled:
            raise _file_error(f"the header names the column {doubled[0]!r} twice", source, line)
        if "email" not in names:
            raise _file_error("header problem", source, line)
        return {name: names.index(name) for name in _COLUMNS if name in names}
    raise _file_error("the file is empty: it needs a header row email,name,topics", source)


def _unquote(cell: str) -> str:
    return cell[1:] if _QUOTED.match(cell) else cell


def _cell(record: list[str], columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    return _unquote(record[index]).strip() if index is not None and index < len(record) else ""


def _topics(raw: str, valid: Collection[str]) -> tuple[frozenset[str] | None, str | None]:
    words = list(dict.fromkeys(word.strip().lower() for word in raw.split(";") if word.strip()))
    if not words or words == ["all"]:
        return None, None
    if words == ["none"]:
        return frozenset(), None
    if "all" in words or "none" in words:
        return None, "'all' and 'none' cannot be combined with topic slugs"
    unknown = [word for word in words if word not in valid]
    if unknown:
        return None, "; ".join(unknown_message("topic", word, valid) for word in unknown[:5])
    return frozenset(words), None


def _email(raw: str) -> tuple[str | None, str | None]:
    try:
        return normalise_email(raw), None
    except InvalidAddress as err:
        return None, f"{raw[:80]!r} is not a usable address: {err}" if raw else f"{err}"


def _name(raw: str) -> tuple[str, str | None]:
    try:
        return validate_name(raw), None
    except ContentError as err:
        return raw, err.reason


def _row(line: int, record: list[str], columns: dict[str, int], topics: Collection[str],
         source: str) -> OracleRow | list[ContentError]:
    email, email_problem = _email(_cell(record, columns, "email"))
    name, name_problem = _name(_cell(record, columns, "name"))
    chosen, topics_problem = _topics(_cell(record, columns, "topics"), topics)
    problems = [(field, problem) for field, problem in (
        ("email", email_problem), ("name", name_problem), ("topics", topics_problem)) if problem]
    if problems or email is None:
        return [ContentError(problem, source=source, line=line, field=field)
                for field, problem in problems]
    return OracleRow(line=line, email=email, name=name, topics=chosen)


def oracle_parse(data: bytes, source: str, *, topics: Collection[str]
                 ) -> tuple[list[OracleRow], list[ContentError]]:
    if len(data) > MAX_CSV_BYTES:
        raise _file_error(f"larger than {MAX_CSV_BYTES >> 20} MB: split the file", source)
    records = _records(decode_utf8(data, source), source)
    columns = _header(records, source)
    rows: list[OracleRow] = []
    errors: list[ContentError] = []
    first_line: dict[str, int] = {}
    unlisted = 0
    for line, record in records:
        result = record if isinstance(record, ContentError) else _row(line, record, columns,
                                                                      topics, source)
        if isinstance(result, OracleRow):
            key = address_key(result.email)
            if key not in first_line:
                first_line[key] = line
                rows.append(result)
                continue
            result = ContentError(f"duplicate of line {first_line[key]}", source=source,
                                  line=line, field="email")
        errors.extend(result if isinstance(result, list) else [result])
        if len(errors) > MAX_LISTED_ERRORS:
            unlisted += len(errors) - MAX_LISTED_ERRORS
            del errors[MAX_LISTED_ERRORS:]
    if unlisted:
        errors.append(ContentError(f"{unlisted} more problems not listed", source=source))
    return rows, errors


# -- the importer, as it was -------------------------------------------------------------------

def _row_changes(subscriber: Subscriber, row: OracleRow) -> bool:
    return subscriber.name != row.name or subscriber.topic_slugs != row.topics


def oracle_import(session: Session, rows: Sequence[OracleRow], source: str, *,
                  force_resubscribe: bool = False) -> OracleReport:
    report = OracleReport()
    for row in rows:
        key = address_hash(row.email)
        if is_suppressed(session, key):
            if not force_resubscribe:
                report.skip("suppressed", row.line)
                continue
            unsuppress(session, row.email)
            report.resubscribed += 1
            _import_resubscribe(session, row, source, key)
            continue
        subscriber = session.scalar(select(Subscriber).where(Subscriber.email_hash == key))
        if subscriber is not None and subscriber.status in INACTIVE:
            if force_resubscribe:
                report.resubscribed += 1
                _import_resubscribe(session, row, source, key)
            else:
                report.skip(f"already {subscriber.status.value}", row.line)
        elif subscriber is None:
            add_subscriber(session, row.email, name=row.name, topics=row.topics,
                           method=ConsentMethod.IMPORT, source=source)
            report.added += 1
        elif _row_changes(subscriber, row):
            subscriber.name = row.name
            set_topics(session, subscriber, row.topics)
            report.updated += 1
        else:
            report.unchanged += 1
    session.flush()
    return report


def _import_resubscribe(session: Session, row: OracleRow, source: str, key: str) -> None:
    from newsletter.db import utcnow

    subscriber = session.scalar(select(Subscriber).where(Subscriber.email_hash == key))
    if subscriber is None:
        add_subscriber(session, row.email, name=row.name, topics=row.topics,
                       method=ConsentMethod.IMPORT, source=source)
        return
    now = utcnow()
    subscriber.status, subscriber.unsubscribed_at = SubscriberStatus.ACTIVE, None
    subscriber.paused_at = None
    subscriber.consent_method, subscriber.consent_source = ConsentMethod.IMPORT, source[:500]
    subscriber.consent_at = subscriber.confirmed_at = now
    subscriber.consent_ip_hash = None
    subscriber.name = row.name or subscriber.name
    set_topics(session, subscriber, row.topics)
