"""A worker's local result journal: what it handed over, and each answer as soon as it came.

The ledger commits a batch's results together, after the batch. A worker killed in between would
leave the whole batch in flight, and all of it uncertain. The journal narrows that to what was
really on the wire, without making a connection wait for a commit: before a batch goes out, one
line records its shape (which rows go on which connection, in which order); each result is one
line, appended from the transport's `on_result` before that connection moves on to its next
message. Lines go into a shared memory map of the file, no fsync: they survive the process being
killed (the kernel holds them), not the machine losing power (then every row of the batch is
uncertain, as before: never a second copy).

Reading it back (`settle`) tells, for each row its dead worker left in flight:

    answered      → its result
    on the wire   → uncertain: the unit after the last answered one of its lane (a message on
                    an SMTP connection, a request's chunk for an HTTP provider)
    never left    → pending again: a later unit of its lane, or claimed but never handed over
"""

from __future__ import annotations

import json
import mmap
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..mail.message import Outcome, OutgoingMessage, SendResult, Transport
from ..transports.http import HTTPTransport
from ..transports.memory import MemoryTransport
from ..transports.outbox import OutboxTransport
from ..transports.smtp import SMTPTransport, slices

MAP_WINDOW = 1 << 20
"""Bytes of the file mapped at once (about 25 000 results). The file grows a window at a time,
and only the window being written is mapped: a mapped page counts in the process's memory, so
mapping the whole file would grow a worker by 50 bytes a message (35 MB at 700 000)."""
_PLAIN_SENT = b'{"r":[%d,"sent",null,"",false,null]}\n'
"""The line `_write` makes for a plain success, most of a journal, without the JSON encoder."""
Lanes = list[list[list[int]]]
"""Per connection, the units it hands over one after another, each a list of delivery ids."""


def hand_over_shape(transport: Transport, messages: Sequence[OutgoingMessage], *,
                    told: bool) -> Lanes:
    """How `transport.send(messages)` hands them over, as each transport documents it.

    SMTP cuts a batch into one contiguous slice per connection and sends each slice a message at
    a time; an HTTP provider posts its chunks one after another; the outbox and memory write one
    message at a time. Any other transport, or one that does not report results as they come
    (`told` False), is one unit: all of it may be on the wire at once.
    """
    ids = [[m.delivery_id] for m in messages]
    if not told or not messages:
        return [[[m.delivery_id for m in messages]]]
    if isinstance(transport, SMTPTransport):
        return [[[m.delivery_id] for m in part] for part in slices(messages, len(transport.lanes))]
    if isinstance(transport, HTTPTransport):
        return [[[m.delivery_id for m in chunk] for chunk in transport.chunks(messages)]]
    if isinstance(transport, MemoryTransport | OutboxTransport):
        return [ids]
    return [[[m.delivery_id for m in messages]]]


class Journal:
    """Append-only, one JSON document a line, into a shared memory map of the file.

    A store into the map is a copy in memory, in the kernel's page cache at once: it survives
    the process being killed, like a `write`, but it does not release the GIL. A `write` per
    result did, and each lane thread then waited for the composing thread to hand the GIL back
    (a convoy that cost a third of the throughput). Results come from the transport's threads,
    one at a time; the lock only guards the end offset and the window."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self._end = 0
        """File offset of the next line."""
        self._base = 0
        """File offset where the mapped window starts."""
        self._map = self._window(MAP_WINDOW)
        self._lock = threading.Lock()

    def _window(self, length: int) -> mmap.mmap:
        """Map `length` bytes from `_base`, growing the file to hold them (past the end: zeros)."""
        assert self._fd is not None
        if os.fstat(self._fd).st_size < self._base + length:
            os.ftruncate(self._fd, self._base + length)
        return mmap.mmap(self._fd, length, offset=self._base)

    def handed(self, lanes: Lanes) -> None:
        self._write({"h": lanes})

    def result(self, result: SendResult) -> None:
        if (result.outcome is Outcome.SENT and result.provider_id is None and not result.detail
                and not result.mailbox_gone and result.retry_after is None):
            self._append(_PLAIN_SENT % result.delivery_id)
            return
        self._write({"r": [result.delivery_id, result.outcome.value, result.provider_id,
                           result.detail[:1000], result.mailbox_gone, result.retry_after]})

    def _write(self, record: object) -> None:
        self._append(json.dumps(record, separators=(",", ":")).encode() + b"\n")

    def _append(self, line: bytes) -> None:
        with self._lock:
            assert self._fd is not None, "journal closed"
            end = self._end + len(line)
            if end > self._base + len(self._map):
                self._map.close()
                self._base = self._end - self._end % mmap.ALLOCATIONGRANULARITY
                self._map = self._window(max(MAP_WINDOW, end - self._base))
            self._map[self._end - self._base:end - self._base] = line
            self._end = end

    @property
    def empty(self) -> bool:
        """Nothing was handed over: the journal has nothing to tell."""
        return self._end == 0

    def close(self, *, remove: bool) -> None:
        """Close; `remove` once every row it speaks of is committed to the ledger."""
        if self._fd is not None:
            self._map.close()
            os.ftruncate(self._fd, self._end)
            os.close(self._fd)
            self._fd = None
        if remove:
            self.path.unlink(missing_ok=True)


@dataclass
class Settled:
    """What becomes of a dead worker's in-flight rows."""

    results: dict[int, SendResult] = field(default_factory=dict)
    uncertain: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)


@dataclass
class JournalContents:
    handovers: list[Lanes] = field(default_factory=list)
    where: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    """Each row's latest (hand-over, lane, unit)."""
    answers: dict[int, SendResult] = field(default_factory=dict)
    """Each row's answer since its latest hand-over."""
    damaged: bool = False
    """A line could not be read (cut short by the kill, or not written by `Journal`)."""


def read_journal(path: Path) -> JournalContents:
    contents = JournalContents()
    handovers, where, answers = contents.handovers, contents.where, contents.answers
    for line in path.read_bytes().rstrip(b"\0").splitlines():
        try:
            record = json.loads(line)
            if "h" in record:
                lanes = _lanes(record["h"])
                handovers.append(lanes)
                for lane_no, lane in enumerate(lanes):
                    for unit_no, unit in enumerate(lane):
                        for delivery_id in unit:
                            where[delivery_id] = (len(handovers) - 1, lane_no, unit_no)
                            answers.pop(delivery_id, None)
            elif "r" in record:
                answer = _result(record["r"])
                answers[answer.delivery_id] = answer
        except (ValueError, TypeError, KeyError, IndexError):
            contents.damaged = True
    return contents


def settle(path: Path | None, in_flight: Iterable[int]) -> Settled:
    """Sort a dead worker's in-flight rows by its journal; without one, all are uncertain. In a
    damaged journal a hand-over may be missing, so no row counts as never-left."""
    rows = list(in_flight)
    if path is None or not path.is_file():
        return Settled(uncertain=rows)
    contents = read_journal(path)
    where, answers = contents.where, contents.answers
    settled = Settled()
    reached: dict[tuple[int, int], int] = {}
    for delivery_id in answers:
        if delivery_id in where:
            handover, lane, unit = where[delivery_id]
            reached[handover, lane] = max(reached.get((handover, lane), -1), unit)
    for delivery_id in rows:
        if delivery_id in answers and delivery_id in where:
            settled.results[delivery_id] = answers[delivery_id]
        elif contents.damaged:
            settled.uncertain.append(delivery_id)
        elif delivery_id not in where:
            settled.pending.append(delivery_id)
        else:
            handover, lane, unit = where[delivery_id]
            on_wire = unit <= reached.get((handover, lane), -1) + 1
            (settled.uncertain if on_wire else settled.pending).append(delivery_id)
    return settled


def _lanes(value: object) -> Lanes:
    if not isinstance(value, list):
        raise TypeError("lanes")
    lanes: Lanes = []
    for lane in value:
        lanes.append([[int(i) for i in unit] for unit in lane])
    return lanes


def _result(value: Sequence[object]) -> SendResult:
    delivery_id, outcome, provider_id, detail, gone, retry_after = value
    return SendResult(int(str(delivery_id)), Outcome(str(outcome)),
                      provider_id=str(provider_id) if provider_id is not None else None,
                      detail=str(detail), mailbox_gone=bool(gone),
                      retry_after=float(str(retry_after)) if retry_after is not None else None)
