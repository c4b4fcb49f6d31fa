"""Subscriber CSV import/export and addresses: bad rows located and skipped, good rows kept."""

from __future__ import annotations

import hashlib
import tomllib

import pytest

from newsletter.errors import ContentError, ContentErrors
from newsletter.paths import config_dir
from subscribers.addresses import InvalidAddress, address_hash, normalise_email
from subscribers.csv_io import SubscriberRow, export_subscribers_csv, parse_subscriber_csv

TOPICS = [entry["slug"] for entry in
          tomllib.loads((config_dir() / "topics.toml").read_text())["topic"]]


def parse(text: str | bytes) -> tuple[list[SubscriberRow], list[ContentError]]:
    data = text.encode() if isinstance(text, str) else text
    return parse_subscriber_csv(data, "subs.csv", topics=TOPICS)


def located(errors: list[ContentError]) -> list[tuple[int | None, str | None]]:
    assert all(error.source == "subs.csv" for error in errors)
    return [(error.line, error.field) for error in errors]


def file_problem(text: str | bytes) -> ContentError:
    with pytest.raises(ContentErrors) as caught:
        parse(text)
    [error] = caught.value.errors
    assert error.source == "subs.csv"
    return error


# -- addresses ---------------------------------------------------------------------------------

def test_normalise_email_lowercases_the_domain_and_keeps_the_local_part() -> None:
    assert normalise_email("  Ann.Lee@EXAMPLE.Org ") == "Ann.Lee@example.org"
    assert normalise_email("x@xn--bcher-kva.example") == "x@bücher.example"
    assert normalise_email("x@BÜCHER.example") == "x@bücher.example"


@pytest.mark.parametrize("raw, reason", [
    ("", "the address is empty"),
    ("ann@example.org\r\nBcc: victim@example.org", "line break or control character"),
    ("ann\x00@example.org", "line break or control character"),
    ("a" * 250 + "@example.org", "longer than 254 characters"),
    ("no-at-sign.example.org", "@-sign"),
    ("Ann <ann@example.org>", "display name"),
    ("ann@localhost", "should have a period"),
])
def test_normalise_email_refuses_with_a_short_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidAddress, match=reason):
        normalise_email(raw)


def test_address_hash_ignores_case_everywhere() -> None:
    expected = hashlib.sha256(b"ann.lee@example.org").hexdigest()
    assert address_hash("Ann.Lee@Example.ORG") == address_hash("ann.lee@example.org") == expected
    assert address_hash("ANN@xn--bcher-kva.example") == address_hash("ann@Bücher.example")
    assert address_hash("a@example.org") != address_hash("b@example.org")


# -- import ------------------------------------------------------------------------------------

def test_good_rows_are_parsed_exactly() -> None:
    rows, errors = parse("\ufeffEmail, NAME ,Topics,Joined\r\n"
                         "Ann.Lee@Example.org,  Ann Lee ,empathy; Training ,2020\r\n"
                         "bo@example.org,,,\r\n"
                         "cy@example.org,Cy,ALL,\r\n"
                         "\r\n"
                         ",,,\r\n"
                         "di@example.org,\"Di, PhD\",none,\r\n")
    assert errors == []
    assert rows == [
        SubscriberRow(line=2, email="Ann.Lee@example.org", name="Ann Lee",
                      topics=frozenset({"empathy", "training"})),
        SubscriberRow(line=3, email="bo@example.org", name="", topics=None),
        SubscriberRow(line=4, email="cy@example.org", name="Cy", topics=None),
        SubscriberRow(line=7, email="di@example.org", name="Di, PhD", topics=frozenset()),
    ]


def test_name_and_topics_columns_are_optional() -> None:
    rows, errors = parse("email\nann@example.org\n")
    assert (rows, errors) == ([SubscriberRow(2, "ann@example.org", "", None)], [])
    rows, errors = parse("topics,email\nempathy,ann@example.org\n")
    assert rows == [SubscriberRow(2, "ann@example.org", "", frozenset({"empathy"}))]


HOSTILE_CSV = (
    "email,name,topics,notes\n"
    'ann@example.org,Ann,empathy,"a note\nover three\nlines"\n'
    "not-an-address,Bob,,\n"
    '"cy@example.org","Cy\r\nBcc: x@example.org",,\n'
    "di@example.org,Di,alliance;empathy,\n"
    "ev@example.org,Ev,all;empathy,\n"
    "fay@example.org," + "F" * 201 + ",,\n"
    "gus@example.org,Gus\x00,,\n"
    'hal@example.org,"Hal"x,,\n'
    "ida@example.org,Ida,,\n"
    "bad@,\u202eIdo,nope,\n")
"""Bad rows of every kind (header injection, control and bidi characters, unknown topics, a
broken quote, a line over three lines) and two good ones; the console's import uses it too."""


def test_bad_rows_are_located_and_skipped_and_good_rows_kept() -> None:
    rows, errors = parse(HOSTILE_CSV)
    assert [row.email for row in rows] == ["ann@example.org", "ida@example.org"]
    assert [row.line for row in rows] == [2, 13]
    assert located(errors) == [(5, "email"), (6, "name"), (8, "topics"), (9, "topics"),
                               (10, "name"), (11, "name"), (12, None),
                               (14, "email"), (14, "name"), (14, "topics")]
    assert errors[2].reason == ("unknown topic 'alliance'; did you mean: "
                                "alliance-and-therapeutic-relationship?")
    assert errors[3].reason == "'all' and 'none' cannot be combined with topic slugs"
    assert errors[4].reason == "the name is longer than 100 characters"
    assert errors[1].reason == ("the name cannot contain line breaks or control characters "
                                "(found U+000D at character 3)")


def test_a_later_duplicate_is_an_error_for_the_later_line() -> None:
    rows, errors = parse("email,name\nann@example.org,Ann\nbo@example.org,Bo\n"
                         "ANN@EXAMPLE.ORG,Ann again\n")
    assert [row.line for row in rows] == [2, 3]
    assert [(e.line, e.field, e.reason) for e in errors] == [(4, "email", "duplicate of line 2")]


def test_an_unclosed_quote_is_reported_where_it_opens() -> None:
    rows, errors = parse('email,name\nann@example.org,Ann\nbo@example.org,"Bo\ncy@example.org,Cy\n')
    assert [row.line for row in rows] == [2]
    assert [(e.line, e.field) for e in errors] == [(3, None)]
    assert errors[0].reason.endswith("(a quote opened here is never closed)")


def test_many_bad_rows_are_counted_not_all_listed() -> None:
    rows, errors = parse("email\n" + "bad\n" * 1005 + "ok@example.org\n")
    assert [row.line for row in rows] == [1007]
    assert len(errors) == 1001 and errors[999].line == 1001
    assert (errors[-1].line, errors[-1].reason) == (None, "5 more problems not listed")


@pytest.mark.parametrize("text, line, reason", [
    ("", None, "the file is empty: it needs a header row email,name,topics"),
    ("\n\nname,topics\n", 3, "the header row must have an 'email' column (and optionally 'name', "
                             "'topics' and 'language')"),
    ("ann@example.org,Ann\n", 1, "the first row looks like data: add a header row "
                                "email,name,topics above it"),
    ("email;name;topics\nann@example.org;Ann;\n", 1,
     "only comma-separated files are accepted, and this header has a single column containing "
     "';' or tabs: in a spreadsheet, save as 'CSV UTF-8 (comma delimited)'"),
    ("email,name,Email\n", 1, "the header names the column 'email' twice"),
])
def test_the_header_is_required_and_checked(text: str, line: int | None, reason: str) -> None:
    error = file_problem(text)
    assert (error.line, error.field, error.reason) == (line, None, reason)


def test_wrong_encoding_and_huge_files_are_refused() -> None:
    error = file_problem("email,name\nann@example.org,Ann\nbo@example.org,Zoë\n".encode("cp1252"))
    assert (error.line, error.reason) == (
        3, "not UTF-8: byte 0xeb at byte offset 48; save the file with the UTF-8 encoding")
    error = file_problem(b"email\n" + b"x" * (50 * 1024 * 1024))
    assert (error.line, error.reason) == (None, "larger than 50 MB: split the file")


# -- export ------------------------------------------------------------------------------------

def test_export_defuses_formulas() -> None:
    text = export_subscribers_csv([
        ("ann@example.org", "=HYPERLINK(\"http://x\")", None, "active"),
        ("-bo@example.org", "+Bo", frozenset({"training", "empathy"}), "@status"),
        ("cy@example.org", "'=already quoted", frozenset(), "active"),
        ("di@example.org", "Di 'the' = best", None, "active"),
    ])
    assert text.split("\r\n") == [
        "email,name,topics,status",
        'ann@example.org,"\'=HYPERLINK(""http://x"")",all,active',
        "'-bo@example.org,'+Bo,empathy;training,'@status",
        "cy@example.org,''=already quoted,none,active",
        "di@example.org,Di 'the' = best,all,active",
        "",
    ]


def test_import_reads_back_what_export_writes() -> None:
    people = [
        ("ann@example.org", "=1+1", None, "active"),
        ("-bo@example.org", "@Bo", frozenset({"training", "empathy"}), "unsubscribed"),
        ("cy@example.org", "'=Cy", frozenset(), "active"),
        ("di@bücher.example", "Di O'Neil, \"Dr\"", frozenset({"attachment"}), "active"),
        ("ev@example.org", "'Ev'", None, "active"),
        ("fa@example.org", "Fa", frozenset({"empathy"}), "paused"),  # topics kept for resuming
    ]
    rows, errors = parse(export_subscribers_csv(people))
    assert errors == []
    assert [(row.email, row.name, row.topics) for row in rows] == [
        (email, name, topics) for email, name, topics, _ in people]
