"""The send loop: plan → render once per variant → fill in per recipient → transport → ledger.

It owns no SQL (a `SendStore`: store.py) and no socket (a `Transport`: transports/); it only
sequences them so that a row is committed `in_flight` before its message leaves and its result
is committed as soon as the batch comes back. Each claim heartbeats, and the loop stops cleanly
when asked to (the `stop` event, set by a signal handler) or when the edition is paused or
cancelled. Temporary failures come back within the run after a backoff; when nothing else is
due, the loop sleeps until the earliest. Uncertain results (the message may have been accepted)
are recorded as such and never come back on their own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol, cast

from ..config import Config
from ..content.models import EditionStatus
from ..content.variants import variant_for, variant_key
from ..context import Newsletter
from ..db import utcnow
from ..domain import EditionContent
from ..errors import ComposeError, ConfigError
from ..mail.compose import CANNOT_COMPOSE, Composer, make_renderer
from ..mail.message import Outcome, OutgoingMessage, SendResult, Transport
from ..mail.render import Renderer
from .outcomes import SendReport, StopReason, retry_times, unanswered, uncertain_by_reason
from .plan import PlanCounts
from .retry import Jitter, RetryPolicy
from .store import Batch, Claimed, Recipient, SendStore, SqlSendStore, Topics, is_complete
from .throttle import TokenBucket

__all__ = ["MessageComposer", "Progress", "SendReport", "Sender", "StopReason"]

Progress = Callable[[int, int], None]
_STOP_FOR = {EditionStatus.PAUSED: StopReason.PAUSED, EditionStatus.CANCELLED: StopReason.CANCELLED}
_NOTHING = Batch([], {})
UNREACHABLE_BATCHES = 3
"""Consecutive batches in which every connection timed out before the run gives up."""


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
        self._unreachable_batches = 0
        nl.config.secret_keys  # noqa: B018  (fail before touching the ledger if unset)

    def send(self, month: str, *, resend_uncertain: bool = False) -> SendReport:
        started = time.monotonic()
        report = SendReport(month)
        edition, run_id = self._start(month, report, resend_uncertain)
        try:
            report.planned = self._plan(edition)
            self._deliver(edition, run_id, report)
        finally:
            self._finish(edition, run_id, report)
            report.elapsed = time.monotonic() - started
        return report

    def _start(self, month: str, report: SendReport,
               resend_uncertain: bool) -> tuple[EditionContent, str]:
        run = self.store.start_run(month, self.clock(), resend_uncertain=resend_uncertain)
        report.recovered_uncertain = run.recovered_uncertain
        return run.edition, run.run_id

    def _plan(self, edition: EditionContent) -> PlanCounts:
        """Give every matching active subscriber a pending row; count those with no match."""
        counts = PlanCounts()
        assert edition.id is not None

        def variant_keys(chunk: Sequence[Recipient]) -> list[str]:
            keys = [variant_key(variant_for(edition, r.topics)) for r in chunk]
            counts.add(keys)
            return keys

        self.store.plan(edition.id, variant_keys, self.clock)
        return counts

    def _deliver(self, edition: EditionContent, run_id: str, report: SendReport) -> None:
        assert edition.id is not None
        total = self.store.count_due(edition.id, self.clock())
        composer = self.composer(edition)
        limit = self.bucket.chunk(self.transport.batch_size) if self.bucket else \
            self.transport.batch_size
        done = 0
        self.progress(done, total)
        while True:
            batch, report.stopped = self._claim(edition.id, run_id, limit)
            report.left += batch.left
            if report.stopped:
                break
            if not batch.claimed and batch.left:
                continue
            if not batch.claimed:
                if self._wait_for_retry(edition.id):
                    continue
                break
            self._throttle(len(batch.claimed))
            now = self.clock()
            messages, unwritable = compose_batch(composer, batch.claimed, batch.topics, now)
            self._record(batch.claimed,
                         unwritable + (self._hand_over(messages) if messages else []), report)
            done += len(batch.claimed)
            self.progress(done, max(total, done))
        report.variants_rendered = composer.variants_rendered

    def _claim(self, edition_id: int, run_id: str, limit: int) -> tuple[Batch, StopReason | None]:
        """The next batch, committed in_flight; or why to stop."""
        if self.stop.is_set():
            return _NOTHING, StopReason.INTERRUPTED
        if self._unreachable_batches >= UNREACHABLE_BATCHES:
            return _NOTHING, StopReason.UNREACHABLE
        batch = self.store.claim(edition_id, run_id, limit, self.clock(), self.retry.max_attempts)
        return batch, _STOP_FOR[batch.halted] if batch.halted else None

    def _wait_for_retry(self, edition_id: int) -> bool:
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

    def _throttle(self, count: int) -> None:
        if self.bucket is not None:
            wait = self.bucket.reserve(count, self.clock().timestamp())
            if wait > 0:
                self.sleep(wait)

    def _hand_over(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        try:
            return self.transport.send(messages)
        except ConfigError:
            self.store.release([m.delivery_id for m in messages], self.clock())
            raise

    def _record(self, claimed: list[Claimed], results: list[SendResult],
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
        unreachable = bool(results) and all(r.unreachable for r in results)
        self._unreachable_batches = self._unreachable_batches + 1 if unreachable else 0

    def _finish(self, edition: EditionContent, run_id: str, report: SendReport) -> None:
        report.ledger = self.store.finish_run(edition.id or 0, run_id, self.clock())
        report.complete = is_complete(report.ledger)


def compose_batch(composer: MessageComposer, claimed: Sequence[Claimed], topics: Topics,
                  date: datetime) -> tuple[list[OutgoingMessage], list[SendResult]]:
    """The batch's messages, and a PERMANENT result for each recipient whose message cannot be
    composed: one bad row never holds back the others."""
    messages: list[OutgoingMessage] = []
    unwritable: list[SendResult] = []
    for c in claimed:
        try:
            messages.append(composer.compose(delivery_id=c.delivery_id, variant=c.variant, uid=c.uid,
                                             email=c.email, name=c.name,
                                             topics=topics[c.subscriber_id], date=date))
        except ComposeError as err:
            unwritable.append(SendResult(c.delivery_id, Outcome.PERMANENT,
                                         detail=f"{CANNOT_COMPOSE}: {err}"))
    return messages, unwritable
