"""The crash window: rows left uncertain after a SIGKILL mid-send, against the connections.

Each trial: a fresh SQLite store with N subscribers (default 4 000), `python -m newsletter send`
in a subprocess with 4 SMTP connections into an aiosmtpd server in this process that counts what
each recipient received, and SIGKILL from inside the server while it holds the reply to the k-th
message (k seeded at random across the send). Then `newsletter status --json`
(which settles the dead run by its journal) says how many rows are uncertain. Baseline, same
trial: the connections, the most messages that can be on the wire at once; and the claimed
batch, what was uncertain before the journal. Also counted: uncertain rows that had truly
arrived (a resend would duplicate those) and rows that arrived but are not uncertain or sent
(must be 0: that would be a duplicate waiting to happen).

    .venv/bin/python bench/crash_window.py [--subscribers 4000] [--trials 20]
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from aiosmtpd.smtp import SMTP, Envelope, Session  # noqa: E402
from common import say, table  # noqa: E402

from newsletter.catcher import SMTPCatcher  # noqa: E402

CONNECTIONS = 4
BATCH = 200


class KillingHandler:
    """Counts each recipient's messages; at the `kill_at`-th, SIGKILLs `pid` before answering."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.kill_at, self.pid = 0, 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            for address in envelope.rcpt_tos:
                self.received[address.lower()] += 1
            total = sum(self.received.values())
        if total == self.kill_at and self.pid:
            os.kill(self.pid, signal.SIGKILL)
        return "250 OK"


def environment(url: str, host: str, port: int, folder: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(common.REPO), "NEWSLETTER_CONFIG": "/nonexistent.toml",
            "NEWSLETTER_DATABASE_URL": url, "NEWSLETTER_SECRET_KEY": common.SECRET,
            "NEWSLETTER_TRANSPORT": "smtp", "NEWSLETTER_SMTP_HOST": host,
            "NEWSLETTER_SMTP_PORT": str(port), "NEWSLETTER_SMTP_SECURITY": "none",
            "NEWSLETTER_SMTP_CONNECTIONS": str(CONNECTIONS), "NEWSLETTER_BATCH_SIZE": str(BATCH),
            "NEWSLETTER_JOURNAL_DIR": str(folder / "journal"),
            "NEWSLETTER_FROM": "PPRNet Research Digest <digest@pprnet.example>",
            "NEWSLETTER_BASE_URL": "https://digest.pprnet.example"}


def trial(n: int, seed: int, kill_fraction: float) -> dict[str, Any]:
    handler = KillingHandler()
    with common.BenchStore(n, seed) as store, SMTPCatcher(handler=handler) as server:
        env = environment(f"sqlite:///{store.db_path}", server.host, server.port, store.folder)
        handler.kill_at = max(1, int(n * 0.6 * kill_fraction))  # about 70 % of n are planned
        process = subprocess.Popen([sys.executable, "-m", "newsletter", "send", common.MONTH],
                                   env=env, cwd=store.folder, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        handler.pid = process.pid
        process.wait(timeout=600)
        killed = process.returncode == -signal.SIGKILL
        status = subprocess.run([sys.executable, "-m", "newsletter", "status", common.MONTH,
                                 "--json", "--all"], env=env, cwd=store.folder,
                                capture_output=True, text=True, check=True)
        document = json.loads(status.stdout)
        rows = {row["email"]: row["status"] for row in document["deliveries"]}
        arrived = set(handler.received)
        uncertain = {e for e, s in rows.items() if s == "uncertain"}
        planned = len(rows)
        return {"killed": killed, "kill_at": handler.kill_at, "planned": planned,
                "uncertain": len(uncertain), "uncertain_arrived": len(uncertain & arrived),
                "arrived_not_accounted": len({e for e in arrived
                                              if rows.get(e) not in ("sent", "uncertain")}),
                "pending_after": document["counts"]["pending"],
                "in_flight_after": document["counts"]["in_flight"]}


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], 4_000)
    p.add_argument("--trials", type=int, default=20)
    args = p.parse_args()
    rng = random.Random(args.seed)
    say(f"[bold]crash_window[/bold]: {args.trials} SIGKILL trials of {args.subscribers:,} "
        f"subscribers, {CONNECTIONS} connections, batch {BATCH} · {common.machine()}")
    results = []
    for number in range(args.trials):
        result = trial(args.subscribers, args.seed + number, rng.uniform(0.1, 0.9))
        results.append(result)
        say(f"  trial {number + 1}: killed at message {result['kill_at']:,}: "
            f"{result['uncertain']} uncertain ({result['uncertain_arrived']} had arrived)")
    killed = [r for r in results if r["killed"]]
    worst = max((r["uncertain"] for r in killed), default=0)
    table("Uncertain rows after SIGKILL", ["", "ours (journal)", "baseline"], [
        ("trials killed mid-send", f"{len(killed)} of {len(results)}", "-"),
        ("largest number of uncertain rows", worst,
         f"{CONNECTIONS} connections (before the journal: the claimed batch, {BATCH})"),
        ("mean uncertain rows", f"{sum(r['uncertain'] for r in killed) / max(len(killed), 1):.1f}",
         "-"),
        ("uncertain that had truly arrived (max)",
         max((r["uncertain_arrived"] for r in killed), default=0), "-"),
        ("arrived but neither sent nor uncertain (must be 0)",
         sum(r["arrived_not_accounted"] for r in killed), "0"),
        ("rows left in flight after status (must be 0)",
         sum(r["in_flight_after"] for r in killed), "0"),
    ])
    common.write_json(args.json, {"benchmark": "crash_window", "trials": results,
                                  "largest_uncertain": worst, "connections": CONNECTIONS})
    ok = (len(killed) == len(results) and worst <= CONNECTIONS
          and not any(r["arrived_not_accounted"] or r["in_flight_after"] for r in killed))
    say(f"largest uncertain {worst} vs {CONNECTIONS} connections: "
        + ("[green]within the target[/green]" if ok else "[red]misses the target[/red]"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
