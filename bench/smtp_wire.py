"""The SMTP transport alone on the wire: plain smtplib vs PIPELINING vs PIPELINING+BDAT.

No store, no composing: N ready messages of SIZE bytes go through `SMTPTransport.send` in
batches, 1 and 4 connections. Two receivers, each in its own process:

- Postfix's `smtp-sink` (offers PIPELINING; Debian's 3.7 has no CHUNKING, so "+BDAT" is not
  run against it), with `smtp-source -s C` of the same count and size as the reference limit;
- `chunk-sink`, a minimal asyncio SMTP sink in a subprocess (this file, `--serve`), that offers
  PIPELINING and CHUNKING: the only way to time BDAT here. It is Python, so its ceiling is lower.

Baseline, same run, same receiver: today's path (smtplib, one round trip per command), built
with `SMTPTransport(pipelining=False, chunking=False)`. The modes take turns run by run (the
machine's load drifts), and each figure is the median; the CPU our process spends per message
is quoted too, as it depends much less on the machine's load than the rate does.

    /tmp/venv/bin/python bench/smtp_wire.py [--messages 20000] [--size 31000] [--runs 3]
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import say, table  # noqa: E402

from newsletter.mail.message import Outcome, OutgoingMessage  # noqa: E402
from newsletter.transports.smtp import SMTPSettings, SMTPTransport  # noqa: E402

MODES = {"plain smtplib (baseline)": (False, False), "PIPELINING": (True, False),
         "PIPELINING+BDAT": (True, True)}
BATCH = 200


def messages(count: int, size: int) -> list[OutgoingMessage]:
    """`count` distinct messages of about `size` bytes, CRLF lines, some starting with a dot."""
    line = ("Practice implications: " + "x" * 50 + "\r\n").encode()
    dotted = b".a line that starts with a dot\r\n"
    body = (line * 9 + dotted) * max(1, size // (len(line) * 9 + len(dotted)))
    return [OutgoingMessage(i, f"bounces+{i}@pprnet.example", f"reader{i}@bench.example",
                            b"From: digest@pprnet.example\r\nTo: reader%d@bench.example\r\n"
                            b"Subject: bench %d\r\nMIME-Version: 1.0\r\n\r\n" % (i, i) + body)
            for i in range(1, count + 1)]


def run(host: str, port: int, batch: list[OutgoingMessage], connections: int,
        pipelining: bool, chunking: bool) -> tuple[float, float]:
    """(messages per second, CPU µs of this process per message) of `SMTPTransport.send`."""
    transport = SMTPTransport(SMTPSettings(host, port, timeout=30), batch_size=BATCH,
                              connections=connections, pipelining=pipelining, chunking=chunking)
    told = 0

    def tell(_: object) -> None:
        nonlocal told
        told += 1

    cpu = time.process_time()
    try:
        with common.timed() as t:
            for start in range(0, len(batch), BATCH):
                results = transport.send(batch[start:start + BATCH], on_result=tell)
                if any(r.outcome is not Outcome.SENT for r in results):
                    raise SystemExit(f"not sent: {next(r for r in results if r.outcome is not Outcome.SENT)}")
    finally:
        transport.close()
    cpu = time.process_time() - cpu
    assert told == len(batch)
    return len(batch) / t.seconds, cpu / len(batch) * 1e6


# ------------------------------------------------------------------ chunk-sink (--serve)


class ChunkSink(asyncio.Protocol):
    """Just enough SMTP to take pipelined MAIL/RCPT/DATA and BDAT and say 250."""

    received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport, self.buffer, self.need, self.in_data = transport, bytearray(), 0, False
        transport.write(b"220 chunk-sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out: list[bytes] = []
        while True:
            if self.need:
                if len(self.buffer) < self.need:
                    break
                del self.buffer[:self.need]
                self.need = 0
                ChunkSink.received += 1
                out.append(b"250 2.0.0 Ok: queued")
                continue
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    break
                del self.buffer[:end + 5]
                self.in_data = False
                ChunkSink.received += 1
                out.append(b"250 2.0.0 Ok: queued")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                break
            line = bytes(self.buffer[:end])
            del self.buffer[:end + 2]
            verb = line[:4].upper()
            if verb == b"EHLO":
                out.append(b"250-chunk-sink\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n"
                           b"250-SMTPUTF8\r\n250 SIZE 0")
            elif verb == b"DATA":
                self.in_data = True
                self.buffer[:0] = b"\r\n"  # so a body that is empty still ends at "\r\n.\r\n"
                out.append(b"354 go ahead")
            elif verb == b"BDAT":
                words = line.split()
                self.need = int(words[1])
                if self.need == 0:
                    out.append(b"250 2.0.0 Ok: empty chunk")
            elif verb == b"QUIT":
                self.transport.write(b"221 bye\r\n")
                self.transport.close()
                return
            else:
                out.append(b"250 2.0.0 Ok")
        if out:
            self.transport.write(b"\r\n".join(out) + b"\r\n")


def serve(port: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(ChunkSink, common.LOOPBACK, port, backlog=64)
        async with server:
            await server.serve_forever()
    asyncio.run(main())


class ChunkSinkProcess:
    def __init__(self) -> None:
        self.host, self.port = common.LOOPBACK, common.free_port(common.LOOPBACK)

    def __enter__(self) -> ChunkSinkProcess:
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", str(self.port)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                common.socket.create_connection((self.host, self.port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise SystemExit("chunk-sink did not start")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(5)


# ------------------------------------------------------------------ main


def take_turns(runs: int, host: str, port: int, batch: list[OutgoingMessage], connections: int,
               modes: dict[str, tuple[bool, bool]]) -> dict[str, tuple[float, float]]:
    """{mode: (median msgs/s, median CPU µs/msg)}, the modes run in turn `runs` times."""
    seen: dict[str, list[tuple[float, float]]] = {name: [] for name in modes}
    for _ in range(runs):
        for name, flags in modes.items():
            seen[name].append(run(host, port, batch, connections, *flags))
    return {name: (statistics.median(r for r, _ in got), statistics.median(c for _, c in got))
            for name, got in seen.items()}


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], 0)
    p.add_argument("--messages", type=int, default=20_000, help="messages per run (default 20 000)")
    p.add_argument("--size", type=int, default=31_000, help="bytes per message (default 31 000)")
    p.add_argument("--runs", type=int, default=3, help="runs per figure; the median is quoted")
    p.add_argument("--serve", type=int, metavar="PORT", help=argparse_hidden())
    args = p.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    batch = messages(args.messages, args.size)
    size = len(batch[0].data)
    say(f"[bold]smtp_wire[/bold]: {args.messages:,} × {size:,} B, median of {args.runs} · "
        f"{common.machine()}")
    figures: dict[str, dict[str, float]] = {}
    rows = []
    with common.SmtpSink() as sink:
        for connections in (1, 4):
            common.smtp_source(sink.host, sink.port, messages=min(args.messages, 5000),
                               size=size, sessions=connections)  # warm-up
            source = statistics.median(
                args.messages / common.smtp_source(sink.host, sink.port, messages=args.messages,
                                                   size=size, sessions=connections)
                for _ in range(args.runs))
            got = take_turns(args.runs, sink.host, sink.port, batch, connections,
                             {name: flags for name, flags in MODES.items() if not flags[1]})
            base = got["plain smtplib (baseline)"][0]
            figures[f"smtp-sink, {connections} conn"] = {
                "smtp-source": source, **{name: rate for name, (rate, _) in got.items()},
                **{f"{name} cpu_us": cpu for name, (_, cpu) in got.items()}}
            rows.append((f"smtp-source -s {connections}", common.fmt_rate(source), "", "1.00", ""))
            rows += [(f"{name}, {connections} conn", common.fmt_rate(rate), f"{rate / base:.2f}",
                      f"{rate / source:.2f}", f"{cpu:.0f}") for name, (rate, cpu) in got.items()]
    table("Into smtp-sink", ["", "msgs/s", "× baseline", "of smtp-source", "CPU µs/msg"], rows)

    rows = []
    with ChunkSinkProcess() as chunk_sink:
        for connections in (1, 4):
            got = take_turns(args.runs, chunk_sink.host, chunk_sink.port, batch, connections,
                             MODES)
            base = got["plain smtplib (baseline)"][0]
            figures[f"chunk-sink, {connections} conn"] = {
                **{name: rate for name, (rate, _) in got.items()},
                **{f"{name} cpu_us": cpu for name, (_, cpu) in got.items()}}
            rows += [(f"{name}, {connections} conn", common.fmt_rate(rate), f"{rate / base:.2f}",
                      f"{cpu:.0f}") for name, (rate, cpu) in got.items()]
    table("Into chunk-sink (Python, offers CHUNKING)", ["", "msgs/s", "× baseline",
                                                        "CPU µs/msg"], rows)
    common.write_json(args.json, {"messages": args.messages, "size": size, "runs": args.runs,
                                  "rates": figures})
    return 0


def argparse_hidden() -> str:
    import argparse
    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
