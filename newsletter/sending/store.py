"""What the send loop needs from a store, and the SQL store that gives it.

The loop (engine.py) owns the rules: which rows go next, when a failure comes back, when to stop.
It reads and writes only through `SendStore`, the interface of its user as listmonk's manager owns
its `Store`, so those rules can be tried against a store in memory. Each method is one
transaction: what must be atomic for exactly-once (claiming under the heartbeat's write lock,
a batch's results with its bounces) is one call. `SqlSendStore` is that interface over
ledger.py, `subscribers.store` and `content.store`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from subscribers.models import Subscriber, SubscriberStatus
from subscribers.store import Recipient, chosen_topics, suppress

from ..content.models import Edition, EditionStatus
from ..content.store import edition_content, get_edition, mark_sent
from ..context import Newsletter
from ..domain import EditionContent
from ..errors import StateError
from ..mail.message import Outcome, SendResult
from . import ledger
from .journal import settle
from .ledger import Claimed
from .models import Delivery, DeliveryStatus, SendRun
from .plan import PlanCounts
from .planner import count_variants, plan_deliveries

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
    journal: str | None = None
    """Where this run keeps its result journal (journal.py); None: none."""


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

    def join(self, month: str, now: datetime) -> StartedRun | None:
        """Register this process as a worker of the month's running send; None if none runs."""
        ...

    def recover(self, edition_id: int, now: datetime) -> int:
        """Settle the rows of runs that died (journal.py): answered ones get their result, the
        ones on the wire become uncertain (returned: how many), the rest pending again."""
        ...

    def live_senders(self, edition_id: int, now: datetime) -> int:
        """Processes sending the edition now (this one included): they share the rate limit."""
        ...

    def recheck(self, edition_id: int, delivery_ids: Sequence[int],
                now: datetime) -> tuple[list[int], EditionStatus | None]:
        """Just before a batch claimed ahead goes out: of its in-flight rows, reject (and
        return) those whose subscriber no longer receives mail, as `claim` does; and the
        edition's state if it is in HALTED (then the caller releases the batch)."""
        ...

    def plan(self, edition_id: int, variant_keys: Callable[[Sequence[Recipient]], Sequence[str]],
             clock: Callable[[], datetime]) -> PlanCounts | None:
        """Give each matching recipient a pending row for their variant; an existing row stays
        as it is. A store that computes variants itself (SqlSendStore, in SQL: planner.py)
        returns its counts; one that cannot walks the audience a chunk per transaction, asks
        `variant_keys` (which counts; "": no row) and returns None."""
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
        self.journal_dir = journal_dir(nl.config.journal_dir)

    def start_run(self, month: str, now: datetime, *, resend_uncertain: bool) -> StartedRun:
        with self.nl.session() as session:
            edition = get_edition(session, month)
            run_id, dead = ledger.start_run(session, edition.id, now, journal_dir=self.journal_dir)
            session.refresh(edition, ["status"])
            if edition.status in HALTED:
                raise cannot_start(month, edition.status)
            recovered = _settle_runs(session, edition.id, dead, now, every_row=True)
            if resend_uncertain:
                ledger.requeue_uncertain(session, edition.id, now)
            edition.status = EditionStatus.SENDING
            return StartedRun(edition_content(edition), run_id, recovered,
                              _journal_of(session, run_id))

    def join(self, month: str, now: datetime) -> StartedRun | None:
        with self.nl.session() as session:
            edition = get_edition(session, month)
            if edition.status is not EditionStatus.SENDING:
                return None
            run_id = ledger.join_run(session, edition.id, now, journal_dir=self.journal_dir)
            if run_id is None:
                return None
            return StartedRun(edition_content(edition), run_id, 0, _journal_of(session, run_id))

    def recover(self, edition_id: int, now: datetime) -> int:
        with self.nl.session() as session:
            dead = ledger.claim_dead_runs(session, edition_id, now)
            return _settle_runs(session, edition_id, dead, now) if dead else 0

    def live_senders(self, edition_id: int, now: datetime) -> int:
        with self.nl.session() as session:
            return max(1, ledger.live_run_count(session, edition_id, now))

    def recheck(self, edition_id: int, delivery_ids: Sequence[int],
                now: datetime) -> tuple[list[int], EditionStatus | None]:
        with self.nl.session() as session:
            state = ledger.edition_state(session, edition_id)
            if state in HALTED:
                return [], state
            return ledger.reject_left(session, delivery_ids, now), None

    def plan(self, edition_id: int, variant_keys: Callable[[Sequence[Recipient]], Sequence[str]],
             clock: Callable[[], datetime]) -> PlanCounts:
        """Set-based (`planner.plan_deliveries`): `variant_keys` is not called."""
        with self.nl.sessions() as session:
            edition = edition_content(session.get_one(Edition, edition_id))
            counts = count_variants(session, edition)
            plan_deliveries(session, edition, clock)
            return counts

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


def journal_dir(setting: str) -> str:
    """The journal folder as an absolute path: workers started elsewhere find it the same."""
    if setting.strip():
        return os.path.abspath(setting)
    return os.path.join(tempfile.gettempdir(), f"newsletter-journal-{os.getuid()}")


def _journal_of(session: Session, run_id: str) -> str | None:
    run = session.get(SendRun, run_id)
    return run.journal if run is not None else None


def _settle_runs(session: Session, edition_id: int, dead: Sequence[SendRun], now: datetime, *,
                 every_row: bool = False) -> int:
    """Settle the rows `dead` runs left in flight, each by its journal if this host has it;
    `every_row`: also rows of runs that are not in `dead` (no run is live: all are orphans).
    Returns the rows made uncertain."""
    runs = {run.id: run for run in dead}
    left = ledger.in_flight_by_run(session, edition_id, None if every_row else list(runs))
    uncertain = 0
    for run_id, delivery_ids in left.items():
        run = runs.get(run_id) if run_id is not None else None
        if run is None and run_id is not None:
            run = session.get(SendRun, run_id)
        journal = ledger.journal_here(run) if run is not None else None
        settled = settle(Path(journal) if journal else None, delivery_ids)
        results = [r for r in settled.results.values() if r.outcome is not Outcome.UNCERTAIN]
        by_reason: dict[str, list[int]] = {}
        for r in settled.results.values():
            if r.outcome is Outcome.UNCERTAIN:
                by_reason.setdefault(r.detail or ledger.ORPHANED, []).append(r.delivery_id)
        if settled.uncertain:
            by_reason.setdefault(ledger.ORPHANED, []).extend(settled.uncertain)
        ledger.record_results(session, results, now, {r.delivery_id: now for r in results})
        for reason, ids in by_reason.items():
            ledger.mark_uncertain(session, ids, now, reason[:1000])
        ledger.release(session, settled.pending, now)
        _suppress_gone(session, [r for r in results if r.mailbox_gone])
        uncertain += sum(len(ids) for ids in by_reason.values())
        if journal:
            Path(journal).unlink(missing_ok=True)
    return uncertain


def _suppress_gone(session: Session, results: Sequence[SendResult]) -> None:
    if not results:
        return
    detail = {r.delivery_id: r.detail for r in results}
    rows = session.execute(select(Delivery.id, Subscriber.email).join(
        Subscriber, Subscriber.id == Delivery.subscriber_id).where(Delivery.id.in_(detail)))
    for delivery_id, email in rows:
        suppress(session, email, "hard-bounce", detail[delivery_id], SubscriberStatus.BOUNCED)


def _chosen_topics(session: Session, claimed: list[Claimed]) -> Topics:
    partial = [c.subscriber_id for c in claimed if not c.all_topics]
    picked = chosen_topics(session, partial) if partial else {}
    return {c.subscriber_id: None if c.all_topics else frozenset(picked.get(c.subscriber_id, ()))
            for c in claimed}
