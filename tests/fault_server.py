"""A real aiosmtpd server on loopback that misbehaves on purpose, per recipient, then accepts.

Faults are consumed in order, one per attempt at that recipient:

    rcpt:CODE         answer RCPT TO with CODE (421, 451, 550, 552, …)
    data:CODE         accept RCPT, answer the end of DATA with CODE
    drop-rcpt         close the connection instead of answering RCPT (before DATA)
    drop-data         close the connection instead of answering the end of DATA
    stall-rcpt        answer RCPT only after STALL seconds (past the client's timeout)
    stall-data        answer the end of DATA only after STALL seconds
    accept-drop-data  accept the message, then close the connection instead of answering
    accept-hang-data  accept the message, then never answer the end of DATA

"Accepted" means the server answered 250 to the end of DATA; only then is the message counted.
A client that disconnects while the server is still deciding (drop-data, stall-data) cancels the
handler (aiosmtpd does so on connection loss), so that message was not accepted: like an MTA
that queues a message only as it says 250, and discards it if nobody is there to hear it.
The accept-* faults count the message first: an MTA that queued it and then lost the connection
(RFC 1047). The client sees no reply to its final dot in all four cases and cannot tell them
apart.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP, Envelope, Session

from newsletter.catcher import SMTPCatcher

STALL = 1.5


@dataclass
class FaultyHandler:
    faults: dict[str, list[str]] = field(default_factory=dict)
    received: Counter[str] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)
    connections: set[int] = field(default_factory=set)
    on_accept: Callable[[str, int], None] | None = None
    """Called as (recipient, total accepted so far) before the 250 goes out."""
    delay: float = 0.0
    """Seconds each accepted message takes (without blocking other connections)."""
    busy: int = 0
    peak: int = 0
    """Most messages the server was working on at the same time."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def messages(self) -> list[str]:
        return list(self.received.elements())

    def _next(self, address: str, stage: str) -> str | None:
        pending = self.faults.get(address.lower())
        if pending and (pending[0].startswith(f"{stage}:") or pending[0].endswith(f"-{stage}")):
            return pending.pop(0)
        return None

    @staticmethod
    async def _never_answer(server: SMTP, close: bool) -> None:
        """Wait until aiosmtpd cancels the handler, as it does when the connection is lost."""
        if close:
            assert server.transport is not None
            server.transport.close()
        await asyncio.sleep(30)

    async def _apply(self, server: SMTP, fault: str) -> str | None:
        """The answer to give, or None to go on as usual (after a stall)."""
        if fault.startswith("drop-"):
            await self._never_answer(server, close=True)
        if fault.startswith("stall-"):
            await asyncio.sleep(STALL)
            return None
        return f"{fault.split(':')[1]} fault injected for this test"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        self.attempts[address.lower()] += 1
        self.connections.add(id(session))
        fault = self._next(address, "rcpt")
        if fault is not None:
            answer = await self._apply(server, fault)
            if answer is not None:
                return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        address = str(envelope.rcpt_tos[0]).lower()
        fault = self._next(address, "data")
        if fault is not None and fault.startswith("accept-"):
            self._accept(address)
            await self._never_answer(server, close=fault == "accept-drop-data")
        elif fault is not None:
            answer = await self._apply(server, fault)
            if answer is not None:
                return answer
        self.busy += 1
        self.peak = max(self.peak, self.busy)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.busy -= 1
        self._accept(address)
        return "250 Message accepted for delivery"

    def _accept(self, address: str) -> None:
        with self.lock:
            self.received[address] += 1
            total = sum(self.received.values())
        if self.on_accept is not None:
            self.on_accept(address, total)


def faulty_server(handler: FaultyHandler) -> SMTPCatcher:
    """`with faulty_server(handler) as server:` — serves on 127.0.0.1:`server.port`."""
    return SMTPCatcher(handler=handler)
