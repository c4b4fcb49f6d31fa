"""The scheduler process: APScheduler 3.x firing one date job per scheduled edition, and per
occurrence of the optional monthly rule.

The database is the truth; the APScheduler jobs (table `apscheduler_jobs` in the same database)
mirror it. `sync` runs at start-up and then every `poll_seconds`: it adds, moves or removes jobs to
match what the CLI or web app scheduled and what the monthly rule owes, acts at once on what is due
within the grace period, and reports what is later than that as missed. A stored job holds only a
month and this store's password-free URL, which finds the live `Scheduler` of this process; it
only calls the library (`send_scheduled`, `recurring.job.run_recurring`). Both claim their work in
the database first, so two scheduler processes never both start a send. SIGTERM/SIGINT set the
scheduler's `stopping` event:
a running send ends at its batch boundary and the next start continues it.
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

from ..content.models import Edition, EditionStatus
from ..context import Newsletter
from ..db import utcnow
from ..db.jobs import JOBS_TABLE
from ..errors import ConfigError, NewsletterError, SendInProgress
from ..notify.notifier import Notifier
from ..sending import ledger
from ..sending.outcomes import SendReport
from ..sending.run import send_edition
from .editions import Decision, claim, decide, grace_of
from .models import RecurringKind, RecurringOutcome
from .recurring import MonthlyRule, pending, run_recurring

__all__ = ["Scheduler", "run_scheduled_send", "send_scheduled"]

log = logging.getLogger(__name__)
JOB_PREFIX = "send:"
RECURRING_PREFIX = "recurring:"
POLL_SECONDS = 10.0


_LIVE: dict[str, Scheduler] = {}
"""The running Scheduler of each store in this process, by `store_key`."""


def store_key(nl: Newsletter) -> str:
    """Names the store in stored jobs without its password."""
    return nl.engine.url.render_as_string(hide_password=True)


def _live(key: str, what: str) -> Scheduler | None:
    scheduler = _LIVE.get(key)
    if scheduler is None:
        log.warning("%s: no scheduler of this process runs on %s; the next sync decides", what, key)
    return scheduler


def run_scheduled_send(key: str, month: str) -> None:
    """What an edition's stored job calls."""
    scheduler = _live(key, month)
    if scheduler is not None:
        scheduler.send(month)


def run_recurring_job(key: str, kind: str, month: str) -> None:
    """What a stored job of the monthly rule calls."""
    scheduler = _live(key, f"{month} {kind}")
    if scheduler is not None:
        scheduler.recurring(RecurringKind(kind), month)


def send_scheduled(nl: Newsletter, month: str, *, now: datetime | None = None,
                   notifier: Notifier | None = None, resume: bool = False,
                   stop: threading.Event | None = None) -> SendReport | None:
    """Claim the month's edition and send it, or report it missed; None when not sent here.
    `resume` continues a send that a stop or crash interrupted (no claim: it is `sending`);
    once `stop` is set the send ends after its current batch.

    Another process's live run (SendInProgress) is not a failure: it is sending, not us. Any
    other library error, and a ConfigError too (not a NewsletterError, so named here), is told
    to the editor as a failed send: nobody watches a scheduler's log, and the edition stays
    `sending`, so the next start or poll continues it once the setup is fixed.
    With the workers setting above 1 it sends as `newsletter send --workers N` does."""
    notifier = notifier or Notifier(nl.config, store=nl)
    scheduled_at = None
    if not resume:
        decision, scheduled_at = claim(nl, month, now or utcnow())
        log.info("%s: decision %s (scheduled for %s)", month, decision.value, scheduled_at)
        if decision is Decision.MISSED:
            notifier.missed(month, scheduled_at)
        if decision is not Decision.SEND:
            return None
        notifier.started(month, scheduled_at)
    try:
        report = send_edition(nl, month, workers=nl.config.workers,
                              stop=stop or threading.Event())
    except SendInProgress as err:
        log.info("%s: not sending here: %s", month, err)
        return None
    except (ConfigError, NewsletterError) as err:
        notifier.failed(month, err)
        return None
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
        self.key = store_key(nl)
        self.monthly = MonthlyRule.of(nl.config)
        self.notifier = Notifier(nl.config, store=nl)
        self.stopping = threading.Event()
        """Set by `stop` (and SIGTERM/SIGINT): running sends end after their current batch."""
        self._sync_lock = threading.Lock()
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()
        grace = int(grace_of(nl).total_seconds()) or 1
        self.aps = _Scheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=nl.engine, tablename=JOBS_TABLE),
                       "local": MemoryJobStore()},
            job_defaults={"coalesce": True, "misfire_grace_time": grace, "max_instances": 1},
            timezone="UTC")

    def start(self) -> None:
        _LIVE[self.key] = self
        self.aps.start()
        self.resume_interrupted()
        self.sync()
        self.aps.add_job(self.sync, "interval", seconds=self.poll_seconds, id="sync",
                         jobstore="local", replace_existing=True)
        log.info("scheduler started (grace %s, polling every %gs, monthly rule: %s)", grace_of(self.nl),
                 self.poll_seconds, self.monthly.key if self.monthly else "off")

    def stop(self) -> None:
        """Ask running sends to stop at their batch boundary and wait for them.

        A sync still running must finish first: APScheduler's `shutdown(wait=True)` holds its job
        store lock while it waits for running jobs, and a sync waiting for that lock would never end.
        """
        self.stopping.set()
        with self._sync_lock:
            pass
        if self.aps.running:
            self.aps.shutdown(wait=True)
        if _LIVE.get(self.key) is self:
            del _LIVE[self.key]
        log.info("scheduler stopped")

    def send(self, month: str, *, resume: bool = False) -> None:
        self._once(f"send:{month}", lambda: send_scheduled(
            self.nl, month, now=self.clock(), notifier=self.notifier, resume=resume, stop=self.stopping))

    def recurring(self, kind: RecurringKind, month: str) -> None:
        """Decide one occurrence of the monthly rule; a complete edition is sent right here."""
        monthly = self.monthly
        if monthly is None:
            return

        def act() -> None:
            outcome = run_recurring(self.nl, monthly, kind, month, self.clock(), self.notifier)
            if outcome is RecurringOutcome.SCHEDULED:
                send_scheduled(self.nl, month, now=self.clock(), notifier=self.notifier,
                               stop=self.stopping)

        self._once(f"recurring:{kind.value}:{month}", act)

    def _once(self, what: str, action: Callable[[], Any]) -> None:
        """A stored job and a sync may fire the same work together; this process does it once."""
        with self._busy_lock:
            if what in self._busy:
                return
            self._busy.add(what)
        try:
            action()
        finally:
            with self._busy_lock:
                self._busy.discard(what)

    def sync(self) -> None:
        """Make the jobs match the schedule and the monthly rule; act on what is due or missed."""
        with self._sync_lock:
            if self.stopping.is_set():
                return
            try:
                self._sync()
            except Exception:  # the next poll tries again; never let the loop die
                log.exception("scheduler sync failed")

    def _sync(self) -> None:
        now, grace = self.clock(), grace_of(self.nl)
        with self.nl.session() as session:
            rows = session.execute(select(Edition.month, Edition.scheduled_at).where(
                Edition.status == EditionStatus.SCHEDULED)).all()
        wanted: dict[str, tuple[datetime, str, list[str]]] = {}
        for month, at in rows:
            if at is None:
                continue
            if decide(now, at, grace) is not Decision.WAIT:
                log.info("%s: due at %s, now %s", month, at, now)
                self._run_now(self.send, month)
            else:
                wanted[JOB_PREFIX + month] = (at, "newsletter.schedule.process:run_scheduled_send",
                                              [self.key, month])
        for due in pending(self.nl, self.monthly, now) if self.monthly else []:
            if due.at <= now:
                self._run_now(self.recurring, due.kind, due.month)
            else:
                wanted[f"{RECURRING_PREFIX}{due.kind.value}:{due.month}"] = (
                    due.at, "newsletter.schedule.process:run_recurring_job",
                    [self.key, due.kind.value, due.month])
        self._mirror(wanted)
        self.resume_interrupted(only_due=True)
        self.notifier.retry_undelivered(now)

    def _mirror(self, wanted: dict[str, tuple[datetime, str, list[str]]]) -> None:
        jobs = {job.id: job for job in self.aps.get_jobs(jobstore="default")}
        for job_id in jobs.keys() - wanted.keys():
            log.info("%s: no longer due; removing its job", job_id)
            self.aps.remove_job(job_id, "default")
        for job_id, (at, func, args) in wanted.items():
            job = jobs.get(job_id)
            if job is None or job.next_run_time != at or list(job.args) != args:
                log.info("%s: job set for %s", job_id, at)
                self.aps.add_job(func, "date", run_date=at, args=args, id=job_id, name=job_id,
                                 jobstore="default", replace_existing=True)

    def _run_now(self, action: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """Run in the pool at once (real time: the injected clock only drives decisions)."""
        self.aps.add_job(action, args=args, kwargs=kwargs,
                         id="now:" + ":".join(map(str, args)), jobstore="local",
                         replace_existing=True, misfire_grace_time=None)

    def resume_interrupted(self, *, only_due: bool = False) -> None:
        """Scheduled sends left unfinished: by a process that stopped (signal, crash) before the
        ledger was done, or with retries that came due after the run ended. At start every such
        edition resumes; on each poll only those with rows due now and no live run."""
        now = self.clock()
        with self.nl.session() as session:
            editions = session.execute(select(Edition.id, Edition.month).where(
                Edition.status == EditionStatus.SENDING, Edition.scheduled_at.is_not(None))).all()
            months = [month for edition_id, month in editions if not only_due or (
                ledger.count_due(session, edition_id, now)
                and not ledger.live_run_ids(session, edition_id, now))]
        for month in months:
            log.info("%s: resuming an unfinished scheduled send", month)
            self._run_now(self.send, month, resume=True)


def run_until_signalled(nl: Newsletter, *, poll_seconds: float = POLL_SECONDS,
                        serve: Callable[[], Any] | None = None) -> None:
    """Run the scheduler (and `serve`, if given, in this thread) until SIGTERM or SIGINT."""
    scheduler = Scheduler(nl, poll_seconds=poll_seconds)

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("%s: stopping after the current batch", signal.Signals(signum).name)
        scheduler.stopping.set()
        if serve is not None:
            raise KeyboardInterrupt  # ends waitress's loop; the finally below shuts down

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    scheduler.start()
    try:
        if serve is not None:
            serve()
        else:
            while not scheduler.stopping.wait(timedelta(hours=1).total_seconds()):
                pass
    finally:
        scheduler.stop()
        for number, action in previous.items():
            signal.signal(number, action)
