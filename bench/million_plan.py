"""A million subscribers: set-based planning against the Python loop it replaced, on SQLite and
PostgreSQL; and (with --send) the peak memory of a full send into smtp-sink.

Planning (the default):
1. Insert N subscribers (default 1 000 000; Core bulk insert, timed but not counted) into a fresh
   SQLite file and, with --postgres URL (or NEWSLETTER_BENCH_POSTGRES_URL), a fresh PostgreSQL
   schema.
2. Baseline, in a fresh subprocess: the Python planner as it was (`iter_audience` a chunk at a
   time, `variant_key(variant_for(…), language)` per reader, `ledger.add_pending` per chunk).
3. Its rows are deleted; then measured, in a fresh subprocess: `SqlSendStore.plan`, as `send`
   calls it (planner.py: one INSERT … SELECT per 100 000 ids, plus the counts). Both report time,
   VmHWM (peak RSS) and their counts per variant, which must be equal. Target: < 10 s at 1 M.
   Each starts from a settled database, as a monthly send finds it: on PostgreSQL `VACUUM ANALYZE`
   and `CHECKPOINT` first, on SQLite a WAL checkpoint. Unsettled, the planner shared the machine
   with autovacuum of a million rows just inserted or deleted and with the checkpointer (probe,
   2026-12-07, the same plan: 13.6 s right after the bulk insert, 10.2-10.5 s after a DELETE,
   9.0 s after TRUNCATE and VACUUM, 7.8-8.1 s settled).

--send: `Sender.send(month)` into smtp-sink in a subprocess (planning included), VmRSS once ready,
VmHWM after planning and after the whole send, against the same subprocess on 10 000 readers.
Target: peak < 150 MB, flat in N. SQLite only.

    /tmp/venv/bin/python bench/million_plan.py [--subscribers N] [--postgres URL] [--send]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import say, table  # noqa: E402

PLAN_TARGET_SECONDS = 10.0
TARGET_MB = 150


# ---------------------------------------------------------------------------- --send


def child(db: str, port: int, connections: int, plan_only: bool, max_seconds: float,
          experiments: list[str] | None) -> None:
    """Runs in the subprocess: open the store, send (or only plan), print one JSON line."""
    from newsletter.sending.engine import Sender
    common.apply_experiments(experiments)

    class MeasuredSender(Sender):
        plan_seconds = 0.0
        hwm_after_plan = 0.0

        def _plan(self, edition):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            counts = super()._plan(edition)
            self.plan_seconds = time.perf_counter() - started
            self.hwm_after_plan = common.peak_rss_mb()
            if plan_only:
                raise _PlanDone(counts)
            return counts

    nl = common.open_store(db, smtp_port=port)
    transport, used = common.smtp_transport(common.LOOPBACK, port, connections=connections)
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 30 or done == total:
            last[0] = now
            print(f"  … {done:,}/{total:,} sent, RSS {common.rss_mb():.0f} MB", file=sys.stderr,
                  flush=True)

    stop = threading.Event()  # bounds the run: the sender stops cleanly between batches
    timer = threading.Timer(max_seconds, stop.set)
    timer.daemon = True
    sender = MeasuredSender(nl, transport, progress=progress, stop=stop)
    ready_rss = common.rss_mb()
    result: dict[str, object] = {"ready_rss_mb": ready_rss, "ready_hwm_mb": common.peak_rss_mb(),
                                 "connections": used}
    started = time.perf_counter()
    timer.start()
    try:
        report = sender.send(common.MONTH)
        result.update(sent=report.sent, failed=report.failed, complete=report.complete,
                      stopped=report.stopped, planned=report.planned.recipients,
                      no_match=report.planned.no_match)
    except _PlanDone as done:
        result.update(sent=0, planned=done.counts.recipients, no_match=done.counts.no_match)
    finally:
        timer.cancel()
        transport.close()
    result.update(seconds=time.perf_counter() - started, plan_seconds=sender.plan_seconds,
                  hwm_after_plan_mb=sender.hwm_after_plan, hwm_mb=common.peak_rss_mb())
    nl.close()
    print(json.dumps(result), flush=True)


class _PlanDone(Exception):
    def __init__(self, counts) -> None:  # type: ignore[no-untyped-def]
        super().__init__("plan only")
        self.counts = counts


def run_child(store: common.BenchStore, sink: common.SmtpSink, args) -> dict[str, float]:  # type: ignore[no-untyped-def]
    argv = [sys.executable, __file__, "--child", str(store.db_path), "--port", str(sink.port),
            "--connections", str(args.connections), "--max-send-seconds",
            str(args.max_send_seconds)] + (["--plan-only"] if args.plan_only else [])
    for name in args.experiment or ():
        argv += ["--experiment", name]
    done = subprocess.run(argv, stdout=subprocess.PIPE, timeout=args.max_send_seconds + 300,
                          check=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def read_floor(store: common.BenchStore) -> tuple[float, int]:
    """Seconds to stream the audience and pick every variant, writing nothing."""
    from newsletter.content.variants import variant_for, variant_key
    from subscribers.store import iter_audience
    edition = common.edition(store.nl)
    matched = 0
    with common.timed() as t, store.nl.sessions() as session:
        for chunk in iter_audience(session):
            matched += sum(1 for r in chunk if variant_key(variant_for(edition, r.topics)))
    return t.seconds, matched


# ---------------------------------------------------------------------------- planning


def python_plan(nl, edition_id: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The planner before set-based planning (SqlSendStore.plan and Sender._plan as they were),
    kept here as the baseline: every reader through Python, a chunk per transaction."""
    from newsletter.content.models import Edition
    from newsletter.content.store import edition_content
    from newsletter.content.variants import variant_for, variant_key
    from newsletter.db import utcnow
    from newsletter.sending import ledger
    from newsletter.sending.plan import PlanCounts
    from subscribers.store import iter_audience
    counts = PlanCounts()
    with nl.sessions() as session:
        edition = edition_content(session.get_one(Edition, edition_id))
        for chunk in iter_audience(session):
            keys = [variant_key(variant_for(edition, r.topics), r.language) for r in chunk]
            counts.add(keys)
            ledger.add_pending(session, edition_id,
                               [(r.id, k) for r, k in zip(chunk, keys, strict=True) if k], utcnow())
            session.commit()
    return {**counts.by_variant, "": counts.no_match}


def sql_plan(nl, edition_id: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    from newsletter.db import utcnow
    from newsletter.sending.store import SqlSendStore

    def never(chunk):  # type: ignore[no-untyped-def]
        raise AssertionError("SqlSendStore.plan walked the audience in Python")

    counts = SqlSendStore(nl).plan(edition_id, never, utcnow)
    assert counts is not None
    return {**counts.by_variant, "": counts.no_match}


def plan_child(url: str, how: str) -> None:
    """Runs in the subprocess: plan with `how`, print one JSON line (seconds, memory, counts)."""
    from sqlalchemy import func, select

    from newsletter.context import Newsletter
    from newsletter.sending.models import Delivery
    nl = Newsletter.open(common.make_config(url))
    edition_id = common.edition(nl).id
    ready = common.rss_mb()
    started = time.perf_counter()
    counts = (python_plan if how == "python" else sql_plan)(nl, edition_id)
    seconds = time.perf_counter() - started
    with nl.session() as session:
        rows = session.scalar(select(func.count()).select_from(Delivery)
                              .where(Delivery.edition_id == edition_id))
    nl.close()
    print(json.dumps({"seconds": seconds, "ready_mb": ready, "hwm_mb": common.peak_rss_mb(),
                      "rows": rows, "counts": counts}), flush=True)


def run_plan_child(url: str, how: str) -> dict:  # type: ignore[type-arg]
    done = subprocess.run([sys.executable, __file__, "--plan-child", how, "--url", url],
                          stdout=subprocess.PIPE, timeout=1800, check=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def postgres_store(base_url: str, n: int, seed: int) -> Iterator[tuple[str, float]]:
    """A fresh schema holding the example edition and N subscribers: (url, insert seconds)."""
    from sqlalchemy import create_engine, text

    from newsletter.context import Newsletter
    base = base_url.replace("postgresql://", "postgresql+psycopg://", 1)
    schema = "bench_" + uuid.uuid4().hex[:10]
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    try:
        nl = Newsletter.open(common.make_config(url))
        nl.init()
        common.load_examples(nl)
        with common.timed() as t:
            common.insert_subscribers(nl, n, seed)
        nl.close()
        yield url, t.seconds
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def sqlite_store(n: int, seed: int) -> Iterator[tuple[str, float]]:
    with common.BenchStore(n, seed) as store:
        store.nl.close()
        yield f"sqlite:///{store.db_path}", store.insert_seconds


def clear_ledger(url: str) -> None:
    from sqlalchemy import delete

    from newsletter.context import Newsletter
    from newsletter.sending.models import Delivery
    nl = Newsletter.open(common.make_config(url))
    with nl.session() as session:
        session.execute(delete(Delivery))
    nl.close()


def settle(url: str) -> None:
    """What autovacuum and the checkpointer would have done before a real send, done now."""
    from sqlalchemy import create_engine, text
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    statements = (["PRAGMA wal_checkpoint(TRUNCATE)"] if engine.dialect.name == "sqlite"
                  else ["VACUUM ANALYZE", "CHECKPOINT"])
    with engine.connect() as connection:
        for statement in statements:
            connection.execute(text(statement))
    engine.dispose()


def compare_plans(url: str) -> tuple[dict, dict]:  # type: ignore[type-arg]
    settle(url)
    old = run_plan_child(url, "python")
    clear_ledger(url)
    settle(url)
    new = run_plan_child(url, "sql")
    if old["counts"] != new["counts"] or old["rows"] != new["rows"]:
        raise SystemExit(f"the planners disagree: python {old['counts']} ({old['rows']} rows), "
                         f"sql {new['counts']} ({new['rows']} rows)")
    return old, new


def plan_main(args) -> int:  # type: ignore[no-untyped-def]
    databases = [("SQLite", lambda: sqlite_store(args.subscribers, args.seed))]
    if args.postgres:
        databases.append(("PostgreSQL", lambda: postgres_store(args.postgres, args.subscribers,
                                                                args.seed)))
    say(f"[bold]million_plan[/bold]: planning {args.subscribers:,} subscribers on "
        f"{', '.join(name for name, _ in databases)} · {common.machine()}")
    rows, figures, ok = [], {}, True
    for name, store in databases:
        with store() as (url, inserted):
            say(f"{name}: {args.subscribers:,} subscribers inserted in {inserted:.1f} s (not "
                f"counted); planning with the Python loop, then in SQL …")
            old, new = compare_plans(url)
        met = new["seconds"] < PLAN_TARGET_SECONDS
        ok = ok and met
        figures[name] = {"python": old, "sql": new, "insert_seconds": inserted}
        rows.append((name, f"{new['rows']:,}", f"{old['seconds']:.1f} s", f"{new['seconds']:.1f} s",
                     f"{old['seconds'] / new['seconds']:.1f}×",
                     f"{old['hwm_mb']:.0f} MB", f"{new['hwm_mb']:.0f} MB",
                     "[green]met[/green]" if met else "[red]missed[/red]"))
    table(f"Planning {args.subscribers:,} subscribers (each in a fresh subprocess; the same "
          f"counts per variant from both)",
          ["database", "ledger rows", "Python loop (baseline)", "set-based (SqlSendStore.plan)",
           "speed-up", "peak RSS, loop", "peak RSS, set-based",
           f"< {PLAN_TARGET_SECONDS:.0f} s"], rows)
    common.write_json(args.json, {"benchmark": "million_plan", "subscribers": args.subscribers,
                                  "results": figures})
    return 0 if ok else 1


# ---------------------------------------------------------------------------- --send, continued

def send_main(args) -> int:  # type: ignore[no-untyped-def]
    """`--send`: the full send into smtp-sink and its peak memory, as before set-based planning."""
    common.apply_experiments(args.experiment)  # for the floor; the child applies its own

    say(f"[bold]million_plan[/bold]: {args.subscribers:,} subscribers (baseline {args.small:,}) · "
        f"{common.machine()}")
    results = {}
    with common.SmtpSink() as sink:
        for n in (args.small, args.subscribers):
            with common.BenchStore(n, args.seed) as store:
                say(f"{n:,} subscribers inserted in {store.insert_seconds:.1f} s "
                    f"({n / store.insert_seconds:,.0f}/s; not counted), "
                    f"{store.counts['topic_rows']:,} topic choices")
                floor, matched = read_floor(store)
                say(f"  read + classify floor: {floor:.1f} s; sending "
                    f"{'nothing (--plan-only)' if args.plan_only else f'{matched:,} messages'} …")
                before = sink.received()
                r = run_child(store, sink, args)
                r.update(floor=floor, insert=store.insert_seconds,
                         received=sink.wait_for(before + int(r["sent"])) - before)
                results[n] = r
    small, big = results[args.small], results[args.subscribers]

    def column(r: dict[str, float], n: int) -> list[str]:
        send = r["seconds"] - r["plan_seconds"]
        return [f"{n:,}", f"{r['insert']:.1f} s", f"{r['floor']:.1f} s",
                f"{r['plan_seconds']:.1f} s",
                f"{r['plan_seconds'] / n * 1e6:.1f} µs", f"{r['planned']:,}",
                f"{r['sent']:,} ({r['received']:,} at the sink)"
                + (f" [red]STOPPED ({r['stopped']}) after {r['seconds']:.0f} s[/red]"
                   if r.get("stopped") else ""),
                f"{send:.0f} s ({r['sent'] / send:,.0f} msgs/s)" if r["sent"] else "-",
                f"{r['ready_rss_mb']:.0f} MB", f"{r['hwm_after_plan_mb']:.0f} MB",
                f"[bold]{r['hwm_mb']:.0f} MB[/bold]"]

    labels = ["subscribers", "insert (not counted)", "read+classify floor", "planning (_plan)",
              "planning per subscriber", "ledger rows planned", "sent", "delivery",
              "RSS when ready", "peak RSS after plan", "peak RSS (VmHWM)"]
    table("Planning and peak memory of a full send (subprocess)", ["", "baseline", "measured"],
          [(label, a, b) for label, a, b in zip(labels, column(small, args.small),
                                               column(big, args.subscribers), strict=True)])
    growth = big["hwm_mb"] / small["hwm_mb"]
    if big.get("stopped"):
        verdict = "[yellow]inconclusive: the send was stopped before the end[/yellow]"
    elif big["hwm_mb"] < TARGET_MB:
        verdict = "[green]meets[/green]"
    else:
        verdict = "[red]misses[/red]"
    say(f"peak RSS at {args.subscribers:,}: [bold]{big['hwm_mb']:.0f} MB[/bold] = {growth:.2f}× the "
        f"{args.small:,} run ({small['hwm_mb']:.0f} MB); target < {TARGET_MB} MB: {verdict}")
    say(f"planning: {big['plan_seconds']:.1f} s = {big['plan_seconds'] / big['floor']:.1f}× the "
        f"read+classify floor ({big['floor']:.1f} s); per subscriber "
        f"{big['plan_seconds'] / args.subscribers * 1e6:.1f} µs vs "
        f"{small['plan_seconds'] / args.small * 1e6:.1f} µs at {args.small:,}")
    if big.get("stopped"):
        say(f"[red]the {args.subscribers:,} send did not finish within --max-send-seconds "
            f"{args.max_send_seconds:.0f}: {big['sent']:,} of {big['planned']:,} sent; peak RSS "
            f"covers planning and that part of the delivery[/red]")
    common.write_json(args.json, {"benchmark": "million_plan", "experiments": args.experiment,
                                  "results": {
        str(k): v for k, v in results.items()}})
    ok = big["hwm_mb"] < TARGET_MB and big["received"] >= big["sent"] and not big.get("stopped")
    return 0 if ok else 1



def main() -> int:
    p = common.parser(__doc__.splitlines()[0], 1_000_000)
    p.add_argument("--postgres", metavar="URL", default=os.environ.get("NEWSLETTER_BENCH_POSTGRES_URL"),
                   help="also plan on PostgreSQL (a fresh schema in this database; default: "
                        "$NEWSLETTER_BENCH_POSTGRES_URL)")
    p.add_argument("--send", action="store_true",
                   help="instead of comparing planners, measure a full send's peak memory")
    p.add_argument("--small", type=int, default=10_000,
                   help="--send: baseline audience for the memory comparison (default 10 000)")
    p.add_argument("--connections", type=int, default=4, help="--send: SMTP connections (default 4)")
    p.add_argument("--plan-only", action="store_true", help="--send: plan, do not send")
    p.add_argument("--max-send-seconds", type=float, default=360,
                   help="--send: stop the send cleanly (Sender's stop event) after this long; the "
                        "report then says how far it got (default 360)")
    p.add_argument("--child", metavar="DB", help=argparse_hidden())
    p.add_argument("--port", type=int, help=argparse_hidden())
    p.add_argument("--plan-child", choices=("python", "sql"), help=argparse_hidden())
    p.add_argument("--url", help=argparse_hidden())
    args = p.parse_args()
    if args.plan_child:
        plan_child(args.url, args.plan_child)
        return 0
    if args.child:
        child(args.child, args.port, args.connections, args.plan_only, args.max_send_seconds,
              args.experiment)
        return 0
    return send_main(args) if args.send else plan_main(args)


def argparse_hidden() -> str:
    import argparse
    return argparse.SUPPRESS


if __name__ == "__main__":
    raise SystemExit(main())
