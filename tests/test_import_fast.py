"""The batched CSV import against the row-by-row importer it replaced (tests/import_fast_support.py).

Both run from the same starting audience (active, changed, unconfirmed, paused, unsubscribed,
bounced, complained, suppressed and erased people) on the same file; the problems, the report and
the audience they leave behind must be the same, row for row.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from newsletter.context import Newsletter
from newsletter.errors import ContentError, ContentErrors
from newsletter.taxonomy import topic_slugs
from subscribers.addresses import normalised_hash
from subscribers.csv_io import SubscriberRow, parse_subscriber_csv
from subscribers.models import ConsentMethod, Subscriber, SubscriberStatus, Suppression
from subscribers.store import ImportReport, add_subscriber, import_rows, suppress
from tests.conftest import RunCli
from tests.import_fast_support import OracleReport, oracle_import, oracle_parse

PAUSED_AT = datetime(2026, 11, 1, tzinfo=UTC)


def seed_people(nl: Newsletter, extra: int = 0) -> None:
    """The starting audience: one of every kind, and `extra` active readers `old{i}@example.org`."""
    with nl.session() as session:
        for email, name, topics, status in [
            ("same@example.org", "Same", frozenset({"empathy"}), SubscriberStatus.ACTIVE),
            ("Changed@Example.org", "Old Name", None, SubscriberStatus.ACTIVE),
            ("topics@example.org", "Topics", frozenset({"training"}), SubscriberStatus.ACTIVE),
            ("pending@example.org", "Pending", None, SubscriberStatus.UNCONFIRMED),
            ("paused@example.org", "Paused", None, SubscriberStatus.ACTIVE),
            ("left@example.org", "Left", None, SubscriberStatus.UNSUBSCRIBED),
            ("bounced@example.org", "Bounced", None, SubscriberStatus.BOUNCED),
            ("complained@example.org", "Complained", None, SubscriberStatus.COMPLAINED),
            ("blocked@example.org", "Blocked", frozenset({"empathy"}), SubscriberStatus.ACTIVE),
            ("ünï@bücher.example", "Idn", None, SubscriberStatus.ACTIVE),
        ]:
            add_subscriber(session, email, name=name, topics=topics, status=status,
                           method=ConsentMethod.ADMIN, source="seed")
        session.scalars(select(Subscriber).where(Subscriber.email == "paused@example.org")
                        ).one().paused_at = PAUSED_AT
        suppress(session, "blocked@example.org", "complaint")
        suppress(session, "erased@example.org", "erased")
        session.execute(delete(Subscriber).where(Subscriber.email == "erased@example.org"))
        session.scalars(select(Suppression).where(Suppression.reason == "erased")).one().email = None
        for i in range(extra):
            add_subscriber(session, f"old{i}@example.org", name=f"Old {i}",
                           topics=frozenset({"empathy"}) if i % 2 else None,
                           method=ConsentMethod.ADMIN, source="seed")


def wipe(nl: Newsletter) -> None:
    with nl.session() as session:
        session.execute(delete(Subscriber))
        session.execute(delete(Suppression))


def audience(nl: Newsletter) -> dict[str, tuple[Any, ...]]:
    """Everything an import may change, per address (not uids or times, which differ by run)."""
    with nl.session() as session:
        people = {s.email_hash: (s.email, s.name, s.status.value, s.all_topics, s.topic_slugs,
                                 s.language, s.consent_method.value, s.consent_source,
                                 s.paused_at is None, s.unsubscribed_at is None,
                                 s.confirmed_at is None)
                  for s in session.scalars(select(Subscriber))}
        suppressed = {("suppressed", s.email_hash): (s.reason,)
                      for s in session.scalars(select(Suppression))}
    return {**people, **suppressed}  # type: ignore[dict-item]


def problems(errors: list[ContentError]) -> list[tuple[int | None, str | None, str]]:
    return [(e.line, e.field, e.reason) for e in errors]


def report_of(report: ImportReport | OracleReport) -> dict[str, Any]:
    return asdict(report)  # type: ignore[call-overload, no-any-return]


def both_ways(nl: Newsletter, data: bytes, *, force: bool = False, extra: int = 0
              ) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(oracle, fast): problems, report and the audience left, from the same start."""
    outcomes = []
    for parse, run in ((oracle_parse, oracle_import), (parse_subscriber_csv, import_rows)):
        wipe(nl)
        seed_people(nl, extra)
        with nl.session() as session:
            rows, errors = parse(data, "members.csv", topics=topic_slugs(session))
            report = run(session, rows, "import: members.csv",  # type: ignore[arg-type]
                         force_resubscribe=force)
        outcomes.append((problems(errors), report_of(report), audience(nl)))
    return outcomes[0], outcomes[1]


HOSTILE = "\r\n".join([
    "\ufeffEmail,Name,Topics,Notes",
    "new@example.org,New Person,empathy;training,",
    "same@example.org,Same,empathy,unchanged",
    "changed@example.org,New Name,,case of the stored local part differs",
    "topics@example.org,Topics,all,",
    "pending@example.org,Pending Again,empathy,",
    "paused@example.org,Paused,,",
    "LEFT@example.org,Back Again,,",
    "bounced@example.org,,,",
    "complained@EXAMPLE.org,Complained,,",
    "blocked@example.org,Blocked,,",
    "Erased@Example.Org,Erased,empathy,",
    "ÜNÏ@xn--bcher-kva.example,Idn Again,,",
    "new@EXAMPLE.ORG,Dup,,",
    "x@xn--bcher-kva.example,Punycode,,",
    "x@BÜCHER.example,Dup of punycode,,",
    "not-an-address,Bad,,",
    "ann@example.org\nBcc: evil@example.org,Bad,,",
    '"cy@example.org","Cy\r\nBcc: x@example.org",,',
    "'=formula@example.org,'=HYPERLINK(\"http://x\"),,",
    "-minus@example.org,+plus,,",
    "@at@example.org,@Name,,",
    "huge@example.org," + "H" * 100_000 + ",,",
    "a" * 100_000 + "@example.org,Huge Address,,",
    "hugetopics@example.org,Ht," + ";".join(["nope"] * 5000) + ",",
    "ctrl@example.org,Ctrl\x00,,",
    "bidi@example.org,\u202eevil,,",
    "url@example.org,see https://evil.example,,",
    "enc@example.org,=?utf-8?q?x?=,,",
    "bad@,\u202eIdo,nope,",
    "topic@example.org,T,all;empathy,",
    '"unclosed@example.org,"Open quote,,',
    "last@example.org,Last,,",
    "",
]).encode()


@pytest.mark.parametrize("force", [False, True], ids=["keep-leavers-out", "force-resubscribe"])
def test_a_hostile_file_gives_the_same_report_row_for_row(newsletter: Newsletter, force: bool) -> None:
    oracle, fast = both_ways(newsletter, HOSTILE, force=force)
    assert fast[0] == oracle[0] and len(fast[0]) >= 15  # the same problems, line by line
    assert fast[1] == oracle[1]  # the same report: counts and skipped lines per reason
    assert fast[2] == oracle[2]  # the same audience afterwards
    if not force:
        assert oracle[1]["skipped"] == {"already unsubscribed": [8], "already bounced": [9],
                                        "already complained": [10], "suppressed": [11, 12]}
    else:
        assert oracle[1]["resubscribed"] == 5 and oracle[1]["skipped"] == {}


def test_a_file_in_another_encoding_is_refused_by_both_alike(newsletter: Newsletter) -> None:
    data = "email,name\nann@example.org,Zoë\n".encode("cp1252")
    with newsletter.session() as session:
        topics = topic_slugs(session)
    caught = []
    for parse in (oracle_parse, parse_subscriber_csv):
        with pytest.raises(ContentErrors) as error:
            parse(data, "members.csv", topics=topics)
        caught.append(problems(error.value.errors))
    assert caught[0] == caught[1] == [(2, None, "not UTF-8: byte 0xeb at byte offset 29; save "
                                                "the file with the UTF-8 encoding")]


def big_file(n: int, seed: int) -> bytes:
    """N rows: mostly new readers, some of the seeded ones (some changed), leavers, suppressed
    and erased people, duplicates in other cases, IDN, bad addresses, names and topics."""
    rng = random.Random(seed)
    topics = ["empathy", "training", "attachment", "termination"]
    lines = ["email,name,topics,language"]
    for i in range(n):
        kind = rng.random()
        if kind < 0.80:
            email = f"reader{i}@{rng.choice(['example.org', 'bücher.example', 'Example.COM'])}"
        elif kind < 0.88:
            email = f"OLD{rng.randrange(2000)}@example.org"
        elif kind < 0.90:
            email = rng.choice(["left@example.org", "bounced@example.org", "blocked@example.org",
                                "erased@example.org", "complained@example.org"])
        elif kind < 0.95:
            email = f"READER{rng.randrange(max(i, 1))}@example.org"
        else:
            email = rng.choice(["bad", "a@b", "x@localhost", "", "ann@example.org\r"])
        name = rng.choice(["", "Ann Lee", "Dr. Ümit Öz", "O'Brien, \"Pat\"", "=cmd", "Bad\x07"])
        chosen = rng.choice(["", "all", "none", ";".join(rng.sample(topics, 2)), "nope"])
        language = rng.choice(["", "", "en", "fr", "FR", "de"]) if kind < 0.5 else ""
        lines.append(",".join(f'"{cell}"' for cell in (email, name.replace('"', '""'), chosen,
                                                       language)))
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_100_000_row_file_gives_the_same_report_row_for_row(newsletter: Newsletter) -> None:
    """The oracle has no language column: this file's languages only make per-line problems
    ("de") for it to ignore, so the fast importer runs on the file without that column too."""
    data = big_file(100_000, seed=4)
    no_language = b"\r\n".join(line.rsplit(b",", 1)[0] for line in data.split(b"\r\n") if line)
    oracle, fast = both_ways(newsletter, no_language + b"\r\n", extra=2000)
    assert fast[0] == oracle[0]
    assert fast[1] == oracle[1]
    assert fast[2] == oracle[2]
    assert oracle[1]["added"] > 50_000 and oracle[1]["updated"] > 500


# -- the language column (issue 13) -------------------------------------------------------------

def test_language_is_read_checked_and_kept_when_not_given(newsletter: Newsletter) -> None:
    seed_people(newsletter)
    data = ("email,name,language\n"
            "fr@example.org,Fr,FR\n"
            "en@example.org,En,\n"
            "de@example.org,De,de\n"
            "long@example.org,Long," + "x" * 5000 + "\n"
            "same@example.org,Same,fr\n").encode()
    with newsletter.session() as session:
        rows, errors = parse_subscriber_csv(data, "members.csv", topics=topic_slugs(session))
        assert problems(errors) == [
            (4, "language", "unknown language 'de': use one of en, fr"),
            (5, "language", f"unknown language {'x' * 20!r}: use one of en, fr")]
        assert [(r.email, r.language) for r in rows] == [
            ("fr@example.org", "fr"), ("en@example.org", None), ("same@example.org", "fr")]
        report = import_rows(session, rows, "import")
    assert (report.added, report.updated, report.unchanged) == (2, 1, 0)
    languages = {email: language for email, (_, _, _, _, _, language, *_) in (
        (v[0], v) for k, v in audience(newsletter).items() if isinstance(k, str))}
    assert (languages["fr@example.org"], languages["en@example.org"],
            languages["same@example.org"]) == ("fr", "en", "fr")
    with newsletter.session() as session:  # no language column: everyone keeps theirs
        report = import_rows(session, [SubscriberRow(2, "same@example.org", "Same", None)],
                             "again")
    assert (report.updated, report.unchanged) == (0, 1)
    assert audience(newsletter)[normalised_hash("same@example.org")][5] == "fr"


def test_rows_for_one_address_in_one_call_meet_each_other(newsletter: Newsletter) -> None:
    """A caller may pass the same address twice (the parser never does): the second row sees
    the first one's outcome, as it did row by row."""
    rows = [SubscriberRow(2, "twice@example.org", "One", None),
            SubscriberRow(3, "twice@example.org", "Two", frozenset({"empathy"}), "fr")]
    with newsletter.session() as session:
        report = import_rows(session, rows, "import")
    assert (report.added, report.updated) == (1, 1)
    [(key, person)] = [(k, v) for k, v in audience(newsletter).items() if isinstance(k, str)]
    assert person[:2] == ("twice@example.org", "Two") and person[4:6] == (frozenset({"empathy"}), "fr")


def test_new_rows_carry_the_import_time_as_the_orm_would_store_it(newsletter: Newsletter) -> None:
    """The values every new row shares are bound once per batch, converted by hand for the
    driver on SQLite: they read back as the moment of the import, in UTC, and compare in SQL
    against a time bound the ordinary way."""
    rows = [SubscriberRow(i + 2, f"t{i}@example.org", "", None) for i in range(1_500)]
    before = datetime.now(UTC)
    with newsletter.session() as session:
        import_rows(session, rows, "import: times.csv")
    after = datetime.now(UTC)
    with newsletter.session() as session:
        people = session.scalars(select(Subscriber)).all()
        later = session.scalar(select(func.count()).select_from(Subscriber).where(
            Subscriber.created_at >= before, Subscriber.consent_at <= after))
    assert len(people) == later == 1_500
    for person in people:
        times = {person.consent_at, person.confirmed_at, person.created_at, person.updated_at}
        assert len(times) == 1, times
        assert all(t is not None and t.tzinfo is not None and before <= t <= after for t in times)
        assert (person.consent_method, person.consent_source) == (ConsentMethod.IMPORT,
                                                                  "import: times.csv")
        assert person.status is SubscriberStatus.ACTIVE


def test_progress_is_reported_per_batch(newsletter: Newsletter) -> None:
    rows = [SubscriberRow(i + 2, f"p{i}@example.org", "", None) for i in range(2_500)]
    seen: list[tuple[int, int]] = []
    with newsletter.session() as session:
        import_rows(session, rows, "import", progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1000, 2500), (2000, 2500), (2500, 2500)]


def test_the_cli_import_shows_progress_and_reads_the_language(newsletter: Newsletter,
                                                              run_cli: RunCli, tmp_path: Any) -> None:
    members = tmp_path / "members.csv"
    members.write_text("email,name,topics,language\nann@example.org,Ann,empathy,fr\n"
                       "bo@example.org,Bo,,xx\n", encoding="utf-8")
    result = run_cli("subscribers", "import", str(members), code=1)
    assert f"Error: {members}:3: language: unknown language 'xx': use one of en, fr" in result.output
    assert f"Importing {members.name}: 1/1" in result.output
    assert f"{members}: 1 added, 0 updated, 0 unchanged, 1 invalid rows skipped" in result.output
    with newsletter.session() as session:
        ann = session.scalars(select(Subscriber)).one()
        assert (ann.email, ann.language, ann.topic_slugs) == ("ann@example.org", "fr",
                                                              frozenset({"empathy"}))
