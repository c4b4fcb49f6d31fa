"""The send loop: plan → render once per variant → fill in per recipient → transport → ledger.

It owns no SQL (ledger.py) and no socket (transports/); it only sequences them so that a row is
committed `in_flight` before its message leaves and its result is committed as soon as the batch
comes back. Between batches it heartbeats, and stops cleanly when asked to (the `stop` event, set
by a signal handler) or when the edition is paused or cancelled. Temporary failures come back
within the run after a backoff; when nothing else is due, the loop sleeps until the earliest.
Uncertain results (the message may have been accepted) are recorded as such and never come back
on their own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import cast

from sqlalchemy.orm import Session

from subscribers.models import SubscriberStatus
from subscribers.store import chosen_topics, iter_audience, suppress

from ..config import Config
from ..content.models import Edition, EditionStatus
from ..content.store import edition_content, get_edition
from ..content.variants import variant_for, variant_key
from ..context import Newsletter
from ..db import utcnow
from ..domain import EditionContent
from ..errors import ComposeError, ConfigError, ContentError
from ..mail.compose import CANNOT_COMPOSE, Composer, make_renderer
from ..mail.message import Outcome, OutgoingMessage, SendResult, Transport
from ..mail.render import Renderer
from . import ledger
from .outcomes import SendReport, retry_times, unanswered, uncertain_by_reason
from .plan import PlanCounts
from .retry import Jitter, RetryPolicy
from .throttle import TokenBucket

__all__ = ["Progress", "SendReport", "Sender"]

Progress = Callable[[int, int], None]
Topics = dict[int, frozenset[str] | None]
_HALTING = {EditionStatus.PAUSED: "paused", EditionStatus.CANCELLED: "cancelled"}
UNREACHABLE_BATCHES = 3
"""Consecutive batches in which every connection timed out before the run gives up."""


def retry_policy(config: Config) -> RetryPolicy:
    return RetryPolicy(max_attempts=config.retry_max_attempts, initial=config.retry_initial,
                       factor=config.retry_factor, cap=config.retry_cap,
                       jitter=cast(Jitter, config.retry_jitter), later=config.retry_later)


class Sender:
    """Delivers one edition. `sleep` defaults to waiting on `stop`, so a signal cuts a wait short."""

    def __init__(self, nl: Newsletter, transport: Transport, *, renderer: Renderer | None = None,
                 clock: Callable[[], datetime] = utcnow, progress: Progress | None = None,
                 retry: RetryPolicy | None = None, rate_limit: float | None = None,
                 stop: threading.Event | None = None,
                 sleep: Callable[[float], object] | None = None) -> None:
        self.nl, self.transport, self.clock = nl, transport, clock
        self.renderer = renderer or make_renderer(nl)
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
        now = self.clock()
        with self.nl.session() as session:
            edition = get_edition(session, month)
            run_id, report.recovered_uncertain = ledger.start_run(session, edition.id, now)
            session.refresh(edition, ["status"])
            if edition.status in _HALTING:
                paused = edition.status is EditionStatus.PAUSED
                hint = f": run `newsletter resume {month}` first" if paused else ""
                raise ContentError(f"the {month} edition is {edition.status.value}{hint}",
                                   field="month")
            if resend_uncertain:
                ledger.requeue_uncertain(session, edition.id, now)
            edition.status = EditionStatus.SENDING
            content = edition_content(edition)
        return content, run_id

    def _plan(self, edition: EditionContent) -> PlanCounts:
        """Give every matching active subscriber a pending row; count those with no match."""
        counts = PlanCounts()
        assert edition.id is not None
        with self.nl.sessions() as session:
            for chunk in iter_audience(session):
                keys = [variant_key(variant_for(edition, r.topics)) for r in chunk]
                counts.add(keys)
                ledger.add_pending(session, edition.id,
                                   [(r.id, k) for r, k in zip(chunk, keys, strict=True) if k], self.clock())
                session.commit()
        return counts

    def _deliver(self, edition: EditionContent, run_id: str, report: SendReport) -> None:
        assert edition.id is not None
        with self.nl.session() as session:
            total = ledger.count_due(session, edition.id, self.clock())
        composer = Composer(self.nl, edition, self.renderer)
        limit = self.bucket.chunk(self.transport.batch_size) if self.bucket else \
            self.transport.batch_size
        done = 0
        self.progress(done, total)
        while True:
            claimed, chosen, report.stopped, left = self._claim(edition.id, run_id, limit)
            report.left += left
            if report.stopped:
                break
            if not claimed and left:
                continue
            if not claimed:
                if self._wait_for_retry(edition.id):
                    continue
                break
            self._throttle(len(claimed))
            now = self.clock()
            messages, unwritable = compose_batch(composer, claimed, chosen, now)
            self._record(claimed, unwritable + (self._hand_over(messages) if messages else []),
                         report)
            done += len(claimed)
            self.progress(done, max(total, done))
        report.variants_rendered = composer.variants_rendered

    def _claim(self, edition_id: int, run_id: str,
               limit: int) -> tuple[list[ledger.Claimed], Topics, str | None, int]:
        """The next batch, committed in_flight; or why to stop. The heartbeat is written first,
        so on SQLite the whole claim holds the write lock."""
        if self.stop.is_set():
            return [], {}, "interrupted", 0
        if self._unreachable_batches >= UNREACHABLE_BATCHES:
            return [], {}, "unreachable", 0
        with self.nl.session() as session:
            ledger.heartbeat(session, run_id, self.clock())
            state = ledger.edition_state(session, edition_id)
            if state in _HALTING:
                return [], {}, _HALTING[state], 0
            claimed, left = ledger.claim_batch(session, edition_id, run_id, limit, self.clock(),
                                                self.retry.max_attempts)
            return claimed, self._chosen_topics(session, claimed), None, left

    def _wait_for_retry(self, edition_id: int) -> bool:
        """Sleep until the earliest retry if it is due within the backoff cap; False if none."""
        with self.nl.session() as session:
            when = ledger.next_retry(session, edition_id, self.retry.max_attempts)
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

    @staticmethod
    def _chosen_topics(session: Session, claimed: list[ledger.Claimed]) -> Topics:
        partial = [c.subscriber_id for c in claimed if not c.all_topics]
        picked = chosen_topics(session, partial) if partial else {}
        return {c.subscriber_id: None if c.all_topics else frozenset(picked.get(c.subscriber_id, ()))
                for c in claimed}

    def _hand_over(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        try:
            return self.transport.send(messages)
        except ConfigError:
            with self.nl.session() as session:
                ledger.release(session, [m.delivery_id for m in messages], self.clock())
            raise

    def _record(self, claimed: list[ledger.Claimed], results: list[SendResult],
                report: SendReport) -> None:
        now = self.clock()
        retry_at = retry_times(claimed, results, now, self.retry)
        uncertain = uncertain_by_reason(results)
        unknown = unanswered(claimed, results)
        if unknown:
            uncertain.setdefault(f"{self.transport.name}: handed over without a result",
                                 []).extend(unknown)
        with self.nl.session() as session:
            ledger.record_results(session, [r for r in results
                                            if r.outcome is not Outcome.UNCERTAIN], now, retry_at)
            for reason, delivery_ids in uncertain.items():
                ledger.mark_uncertain(session, delivery_ids, now, reason[:1000])
            gone = {r.delivery_id: r.detail for r in results if r.mailbox_gone}
            for c in claimed:
                if c.delivery_id in gone:
                    suppress(session, c.email, "hard-bounce", gone[c.delivery_id],
                             SubscriberStatus.BOUNCED)
        report.add(results)
        report.uncertain += len(unknown)
        unreachable = bool(results) and all(r.unreachable for r in results)
        self._unreachable_batches = self._unreachable_batches + 1 if unreachable else 0

    def _finish(self, edition: EditionContent, run_id: str, report: SendReport) -> None:
        now = self.clock()
        with self.nl.session() as session:
            ledger.finish_run(session, run_id, now)
            report.ledger = ledger.status_counts(session, edition.id or 0)
            open_rows = sum(report.ledger[s] for s in ("pending", "in_flight", "failed"))
            report.complete = open_rows == 0
            row = session.get(Edition, edition.id)
            if row is not None and report.complete and row.status is EditionStatus.SENDING:
                row.status, row.sent_at = EditionStatus.SENT, row.sent_at or now


def compose_batch(composer: Composer, claimed: Sequence[ledger.Claimed], topics: Topics,
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
