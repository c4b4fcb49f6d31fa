"""The scheduler process: APScheduler 3.x firing one date job per scheduled edition.

The editions table is the truth; the APScheduler jobs (table `apscheduler_jobs` in the same
database) mirror it. `sync` runs at start-up and then every `poll_seconds`: it adds, moves or
removes jobs to match what the CLI or web app scheduled, sends at once what is due within the
grace period, and marks missed what is later than that. A job only calls `run_scheduled_send`,
which claims the edition (see `scheduling.claim`) before it touches the ledger, so two scheduler
processes never both start a send. SIGTERM/SIGINT set `STOP`: a running send ends at its batch
boundary and the next start continues it.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from .config import load_config
from .content.models import Edition, EditionStatus
from .context import Newsletter
from .db import utcnow
from .errors import NewsletterError, StoreError
from .notify import Notifier
from .scheduling import Decision, claim, decide, grace_of
from .sending.engine import Sender, SendReport
from .transports import make_transport

__all__ = ["STOP", "Scheduler", "run_scheduled_send", "send_scheduled"]

log = logging.getLogger(__name__)
STOP = threading.Event()
"""Set by SIGTERM/SIGINT: running sends stop after their current batch."""
JOB_PREFIX = "send:"
POLL_SECONDS = 10.0


def run_scheduled_send(database_url: str, month: str) -> None:
    """What a job calls: open the store, send if this process wins the claim, close."""
    nl = Newsletter.open(load_config(overrides={"database_url": database_url}))
    try:
        send_scheduled(nl, month)
    finally:
        nl.close()


def send_scheduled(nl: Newsletter, month: str, *, now: datetime | None = None,
                   notifier: Notifier | None = None, resume: bool = False) -> SendReport | None:
    """Claim the month's edition and send it, or report it missed; None when not sent here.
    `resume` continues a send that a stop or crash interrupted (no claim: it is `sending`)."""
    notifier = notifier or Notifier(nl.config)
    scheduled_at = None
    if not resume:
        decision, scheduled_at = claim(nl, month, now or utcnow())
        log.info("%s: decision %s (scheduled for %s)", month, decision.value, scheduled_at)
        if decision is Decision.MISSED:
            notifier.missed(month, scheduled_at)
        if decision is not Decision.SEND:
            return None
        notifier.started(month, scheduled_at)
    transport = make_transport(nl.config)
    try:
        report = Sender(nl, transport, stop=STOP).send(month)
    except StoreError as err:  # another process's run is live: it is sending, not us
        log.info("%s: not sending here: %s", month, err)
        return None
    except NewsletterError as err:
        notifier.failed(month, err)
        return None
    finally:
        transport.close()
    log.info("%s: sent %d, failed %d, rejected %d, uncertain %d in %.1fs%s", month, report.sent,
             report.failed, report.rejected, report.uncertain, report.elapsed,
             f" (stopped: {report.stopped})" if report.stopped else "")
    notifier.report(report)
    return report


class _Scheduler(BackgroundScheduler):
    """Another scheduler process may already have removed a finished job from the shared store;
    APScheduler 3 would let that JobLookupError end its main loop."""

    def remove_job(self, job_id: str, jobstore: str | None = None) -> None:
        try:
            super().remove_job(job_id, jobstore)
        except JobLookupError:
            log.debug("job %s already removed by another process", job_id)


class Scheduler:
    """One scheduler process. `start()` reconciles and runs in the background; `stop()` ends it."""

    def __init__(self, nl: Newsletter, *, poll_seconds: float = POLL_SECONDS,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.nl, self.poll_seconds, self.clock = nl, poll_seconds, clock
        grace = int(grace_of(nl).total_seconds()) or 1
        self.aps = _Scheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=nl.engine, tablename="apscheduler_jobs"),
                       "local": MemoryJobStore()},
            job_defaults={"coalesce": True, "misfire_grace_time": grace, "max_instances": 1},
            timezone="UTC")

    def start(self) -> None:
        STOP.clear()
        self.aps.start()
        self.resume_interrupted()
        self.sync()
        self.aps.add_job(self.sync, "interval", seconds=self.poll_seconds, id="sync",
                         jobstore="local", replace_existing=True)
        log.info("scheduler started (grace %s, polling every %gs)", grace_of(self.nl),
                 self.poll_seconds)

    def stop(self) -> None:
        """Ask running sends to stop at their batch boundary and wait for them."""
        STOP.set()
        if self.aps.running:
            self.aps.shutdown(wait=True)
        log.info("scheduler stopped")

    def sync(self) -> None:
        """Make the jobs match the scheduled editions; act on what is due or missed."""
        try:
            self._sync()
        except Exception:  # the next poll tries again; never let the loop die
            log.exception("scheduler sync failed")

    def _sync(self) -> None:
        now, grace = self.clock(), grace_of(self.nl)
        with self.nl.session() as session:
            rows = session.execute(select(Edition.month, Edition.scheduled_at).where(
                Edition.status == EditionStatus.SCHEDULED)).all()
        wanted = {month: at for month, at in rows if at is not None}
        jobs = {job.id: job for job in self.aps.get_jobs(jobstore="default")}
        for job_id in jobs.keys() - {JOB_PREFIX + m for m in wanted}:
            log.info("%s: no longer scheduled; removing its job", job_id[len(JOB_PREFIX):])
            self.aps.remove_job(job_id, "default")
        for month, at in wanted.items():
            decision = decide(now, at, grace)
            if decision is not Decision.WAIT:
                log.info("%s: due at %s, now %s: %s", month, at, now, decision.value)
                self._run_now(month)
                continue
            job = jobs.get(JOB_PREFIX + month)
            if job is None or job.next_run_time != at:
                log.info("%s: job set for %s", month, at)
                self.aps.add_job("newsletter.scheduler:run_scheduled_send", "date", run_date=at,
                                 args=[self.nl.config.database_url, month],
                                 id=JOB_PREFIX + month, name=f"send {month}",
                                 jobstore="default", replace_existing=True)

    def _run_now(self, month: str) -> None:
        self.aps.add_job(send_scheduled, "date", run_date=self.clock(), args=[self.nl, month],
                         id=f"now:{month}", jobstore="local", replace_existing=True,
                         misfire_grace_time=None)

    def resume_interrupted(self) -> None:
        """Sends of a previous process that stopped (signal, crash) before the ledger was done."""
        with self.nl.session() as session:
            months = list(session.scalars(select(Edition.month).where(
                Edition.status == EditionStatus.SENDING, Edition.scheduled_at.is_not(None))))
        for month in months:
            log.info("%s: resuming an interrupted scheduled send", month)
            self.aps.add_job(send_scheduled, "date", run_date=self.clock(), args=[self.nl, month],
                             kwargs={"resume": True}, id=f"resume:{month}", jobstore="local",
                             replace_existing=True, misfire_grace_time=None)


def run_until_signalled(nl: Newsletter, *, poll_seconds: float = POLL_SECONDS,
                        serve: Callable[[], Any] | None = None) -> None:
    """Run the scheduler (and `serve`, if given, in this thread) until SIGTERM or SIGINT."""
    scheduler = Scheduler(nl, poll_seconds=poll_seconds)

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("%s: stopping after the current batch", signal.Signals(signum).name)
        STOP.set()
        if serve is not None:
            raise KeyboardInterrupt  # ends waitress's loop; the finally below shuts down

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    scheduler.start()
    try:
        if serve is not None:
            serve()
        else:
            while not STOP.wait(timedelta(hours=1).total_seconds()):
                pass
    finally:
        scheduler.stop()
        for number, action in previous.items():
            signal.signal(number, action)
