"""CSV import: rows per second at 100 000 rows, against a bare Core executemany of the same rows.

1. Write a CSV of N new readers (default 100 000; seeded names, IDN domains, 1-3 topics or all,
   a language column, CRLF, as a spreadsheet exports it).
2. Measured, on a fresh store: what `newsletter subscribers import` does, `parse_subscriber_csv`
   (each address validated once) then `import_rows` (suppressions, subscribers and topics looked
   up per batch; bulk inserts), committed. Then the same file again: every row unchanged.
3. Floor, on another fresh store: the rows the import wrote, inserted with one SQLAlchemy Core
   `executemany` for subscribers and one for their topics, nothing validated or looked up.

Both on SQLite and, with --postgres URL (or NEWSLETTER_BENCH_POSTGRES_URL), PostgreSQL.
Target: >= 10 000 rows/s for the import.

    /tmp/venv/bin/python bench/import_csv.py [--subscribers N] [--postgres URL]
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import say, table  # noqa: E402

TARGET_ROWS_PER_SECOND = 10_000


def write_csv(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    lines = ["email,name,topics,language"]
    topics = ["empathy", "training", "attachment", "termination", "therapist-factors",
              "alliance-and-therapeutic-relationship"]
    for i in range(n):
        first, last = rng.choice(common.FIRST), rng.choice(common.LAST)
        domain = rng.choice(common.DOMAINS + ("bücher.example", "Clinic.Example"))
        chosen = "all" if rng.random() < 0.4 else ";".join(rng.sample(topics, rng.randint(1, 3)))
        name = f"{rng.choice(common.TITLES)}{first} {last}".replace('"', '""')
        lines.append(f'{common._ascii(first)}.{common._ascii(last)}.{i}@{domain},"{name}",'
                     f'{chosen},{rng.choice(("", "en", "fr"))}')
    return ("\r\n".join(lines) + "\r\n").encode()


def import_file(nl: Any, data: bytes) -> tuple[float, float, float, Any, int]:
    """(parse seconds, whole import seconds, its CPU seconds in this process, report, problems),
    as the CLI runs it."""
    from newsletter.taxonomy import topic_slugs
    from subscribers.csv_io import parse_subscriber_csv
    from subscribers.store import import_rows
    cpu = time.process_time()
    with common.timed() as whole, nl.session() as session:
        with common.timed() as parsing:
            rows, problems = parse_subscriber_csv(data, "bench.csv", topics=topic_slugs(session))
        report = import_rows(session, rows, "import: bench.csv")
    return parsing.seconds, whole.seconds, time.process_time() - cpu, report, len(problems)


def written_rows(nl: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What the import wrote, read back as executemany parameters (ids renumbered from 1)."""
    from sqlalchemy import select

    from subscribers.models import Subscriber, subscriber_topics
    columns = [c for c in Subscriber.__table__.columns if c.name != "id"]
    with nl.engine.connect() as conn:
        people = [dict(row._mapping) for row in conn.execute(
            select(Subscriber.id, *columns).order_by(Subscriber.id))]
        links = [dict(row._mapping) for row in conn.execute(select(subscriber_topics))]
    return people, links


def core_floor(nl: Any, people: list[dict[str, Any]], links: list[dict[str, Any]]
               ) -> tuple[float, float]:
    from sqlalchemy import insert

    from subscribers.models import Subscriber, subscriber_topics
    cpu = time.process_time()
    with common.timed() as t, nl.engine.begin() as conn:
        conn.execute(insert(Subscriber.__table__), people)
        conn.execute(insert(subscriber_topics), links)
    return t.seconds, time.process_time() - cpu


def measure(kind: str, postgres: str | None, data: bytes, n: int) -> dict[str, Any]:
    with common.fresh_store(kind, postgres) as nl:
        parse_s, first_s, first_cpu, report, problems = import_file(nl, data)
        if (report.added, problems) != (n, 0):
            raise SystemExit(f"{kind}: expected {n:,} added and no problems, got "
                             f"{report.added:,} added, {problems} problems")
        _, again_s, _, again, _ = import_file(nl, data)
        if again.unchanged != n:
            raise SystemExit(f"{kind}: the second import changed {n - again.unchanged:,} rows")
        people, links = written_rows(nl)
    with common.fresh_store(kind, postgres) as nl:
        floor_s, floor_cpu = core_floor(nl, people, links)
    return {"rows": n, "topic_rows": len(links), "parse_seconds": parse_s,
            "import_seconds": first_s, "import_cpu_seconds": first_cpu,
            "reimport_seconds": again_s, "floor_seconds": floor_s, "floor_cpu_seconds": floor_cpu}


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], 100_000)
    p.add_argument("--postgres", metavar="URL", default=os.environ.get("NEWSLETTER_BENCH_POSTGRES_URL"),
                   help="also on PostgreSQL (a fresh schema in this database; default: "
                        "$NEWSLETTER_BENCH_POSTGRES_URL)")
    args = p.parse_args()
    n = args.subscribers
    kinds = ["SQLite"] + (["PostgreSQL"] if args.postgres else [])
    say(f"[bold]import_csv[/bold]: {n:,} rows on {', '.join(kinds)} · {common.machine()}")
    data = write_csv(n, args.seed)
    say(f"CSV: {len(data) / 1e6:.1f} MB, {n:,} new readers")
    results, rows, ok = {}, [], True
    for kind in kinds:
        r = measure(kind, args.postgres, data, n)
        results[kind] = r
        rate = n / r["import_seconds"]
        floor = n / r["floor_seconds"]
        met = rate >= TARGET_ROWS_PER_SECOND
        ok = ok and met
        rows.append((kind, f"{rate:,.0f} rows/s ({r['import_seconds']:.1f} s, of which parsing "
                           f"{r['parse_seconds']:.1f} s)",
                     f"{n / r['reimport_seconds']:,.0f} rows/s",
                     f"{floor:,.0f} rows/s ({r['floor_seconds']:.1f} s)", f"{rate / floor:.2f}",
                     f"{r['import_cpu_seconds'] / n * 1e6:.0f} µs vs "
                     f"{r['floor_cpu_seconds'] / n * 1e6:.0f} µs",
                     "[green]met[/green]" if met else "[red]missed[/red]"))
    table(f"Importing {n:,} CSV rows ({datetime.now(UTC):%H:%M} UTC)",
          ["database", "import (parse + import_rows)", "same file again (all unchanged)",
           "floor: Core executemany", "import / floor",
           "CPU per row in this process: import vs floor", f">= {TARGET_ROWS_PER_SECOND:,}/s"], rows)
    say("CPU per row counts this process only: on SQLite that includes the database's work, on "
        "PostgreSQL the server's is not in it. On a loaded machine the wall-clock rates fall, "
        "the CPU per row much less.")
    common.write_json(args.json, {"benchmark": "import_csv", "results": results})
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
