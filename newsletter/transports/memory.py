"""A transport that keeps what it is handed, for tests (anymail's test backend, httpx's
`MockTransport`): no socket, no file, and answers scripted per recipient.

    transport = MemoryTransport({"ada@example.org": [Outcome.TEMPORARY]})
    send_edition(nl, "2015-01", transport=transport)
    [m.recipient for m in transport.messages]    # ada twice: refused once, then accepted

A recipient's script is used up one entry per attempt, then `default` answers. An entry is an
`Outcome`, a `SendResult` (its delivery id is replaced: give any, e.g. 0) for a detail,
`retry_after`, `mailbox_gone` or `unreachable`, or a `ConfigError`, which `send` raises before
it hands over anything of that batch, as a real transport would.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from ..errors import ConfigError
from ..mail.message import Outcome, OutgoingMessage, ResultCallback, SendResult

__all__ = ["MemoryTransport", "Scripted"]

Scripted = Outcome | SendResult | ConfigError


class MemoryTransport:
    """`messages`: every message handed over, in order; `batches`: each call's messages;
    `results`: every answer given. Keyed by `OutgoingMessage.recipient`, the envelope address."""

    name = "memory"

    def __init__(self, script: Mapping[str, Iterable[Scripted]] | None = None, *,
                 default: Outcome | SendResult = Outcome.SENT, batch_size: int = 100) -> None:
        self.script = {recipient: deque(entries) for recipient, entries in (script or {}).items()}
        self.default, self.batch_size = default, batch_size
        self.messages: list[OutgoingMessage] = []
        self.batches: list[list[OutgoingMessage]] = []
        self.results: list[SendResult] = []
        self.closed = False
        self._ids = itertools.count(1)

    def send(self, batch: Sequence[OutgoingMessage], *,
             on_result: ResultCallback | None = None) -> list[SendResult]:
        for message in batch:
            queued = self.script.get(message.recipient)
            if queued and isinstance(error := queued[0], ConfigError):
                queued.popleft()
                raise error
        self.batches.append(list(batch))
        results = []
        for message in batch:
            self.messages.append(message)
            result = self._answer(message)
            self.results.append(result)
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results

    def _answer(self, message: OutgoingMessage) -> SendResult:
        queued = self.script.get(message.recipient)
        entry = queued.popleft() if queued else self.default
        assert not isinstance(entry, ConfigError), "send raises it before the batch"
        if isinstance(entry, SendResult):
            return dataclasses.replace(entry, delivery_id=message.delivery_id)
        if entry is Outcome.SENT:
            return SendResult(message.delivery_id, entry, provider_id=f"memory-{next(self._ids)}")
        return SendResult(message.delivery_id, entry, detail=f"memory: scripted {entry.value}")

    def close(self) -> None:
        self.closed = True
