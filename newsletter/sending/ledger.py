"""The ledger's state machine, as SQL: what `store.SqlSendStore` runs for the send loop, which
itself sees only the `store.SendStore` interface.

pending ──claim──► in_flight ──result──► sent | failed (due again later) | rejected | uncertain
in_flight left behind by a dead run ──recover──► uncertain
uncertain: the message may have been accepted; reported, resent only on request
"""

from __future__ import annotations

import os
import socket
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Table,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from subscribers.models import Subscriber
from subscribers.store import receives_mail

from ..content.models import Edition, EditionStatus
from ..db.sql import one_of
from ..db.types import new_uid
from ..errors import SendInProgress
from ..mail.message import Outcome, SendResult
from .models import Delivery, DeliveryStatus, SendRun

LIVE_RUN_SECONDS = 120
_HOST = socket.gethostname()[:200]
# The per-batch writes go through Core on these tables: the ORM's bulk UPDATE also works out
# which loaded objects to refresh, and these sessions load none (a sixth of a claim's CPU).
_DELIVERIES = cast(Table, Delivery.__table__)
_RUNS = cast(Table, SendRun.__table__)
ORPHANED = "the sending process stopped while this message was being handed over"


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    variant: str
    subscriber_id: int
    uid: str
    email: str
    name: str
    all_topics: bool
    attempts: int
    """Tries including this one."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_live(run: SendRun, now: datetime) -> bool:
    """Unfinished with a recent heartbeat, and (on this host) its process still exists."""
    if run.finished_at is not None:
        return False
    if run.heartbeat_at <= now - timedelta(seconds=LIVE_RUN_SECONDS):
        return False
    return run.host != _HOST or _pid_alive(run.pid)


def live_run_ids(session: Session, edition_id: int, now: datetime) -> set[str]:
    runs = session.scalars(select(SendRun).where(SendRun.edition_id == edition_id,
                                                 SendRun.finished_at.is_(None)))
    return {run.id for run in runs if is_live(run, now)}


def start_run(session: Session, edition_id: int, now: datetime, *,
              journal_dir: str | None = None) -> tuple[str, list[SendRun]]:
    """Register this process as the edition's sender (the leader its workers join); end the runs
    that died, returning them so the caller settles their in-flight rows (`settle_dead_run`).

    The first statement writes the edition row, so two starters are serialised: PostgreSQL holds
    the row lock, SQLite the database write lock, until the caller commits. The second one then
    sees the first one's run and stops with SendInProgress.
    """
    session.execute(update(Edition).where(Edition.id == edition_id).values(updated_at=now))
    unfinished = session.scalars(select(SendRun).where(SendRun.edition_id == edition_id,
                                                       SendRun.finished_at.is_(None))).all()
    for run in unfinished:
        if is_live(run, now):
            raise SendInProgress(f"another send of this edition is running (pid {run.pid} on "
                                 f"{run.host}, started {run.started_at:%Y-%m-%d %H:%M:%S} UTC)")
        run.finished_at = run.heartbeat_at
    run = _new_run(edition_id, now, journal_dir)
    session.add(run)
    return run.id, list(unfinished)


def join_run(session: Session, edition_id: int, now: datetime, *,
             journal_dir: str | None = None) -> str | None:
    """Register this process as a worker of the edition's live send; None when none is live."""
    leaders = session.scalars(select(SendRun).where(
        SendRun.edition_id == edition_id, SendRun.finished_at.is_(None),
        SendRun.leader_id.is_(None)).order_by(SendRun.started_at.desc())).all()
    leader = next((run for run in leaders if is_live(run, now)), None)
    if leader is None:
        return None
    run = _new_run(edition_id, now, journal_dir)
    run.leader_id = leader.id
    session.add(run)
    return run.id


def _new_run(edition_id: int, now: datetime, journal_dir: str | None) -> SendRun:
    run_id = new_uid()
    journal = os.path.join(journal_dir, f"{run_id}.jnl") if journal_dir is not None else None
    return SendRun(id=run_id, edition_id=edition_id, host=_HOST, pid=os.getpid(), started_at=now,
                   heartbeat_at=now, journal=journal)


def journal_here(run: SendRun) -> str | None:
    """The run's journal if this host can read it and the run certainly stopped: it ran here and
    its process is gone. A run only presumed dead (a stale heartbeat: stalled, or on another
    host) may still be handing messages over, so nothing of it may become pending again."""
    if not run.journal or run.host != _HOST or _pid_alive(run.pid):
        return None
    return run.journal


def claim_dead_runs(session: Session, edition_id: int, now: datetime) -> list[SendRun]:
    """End the edition's runs that died, each claimed by exactly one caller: the conditional
    update of its row decides (a row lock on PostgreSQL, the write lock on SQLite)."""
    unfinished = session.scalars(select(SendRun).where(SendRun.edition_id == edition_id,
                                                       SendRun.finished_at.is_(None))).all()
    mine: list[SendRun] = []
    for run in unfinished:
        if is_live(run, now):
            continue
        ended: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(SendRun).where(SendRun.id == run.id, SendRun.finished_at.is_(None))
            .values(finished_at=run.heartbeat_at).execution_options(synchronize_session=False))
        if ended.rowcount:
            mine.append(run)
    return mine


def live_run_count(session: Session, edition_id: int, now: datetime) -> int:
    return len(live_run_ids(session, edition_id, now))


def in_flight_by_run(session: Session, edition_id: int,
                     run_ids: Sequence[str] | None = None) -> dict[str | None, list[int]]:
    """The edition's in-flight rows by the run that claimed them (only `run_ids`' if given)."""
    query = select(Delivery.run_id, Delivery.id).where(
        Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.IN_FLIGHT)
    if run_ids is not None:
        query = query.where(Delivery.run_id.in_(run_ids))
    rows: dict[str | None, list[int]] = {}
    for run_id, delivery_id in session.execute(query.order_by(Delivery.id)):
        rows.setdefault(run_id, []).append(delivery_id)
    return rows


def heartbeat(session: Session, run_id: str, now: datetime) -> None:
    session.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(heartbeat_at=now))


def finish_run(session: Session, run_id: str, now: datetime) -> None:
    session.execute(update(SendRun).where(SendRun.id == run_id)
                    .values(finished_at=now, heartbeat_at=now))


def add_pending(session: Session, edition_id: int, rows: Iterable[tuple[int, str]],
                now: datetime) -> None:
    """Insert a pending row per (subscriber, variant) unless the subscriber already has one."""
    values = [{"edition_id": edition_id, "subscriber_id": sid, "variant": key,
               "status": DeliveryStatus.PENDING, "attempts": 0, "created_at": now,
               "updated_at": now} for sid, key in rows]
    if not values:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(Delivery).on_conflict_do_nothing(
        index_elements=["edition_id", "subscriber_id"]), values)


def requeue_uncertain(session: Session, edition_id: int, now: datetime) -> int:
    """Explicit `--resend-uncertain`: the editor accepts that some may get a second copy."""
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Delivery).where(Delivery.edition_id == edition_id,
                               Delivery.status == DeliveryStatus.UNCERTAIN)
        .values(status=DeliveryStatus.PENDING, updated_at=now))
    return result.rowcount


def _due(edition_id: int, now: datetime) -> ColumnElement[bool]:
    return and_(Delivery.edition_id == edition_id, or_(
        Delivery.status == DeliveryStatus.PENDING,
        and_(Delivery.status == DeliveryStatus.FAILED, Delivery.next_attempt_at <= now)))


def due_variants(session: Session, edition_id: int, now: datetime) -> list[str]:
    return list(session.scalars(select(Delivery.variant).where(_due(edition_id, now)).distinct()))


def count_due(session: Session, edition_id: int, now: datetime) -> int:
    count: int | None = session.scalar(select(func.count()).select_from(Delivery)
                                       .where(_due(edition_id, now)))
    return count or 0


def claim_batch(session: Session, edition_id: int, run_id: str, limit: int,
                now: datetime, max_attempts: int) -> tuple[list[Claimed], int]:
    """Mark up to `limit` due rows in_flight for this run; the caller commits before sending.

    Rows whose subscriber left, paused or was suppressed since planning are rejected instead, so
    an unsubscribe or a pause takes effect even during a send; their count comes back too (a
    batch of only those claims nothing, yet the ledger is not done). A failed row that used up
    its `max_attempts` in this very run is left for a later run, whatever its due time says:
    otherwise a short `retry_later` would retry it in a tight loop.
    """
    eligible = receives_mail()
    base = (select(Delivery.id, Delivery.variant, Subscriber.id, Subscriber.uid, Subscriber.email,
                   Subscriber.name, Subscriber.all_topics, Delivery.attempts,
                   case((eligible, True), else_=False))
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id))
    # One query per status, each walking the (edition, status, id) index: an OR of the two makes
    # SQLite sort every due row of the edition on every claim (quadratic over a large send).
    tries_left_in_run = or_(Delivery.attempts < max_attempts, Delivery.run_id.is_(None),
                            Delivery.run_id != run_id)
    due_now = (Delivery.status == DeliveryStatus.PENDING,
               and_(Delivery.status == DeliveryStatus.FAILED, Delivery.next_attempt_at <= now,
                    tries_left_in_run))
    rows = sorted((row for condition in due_now for row in session.execute(
        base.where(Delivery.edition_id == edition_id, condition).order_by(Delivery.id)
        .limit(limit).with_for_update(of=Delivery, skip_locked=True)).all()),
        key=lambda row: row[0])[:limit]
    gone = [r[0] for r in rows if not r[8]]
    claimed = [Claimed(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] + 1) for r in rows if r[8]]
    _reject_gone(session, gone, now)
    if claimed:
        session.execute(update(_DELIVERIES).where(
            one_of(session, _DELIVERIES.c.id, [c.delivery_id for c in claimed])).values(
            status=DeliveryStatus.IN_FLIGHT, run_id=run_id, updated_at=now,
            attempts=_DELIVERIES.c.attempts + 1))
    return claimed, len(gone)


LEFT = "subscriber unsubscribed, paused or was suppressed before delivery"


def _reject_gone(session: Session, delivery_ids: Sequence[int], now: datetime) -> None:
    if delivery_ids:
        session.execute(update(_DELIVERIES).where(
            one_of(session, _DELIVERIES.c.id, delivery_ids)).values(
            status=DeliveryStatus.REJECTED, updated_at=now, last_error=LEFT))


def reject_left(session: Session, delivery_ids: Sequence[int], now: datetime) -> list[int]:
    """Of rows claimed a moment ago, reject those whose subscriber left since; return them.
    A batch claimed while the previous one was on the wire is checked again just before it
    goes, so an unsubscribe between two batches still takes effect at once."""
    gone = list(session.scalars(select(Delivery.id).join(
        Subscriber, Subscriber.id == Delivery.subscriber_id).where(
        one_of(session, Delivery.id, delivery_ids),
        Delivery.status == DeliveryStatus.IN_FLIGHT,
        ~receives_mail())))
    _reject_gone(session, gone, now)
    return gone


_STATUS_FOR = {Outcome.SENT: DeliveryStatus.SENT, Outcome.TEMPORARY: DeliveryStatus.FAILED,
               Outcome.PERMANENT: DeliveryStatus.REJECTED}


def record_results(session: Session, results: Sequence[SendResult], now: datetime,
                   retry_at: Mapping[int, datetime]) -> None:
    """Write a batch's results in Core, not the ORM's per-row bulk update: results that set the
    same values (a batch of plain successes: all of them) in one UPDATE … WHERE id IN, the rest
    (each with its own provider id or error) in one executemany."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for r in results:
        temporary = r.outcome is Outcome.TEMPORARY
        values = (_STATUS_FOR[r.outcome], r.provider_id, r.detail[:1000] or None,
                  now if r.outcome is Outcome.SENT else None,
                  retry_at.get(r.delivery_id) if temporary else None)
        groups.setdefault(values, []).append(r.delivery_id)
    single: list[dict[str, Any]] = []
    for (status, provider_id, error, sent_at, next_at), ids in groups.items():
        if len(ids) == 1:
            single.append({"row_id": ids[0], "row_status": status, "row_provider": provider_id,
                           "row_error": error, "row_sent": sent_at, "row_next": next_at})
            continue
        session.execute(update(_DELIVERIES).where(one_of(session, _DELIVERIES.c.id, ids)).values(
            status=status, updated_at=now, provider_message_id=provider_id, last_error=error,
            sent_at=sent_at, next_attempt_at=next_at))
    if single:
        session.execute(update(_DELIVERIES).where(_DELIVERIES.c.id == bindparam("row_id")).values(
            status=bindparam("row_status"), updated_at=now,
            provider_message_id=bindparam("row_provider"), last_error=bindparam("row_error"),
            sent_at=bindparam("row_sent"), next_attempt_at=bindparam("row_next")), single)


def mark_uncertain(session: Session, delivery_ids: Sequence[int], now: datetime,
                   reason: str) -> None:
    """Rows handed over whose fate the transport could not tell: never resent silently."""
    session.execute(update(Delivery).where(one_of(session, Delivery.id, delivery_ids),
                                           Delivery.status == DeliveryStatus.IN_FLIGHT)
                    .values(status=DeliveryStatus.UNCERTAIN, updated_at=now, last_error=reason))


def next_retry(session: Session, edition_id: int, max_attempts: int) -> datetime | None:
    """When the earliest failed row that still has tries left within this run is due."""
    when: datetime | None = session.scalar(select(func.min(Delivery.next_attempt_at)).where(
        Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.FAILED,
        Delivery.attempts < max_attempts))
    return when


def edition_state(session: Session, edition_id: int) -> EditionStatus | None:
    state: EditionStatus | None = session.scalar(
        select(Edition.status).where(Edition.id == edition_id))
    return state


def release(session: Session, delivery_ids: Sequence[int], now: datetime) -> None:
    """Give back rows that were claimed but never handed over (e.g. a configuration error)."""
    if not delivery_ids:
        return
    session.execute(update(Delivery).where(one_of(session, Delivery.id, delivery_ids),
                                           Delivery.status == DeliveryStatus.IN_FLIGHT)
                    .values(status=DeliveryStatus.PENDING, attempts=Delivery.attempts - 1,
                            updated_at=now))


def count_in(session: Session, edition_id: int, statuses: Collection[DeliveryStatus]) -> int:
    """Rows of the edition in `statuses`: a range scan of ix_deliveries_edition_status, which
    only visits those rows (what a progress bar polls: the open ones shrink as a send goes)."""
    return session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.edition_id == edition_id, Delivery.status.in_(statuses))) or 0


def status_counts(session: Session, edition_id: int) -> dict[str, int]:
    rows = session.execute(select(Delivery.status, func.count()).where(
        Delivery.edition_id == edition_id).group_by(Delivery.status))
    counts = {status.value: 0 for status in DeliveryStatus}
    counts.update({status.value: n for status, n in rows})
    return counts


@dataclass(frozen=True)
class RunSummary:
    started_at: datetime
    ended_at: datetime
    finished: bool
    sent: int
    workers: int = 1
    """Processes that took part: the send and every worker that joined it."""

    @property
    def seconds(self) -> float:
        return max((self.ended_at - self.started_at).total_seconds(), 0.0)

    @property
    def rate(self) -> float:
        """Messages per second over the run's whole life, planning and retries included."""
        return self.sent / self.seconds if self.seconds else 0.0


def last_run(session: Session, edition_id: int) -> RunSummary | None:
    """The most recent send of the edition with its workers, added up: rows they sent (from
    the ledger), from the send's start to the last one's end."""
    leader = session.scalars(select(SendRun).where(SendRun.edition_id == edition_id,
                                                   SendRun.leader_id.is_(None))
                             .order_by(SendRun.started_at.desc()).limit(1)).first()
    if leader is None:
        return None
    runs = [leader, *session.scalars(select(SendRun).where(SendRun.leader_id == leader.id))]
    sent = session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.SENT,
        Delivery.run_id.in_([run.id for run in runs]))) or 0
    ended = max(run.finished_at or run.heartbeat_at for run in runs)
    return RunSummary(leader.started_at, ended, all(r.finished_at is not None for r in runs),
                      sent, len(runs))


def workers_of(session: Session, edition_id: int, now: datetime) -> list[dict[str, Any]]:
    """Each process of the edition's most recent send: where it runs, what it sent, if alive."""
    leader = session.scalars(select(SendRun).where(SendRun.edition_id == edition_id,
                                                   SendRun.leader_id.is_(None))
                             .order_by(SendRun.started_at.desc()).limit(1)).first()
    if leader is None:
        return []
    runs = [leader, *session.scalars(select(SendRun).where(SendRun.leader_id == leader.id)
                                     .order_by(SendRun.started_at))]
    sent: dict[str | None, int] = {run_id: count for run_id, count in session.execute(
        select(Delivery.run_id, func.count()).where(
            Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.SENT,
            Delivery.run_id.in_([r.id for r in runs])).group_by(Delivery.run_id))}
    return [{"run": r.id, "host": r.host, "pid": r.pid, "role": "worker" if r.leader_id else "send",
             "sent": sent.get(r.id, 0), "live": is_live(r, now),
             "heartbeat_at": r.heartbeat_at.isoformat()} for r in runs]
