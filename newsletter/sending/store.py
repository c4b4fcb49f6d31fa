"""What the send loop needs from a store, and the SQL store that gives it.

The loop (engine.py) owns the rules: which rows go next, when a failure comes back, when to stop.
It reads and writes only through `SendStore`, the interface of its user as listmonk's manager owns
its `Store`, so those rules can be tried against a store in memory. Each method is one
transaction: what must be atomic for exactly-once (claiming under the heartbeat's write lock,
a batch's results with its bounces) is one call. `SqlSendStore` is that interface over
ledger.py, `subscribers.store` and `content.store`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from subscribers.models import SubscriberStatus
from subscribers.store import Recipient, chosen_topics, iter_audience, suppress

from ..content.models import EditionStatus
from ..content.store import edition_content, get_edition, mark_sent
from ..context import Newsletter
from ..domain import EditionContent
from ..errors import StateError
from ..mail.message import SendResult
from . import ledger
from .ledger import Claimed
from .models import DeliveryStatus

__all__ = ["HALTED", "Batch", "Claimed", "Recipient", "SendStore", "SqlSendStore", "StartedRun",
           "Topics", "cannot_start", "is_complete"]

Topics = Mapping[int, frozenset[str] | None]
"""Each claimed subscriber's chosen topics by subscriber id; None for all topics."""
HALTED = frozenset({EditionStatus.PAUSED, EditionStatus.CANCELLED})
"""Edition states in which nothing is started or claimed."""
OPEN = (DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT, DeliveryStatus.FAILED)


@dataclass(frozen=True)
class StartedRun:
    edition: EditionContent
    run_id: str
    recovered_uncertain: int
    """Rows a dead run left in flight, now uncertain."""


@dataclass(frozen=True)
class Batch:
    claimed: list[Claimed]
    topics: Topics
    left: int = 0
    """Due rows rejected instead, their subscriber having left, paused or been suppressed."""
    halted: EditionStatus | None = None
    """The edition was paused or cancelled: nothing was claimed."""


def cannot_start(month: str, status: EditionStatus) -> StateError:
    hint = f": run `newsletter resume {month}` first" if status is EditionStatus.PAUSED else ""
    return StateError(f"the {month} edition is {status.value}{hint}")


def is_complete(counts: Mapping[str, int]) -> bool:
    """Nothing is pending, in flight or due again: the edition has been sent."""
    return not any(counts.get(status.value, 0) for status in OPEN)


class SendStore(Protocol):
    def start_run(self, month: str, now: datetime, *, resend_uncertain: bool) -> StartedRun:
        """Register this process as the month's sender and mark the edition sending. A dead
        run's in-flight rows become uncertain; with `resend_uncertain`, uncertain rows become
        pending. SendInProgress while another run is live, StateError for an edition in HALTED
        (`cannot_start`), ContentError for none: then nothing changes."""
        ...

    def plan(self, edition_id: int, variant_keys: Callable[[Sequence[Recipient]], Sequence[str]],
             clock: Callable[[], datetime]) -> None:
        """Walk the audience a chunk per transaction, giving each recipient a pending row for the
        variant key `variant_keys` returns ("": no row). An existing row stays as it is."""
        ...

    def count_due(self, edition_id: int, now: datetime) -> int:
        """Rows pending, or failed and due by `now`."""
        ...

    def claim(self, edition_id: int, run_id: str, limit: int, now: datetime,
              max_attempts: int) -> Batch:
        """Heartbeat first, then (unless the edition is in HALTED) mark up to `limit` due rows in
        flight for this run, in id order, counting the attempt. Due: pending, or failed and due
        by `now`, skipping those that made `max_attempts` tries in this very run. Rows whose
        subscriber no longer receives mail are rejected instead (`left`)."""
        ...

    def record(self, results: Sequence[SendResult], now: datetime, *,
               retry_at: Mapping[int, datetime], uncertain: Mapping[str, Sequence[int]],
               bounced: Sequence[tuple[str, str]]) -> None:
        """One batch's answers, together: `results` (sent, temporary: failed and due again at
        `retry_at`, permanent: rejected), in-flight rows made uncertain by reason, and
        (address, detail) of mailboxes gone, suppressed and marked bounced."""
        ...

    def release(self, delivery_ids: Sequence[int], now: datetime) -> None:
        """In-flight rows that were never handed over become pending, their attempt undone."""
        ...

    def next_retry(self, edition_id: int, max_attempts: int) -> datetime | None:
        """When the earliest failed row with fewer than `max_attempts` tries is due."""
        ...

    def finish_run(self, edition_id: int, run_id: str, now: datetime) -> dict[str, int]:
        """End the run; a sending edition whose ledger `is_complete` becomes sent. The rows per
        status (every DeliveryStatus value, zeros included)."""
        ...


class SqlSendStore:
    """`SendStore` over a Newsletter's database."""

    def __init__(self, nl: Newsletter) -> None:
        self.nl = nl

    def start_run(self, month: str, now: datetime, *, resend_uncertain: bool) -> StartedRun:
        with self.nl.session() as session:
            edition = get_edition(session, month)
            run_id, recovered = ledger.start_run(session, edition.id, now)
            session.refresh(edition, ["status"])
            if edition.status in HALTED:
                raise cannot_start(month, edition.status)
            if resend_uncertain:
                ledger.requeue_uncertain(session, edition.id, now)
            edition.status = EditionStatus.SENDING
            return StartedRun(edition_content(edition), run_id, recovered)

    def plan(self, edition_id: int, variant_keys: Callable[[Sequence[Recipient]], Sequence[str]],
             clock: Callable[[], datetime]) -> None:
        with self.nl.sessions() as session:
            for chunk in iter_audience(session):
                keys = variant_keys(chunk)
                ledger.add_pending(session, edition_id,
                                   [(r.id, k) for r, k in zip(chunk, keys, strict=True) if k], clock())
                session.commit()

    def count_due(self, edition_id: int, now: datetime) -> int:
        with self.nl.session() as session:
            return ledger.count_due(session, edition_id, now)

    def claim(self, edition_id: int, run_id: str, limit: int, now: datetime,
              max_attempts: int) -> Batch:
        """The heartbeat is written first, so on SQLite the whole claim holds the write lock."""
        with self.nl.session() as session:
            ledger.heartbeat(session, run_id, now)
            state = ledger.edition_state(session, edition_id)
            if state in HALTED:
                return Batch([], {}, halted=state)
            claimed, left = ledger.claim_batch(session, edition_id, run_id, limit, now, max_attempts)
            return Batch(claimed, _chosen_topics(session, claimed), left)

    def record(self, results: Sequence[SendResult], now: datetime, *,
               retry_at: Mapping[int, datetime], uncertain: Mapping[str, Sequence[int]],
               bounced: Sequence[tuple[str, str]]) -> None:
        with self.nl.session() as session:
            ledger.record_results(session, results, now, retry_at)
            for reason, delivery_ids in uncertain.items():
                ledger.mark_uncertain(session, delivery_ids, now, reason[:1000])
            for email, detail in bounced:
                suppress(session, email, "hard-bounce", detail, SubscriberStatus.BOUNCED)

    def release(self, delivery_ids: Sequence[int], now: datetime) -> None:
        with self.nl.session() as session:
            ledger.release(session, delivery_ids, now)

    def next_retry(self, edition_id: int, max_attempts: int) -> datetime | None:
        with self.nl.session() as session:
            return ledger.next_retry(session, edition_id, max_attempts)

    def finish_run(self, edition_id: int, run_id: str, now: datetime) -> dict[str, int]:
        with self.nl.session() as session:
            ledger.finish_run(session, run_id, now)
            counts = ledger.status_counts(session, edition_id)
            if is_complete(counts):
                mark_sent(session, edition_id, now)
            return counts


def _chosen_topics(session: Session, claimed: list[Claimed]) -> Topics:
    partial = [c.subscriber_id for c in claimed if not c.all_topics]
    picked = chosen_topics(session, partial) if partial else {}
    return {c.subscriber_id: None if c.all_topics else frozenset(picked.get(c.subscriber_id, ()))
            for c in claimed}
