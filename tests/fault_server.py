"""A real aiosmtpd server on loopback that misbehaves on purpose, per recipient, then accepts.

Faults are consumed in order, one per attempt at that recipient:

    rcpt:CODE         answer RCPT TO with CODE (421, 451, 550, 552, …)
    rcpt-close:CODE   answer RCPT TO with CODE, then close the connection (what follows in a
                      pipelined group is never answered)
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
import itertools
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session

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
        if pending and (pending[0].startswith((f"{stage}:", f"{stage}-close:"))
                        or pending[0].endswith(f"-{stage}")):
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
        if "-close:" in fault:  # after aiosmtpd has written this answer
            assert server.transport is not None
            asyncio.get_running_loop().call_soon(server.transport.close)
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


# ------------------------------------------------------------------ PIPELINING and CHUNKING


@dataclass
class WireLog:
    """What a `WireServer` heard: each command with its connection and its flight.

    A flight is one burst of the client's bytes that arrived after the server had answered
    everything it had been sent, i.e. one round trip. Commands pipelined into one write share a
    flight; a client that waits for each reply starts a new flight per command.
    """

    entries: list[tuple[int, str, int]] = field(default_factory=list)
    """(connection number, verb, flight number within that connection); the end of a DATA body
    is logged as "." with the flight it arrived in."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def connections(self) -> list[int]:
        """The connections that sent a transaction command (aiosmtpd's own start-up probe
        connects once without any)."""
        return sorted({conn for conn, _, _ in self.entries})

    def verbs(self, connection: int | None = None) -> list[str]:
        return [verb for conn, verb, _ in self.entries if connection in (None, conn)]

    def flights_of(self, connection: int | None = None) -> list[list[str]]:
        """The verbs of one connection (the only one, by default), grouped by flight."""
        if connection is None:
            [connection] = self.connections()
        groups: dict[int, list[str]] = {}
        for conn, verb, flight in self.entries:
            if conn == connection:
                groups.setdefault(flight, []).append(verb)
        return [groups[flight] for flight in sorted(groups)]


class WireSMTP(SMTP):
    """aiosmtpd's server, offering PIPELINING and CHUNKING (RFC 3030 BDAT) as told, and logging
    every command's flight. BDAT content goes to the handler's `handle_DATA` exactly as a DATA
    body would (so FaultyHandler's data faults apply to it too)."""

    def __init__(self, handler: Any, log: WireLog, connection: int, *, pipelining: bool,
                 chunking: bool, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.log, self.connection, self.flight = log, connection, 0
        self.offers = [name for name, on in (("PIPELINING", pipelining), ("CHUNKING", chunking))
                       if on]
        self.chunking = chunking
        self._answered = True
        self._chunks: list[bytes] = []
        self._handle_hooks["EHLO"] = self._advertise
        self._ehlo_hook_ver = "new"

    async def _advertise(self, server: SMTP, session: Session, envelope: Envelope,
                         hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], *(f"250-{offer}" for offer in self.offers), responses[-1]]

    def data_received(self, data: bytes) -> None:
        if self._answered:
            self.flight += 1
            self._answered = False
        super().data_received(data)

    async def push(self, status: Any) -> None:
        await super().push(status)
        self._answered = not self._reader._buffer  # type: ignore[attr-defined]

    def _record(self, verb: str) -> None:
        with self.log.lock:
            self.log.entries.append((self.connection, verb, self.flight))

    async def smtp_MAIL(self, arg: str) -> None:
        self._record("MAIL")
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str) -> None:
        self._record("RCPT")
        await super().smtp_RCPT(arg)

    async def smtp_RSET(self, arg: str) -> None:
        self._record("RSET")
        self._chunks.clear()
        await super().smtp_RSET(arg)

    async def smtp_NOOP(self, arg: str) -> None:
        self._record("NOOP")
        await super().smtp_NOOP(arg)

    async def smtp_DATA(self, arg: str) -> None:
        self._record("DATA")
        assert self.envelope is not None
        started = bool(self.envelope.rcpt_tos)  # else refused: no body follows
        await super().smtp_DATA(arg)
        if started:
            self._record(".")

    async def smtp_BDAT(self, arg: str) -> None:
        self._record("BDAT")
        if not self.chunking:
            await self.push("502 5.5.1 BDAT not offered")
            return
        words = (arg or "").split()
        if not (1 <= len(words) <= 2 and words[0].isdigit()
                and (len(words) == 1 or words[1].upper() == "LAST")):
            await self.push("501 5.5.4 Syntax: BDAT size [LAST]")
            return
        chunk = await self._reader.readexactly(int(words[0]))
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            self._chunks.clear()
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        self._chunks.append(chunk)
        if len(words) == 1:
            await self.push(f"250 2.0.0 {len(chunk)} octets received")
            return
        content = b"".join(self._chunks)
        self._chunks.clear()
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


class _WireController(Controller):
    def __init__(self, handler: Any, log: WireLog, pipelining: bool, chunking: bool,
                 **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.log, self.pipelining, self.chunking = log, pipelining, chunking
        self.connections = itertools.count(1)

    def factory(self) -> SMTP:
        return WireSMTP(self.handler, self.log, next(self.connections),
                        pipelining=self.pipelining, chunking=self.chunking, **self.SMTP_kwargs)


class WireServer(SMTPCatcher):
    """`with WireServer(pipelining=True, chunking=False) as server:` an SMTPCatcher (or, given a
    FaultyHandler, a fault server) that offers the extensions named; `server.log` is its
    WireLog."""

    def __init__(self, handler: Any = None, *, pipelining: bool = True,
                 chunking: bool = True) -> None:
        super().__init__(handler=handler)
        self.log = WireLog()
        self.controller.loop.close()  # the plain controller SMTPCatcher made, never started
        self.controller = _WireController(
            self.handler, self.log, pipelining, chunking, hostname=self.controller.hostname,
            port=self.controller.port, enable_SMTPUTF8=True, data_size_limit=0)

    def __enter__(self) -> WireServer:
        super().__enter__()
        return self
