"""`newsletter send` as a whole command into smtp-sink, with --workers 1 and 2, against smtp-source.

Ours: `python -m newsletter send MONTH --workers W` in a subprocess, timed from start to exit:
planning (ledger rows), worker start-up, render once per variant, personalise, SMTP (4
connections per worker), the ledger and the result journal. N subscribers of the three example
summaries (default 100 000), on a fresh SQLite store and, when NEWSLETTER_TEST_POSTGRES_URL is
set, a fresh PostgreSQL schema. Peak RSS (VmHWM) of every process of the send is sampled.
Baseline, same run, same sink: Postfix's `smtp-source -s 4` pushing as many messages of the same
mean size over 4 connections, each reused (-d); 3 runs, their mean. Target: >= 0.50 of
smtp-source with 2 workers (aim 0.60). Where neighbours steal CPU, the baseline's runs spread
widely; the ratio to the fastest of them is shown too, a lower bound for ours.

The journal's own cost: the same send in-process (`Sender`, 1 worker, `--journal-pair` recipients)
with and without its journal, back to back.

    .venv/bin/python bench/throughput_smtp.py [--subscribers N] [--workers 1,2] [--db sqlite,postgresql]
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import say, table  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from newsletter.context import Newsletter  # noqa: E402
from newsletter.sending.engine import Sender  # noqa: E402
from newsletter.sending.store import SqlSendStore, StartedRun  # noqa: E402

TARGET, AIM = 0.50, 0.60
CONNECTIONS = 4
MEAN_SIZE_GUESS = 31_000


def mean_size(nl: Newsletter, sample: int = 300) -> int:
    """Mean bytes of our messages, composed for the first `sample` matching subscribers: the
    payload size smtp-source is given."""
    from newsletter.content.variants import variant_for, variant_key
    from newsletter.db import utcnow
    from newsletter.mail.compose import Composer, make_renderer
    from subscribers.store import iter_audience
    edition = common.edition(nl)
    composer = Composer(nl, edition, make_renderer(nl))
    sizes: list[int] = []
    with nl.session() as session:
        for chunk in iter_audience(session):
            for r in chunk:
                key = variant_key(variant_for(edition, r.topics))
                if key:
                    sizes.append(len(composer.compose(
                        delivery_id=len(sizes) + 1, variant=key, uid=r.uid, email=r.email,
                        name=r.name, topics=r.topics, date=utcnow()).data))
            if len(sizes) >= sample:
                break
    return sum(sizes) // max(len(sizes), 1)


def postgres_store(n: int, seed: int) -> tuple[str, Newsletter, str]:
    """A fresh schema on NEWSLETTER_TEST_POSTGRES_URL with the edition and N subscribers."""
    base = os.environ["NEWSLETTER_TEST_POSTGRES_URL"].replace("postgresql://",
                                                              "postgresql+psycopg://", 1)
    schema = "bench_" + uuid.uuid4().hex[:10]
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    nl = Newsletter.open(common.make_config(url))
    nl.init()
    common.load_examples(nl)
    common.insert_subscribers(nl, n, seed)
    return url, nl, schema


def drop_schema(schema: str) -> None:
    base = os.environ["NEWSLETTER_TEST_POSTGRES_URL"].replace("postgresql://",
                                                              "postgresql+psycopg://", 1)
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


class PeakRss:
    """Samples VmHWM of a process and its children (the workers) until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peaks = pid, {}  # type: ignore[var-annotated]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for pid in [self.pid, *children(self.pid)]:
                try:
                    kb = common.proc_status_kb("VmHWM", pid)
                except (OSError, ValueError, KeyError):  # gone, or a zombie already
                    continue
                self.peaks[pid] = max(self.peaks.get(pid, 0), kb)


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def run_command(url: str, sink: common.SmtpSink, workers: int, folder: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(common.REPO), "NEWSLETTER_CONFIG": "/nonexistent.toml",
           "NEWSLETTER_DATABASE_URL": url, "NEWSLETTER_SECRET_KEY": common.SECRET,
           "NEWSLETTER_TRANSPORT": "smtp", "NEWSLETTER_SMTP_HOST": sink.host,
           "NEWSLETTER_SMTP_PORT": str(sink.port), "NEWSLETTER_SMTP_SECURITY": "none",
           "NEWSLETTER_SMTP_CONNECTIONS": str(CONNECTIONS),
           "NEWSLETTER_JOURNAL_DIR": str(folder / "journal"),
           "NEWSLETTER_FROM": "PPRNet Research Digest <digest@pprnet.example>",
           "NEWSLETTER_BASE_URL": "https://digest.pprnet.example"}
    before = sink.received()
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "newsletter", "send", common.MONTH,
                                "--workers", str(workers)], env=env, cwd=folder,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    with PeakRss(process.pid) as rss:
        out, _ = process.communicate(timeout=3600)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"newsletter send failed ({process.returncode}): {out}")
    sent = int(out.split("sent ", 1)[1].split(",", 1)[0])
    received = sink.wait_for(before + sent) - before
    peaks = sorted(rss.peaks.values(), reverse=True)
    return {"sent": sent, "received": received, "seconds": seconds, "rate": sent / seconds,
            "peak_rss_mb": [round(kb / 1024, 1) for kb in peaks]}


class NoJournalStore(SqlSendStore):
    """The SQL store without a result journal: what the journal costs, by difference."""

    def start_run(self, month, now, *, resend_uncertain):  # type: ignore[no-untyped-def]
        run = super().start_run(month, now, resend_uncertain=resend_uncertain)
        return StartedRun(run.edition, run.run_id, run.recovered_uncertain, None)


def journal_pair(n: int, seed: int, sink: common.SmtpSink) -> dict[str, float]:
    """Messages per second of one in-process worker with and without the journal: in the order
    with, without, without, with (drift cancels), the mean of each."""
    runs: dict[str, list[float]] = {"with journal": [], "without journal": []}
    order = (("with journal", SqlSendStore), ("without journal", NoJournalStore),
             ("without journal", NoJournalStore), ("with journal", SqlSendStore))
    for label, store_class in order:
        with common.BenchStore(n, seed, overrides={"smtp_port": sink.port}) as store:
            transport, _ = common.smtp_transport(sink.host, sink.port, connections=CONNECTIONS)
            try:
                with common.timed() as t:
                    report = Sender(store.nl, transport, store=store_class(store.nl)).send(
                        common.MONTH)
            finally:
                transport.close()
            runs[label].append(report.sent / t.seconds)
    say("journal pair, msgs/s: " + "; ".join(f"{k} {', '.join(map(common.fmt_rate, v))}"
                                             for k, v in runs.items()))
    return {label: sum(rates) / len(rates) for label, rates in runs.items()}


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], 100_000)
    p.add_argument("--workers", default="1,2", help="worker counts to run (default 1,2)")
    p.add_argument("--db", default="sqlite,postgresql",
                   help="stores (postgresql needs NEWSLETTER_TEST_POSTGRES_URL)")
    p.add_argument("--baseline-runs", type=int, default=3)
    p.add_argument("--journal-pair", type=int, default=20_000,
                   help="recipients of the with/without-journal pair (0: skip)")
    args = p.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    stores = [d for d in args.db.split(",")
              if d == "sqlite" or os.environ.get("NEWSLETTER_TEST_POSTGRES_URL")]
    say(f"[bold]throughput_smtp[/bold]: {args.subscribers:,} subscribers, workers {counts}, "
        f"stores {stores} · {common.machine()}")
    rows, figures, ratios = [], [], {}
    with common.SmtpSink() as sink:
        warmup = common.smtp_source(sink.host, sink.port, messages=min(args.subscribers, 20_000),
                                    size=MEAN_SIZE_GUESS, sessions=CONNECTIONS)
        say(f"warm-up smtp-source: {min(args.subscribers, 20_000) / warmup:,.0f} msgs/s")
        for db in stores:
            for workers in counts:
                if db == "sqlite":
                    with common.BenchStore(args.subscribers, args.seed, keep=True) as store:
                        url, folder = f"sqlite:///{store.db_path}", store.folder
                        size = mean_size(store.nl)
                    ours = run_command(url, sink, workers, folder)
                else:
                    url, nl, schema = postgres_store(args.subscribers, args.seed)
                    size = mean_size(nl)
                    nl.close()
                    folder = Path(common.tempfile.mkdtemp(prefix="nl-bench-"))
                    try:
                        ours = run_command(url, sink, workers, folder)
                    finally:
                        drop_schema(schema)
                base = []
                for _ in range(args.baseline_runs):
                    base.append(ours["sent"] / common.smtp_source(
                        sink.host, sink.port, messages=int(ours["sent"]), size=size,
                        sessions=CONNECTIONS))
                base_rate = sum(base) / len(base)
                ratio = ours["rate"] / base_rate
                to_fastest = ours["rate"] / max(base)
                ratios[(db, workers)] = ratio
                rows.append((db, workers, f"{common.fmt_int(int(ours['sent']))} × {size:,} B",
                             f"{ours['seconds']:.1f} s", common.fmt_rate(ours["rate"]),
                             f"{common.fmt_rate(base_rate)} ({', '.join(map(common.fmt_rate, base))})",
                             f"{ratio:.1%}", f"{to_fastest:.1%}",
                             " / ".join(f"{mb:.0f}" for mb in ours["peak_rss_mb"])))
                figures.append({"db": db, "workers": workers, **ours, "mean_size": size,
                                "baseline_rates": base, "baseline_rate": base_rate,
                                "ratio": ratio, "ratio_to_fastest": to_fastest})
        pair = journal_pair(args.journal_pair, args.seed, sink) if args.journal_pair else {}
    table("`newsletter send` (whole command) vs smtp-source -s 4, same sink, same count",
          ["store", "workers", "sent", "wall", "msgs/s", "smtp-source msgs/s", "ratio",
           "to fastest run", "peak RSS per process, MB"], rows)
    for (db, workers), ratio in ratios.items():
        if workers == 2:
            verdict = ("[green]meets the aim[/green]" if ratio >= AIM else
                       "[green]meets the target[/green]" if ratio >= TARGET else
                       "[red]misses the target[/red]")
            say(f"{db}, 2 workers: {ratio:.1%} of smtp-source; target >= {TARGET:.0%}, aim "
                f"{AIM:.0%}: {verdict}")
    if pair:
        cost = 1 - pair["with journal"] / pair["without journal"]
        say(f"journal, {args.journal_pair:,} recipients in-process: "
            f"{pair['with journal']:,.0f} msgs/s with, {pair['without journal']:,.0f} without "
            f"({cost:+.1%} cost; same-run noise is a few %)")
    common.write_json(args.json, {"benchmark": "throughput_smtp", "subscribers": args.subscribers,
                                  "runs": figures, "journal_pair": pair})
    two = [r for (db, w), r in ratios.items() if w == 2]
    return 0 if all(r >= TARGET for r in two) else 1


if __name__ == "__main__":
    raise SystemExit(main())
