"""Console pages: median and p95 server time of every GET page under /admin, at 100 000 subscribers
and 120 editions.

The store: N subscribers (common.insert_subscribers, then varied by set-based UPDATEs: statuses,
paused, languages, suppressions), 120 monthly editions of 2–3 summaries over ten years (through the
library, so revisions are kept; one summary edited twice more), a ledger row per subscriber for
the newest edition (mixed statuses), feedback events and click counts for it, an audit log of a
few thousand entries and one owner editor. Then, with Flask's test client signed in through the
real login view, every GET rule under /admin in `app.url_map` (as it is when the script runs, so
pages added later are measured too) is requested `--warmups` times, then `--repeats` times; the
time is the WSGI call itself, body included (a middleware around `app.wsgi_app`), not the test
client's work. Path arguments are real: the newest edition's month, a subscriber with deliveries,
a summary with revisions. Baselines, same run: a no-op route on the same app, and /admin/ (home).
Exits 1 when a page misses the budget (p95 < 200 ms) or does not answer 200.

    .venv/bin/python bench/console_pages.py [--subscribers 100000] [--repeats 30] [--warmups 3]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import os
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import say, table  # noqa: E402
from sqlalchemy import Integer, String, case, cast, func, insert, literal, select, text, update  # noqa: E402

from newsletter.clicks.models import ClickCount  # noqa: E402
from newsletter.content.history_models import SummaryRevision  # noqa: E402
from newsletter.content.models import Edition, EditionStatus  # noqa: E402
from newsletter.content.store import assemble_edition, upsert_summary  # noqa: E402
from newsletter.content.summary_file import SummaryDraft  # noqa: E402
from newsletter.context import Newsletter  # noqa: E402
from newsletter.db import UTCDateTime  # noqa: E402
from newsletter.domain import Citation  # noqa: E402
from newsletter.editors import add_editor  # noqa: E402
from newsletter.editors.models import AuditEntry, Editor, EditorSession, Role  # noqa: E402
from newsletter.feedback.events import EventKind, Source  # noqa: E402
from newsletter.feedback.models import FeedbackEventRow, Match  # noqa: E402
from newsletter.sending.models import Delivery, DeliveryStatus  # noqa: E402
from newsletter.taxonomy import research_type_slugs, topic_slugs  # noqa: E402
from newsletter.web import create_app  # noqa: E402
from subscribers.models import Subscriber, SubscriberStatus, Suppression  # noqa: E402
from subscribers.store import receives_mail  # noqa: E402

BUDGET_MS = 200.0
OWNER = "owner@bench.example"
PASSWORD = "bench password, not for production"
NOOP = "/bench-noop"
LAST_MONTH = common.MONTH  # the newest edition; 120 months back from it
SEARCH_TERM = "okafor"
DELIVERY_MIX = ((DeliveryStatus.SENT, 88), (DeliveryStatus.FAILED, 3), (DeliveryStatus.REJECTED, 2),
                (DeliveryStatus.UNCERTAIN, 1), (DeliveryStatus.PENDING, 4),
                (DeliveryStatus.IN_FLIGHT, 2))
QUERIES: dict[str, list[str]] = {
    # endpoint -> extra query strings to time besides the bare page (search pages, preview sets).
    # Names are looked up at run time: a page whose endpoint is not here is timed bare.
    "admin.subscribers": [f"q={SEARCH_TERM}", f"q={SEARCH_TERM}&page=2"],
    "admin.summaries": [],
    "admin.audit_log": ["action=login", f"actor={OWNER}", "page=2"],
    "admin.edition_preview": ["as=topics&{topic_query}",
                              "as=subscriber&email={subscriber_email}&width=phone"],
    "admin.edition_preview_html": ["as=topics&{topic_query}",
                                   "as=subscriber&email={subscriber_email}"],
}
COLD = {"admin.coverage": "console_coverage_followers"}
"""Pages that keep a figure for a while in `app.extensions[key]`: timed again with it dropped
before every request, so the page's cold cost shows too."""
FIXED_ARGUMENTS = {"verb": "cancel", "number": 1}
"""Path arguments that are not ids: `send/<verb>` (cancel's GET is its question page), a revision
number."""
WORDS = ("alliance", "rupture", "empathy", "outcome", "dropout", "feedback", "trial", "therapist",
         "client", "progress", "meta-analysis", "depression", "anxiety", "attachment", "training")


# ---------------------------------------------------------------------------- seeding

@dataclass
class Seeded:
    subscribers: int
    editions: int
    summaries: int = 0
    deliveries: int = 0
    feedback: int = 0
    clicks: int = 0
    audit: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)
    """Real values for the URL rules' arguments, by argument name."""


def months_back(last: str, n: int) -> list[str]:
    year, month = map(int, last.split("-"))
    found = []
    for _ in range(n):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return found[::-1]


def draft(rng: random.Random, month: str, n: int, topics: list[str], types: list[str]) -> SummaryDraft:
    words = rng.sample(WORDS, 4)
    # Some topics are summarised often, some seldom: a skewed pick, so coverage has gaps.
    chosen = sorted({topics[min(int(rng.expovariate(1 / 9)), len(topics) - 1)]
                     for _ in range(rng.randint(1, 3))})
    author = f"{rng.choice(common.LAST)}, {rng.choice(common.FIRST)[0]}."
    return SummaryDraft(
        source=f"bench/{month}-{n}.md", id=f"bench-{month}-{n}", month=month,
        headline=f"Does {words[0]} change {words[1]}? ({month}, {n + 1})",
        citation=Citation(authors=(author, "Smith, J."), year=int(month[:4]),
                          title=f"The {words[2]} of {words[3]}: a study",
                          source="Psychotherapy Research", volume=str(rng.randint(1, 40)),
                          issue=str(rng.randint(1, 6)), pages=f"{rng.randint(1, 400)}-410",
                          doi=f"10.5555/bench.{month}.{n}"),
        topics=tuple(chosen), research_type=rng.choice(types), note_md=None,
        body_md=" ".join(rng.choice(WORDS) for _ in range(180)) + ".",
        implications_md=" ".join(rng.choice(WORDS) for _ in range(60)) + ".", status="ready")


def seed_editions(nl: Newsletter, rng: random.Random, editions: int) -> tuple[int, int]:
    """`editions` months of 2–3 summaries, assembled and marked sent; the newest edition's first
    summary saved twice more (three revisions). (summaries, id of that summary)."""
    made = 0
    with nl.session() as session:
        topics, types = topic_slugs(session), research_type_slugs(session)
        rng.shuffle(topics)
        months = months_back(LAST_MONTH, editions)
        for month in months:
            for n in range(rng.randint(2, 3)):
                upsert_summary(session, draft(rng, month, n, topics, types), who=OWNER)
                made += 1
            assemble_edition(session, month)
        first = draft(random.Random(months[-1]), months[-1], 0, topics, types)
        for again in range(2):
            result = upsert_summary(session, replace(first, body_md=first.body_md + f" Edit {again}."),
                                    who=OWNER)
        revised = result.summary.id
        start = datetime(int(months[0][:4]), int(months[0][5:]), 1, 9, tzinfo=UTC)
        for i, month in enumerate(months):
            session.execute(update(Edition).where(Edition.month == month).values(
                status=EditionStatus.SENT, sent_at=start + timedelta(days=30.44 * i)))
    return made, revised


def vary_subscribers(nl: Newsletter, n: int) -> None:
    """Statuses, pauses, languages and suppressions by id, set-based (the insert made everyone
    active and English)."""
    s = Subscriber.__table__.c
    now = datetime.now(UTC)
    with nl.engine.begin() as conn:
        conn.execute(update(Subscriber).where(s.id % 10 == 3)
                     .values(status=SubscriberStatus.UNSUBSCRIBED, unsubscribed_at=now))
        conn.execute(update(Subscriber).where(s.id % 20 == 7)
                     .values(status=SubscriberStatus.UNCONFIRMED, confirmed_at=None))
        conn.execute(update(Subscriber).where(s.id % 50 == 11)
                     .values(status=SubscriberStatus.BOUNCED))
        conn.execute(update(Subscriber).where(s.id % 97 == 13)
                     .values(status=SubscriberStatus.COMPLAINED))
        conn.execute(update(Subscriber).where(s.id % 40 == 17).values(paused_at=now))
        conn.execute(update(Subscriber).where(s.id % 5 == 1).values(language="fr"))
        conn.execute(update(Subscriber).where(s.id % 13 == 2).values(language="de"))
        bounced = conn.execute(select(s.email, s.email_hash).where(
            s.status.in_([SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED]))).all()
        if bounced:
            conn.execute(insert(Suppression), [
                {"email_hash": h, "email": e, "reason": "hard_bounce", "detail": "bench",
                 "created_at": now} for e, h in bounced])


def _bucket_case(column: Any, mix: tuple[tuple[Any, int], ...]) -> Any:
    """A CASE giving each row one of `mix`'s values by a hash of `column` (shares out of 100)."""
    bucket, edge, whens = (column * 7919 + 13) % 100, 0, []
    for value, share in mix[:-1]:
        edge += share
        whens.append((bucket < edge, literal(getattr(value, "value", value), String)))
    last = mix[-1][0]
    return case(*whens, else_=literal(getattr(last, "value", last), String))


def seed_ledger(nl: Newsletter, month: str) -> tuple[int, int, int]:
    """A delivery per subscriber for `month`'s edition in the mix above, a feedback event for
    one sent delivery in twenty, click counts per summary link: INSERT … SELECT, set-based, as
    the planner writes the ledger. (deliveries, events, click rows)."""
    now = datetime.now(UTC)
    with nl.session() as session:
        edition = session.scalar(select(Edition).where(Edition.month == month))
        assert edition is not None
        edition_id, items = edition.id, [(i.summary.id, i.summary.uid) for i in edition.items]
    variant = ",".join(str(sid) for sid, _ in items)
    s, stamp = Subscriber.__table__.c, literal(now, UTCDateTime())
    status = _bucket_case(s.id, DELIVERY_MIX)
    errors = {DeliveryStatus.FAILED.value: "451 4.7.1 try again later",
              DeliveryStatus.REJECTED.value: "550 5.1.1 no such user",
              DeliveryStatus.UNCERTAIN.value: "connection lost after DATA"}
    rows = select(
        literal(edition_id, Integer), s.id,
        case((s.language == "en", literal(variant, String)),
             else_=s.language + literal(":" + variant, String)),
        status, case((status == DeliveryStatus.PENDING.value, 0), else_=1),
        case((status == DeliveryStatus.SENT.value,
              literal("<bench.", String) + cast(s.id, String) + literal("@pprnet.example>", String))),
        case(*((status == k, literal(v, String)) for k, v in errors.items())),
        case((status == DeliveryStatus.SENT.value, stamp)), stamp, stamp)
    d = Delivery.__table__.c
    kinds = ((EventKind.DELIVERED, 80), (EventKind.BOUNCE_SOFT, 8), (EventKind.BOUNCE_HARD, 4),
             (EventKind.COMPLAINT, 2), (EventKind.UNSUBSCRIBE, 3), (EventKind.IGNORED, 3))
    events = (select(literal(Source.POSTMARK.value, String),
                     literal("bench-", String) + cast(d.id, String), _bucket_case(d.id, kinds),
                     stamp, stamp, d.subscriber_id, d.id, d.edition_id,
                     literal(Match.DELIVERY.value, String), s.email_hash, d.provider_message_id,
                     literal("", String))
              .join(Subscriber.__table__, s.id == d.subscriber_id)
              .where(d.edition_id == edition_id, d.status == DeliveryStatus.SENT.value,
                     d.id % 20 == 0))
    rng = random.Random(month)
    clicks = [{"edition_month": month, "summary_uid": uid, "url_hash": f"{k:064x}",
               "url": f"https://doi.org/10.5555/bench.{k}", "clicks": rng.randint(1, 900),
               "first_at": now, "last_at": now}
              for k, (_, uid) in enumerate(items * 4)]
    with nl.engine.begin() as conn:
        written = conn.execute(insert(Delivery).from_select(
            ["edition_id", "subscriber_id", "variant", "status", "attempts", "provider_message_id",
             "last_error", "sent_at", "created_at", "updated_at"], rows)
            .execution_options(preserve_rowcount=True)).rowcount
        noted = conn.execute(insert(FeedbackEventRow).from_select(
            ["source", "event_key", "kind", "occurred_at", "received_at", "subscriber_id",
             "delivery_id", "edition_id", "matched_by", "address_hash", "provider_message_id",
             "reason"], events).execution_options(preserve_rowcount=True)).rowcount
        conn.execute(insert(ClickCount), clicks)
    return written, noted, len(clicks)


def seed_audit(nl: Newsletter, rng: random.Random, n: int) -> None:
    actions = ("login.ok", "login.failed", "summary.save", "edition.save", "schedule.set",
               "send.start", "send.pause", "subscriber.suppress", "editor.add")
    now = datetime.now(UTC)
    rows = [{"at": now - timedelta(minutes=n - i), "actor": rng.choice((OWNER, "ed@bench.example")),
             "action": rng.choice(actions), "client": "192.0.2.1", "detail": {"n": i}}
            for i in range(n)]
    with nl.engine.begin() as conn:
        conn.execute(insert(AuditEntry), rows)


def seed(nl: Newsletter, *, subscribers: int, editions: int = 120, seed: int = common.SEED,
         audit_entries: int = 5000) -> Seeded:
    """Everything the pages read, on an initialised, empty store."""
    rng = random.Random(seed)
    done = Seeded(subscribers, editions)
    with common.timed() as t:
        done.summaries, done.ids["summary_id"] = seed_editions(nl, rng, editions)
    done.seconds["editions"] = t.seconds
    with common.timed() as t:
        common.insert_subscribers(nl, subscribers, seed)
        vary_subscribers(nl, subscribers)
    done.seconds["subscribers"] = t.seconds
    with common.timed() as t:
        done.deliveries, done.feedback, done.clicks = seed_ledger(nl, LAST_MONTH)
        seed_audit(nl, rng, audit_entries)
        done.audit = audit_entries
    done.seconds["ledger"] = t.seconds
    with nl.session() as session:
        owner = add_editor(session, OWNER, name="Bench Owner", password=PASSWORD, role=Role.OWNER)
        session.flush()
        done.ids["editor_id"] = owner.id
        edition = session.scalar(select(Edition).where(Edition.month == LAST_MONTH))
        assert edition is not None
        done.ids["edition_id"], done.ids["month"] = edition.id, LAST_MONTH
        first_topics = [t.slug for t in edition.items[0].summary.topics]
        done.ids["topic_query"] = "&".join(f"topic={slug}" for slug in first_topics[:2])
        someone = session.execute(select(Subscriber.id, Subscriber.email).join(
            Delivery, Delivery.subscriber_id == Subscriber.id).where(
            Delivery.edition_id == edition.id, receives_mail(), Subscriber.all_topics.is_(True))
            .order_by(Subscriber.id).limit(1)).first()
        assert someone is not None
        done.ids["subscriber_id"], done.ids["subscriber_email"] = someone
        delivery = session.scalar(select(Delivery.id).where(Delivery.subscriber_id == someone[0]))
        done.ids["delivery_id"] = delivery
    _analyse(nl)
    return done


def _analyse(nl: Newsletter) -> None:
    """Fresh statistics after a bulk load, as a deployment has after autovacuum or `ANALYZE`."""
    with nl.engine.begin() as conn:
        conn.execute(text("ANALYZE"))


# ---------------------------------------------------------------------------- timing

@dataclass
class PageTime:
    path: str
    endpoint: str
    status: int
    times: list[float]
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else 0.0

    @property
    def p95(self) -> float:
        if not self.times:
            return 0.0
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


class ServerTimer:
    """Around `app.wsgi_app`: the seconds of the last call, with the body read (a lazy body is
    the app's work too), not the test client's environ building and response parsing."""

    def __init__(self, wsgi: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi, self.last = wsgi, 0.0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        started = time.perf_counter()
        body = self.wsgi(environ, start_response)
        try:
            chunks = list(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        self.last = time.perf_counter() - started
        return chunks


TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def signed_in_client(app: Any) -> Any:
    client = app.test_client()
    page = client.get("/admin/login").get_data(as_text=True)
    found = TOKEN.search(page)
    assert found, "no CSRF token on the login page"
    answer = client.post("/admin/login", data={"csrf_token": found.group(1), "email": OWNER,
                                               "password": PASSWORD})
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/", answer.status_code
    return client


def console_urls(app: Any, ids: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(endpoint, url, note) for every GET rule under /admin except the sign-in steps, with
    real arguments, and the query strings of QUERIES."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/admin") or "GET" not in (rule.methods or ()):
            continue
        view = app.view_functions[rule.endpoint]
        if getattr(view, "console_role", "") is None:
            continue  # the sign-in steps (public)
        url, missing = rule.rule, []
        for name in re.findall(r"<(?:\w+:)?(\w+)>", rule.rule):
            value = ids.get(name)
            if value is None:
                missing.append(name)
                continue
            url = re.sub(rf"<(?:\w+:)?{name}>", str(value), url)
        if missing:
            yield rule.endpoint, rule.rule, f"no value for {', '.join(missing)}"
            continue
        yield rule.endpoint, url, ""
        for query in QUERIES.get(rule.endpoint, []):
            yield rule.endpoint, f"{url}?{query.format(**ids)}", ""


def measure(nl: Newsletter, seeded: Seeded, *, repeats: int = 30, warmups: int = 3,
            match: re.Pattern[str] | None = None, verbose: bool = False) -> list[PageTime]:
    app = create_app(nl, testing=True)
    app.logger.disabled = not verbose  # a page's 500 shows as its status; --verbose: the traceback
    app.add_url_rule(NOOP, "bench_noop", lambda: "ok")
    timer = ServerTimer(app.wsgi_app)
    app.wsgi_app = timer  # type: ignore[method-assign]
    client = signed_in_client(app)
    with nl.session() as session:
        ids = {**FIXED_ARGUMENTS, **seeded.ids}
        ids["session_id"] = session.scalar(select(func.max(EditorSession.id)))
        ids["editor_id"] = ids.get("editor_id") or session.scalar(select(func.min(Editor.id)))
        ids.setdefault("revision_id", _a_revision(session, ids.get("summary_id")))
    targets = [("bench_noop", NOOP, "")] + [
        t for t in console_urls(app, ids) if match is None or t[1] == "/admin/" or match.search(t[1])]
    targets += [(endpoint, url, "cold") for endpoint, url, note in targets
                if endpoint in COLD and not note and "?" not in url]
    results = []
    for endpoint, url, note in targets:
        if note and note != "cold":
            results.append(PageTime(url, endpoint, 0, [], note))
            continue
        statuses, times = set(), []
        for n in range(warmups + repeats):
            if note == "cold":
                app.extensions.pop(COLD[endpoint], None)
            answer = client.get(url)
            statuses.add(answer.status_code)
            if n >= warmups:
                times.append(timer.last)
        status = max(statuses, key=lambda code: (code != 200, code))  # a non-200 shows
        results.append(PageTime(url + ("  (cold: nothing kept)" if note else ""), endpoint, status,
                                times))
    return results


def _a_revision(session: Any, summary_id: int | None) -> int | None:
    return session.scalar(select(func.max(SummaryRevision.id))
                          .where(SummaryRevision.summary_id == summary_id))


# ---------------------------------------------------------------------------- stores

def report(kind: str, results: list[PageTime]) -> tuple[list[str], dict[str, Any]]:
    """Print the table; (pages that missed, figures)."""
    missed, rows = [], []
    noop = next((r for r in results if r.endpoint == "bench_noop"), None)
    home = next((r for r in results if r.path == "/admin/"), None)
    for r in results:
        if r.note:
            rows.append((r.path, "-", "-", "-", "-", f"[yellow]skipped: {r.note}[/yellow]"))
            continue
        over = r.p95 * 1000 > BUDGET_MS or r.status != 200
        if over and r.endpoint != "bench_noop":
            missed.append(r.path)
        ratio = f"{r.median / home.median:.1f}×" if home and home.median else "-"
        verdict = ("[red]over budget[/red]" if r.p95 * 1000 > BUDGET_MS else
                   "[green]ok[/green]") if r.status == 200 else f"[red]status {r.status}[/red]"
        label = "baseline: no-op route" if r.endpoint == "bench_noop" else (
            "baseline: home" if r is home else "")
        rows.append((r.path + (f"  ({label})" if label else ""), str(r.status), f"{r.median * 1000:.1f}",
                     f"{r.p95 * 1000:.1f}", ratio, verdict))
    n = len(results[0].times) if results and results[0].times else 0
    table(f"Console pages on {kind}: server time per request, {n} requests each "
          f"(budget p95 < {BUDGET_MS:.0f} ms)",
          ["page", "status", "median ms", "p95 ms", "median / home", "verdict"], rows)
    if noop:
        say(f"no-op route: median {noop.median * 1000:.2f} ms (the app's floor: routing, session "
            f"cookie, security headers)")
    figures = {r.path: {"endpoint": r.endpoint, "status": r.status, "median_ms": r.median * 1000,
                        "p95_ms": r.p95 * 1000, "note": r.note} for r in results}
    return missed, figures


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], 100_000)
    p.add_argument("--editions", type=int, default=120, help="monthly editions (default 120)")
    p.add_argument("--repeats", type=int, default=30, help="timed requests per page (default 30)")
    p.add_argument("--warmups", type=int, default=3, help="untimed requests first (default 3)")
    p.add_argument("--postgres", metavar="URL", default=os.environ.get("NEWSLETTER_BENCH_POSTGRES_URL"),
                   help="also on PostgreSQL (a fresh schema in this database; default: "
                        "$NEWSLETTER_BENCH_POSTGRES_URL)")
    p.add_argument("--only-postgres", action="store_true", help="skip SQLite")
    p.add_argument("--match", metavar="REGEX", help="time only the pages whose path matches")
    p.add_argument("--verbose", action="store_true", help="show the app's error log (tracebacks)")
    args = p.parse_args()
    if common.console is not None and not sys.stdout.isatty():
        common.console.width = 150  # the paths are long
    kinds = ([] if args.only_postgres else ["SQLite"]) + (["PostgreSQL"] if args.postgres else [])
    say(f"[bold]console_pages[/bold]: {args.subscribers:,} subscribers, {args.editions} editions, "
        f"{args.repeats} requests a page after {args.warmups} warm-ups, on {', '.join(kinds)} · "
        f"{common.machine()}")
    figures, all_missed = {}, []
    for kind in kinds:
        with common.fresh_store(kind, args.postgres) as nl:
            with common.timed() as t:
                seeded = seed(nl, subscribers=args.subscribers, editions=args.editions,
                              seed=args.seed)
            phases = ", ".join(f"{k} {v:.1f} s" for k, v in seeded.seconds.items())
            say(f"{kind}: seeded in {t.seconds:.1f} s ({phases}): "
                f"{seeded.subscribers:,} subscribers, {seeded.summaries} summaries, "
                f"{seeded.deliveries:,} deliveries, {seeded.feedback:,} feedback events, "
                f"{seeded.clicks} click rows, {seeded.audit:,} audit entries")
            results = measure(nl, seeded, repeats=args.repeats, warmups=args.warmups,
                              match=re.compile(args.match) if args.match else None,
                              verbose=args.verbose)
            missed, figures[kind] = report(kind, results)
            all_missed += [f"{kind} {path}" for path in missed]
    if all_missed:
        say(f"[red]over budget or not 200:[/red] {', '.join(all_missed)}")
    common.write_json(args.json, {"benchmark": "console_pages", "subscribers": args.subscribers,
                                  "editions": args.editions, "results": figures})
    return 1 if all_missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
