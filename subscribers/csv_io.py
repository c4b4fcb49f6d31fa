"""Subscriber CSV import and export: files that pass through spreadsheets, and must survive them.

Import is row by row: a bad row is reported with its physical line and skipped, good rows are kept.
Problems with the whole file (size, encoding, header) raise `ContentErrors`. Each address is
validated here, once; the store trusts the normal form it is given. Export defuses cells a
spreadsheet would run as formulas, and import undoes exactly that, so an export re-imports as is.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass

from newsletter.content.summary_file import decode_utf8, unknown_message
from newsletter.errors import ContentError, ContentErrors
from newsletter.i18n import LANGUAGES

from .addresses import InvalidAddress, address_key, normalise_email

__all__ = ["EXPORT_COLUMNS", "MAX_CSV_BYTES", "SubscriberRow", "export_subscribers_csv",
           "parse_subscriber_csv"]

MAX_CSV_BYTES = 50 * 1024 * 1024
MAX_LISTED_ERRORS = 1000
EXPORT_COLUMNS = ("email", "name", "topics", "status")
_COLUMNS = ("email", "name", "topics", "language")
# Spreadsheets run a cell starting with = + - @ TAB or CR as a formula (OWASP "CSV injection").
_NEEDS_QUOTE = re.compile(r"'*[=+\-@\t\r]")
_QUOTED = re.compile(r"'+[=+\-@\t\r]")


@dataclass(frozen=True)
class SubscriberRow:
    """One accepted row; `line` is where it starts in the file, for reports."""

    line: int
    email: str
    name: str
    topics: frozenset[str] | None  # None means all topics, including ones added later
    language: str | None = None
    """None when the file does not say: English for someone new, unchanged for someone known."""


def _file_error(message: str, source: str, line: int | None = None) -> ContentErrors:
    return ContentErrors([ContentError(message, source=source, line=line)])


def _records(text: str, source: str) -> Iterator[tuple[int, list[str] | ContentError]]:
    """(first physical line, cells) per non-blank record; quoted line breaks keep lines right."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        line = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as err:  # the reader resumes at the next physical line
            hint = " (a quote opened here is never closed)" if "end of data" in str(err) else ""
            yield line, ContentError(f"not valid CSV: {err}{hint}", source=source, line=line)
            continue
        if any(cell.strip() for cell in record):
            yield line, record


def _header(records: Iterator[tuple[int, list[str] | ContentError]], source: str) -> dict[str, int]:
    """Column name → index, from the first non-blank row, which must be the header."""
    for line, record in records:
        if isinstance(record, ContentError):
            raise ContentErrors([record])
        names = [cell.strip().lower() for cell in record]
        doubled = sorted({name for name in names if name in _COLUMNS and names.count(name) > 1})
        if doubled:
            raise _file_error(f"the header names the column {doubled[0]!r} twice", source, line)
        if "email" not in names:
            raise _file_error(_header_problem(record), source, line)
        return {name: names.index(name) for name in _COLUMNS if name in names}
    raise _file_error("the file is empty: it needs a header row email,name,topics", source)


def _header_problem(record: list[str]) -> str:
    if len(record) == 1 and (";" in record[0] or "\t" in record[0]):
        return ("only comma-separated files are accepted, and this header has a single column "
                "containing ';' or tabs: in a spreadsheet, save as 'CSV UTF-8 (comma delimited)'")
    if any("@" in cell for cell in record):
        return "the first row looks like data: add a header row email,name,topics above it"
    return ("the header row must have an 'email' column (and optionally 'name', 'topics' and "
            "'language')")


def _unquote(cell: str) -> str:
    """Undo export's formula defusing: drop one `'` only where export would have added it."""
    return cell[1:] if _QUOTED.match(cell) else cell


def _cell(record: list[str], columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    return _unquote(record[index]).strip() if index is not None and index < len(record) else ""


def _topics(raw: str, valid: Collection[str]) -> tuple[frozenset[str] | None, str | None]:
    """(topics, problem): empty or `all` means all topics; `none` (export writes it) means none."""
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


def _language(raw: str) -> tuple[str | None, str | None]:
    """(language, problem): empty means not given."""
    value = raw.lower()
    if not value or value in LANGUAGES:
        return value or None, None
    return None, f"unknown language {raw[:20]!r}: use one of {', '.join(LANGUAGES)}"


def _email(raw: str) -> tuple[str | None, str | None]:
    try:
        return normalise_email(raw), None
    except InvalidAddress as err:
        return None, f"{raw[:80]!r} is not a usable address: {err}" if raw else f"{err}"


def _name(raw: str) -> tuple[str, str | None]:
    """(clean name, problem), by the same rules as the web form's: one check for every way in."""
    from .flows import validate_name  # here, not at the top: flows → store → csv_io

    try:
        return validate_name(raw), None
    except ContentError as err:
        return raw, err.reason


def _row(line: int, record: list[str], columns: dict[str, int], topics: Collection[str],
         source: str) -> SubscriberRow | list[ContentError]:
    """The row, or every problem in it (each with its field), so one pass fixes the row."""
    email, email_problem = _email(_cell(record, columns, "email"))
    name, name_problem = _name(_cell(record, columns, "name"))
    chosen, topics_problem = _topics(_cell(record, columns, "topics"), topics)
    language, language_problem = _language(_cell(record, columns, "language"))
    problems = [(field, problem) for field, problem in (
        ("email", email_problem), ("name", name_problem), ("topics", topics_problem),
        ("language", language_problem)) if problem]
    if problems or email is None:
        return [ContentError(problem, source=source, line=line, field=field)
                for field, problem in problems]
    return SubscriberRow(line=line, email=email, name=name, topics=chosen, language=language)


def parse_subscriber_csv(data: bytes, source: str, *, topics: Collection[str]
                         ) -> tuple[list[SubscriberRow], list[ContentError]]:
    """Good rows, and the problems of skipped ones; a problem with the whole file raises instead."""
    if len(data) > MAX_CSV_BYTES:
        raise _file_error(f"larger than {MAX_CSV_BYTES >> 20} MB: split the file", source)
    records = _records(decode_utf8(data, source), source)
    columns = _header(records, source)
    rows: list[SubscriberRow] = []
    errors: list[ContentError] = []
    first_line: dict[str, int] = {}
    unlisted = 0
    for line, record in records:
        result = record if isinstance(record, ContentError) else _row(line, record, columns,
                                                                      topics, source)
        if isinstance(result, SubscriberRow):
            key = address_key(result.email)
            if key not in first_line:
                first_line[key] = line
                rows.append(result)
                continue
            result = ContentError(f"duplicate of line {first_line[key]}", source=source,
                                  line=line, field="email")
        errors.extend(result if isinstance(result, list) else [result])
        if len(errors) > MAX_LISTED_ERRORS:  # a broken 50 MB file must not flood the report
            unlisted += len(errors) - MAX_LISTED_ERRORS
            del errors[MAX_LISTED_ERRORS:]
    if unlisted:
        errors.append(ContentError(f"{unlisted} more problems not listed", source=source))
    return rows, errors


def _defused(cell: str) -> str:
    """`'=1+1`: a leading quote makes spreadsheets show a cell as text instead of running it."""
    return "'" + cell if _NEEDS_QUOTE.match(cell) else cell


def _topics_text(chosen: frozenset[str] | None) -> str:
    if chosen is None:
        return "all"
    return ";".join(sorted(chosen)) or "none"


def export_subscribers_csv(rows: Iterable[tuple[str, str, frozenset[str] | None, str]]) -> str:
    """CSV text (email,name,topics,status) that spreadsheets open safely and import reads back."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for email, name, chosen, status in rows:
        writer.writerow([_defused(cell) for cell in (email, name, _topics_text(chosen), status)])
    return out.getvalue()
