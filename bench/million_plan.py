"""A million subscribers: planning time, and peak memory of a full send into smtp-sink.

1. Insert N subscribers (default 1 000 000; Core bulk insert, timed but not counted).
2. Floor for planning, in this process: read the whole audience with `iter_audience` and pick each
   reader's variant (`variant_for`), writing nothing.
3. In a fresh subprocess (so its peak RSS is the send's own): `Sender.send(month)` into smtp-sink
   on loopback. It reports planning time (`Sender._plan`: pending ledger rows), VmRSS once ready,
   VmHWM after planning and after the whole send. Target: peak < 150 MB, flat in N.
4. Baseline for the memory: the same subprocess on a small audience (default 10 000).

    /tmp/venv/bin/python bench/million_plan.py [--subscribers N] [--small N] [--plan-only]
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import say, table  # noqa: E402

TARGET_MB = 150


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


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], 1_000_000)
    p.add_argument("--small", type=int, default=10_000,
                   help="baseline audience for the memory comparison (default 10 000)")
    p.add_argument("--connections", type=int, default=4, help="SMTP connections (default 4)")
    p.add_argument("--plan-only", action="store_true", help="plan, do not send")
    p.add_argument("--max-send-seconds", type=float, default=360,
                   help="stop the send cleanly (Sender's stop event) after this long; the "
                        "report then says how far it got (default 360)")
    p.add_argument("--child", metavar="DB", help=argparse_hidden())
    p.add_argument("--port", type=int, help=argparse_hidden())
    args = p.parse_args()
    if args.child:
        child(args.child, args.port, args.connections, args.plan_only, args.max_send_seconds,
              args.experiment)
        return 0
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


def argparse_hidden() -> str:
    import argparse
    return argparse.SUPPRESS


if __name__ == "__main__":
    raise SystemExit(main())
