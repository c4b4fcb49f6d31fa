"""What the scheduler costs: a scheduled send against the same send started directly at that instant.

Two identical stores (the three example summaries, N subscribers), one smtp-sink. Baseline: the
process sleeps until T and calls `Sender.send` itself. Ours: the edition is scheduled for T and a
running `Scheduler` (APScheduler, SQLAlchemy job store, real clock) sends it. Both are read back
from the ledger: T → first message accepted, T → last. Also: what one poll (`sync`) costs, with
the monthly rule on, and what scheduling's sendability check costs against one variant render.

    /tmp/venv/bin/python bench/schedule_latency.py [--subscribers N] [--lead SECONDS]
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import say, table  # noqa: E402
from sqlalchemy import func, select, update  # noqa: E402

from newsletter.content.assemble import for_variant  # noqa: E402
from newsletter.content.models import Edition, EditionStatus  # noqa: E402
from newsletter.context import Newsletter  # noqa: E402
from newsletter.mail.compose import make_renderer  # noqa: E402
from newsletter.schedule.editions import check_sendable  # noqa: E402
from newsletter.schedule.process import Scheduler  # noqa: E402
from newsletter.sending.engine import Sender  # noqa: E402
from newsletter.sending.models import Delivery  # noqa: E402
from newsletter.transports import make_transport  # noqa: E402


def ledger_span(nl: Newsletter, at: datetime) -> tuple[float, float, int]:
    """Seconds from `at` to the first and to the last accepted message, and how many."""
    with nl.session() as session:
        first, last, count = session.execute(select(
            func.min(Delivery.sent_at), func.max(Delivery.sent_at), func.count(Delivery.sent_at))).one()
    return (first - at).total_seconds(), (last - at).total_seconds(), count


def sleep_until(at: datetime) -> None:
    while (wait := (at - datetime.now(UTC)).total_seconds()) > 0:
        time.sleep(min(wait, 0.5))


def direct(nl: Newsletter, at: datetime) -> None:
    sleep_until(at)
    transport = make_transport(nl.config)
    try:
        Sender(nl, transport, stop=threading.Event()).send(common.MONTH)
    finally:
        transport.close()


def scheduled(nl: Newsletter, at: datetime) -> None:
    with nl.session() as session:
        session.execute(update(Edition).where(Edition.month == common.MONTH)
                        .values(status=EditionStatus.SCHEDULED, scheduled_at=at))
    scheduler = Scheduler(nl)
    scheduler.start()
    try:
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            with nl.session() as session:
                status = session.scalar(select(Edition.status).where(Edition.month == common.MONTH))
            if status is EditionStatus.SENT:
                return
            time.sleep(0.05)
        raise SystemExit("the scheduled send did not finish")
    finally:
        scheduler.stop()


def poll_cost(nl: Newsletter, polls: int) -> float:
    """Mean seconds per `sync` of a started scheduler with one edition scheduled next year."""
    with nl.session() as session:
        session.execute(update(Edition).where(Edition.month == common.MONTH).values(
            status=EditionStatus.SCHEDULED, scheduled_at=datetime.now(UTC) + timedelta(days=365)))
    scheduler = Scheduler(nl, poll_seconds=3600)
    scheduler.start()
    try:
        times = []
        for _ in range(polls):
            started = time.perf_counter()
            scheduler.sync()
            times.append(time.perf_counter() - started)
    finally:
        scheduler.stop()
    return statistics.mean(times)


def check_cost(nl: Newsletter) -> tuple[float, float, int]:
    """Seconds for `check_sendable` (every variant) and for rendering one variant (the largest)."""
    check_sendable(nl, common.MONTH)  # warm Jinja2's template cache
    with common.timed() as check:
        problems = check_sendable(nl, common.MONTH)
    if problems:
        raise SystemExit(f"the example edition is not sendable: {problems}")
    content = common.edition(nl)
    ids = tuple(item.id for item in content.items)
    renderer = make_renderer(nl)
    with common.timed() as one:
        renderer.render_variant(for_variant(content, ids), ids)
    return check.seconds, one.seconds, 2 ** len(ids) - 1


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], 5_000)
    p.add_argument("--lead", type=float, default=3.0, help="seconds between arming and T (default 3)")
    p.add_argument("--polls", type=int, default=50, help="syncs to time (default 50)")
    args = p.parse_args()
    say(f"[bold]schedule_latency[/bold]: {args.subscribers:,} subscribers · {common.machine()}")
    spans = {}
    with common.SmtpSink() as sink:
        for name, run in (("direct Sender.send at T (baseline)", direct), ("scheduled for T", scheduled)):
            with common.BenchStore(args.subscribers, args.seed, overrides={
                    "smtp_host": sink.host, "smtp_port": sink.port,
                    "recurring_rule": "first tuesday 09:00", "timezone": "America/Toronto"}) as store:
                at = (datetime.now(UTC) + timedelta(seconds=args.lead)).replace(microsecond=0)
                run(store.nl, at)
                spans[name] = ledger_span(store.nl, at)
                if run is scheduled:
                    sync_seconds = poll_cost(store.nl, args.polls)
                    check_seconds, one_seconds, variants = check_cost(store.nl)
    rows = [(name, f"{first * 1000:,.0f} ms", f"{last:,.2f} s", f"{count:,}")
            for name, (first, last, count) in spans.items()]
    table("From the scheduled instant T", ["", "T → first accepted", "T → last accepted", "messages"],
          rows)
    (base_first, base_last, _), (ours_first, ours_last, _) = spans.values()
    table("What the scheduler adds", ["", "value"], [
        ("start delay over the direct send", f"{(ours_first - base_first) * 1000:+,.0f} ms"),
        ("whole send, scheduled / direct", f"{ours_last / base_last:.3f}×"),
        (f"one poll (sync), mean of {args.polls}", f"{sync_seconds * 1000:,.1f} ms"),
        (f"sendability check ({variants} variants)", f"{check_seconds * 1000:,.0f} ms"
         f" = {check_seconds / one_seconds:.1f}× one full render ({one_seconds * 1000:,.0f} ms)"),
    ])
    common.write_json(args.json, {
        "subscribers": args.subscribers,
        "spans": {k: {"first_s": f, "last_s": last, "messages": n} for k, (f, last, n) in spans.items()},
        "sync_ms": sync_seconds * 1000, "check_ms": check_seconds * 1000,
        "one_render_ms": one_seconds * 1000})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
