"""The send loop: plan → render once per variant → fill in per recipient → transport → ledger.

It owns no SQL (a `SendStore`: store.py) and no socket (a `Transport`: transports/); it only
sequences them so that a row is committed `in_flight` before its message leaves, each result is
in the run's journal as soon as it is known (journal.py) and in the ledger once its batch is
back. The next batch is claimed and composed while one is on the wire (worker_pipeline.py); more
processes may work on the same send (worker.py). Each claim heartbeats, and the loop stops cleanly
when asked to (the `stop` event, set by a signal handler) or when the edition is paused or
cancelled. Temporary failures come back within the run after a backoff; when nothing else is
due, the loop sleeps until the earliest. Uncertain results (the message may have been accepted)
are recorded as such and never come back on their own.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol, cast

from ..config import Config
from ..content.models import EditionStatus
from ..content.variants import variant_for, variant_key
from ..context import Newsletter
from ..db import utcnow
from ..domain import EditionContent
from ..errors import ConfigError
from ..mail.compose import Composer, make_renderer
from ..mail.message import Outcome, OutgoingMessage, SendResult, Transport
from ..mail.render import Renderer
from .journal import Journal, hand_over_shape
from .outcomes import SendReport, StopReason, retry_times, unanswered, uncertain_by_reason
from .plan import PlanCounts
from .retry import Jitter, RetryPolicy
from .store import Batch, Claimed, Recipient, SendStore, SqlSendStore, StartedRun, is_complete
from .throttle import TokenBucket
from .worker_pipeline import UNREACHABLE_BATCHES, Delivery, compose_batch

__all__ = ["UNREACHABLE_BATCHES", "Crew", "MessageComposer", "Progress", "SendReport", "Sender", "StopReason",
           "compose_batch"]

Progress = Callable[[int, int], None]
_STOP_FOR = {EditionStatus.PAUSED: StopReason.PAUSED, EditionStatus.CANCELLED: StopReason.CANCELLED}
_NOTHING = Batch([], {})


class Crew(Protocol):
    """More worker processes for one send (worker.py)."""

    def start(self) -> None: ...

    def wait(self) -> None: ...


class MessageComposer(Protocol):
    """What the loop asks of `mail.compose.Composer`: one recipient's message of a variant."""

    @property
    def variants_rendered(self) -> int: ...

    def compose(self, *, delivery_id: int, variant: str, uid: str, email: str, name: str,
                topics: frozenset[str] | None, date: datetime) -> OutgoingMessage: ...


def retry_policy(config: Config) -> RetryPolicy:
    return RetryPolicy(max_attempts=config.retry_max_attempts, initial=config.retry_initial,
                       factor=config.retry_factor, cap=config.retry_cap,
                       jitter=cast(Jitter, config.retry_jitter), later=config.retry_later)


class Sender:
    """Delivers one edition. `sleep` defaults to waiting on `stop`, so a signal cuts a wait short.

    `store` defaults to the SQL store of `nl`, `composer` to `mail.compose.Composer` with
    `renderer`: a test of the loop's rules passes its own and needs no database.
    """

    def __init__(self, nl: Newsletter, transport: Transport, *, store: SendStore | None = None,
                 composer: Callable[[EditionContent], MessageComposer] | None = None,
                 renderer: Renderer | None = None, clock: Callable[[], datetime] = utcnow,
                 progress: Progress | None = None, retry: RetryPolicy | None = None,
                 rate_limit: float | None = None, stop: threading.Event | None = None,
                 sleep: Callable[[float], object] | None = None) -> None:
        self.nl, self.transport, self.clock = nl, transport, clock
        self.store: SendStore = store or SqlSendStore(nl)
        self.renderer = renderer or make_renderer(nl)
        self.composer = composer or (lambda edition: Composer(nl, edition, self.renderer))
        self.progress = progress or (lambda done, total: None)
        self.retry = retry or retry_policy(nl.config)
        rate_limit = rate_limit if rate_limit is not None else (nl.config.rate_limit or None)
        self.bucket = TokenBucket(rate_limit) if rate_limit else None
        self.stop = stop or threading.Event()
        self.sleep = sleep or self.stop.wait
        self._takes_on_result: bool | None = None
        nl.config.secret_keys  # noqa: B018  (fail before touching the ledger if unset)

    def send(self, month: str, *, resend_uncertain: bool = False,
             crew: Crew | None = None) -> SendReport:
        """Start the send, plan it once, then deliver; `crew` starts more worker processes once
        the plan is written and is waited for before the run ends. This process keeps claiming
        until no other worker is live, so rows a dead worker never handed over still go out."""
        started = time.monotonic()
        report = SendReport(month)
        run = self.store.start_run(month, self.clock(), resend_uncertain=resend_uncertain)
        report.recovered_uncertain = run.recovered_uncertain
        try:
            report.planned = self._plan(run.edition)
            if crew is not None:
                crew.start()
            self.deliver(run, report, linger=True)
        finally:
            if crew is not None:
                crew.wait()
            assert run.edition.id is not None
            report.recovered_uncertain += self.store.recover(run.edition.id, self.clock())
            self._finish(run.edition, run.run_id, report)
            report.elapsed = time.monotonic() - started
        return report

    def join(self, month: str) -> SendReport | None:
        """Work on the month's running send as one more worker; None when none is running."""
        started = time.monotonic()
        run = self.store.join(month, self.clock())
        if run is None:
            return None
        report = SendReport(month)
        try:
            self.deliver(run, report)
        finally:
            self._finish(run.edition, run.run_id, report)
            report.elapsed = time.monotonic() - started
        return report

    def _plan(self, edition: EditionContent) -> PlanCounts:
        """Give every matching active subscriber a pending row; count those with no match."""
        counts = PlanCounts()
        assert edition.id is not None

        def variant_keys(chunk: Sequence[Recipient]) -> list[str]:
            keys = [variant_key(variant_for(edition, r.topics), r.language) for r in chunk]
            counts.add(keys)
            return keys

        counted = self.store.plan(edition.id, variant_keys, self.clock)
        return counts if counted is None else counted

    def deliver(self, run: StartedRun, report: SendReport, *, linger: bool = False) -> None:
        """Claim, compose and hand over until nothing is due, with the run's journal if any;
        `linger`: and until no other worker is live."""
        journal = Journal(Path(run.journal)) if run.journal else None
        needed = True
        try:
            Delivery(self, run, report, journal, linger=linger).run()
            needed = False
        except ConfigError:
            needed = False  # the batches it stopped were given back: nothing is in flight
            raise
        finally:
            if journal is not None:
                journal.close(remove=not needed or journal.empty)

    def claim(self, edition_id: int, run_id: str, limit: int) -> tuple[Batch, StopReason | None]:
        """The next batch, committed in_flight; or why to stop."""
        if self.stop.is_set():
            return _NOTHING, StopReason.INTERRUPTED
        batch = self.store.claim(edition_id, run_id, limit, self.clock(), self.retry.max_attempts)
        return batch, _STOP_FOR[batch.halted] if batch.halted else None

    def wait_for_retry(self, edition_id: int) -> bool:
        """Sleep until the earliest retry if it is due within the backoff cap; False if none."""
        when = self.store.next_retry(edition_id, self.retry.max_attempts)
        if when is None:
            return False
        wait = (when - self.clock()).total_seconds()
        if wait > self.retry.cap:
            return False
        if wait > 0:
            self.sleep(wait)
        return True

    def throttle(self, count: int, share: int) -> None:
        """Wait for `count` tokens of this process's `share`: the limit holds for the whole send."""
        if self.bucket is not None:
            self.bucket.rate_share(share)
            wait = self.bucket.reserve(count, self.clock().timestamp())
            if wait > 0:
                self.sleep(wait)

    def hand_over(self, messages: list[OutgoingMessage],
                  journal: Journal | None) -> list[SendResult]:
        told = self._told
        if journal is not None:
            journal.handed(hand_over_shape(self.transport, messages, told=told))
        try:
            if told:
                return self.transport.send(messages, on_result=journal.result if journal else None)
            return self.transport.send(messages)
        except ConfigError:
            self.store.release([m.delivery_id for m in messages], self.clock())
            raise

    @property
    def _told(self) -> bool:
        """Whether the transport takes `on_result` (a test's own transport may not)."""
        if self._takes_on_result is None:
            try:
                parameters = inspect.signature(self.transport.send).parameters
            except (TypeError, ValueError):
                parameters = {}  # type: ignore[assignment]
            self._takes_on_result = "on_result" in parameters
        return self._takes_on_result

    def record(self, claimed: list[Claimed], results: list[SendResult],
               report: SendReport) -> None:
        now = self.clock()
        retry_at = retry_times(claimed, results, now, self.retry)
        uncertain = uncertain_by_reason(results)
        unknown = unanswered(claimed, results)
        if unknown:
            uncertain.setdefault(f"{self.transport.name}: handed over without a result",
                                 []).extend(unknown)
        gone = {r.delivery_id: r.detail for r in results if r.mailbox_gone}
        self.store.record([r for r in results if r.outcome is not Outcome.UNCERTAIN], now,
                          retry_at=retry_at, uncertain=uncertain,
                          bounced=[(c.email, gone[c.delivery_id]) for c in claimed
                                   if c.delivery_id in gone])
        report.add(results)
        report.uncertain += len(unknown)

    def _finish(self, edition: EditionContent, run_id: str, report: SendReport) -> None:
        report.ledger = self.store.finish_run(edition.id or 0, run_id, self.clock())
        report.complete = is_complete(report.ledger)
