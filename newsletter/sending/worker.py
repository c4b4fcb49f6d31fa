"""One send, many processes: `newsletter send --workers N` and `newsletter worker`.

The send that plans the edition is its leader. Once the plan is written, its `LocalCrew` starts
N-1 more processes on this host, each a `newsletter worker` (any command that runs
`join_edition`); workers on other hosts join the same way against the same PostgreSQL. Every
worker has its own send run (heartbeat, journal), its own transport and connections, and claims
its own batches (`FOR UPDATE SKIP LOCKED`; on SQLite, short write transactions). Nothing else is
shared: pause, resume and cancel live on the edition row and reach each worker at its next
claim; the rate limit is split between the live workers. The leader keeps claiming until no
other worker is live, settles what dead ones left, and ends the send.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select

from ..content.models import Edition, EditionStatus
from ..context import Newsletter
from ..db import utcnow
from ..mail.message import Transport
from ..transports import transport_for
from . import ledger
from .engine import Progress, Sender
from .outcomes import SendReport
from .store import OPEN

__all__ = ["PLANNED", "LocalCrew", "join_edition", "running_month", "send_with_workers",
           "worker_command"]

PROGRESS_SECONDS = 1.0
PLANNED = b"planned\n"
"""What a `LocalCrew` writes to each worker's standard input once the plan is written."""


def worker_command(month: str) -> list[str]:
    """How this host starts one more worker of `month`'s send: the same Python, waiting for the
    plan. Its configuration comes through the environment (`LocalCrew`), not the command line."""
    return [sys.executable, "-m", "newsletter", "worker", month, "--quiet", "--when-planned"]


def send_with_workers(nl: Newsletter, month: str, workers: int,
                      command: Sequence[str] | None = None, *,
                      transport: Transport | None = None, resend_uncertain: bool = False,
                      progress: Progress | None = None, stop: threading.Event | None = None,
                      **options: Any) -> SendReport:
    """Plan once, then deliver in this process and `workers - 1` more started with `command`
    (default: `worker_command`); the report adds every worker's sent messages up."""
    stop = stop or threading.Event()
    with LocalCrew(nl, month, workers - 1, command or worker_command(month), progress=progress,
                   stop=stop) as crew, transport_for(nl.config, transport) as active:
        report = Sender(nl, active, stop=stop, **options).send(
            month, resend_uncertain=resend_uncertain, crew=crew)
    with nl.session() as session:
        edition_id = session.scalar(select(Edition.id).where(Edition.month == month))
        whole = ledger.last_run(session, edition_id or 0)
    if whole is not None:
        report.sent, report.workers = whole.sent, whole.workers
    return report


def join_edition(nl: Newsletter, month: str, *, transport: Transport | None = None,
                 **options: Any) -> SendReport | None:
    """Work on the month's running send as one more worker until nothing is due; None if no
    send of it is running. `options` go to `Sender` (stop, clock, retry, rate_limit)."""
    with transport_for(nl.config, transport) as active:
        return Sender(nl, active, **options).join(month)


def running_month(nl: Newsletter) -> str | None:
    """The month of an edition being sent by a live leader, if any (the oldest such send)."""
    now = utcnow()
    with nl.session() as session:
        editions = session.scalars(select(Edition).where(Edition.status == EditionStatus.SENDING)
                                   .order_by(Edition.month)).all()
        for edition in editions:
            if any(w["live"] and w["role"] == "send"
                   for w in ledger.workers_of(session, edition.id, now)):
                return edition.month
    return None


class LocalCrew:
    """The extra worker processes of one send on this host, and one progress bar for all.

    `command` is how to start one (`worker_command`); each is given this process's whole
    configuration as NEWSLETTER_* variables (`Config.as_environment`), so it sends with the same
    store, transport and settings however this one was configured.
    Entering the crew (`with`) launches them while this process plans, so that their start-up
    (a second or so of imports and connecting) overlaps the plan instead of following it; each
    waits on its standard input, and `start` writes a line to it once the plan is written.
    Leaving it waits for them; a crew never started ends that input unwritten, and its workers
    exit without working.
    `progress` hears the whole ledger's progress, all workers added up, about once a second
    and once more when they have all exited.
    When `stop` is set (SIGTERM, Ctrl-C) each worker is sent SIGTERM: it finishes its batch
    and stops.
    """

    def __init__(self, nl: Newsletter, month: str, count: int, command: Sequence[str], *,
                 progress: Progress | None = None, stop: threading.Event | None = None,
                 spawn: Callable[[Sequence[str]], subprocess.Popen[bytes]] | None = None) -> None:
        self.nl, self.month, self.count, self.command = nl, month, count, list(command)
        self.progress = progress
        self.stop = stop or threading.Event()
        environment = {**os.environ, **nl.config.as_environment()}
        self.spawn = spawn or (lambda argv: subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=environment))
        self.processes: list[subprocess.Popen[bytes]] = []
        self._done = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> LocalCrew:
        self.launch()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wait()

    def launch(self) -> None:
        if not self.processes:
            self.processes = [self.spawn(self.command) for _ in range(self.count)]

    def start(self) -> None:
        self.launch()
        self._end_input(PLANNED)
        self._thread(self._forward_stop)
        if self.progress is not None:
            self._thread(self._report_progress)

    def wait(self) -> None:
        self._end_input()
        for process in self.processes:
            process.wait()
        self._done.set()
        for thread in self._threads:
            thread.join()

    def _end_input(self, line: bytes = b"") -> None:
        """Write `line` to each worker still waiting on its input, then close that input."""
        for process in self.processes:
            if process.stdin is None or process.stdin.closed:
                continue
            try:
                process.stdin.write(line)
                process.stdin.close()
            except BrokenPipeError:  # it exited already: its exit code says why
                pass

    @property
    def exit_codes(self) -> list[int | None]:
        return [p.returncode for p in self.processes]

    def _thread(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"crew-{target.__name__}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _forward_stop(self) -> None:
        """Also reaps each worker as it exits: a dead child left a zombie would look alive to
        `ledger.is_live` (its pid still exists), and its rows would never be settled."""
        while not self._done.wait(0.2):
            for process in self.processes:
                process.poll()
            if self.stop.is_set():
                for process in self.processes:
                    if process.poll() is None:
                        process.send_signal(signal.SIGTERM)
                return

    def _report_progress(self) -> None:
        """The plan is written when this starts, so the ledger's size is counted once; then each
        tick counts only the rows still open, fewer as the send goes, not the whole ledger."""
        progress = self.progress
        assert progress is not None
        with self.nl.session() as session:
            edition_id = session.scalar(select(Edition.id).where(Edition.month == self.month)) or 0
            total = sum(ledger.status_counts(session, edition_id).values())

        def report() -> None:
            with self.nl.session() as session:
                progress(total - ledger.count_in(session, edition_id, OPEN), total)

        report()
        while not self._done.wait(PROGRESS_SECONDS):
            report()
        report()  # every worker has exited: where the send ended
