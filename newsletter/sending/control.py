"""Pause, resume and cancel an edition's send. The state lives on the edition row, so it reaches a
running `send` in another process: the send loop reads it between batches and stops there."""

from __future__ import annotations

from ..content.models import EditionStatus
from ..content.store import get_edition
from ..context import Newsletter
from ..db import utcnow
from ..errors import StateError
from . import ledger
from .store import SqlSendStore

_ALLOWED = {
    EditionStatus.PAUSED: {EditionStatus.SCHEDULED, EditionStatus.SENDING},
    EditionStatus.SENDING: {EditionStatus.PAUSED},
    EditionStatus.CANCELLED: {EditionStatus.DRAFT, EditionStatus.SCHEDULED, EditionStatus.SENDING,
                              EditionStatus.PAUSED, EditionStatus.MISSED},
}
_VERB = {EditionStatus.PAUSED: "pause", EditionStatus.SENDING: "resume",
         EditionStatus.CANCELLED: "cancel"}


def _move(nl: Newsletter, month: str, target: EditionStatus) -> EditionStatus:
    with nl.session() as session:
        edition = get_edition(session, month)
        before = edition.status
        if before is target:
            return before
        if before not in _ALLOWED[target]:
            raise StateError(f"cannot {_VERB[target]} the {month} edition: it is {before.value}")
        edition.status = target
        return before


def pause(nl: Newsletter, month: str) -> EditionStatus:
    """Stop a running send after its current batch; `send` refuses until `resume`."""
    return _move(nl, month, EditionStatus.PAUSED)


def resume(nl: Newsletter, month: str) -> EditionStatus:
    """Allow sending again; the next `send` continues where the ledger stands."""
    return _move(nl, month, EditionStatus.SENDING)


def cancel(nl: Newsletter, month: str) -> EditionStatus:
    """Stop for good: a running send stops after its current batch, and `send` refuses."""
    return _move(nl, month, EditionStatus.CANCELLED)


def settle_dead_workers(nl: Newsletter, month: str) -> int:
    """Settle what workers that died left in flight, by their journals (journal.py), as the next
    send would: answered rows get their result, rows on the wire become uncertain (returned:
    how many), rows that never left are pending again. Live workers are not touched."""
    with nl.session() as session:
        edition_id = get_edition(session, month).id
    return SqlSendStore(nl).recover(edition_id, utcnow())


def workers(nl: Newsletter, month: str) -> list[dict[str, object]]:
    """Each process of the month's latest send (the send, then its workers): role, host, pid,
    rows it sent, whether it is alive."""
    with nl.session() as session:
        return ledger.workers_of(session, get_edition(session, month).id, utcnow())
