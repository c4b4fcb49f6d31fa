"""Archive search at 2 000 published summaries: `search_published` (SQLite FTS5, or PostgreSQL
full-text search with --postgres URL) against two baselines measured in the same run.

    .venv/bin/python bench/archive_search.py [--summaries 2000] [--repeat 20]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]

Baselines: a LIKE scan over the same columns with the same "published" filter (what a server
search without an index does), and today's prefix search (the static archive's search.js
algorithm, in Python, over the prebuilt word lists). The live page (`/archive/search/?q=`,
through Flask's test client) is timed too, since it also loads the published archive.
Summaries are synthetic: sentences drawn (seeded) from the network's real archive excerpt.
"""

from __future__ import annotations

import random
import re
import statistics
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

from common import REPO, SEED, machine, make_config, say, table, timed
from rich.progress import Progress
from sqlalchemy import create_engine, text, update

from newsletter.archive.search import query_terms, search_published
from newsletter.archive.site import _terms, load_published
from newsletter.content.models import Edition, EditionStatus
from newsletter.content.store import assemble_edition, upsert_summary
from newsletter.content.summary_file import SummaryDraft
from newsletter.context import Newsletter
from newsletter.domain import Citation
from newsletter.web import create_app

SEED_TEXT = REPO / "tests" / "fixtures" / "seed" / "archive-sample.txt"
QUERIES = ("alliance", "drop out", "2014", "therapist empathy", "rupture repair outcome",
           "Hoglend", "deliberate practice feedback", "zzzz")
TOPICS = ("alliance-and-therapeutic-relationship", "training", "empathy", "therapist-factors")
JOURNALS = ("Psychotherapy", "Journal of Consulting and Clinical Psychology",
            "American Journal of Psychiatry", "Psychotherapy Research", "American Psychologist")
SURNAMES = ("Safran", "Kraus", "Hoglend", "Tracey", "Wampold", "Elliott", "Bohart", "Swift",
            "Greenberg", "Lambert", "Norcross", "Castonguay", "Barkham", "Côté", "Müller")


def sentences() -> list[str]:
    words = SEED_TEXT.read_text(encoding="utf-8")
    return [s.strip() for s in re.split(r"(?<=[.?!])\s+", words) if 40 < len(s.strip()) < 400]


def populate(nl: Newsletter, count: int, rng: random.Random) -> None:
    pool = sentences()
    months = [f"{1900 + i // 12}-{i % 12 + 1:02d}" for i in range((count + 2) // 3)]
    with Progress() as progress, nl.session() as session:
        task = progress.add_task(f"{count} summaries", total=count)
        made = 0
        for month in months:
            for n in range(min(3, count - made)):
                draft = SummaryDraft(
                    source=f"bench-{month}-{n}.md", id=None, month=month,
                    headline=" ".join(rng.sample(pool, 1)[0].split()[:9]).rstrip(".,;:") + "?",
                    citation=Citation(authors=tuple(f"{rng.choice(SURNAMES)}, {chr(65 + k)}."
                                                    for k in range(rng.randint(1, 4))),
                                      year=rng.randint(1990, 2026), title=rng.choice(pool)[:120],
                                      source=rng.choice(JOURNALS), volume=str(rng.randint(1, 80))),
                    topics=tuple(rng.sample(TOPICS, 2)), research_type="review", note_md=None,
                    body_md=" ".join(rng.sample(pool, 6)), implications_md=rng.choice(pool),
                    status="ready")
                upsert_summary(session, draft)
                made += 1
                progress.advance(task)
            assemble_edition(session, month)
        session.execute(update(Edition).values(status=EditionStatus.SENT,
                                               sent_at=datetime(2026, 1, 1, tzinfo=UTC)))


def like_scan(nl: Newsletter, query: str) -> int:
    terms = query_terms(query)
    columns = "(s.headline || ' ' || s.body_md || ' ' || s.implications_md || ' ' || " \
              "CAST(s.citation AS TEXT))"
    where = " AND ".join(f"lower({columns}) LIKE :t{i}" for i in range(len(terms)))
    sql = (f"SELECT s.uid FROM summaries s WHERE {where} AND s.status = 'ready' AND EXISTS ("
           "SELECT 1 FROM edition_items ei JOIN editions e ON e.id = ei.edition_id "
           "WHERE ei.summary_id = s.id AND e.status = 'sent') LIMIT 100")
    with nl.session() as session:
        rows = session.execute(text(sql), {f"t{i}": f"%{t}%" for i, t in enumerate(terms)})
        return len(rows.all())


def prefix_search(words: list[str], query: str) -> int:
    """search.js's rule and method: every query word must start a word of the summary's
    prebuilt word list (" " + term found in " " + words)."""
    terms = [" " + t for t in query_terms(query)]
    return sum(all(t in ws for t in terms) for ws in words)


def best_ms(run, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        with timed() as t:
            run()
        times.append(t.seconds * 1000)
    return min(times) if repeat < 5 else statistics.median(times)


def main() -> int:
    import argparse
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--summaries", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--postgres", metavar="URL", help="also on PostgreSQL (a throwaway schema)")
    args = p.parse_args()
    say(f"[bold]archive search[/bold], {args.summaries} summaries · {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        urls = [("sqlite", f"sqlite:///{Path(tmp) / 'search.db'}")]
        schema = ""
        if args.postgres:
            schema = "bench_" + uuid.uuid4().hex[:10]
            base = args.postgres.replace("postgresql://", "postgresql+psycopg://", 1)
            with create_engine(base, isolation_level="AUTOCOMMIT").connect() as c:
                c.execute(text(f'CREATE SCHEMA "{schema}"'))
            sep = "&" if "?" in base else "?"
            urls.append(("postgresql", f"{base}{sep}options=-csearch_path%3D{schema}"))
        try:
            for name, url in urls:
                run_one(name, url, args)
        finally:
            if schema:
                with create_engine(base, isolation_level="AUTOCOMMIT").connect() as c:
                    c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    return 0


def run_one(name: str, url: str, args) -> None:  # type: ignore[no-untyped-def]
    nl = Newsletter.open(make_config(url))
    try:
        nl.init()
        populate(nl, args.summaries, random.Random(SEED))
        with nl.session() as session:
            published = load_published(session)
        words = [" " + " ".join(_terms(i)) for e in published.editions for i in e.content.items]
        client = create_app(nl, testing=True).test_client()
        rows = []
        for query in QUERIES:
            with nl.session() as session:
                found = len(search_published(session, query))
                ours = best_ms(lambda q=query: search_published(session, q), args.repeat)
            like = best_ms(lambda q=query: like_scan(nl, q), args.repeat)
            prefix = best_ms(lambda q=query: prefix_search(words, q), args.repeat)
            page = best_ms(lambda q=query: client.get("/archive/search/", query_string={"q": q}),
                           max(3, args.repeat // 5))
            rows.append((query, found, f"{ours:.2f}", f"{like:.2f}", f"{like / ours:.0f}×",
                         f"{prefix:.2f}", f"{page:.1f}"))
        table(f"{name}: milliseconds per query (median of {args.repeat})",
              ("query", "hits", "FTS (ours)", "LIKE scan", "LIKE/ours", "prefix (today)",
               "whole page"), rows)
    finally:
        nl.close()


if __name__ == "__main__":
    raise SystemExit(main())

