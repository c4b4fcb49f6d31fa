"""One worker's delivery loop, in two stages so that the wire never waits for the database.

While a batch is on the wire (the transport's connections, on the main thread), one helper
thread commits the previous batch's results, claims the next batch and composes its messages.
When the transport returns, the next batch is ready. The helper runs its jobs in order, so a
batch's results are committed before anything later is; nothing else is shared.

A batch claimed ahead but not handed over (the run stopped meanwhile, or the server stopped
answering) is released: pending again, its attempt undone. Pause and cancel are seen at the next
claim; the stop event before each hand-over. Every couple of seconds a worker also looks for
workers that died and settles their rows (journal.py), and learns how many share the rate limit.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from ..content.models import EditionStatus
from ..errors import ComposeError
from ..mail.compose import CANNOT_COMPOSE
from ..mail.message import Outcome, OutgoingMessage, SendResult
from .journal import Journal
from .outcomes import SendReport, StopReason
from .store import Batch, Claimed, StartedRun, Topics

if TYPE_CHECKING:
    from .engine import MessageComposer, Sender

_STOP_FOR = {EditionStatus.PAUSED: StopReason.PAUSED, EditionStatus.CANCELLED: StopReason.CANCELLED}
UNREACHABLE_BATCHES = 3
"""Consecutive batches in which every connection timed out before the run gives up."""
LINGER_SECONDS = 0.5
LOOK_AROUND_SECONDS = 2.0
"""How often a worker settles dead workers' rows and counts those sharing the rate limit."""


@dataclass
class Prepared:
    """A claimed batch with its messages, ready to hand over; or why to stop."""

    batch: Batch
    stopped: StopReason | None = None
    messages: list[OutgoingMessage] = field(default_factory=list)
    unwritable: list[SendResult] = field(default_factory=list)
    share: int = 1


class Delivery:
    def __init__(self, sender: Sender, run: StartedRun, report: SendReport,
                 journal: Journal | None, *, linger: bool = False) -> None:
        self.sender, self.run_id, self.report, self.journal = sender, run.run_id, report, journal
        self.linger = linger
        assert run.edition.id is not None
        self.edition_id = run.edition.id
        self.composer: MessageComposer = sender.composer(run.edition)
        bucket = sender.bucket
        size = sender.transport.batch_size
        self.limit = bucket.chunk(size) if bucket else size
        self.unreachable = 0
        self.share = 1
        self._looked = float("-inf")

    def run(self) -> None:
        sender, report = self.sender, self.report
        total = sender.store.count_due(self.edition_id, sender.clock())
        done = 0
        sender.progress(done, total)
        helper = ThreadPoolExecutor(1, thread_name_prefix="prepare")
        ahead: Future[Prepared] | None = helper.submit(self._prepare)
        recording: Future[None] | None = None
        try:
            while ahead is not None:
                prepared, ahead = ahead.result(), None
                report.left += prepared.batch.left
                if prepared.stopped:
                    report.stopped = prepared.stopped
                    break
                claimed = prepared.batch.claimed
                if not claimed:
                    if prepared.batch.left or recording is not None:
                        _wait(recording)
                        recording = None
                        ahead = helper.submit(self._prepare)
                    elif sender.wait_for_retry(self.edition_id) or self._others_working():
                        ahead = helper.submit(self._prepare)
                    continue
                if self.unreachable >= UNREACHABLE_BATCHES or sender.stop.is_set():
                    report.stopped = (StopReason.UNREACHABLE if self.unreachable
                                      >= UNREACHABLE_BATCHES else StopReason.INTERRUPTED)
                    self._release(prepared)
                    break
                if done:
                    prepared = self._rechecked(prepared)
                    if prepared.stopped:
                        report.stopped = prepared.stopped
                        self._release(prepared)
                        break
                ahead = helper.submit(self._prepare)
                results = self._hand_over(prepared)
                _wait(recording)
                recording = helper.submit(sender.record, claimed, prepared.unwritable + results,
                                          report)
                done += len(claimed)
                sender.progress(done, max(total, done))
        finally:
            self._drain(ahead, recording)
            helper.shutdown(wait=True)
        report.variants_rendered = self.composer.variants_rendered

    def _others_working(self) -> bool:
        """Lingering: while other workers are live, wait a moment and look again (one may die
        and leave rows that never left, pending again); once alone, settle the dead ones and
        go on if that made anything due."""
        sender = self.sender
        if not self.linger or sender.stop.is_set():
            return False
        if sender.store.live_senders(self.edition_id, sender.clock()) > 1:
            self._looked = float("-inf")
            sender.sleep(LINGER_SECONDS)
            return True
        due = sender.store.count_due(self.edition_id, sender.clock())
        self.report.recovered_uncertain += sender.store.recover(self.edition_id, sender.clock())
        return sender.store.count_due(self.edition_id, sender.clock()) > due

    def _rechecked(self, prepared: Prepared) -> Prepared:
        """The batch claimed ahead, less who left meanwhile; stopped if the edition was paused
        or cancelled meanwhile: both take effect between two batches, as without claiming ahead."""
        claimed = prepared.batch.claimed
        gone_ids, halted = self.sender.store.recheck(
            self.edition_id, [c.delivery_id for c in claimed], self.sender.clock())
        if halted is not None:
            return Prepared(prepared.batch, _STOP_FOR[halted])
        if not gone_ids:
            return prepared
        gone = set(gone_ids)
        self.report.left += len(gone)
        batch = Batch([c for c in claimed if c.delivery_id not in gone], prepared.batch.topics)
        return Prepared(batch, None, [m for m in prepared.messages if m.delivery_id not in gone],
                        [r for r in prepared.unwritable if r.delivery_id not in gone],
                        prepared.share)

    def _hand_over(self, prepared: Prepared) -> list[SendResult]:
        self.sender.throttle(len(prepared.batch.claimed), prepared.share)
        results = self.sender.hand_over(prepared.messages, self.journal) \
            if prepared.messages else []
        unreachable = bool(results) and all(r.unreachable for r in results)
        self.unreachable = self.unreachable + 1 if unreachable else 0
        return results

    def _prepare(self) -> Prepared:
        """On the helper thread: look around now and then, claim, compose."""
        sender = self.sender
        if time.monotonic() - self._looked >= LOOK_AROUND_SECONDS:
            self._looked = time.monotonic()
            self.report.recovered_uncertain += sender.store.recover(self.edition_id,
                                                                    sender.clock())
            if sender.bucket is not None:
                self.share = sender.store.live_senders(self.edition_id, sender.clock())
        batch, stopped = sender.claim(self.edition_id, self.run_id, self.limit)
        if stopped or not batch.claimed:
            return Prepared(batch, stopped)
        messages, unwritable = compose_batch(self.composer, batch.claimed, batch.topics,
                                             sender.clock())
        return Prepared(batch, None, messages, unwritable, self.share)

    def _release(self, prepared: Prepared) -> None:
        ids = [c.delivery_id for c in prepared.batch.claimed]
        if ids:
            self.sender.store.release(ids, self.sender.clock())

    def _drain(self, ahead: Future[Prepared] | None, recording: Future[None] | None) -> None:
        """Let the helper finish; give back a batch it claimed that will not go out."""
        if ahead is not None:
            try:
                self._release(ahead.result())
            finally:
                _wait(recording)
        else:
            _wait(recording)


def _wait(job: Future[None] | None) -> None:
    if job is not None:
        job.result()


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
