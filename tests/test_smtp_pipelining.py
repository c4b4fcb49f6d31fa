"""SMTP PIPELINING (RFC 2920) and CHUNKING/BDAT (RFC 3030) on real servers on loopback.

`WireServer` (tests/fault_server.py) is aiosmtpd offering either extension as told and logging
the flight (round trip) each command arrived in; Postfix's `smtp-sink` offers PIPELINING (not
CHUNKING: Debian's 3.7 has no BDAT, checked below) and can be told to fail.
"""

from __future__ import annotations

import os
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter.catcher import free_port
from newsletter.context import Newsletter
from newsletter.mail.message import OutgoingMessage, SendResult
from newsletter.sending.engine import Sender
from newsletter.transports.smtp import SMTPSettings, SMTPTransport

from .builders import MONTH, load_month
from .fault_server import FaultyHandler, WireServer
from .test_send_smtp import EXPECTED, by_recipient, headlines

MODES = {"pipelining+chunking": (True, True), "pipelining": (True, False),
         "chunking": (False, True), "plain": (False, False)}
FLIGHTS = {
    "pipelining+chunking": [["MAIL", "RCPT", "BDAT"]],
    "pipelining": [["MAIL", "RCPT", "DATA"], ["."]],
    "chunking": [["MAIL"], ["RCPT"], ["BDAT"]],
    "plain": [["MAIL"], ["RCPT"], ["DATA"], ["."]],
}
"""What one message costs on the wire: its commands, grouped by round trip."""

CRLF_SMTPUTF8 = policy.SMTPUTF8.clone(linesep="\r\n")
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"


def mail(delivery_id: int, recipient: str = "", *, body: str = "", sender: str = "",
         smtputf8: bool = False) -> OutgoingMessage:
    recipient = recipient or f"reader{delivery_id}@example.org"
    message = EmailMessage(policy=CRLF_SMTPUTF8)
    message["From"] = "Research Digest <digest@pprnet.example>"
    message["To"] = recipient
    message["Subject"] = f"Digest {delivery_id}"
    message.set_content(body or f"Hello {delivery_id}\n", cte="8bit")
    return OutgoingMessage(delivery_id, sender or "bounces@pprnet.example", recipient,
                           message.as_bytes(), smtputf8=smtputf8)


def transport(server: WireServer | SinkServer, *, connections: int = 1,
              timeout: float = 5.0) -> SMTPTransport:
    return SMTPTransport(SMTPSettings(server.host, server.port, timeout=timeout),
                         connections=connections)


def send(server: WireServer | SinkServer, batch: list[OutgoingMessage], **options: float
         ) -> tuple[list[SendResult], list[SendResult]]:
    """(returned, told through on_result)."""
    told: list[SendResult] = []
    smtp = transport(server, **options)  # type: ignore[arg-type]
    try:
        return smtp.send(batch, on_result=told.append), told
    finally:
        smtp.close()


def outcomes(results: list[SendResult]) -> list[str]:
    return [r.outcome.value for r in results]


# --- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(MODES))
def test_each_message_costs_the_round_trips_the_server_allows(mode: str) -> None:
    pipelining, chunking = MODES[mode]
    batch = [mail(i) for i in range(1, 4)]
    with WireServer(pipelining=pipelining, chunking=chunking) as server:
        results, told = send(server, batch)
    assert outcomes(results) == ["sent"] * 3
    assert told == results
    assert server.log.flights_of() == FLIGHTS[mode] * 3
    assert [m.data for m in server.messages] == [m.data for m in batch]


def test_a_client_set_to_plain_ignores_offered_extensions() -> None:
    with WireServer(pipelining=True, chunking=True) as server:
        smtp = SMTPTransport(SMTPSettings(server.host, server.port, timeout=5), connections=1,
                             pipelining=False, chunking=False)
        try:
            assert outcomes(smtp.send([mail(1), mail(2)])) == ["sent", "sent"]
        finally:
            smtp.close()
    assert server.log.flights_of() == FLIGHTS["plain"] * 2


# --- what arrives ------------------------------------------------------------------------------

HOSTILE_BODY = ("Zoë’s notes: ünïcödé, 8-bit\n"
                ".\n"
                "..two dots\n"
                ".leading dot\n"
                + "long " * 190 + "end\n"
                "a line\n.\n"
                "last\n")


@pytest.mark.parametrize("mode", list(MODES))
def test_bdat_and_dot_paths_deliver_byte_identical_messages(mode: str) -> None:
    pipelining, chunking = MODES[mode]
    batch = [mail(1, body=HOSTILE_BODY),
             mail(2, "zoë@exämple.org", body=HOSTILE_BODY, smtputf8=True),
             OutgoingMessage(3, "bounces@pprnet.example", "r3@example.org",
                             b"Subject: no final line break\r\n\r\n.only a dot line follows\r\n.")]
    with WireServer(pipelining=pipelining, chunking=chunking) as server:
        results, _ = send(server, batch)
    assert outcomes(results) == ["sent"] * 3
    received = server.messages
    assert [r.data for r in received[:2]] == [batch[0].data, batch[1].data]
    assert received[2].data == batch[2].data + b"\r\n"
    assert received[1].recipients == ("zoë@exämple.org",)
    parsed = received[1].parse()
    assert parsed["To"] == "zoë@exämple.org"
    assert parsed["Subject"] == "Digest 2"
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content().replace("\r\n", "\n") == HOSTILE_BODY
    tail = message_from_bytes(received[2].data, policy=policy.default)
    assert tail.get_content() == ".only a dot line follows\r\n.\r\n"


def test_each_message_keeps_its_own_envelope_sender_in_a_pipelined_connection() -> None:
    batch = [mail(i, sender=f"bounces+{i}@pprnet.example") for i in range(1, 5)]
    with WireServer() as server:
        results, _ = send(server, batch)
    assert outcomes(results) == ["sent"] * 4
    assert [r.mail_from for r in server.messages] == [f"bounces+{i}@pprnet.example"
                                                      for i in range(1, 5)]


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("sender, recipient, reason", [
    ("bounces@pprnet.example", "evil@example.org\r\nRCPT TO:<victim@example.org>", "line break"),
    ("bounces@pprnet.example\nRSET", "reader1@example.org", "line break"),
    ("bounces@pprnet.example", "zoë@example.org", "not ASCII"),
    ("bounces@pprnet.example", "a@example.org> NOTIFY=NEVER", "angle bracket"),
    ("bounces@pprnet.example", "a@example.org\x00", "control character"),
])
def test_an_address_that_cannot_be_a_command_is_refused_before_anything_is_written(
        mode: str, sender: str, recipient: str, reason: str) -> None:
    pipelining, chunking = MODES[mode]
    bad = OutgoingMessage(1, sender, recipient, mail(1).data)
    with WireServer(pipelining=pipelining, chunking=chunking) as server:
        results, told = send(server, [bad, mail(2)])
    assert outcomes(results) == ["permanent", "sent"]
    assert reason in results[0].detail
    assert told == results
    assert [r.recipients for r in server.messages] == [("reader2@example.org",)]
    assert server.log.flights_of() == FLIGHTS[mode]


# --- on_result -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(MODES))
def test_each_result_is_told_before_the_next_message_is_handed_over(mode: str) -> None:
    pipelining, chunking = MODES[mode]
    handler = FaultyHandler(faults={"reader2@example.org": ["rcpt:550"],
                                    "reader4@example.org": ["data:451"]})
    seen: list[tuple[int, str, int]] = []
    with WireServer(handler, pipelining=pipelining, chunking=chunking) as server:
        smtp = transport(server)
        try:
            results = smtp.send(
                [mail(i) for i in range(1, 6)],
                on_result=lambda r: seen.append((r.delivery_id, r.outcome.value,
                                                 sum(handler.attempts.values()))))
        finally:
            smtp.close()
    assert seen == [(1, "sent", 1), (2, "permanent", 2), (3, "sent", 3),
                    (4, "temporary", 4), (5, "sent", 5)]
    assert [(r.delivery_id, r.outcome.value) for r in results] == [s[:2] for s in seen]
    assert handler.messages == ["reader1@example.org", "reader3@example.org",
                                "reader5@example.org"]


def test_results_from_many_connections_are_told_once_each_and_never_at_once() -> None:
    busy = threading.Lock()
    told: list[int] = []

    def record(result: SendResult) -> None:
        assert busy.acquire(blocking=False), "on_result called concurrently"
        try:
            time.sleep(0.002)
            told.append(result.delivery_id)
        finally:
            busy.release()

    batch = [mail(i) for i in range(1, 41)]
    with WireServer() as server:
        smtp = transport(server, connections=4)
        try:
            results = smtp.send(batch, on_result=record)
        finally:
            smtp.close()
    assert outcomes(results) == ["sent"] * 40
    assert sorted(told) == list(range(1, 41))
    for start in range(0, 40, 10):  # each connection's slice is told in its own order
        mine = [d for d in told if start < d <= start + 10]
        assert mine == sorted(mine)
    assert len(server.log.connections()) == 4


# --- faults in a pipelined group ---------------------------------------------------------------

FAULTS = {
    # fault: (pipelining+chunking, pipelining, chunking)
    "rcpt:550": ("permanent", "permanent", "permanent"),
    "rcpt:451": ("temporary", "temporary", "temporary"),
    "data:554": ("permanent", "permanent", "permanent"),
    "data:451": ("temporary", "temporary", "temporary"),
    "rcpt-close:550": ("permanent", "permanent", "permanent"),
    "rcpt-close:451": ("temporary", "temporary", "temporary"),
    "drop-rcpt": ("uncertain", "temporary", "temporary"),
    "drop-data": ("uncertain", "uncertain", "uncertain"),
    "accept-drop-data": ("uncertain", "uncertain", "uncertain"),
}
"""With pipelining and BDAT the whole message goes out with MAIL and RCPT, so any lost reply
after that may hide an acceptance; without BDAT, a reply lost before the data is temporary."""


@pytest.mark.parametrize("mode", ["pipelining+chunking", "pipelining", "chunking"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_settles_only_its_message_and_the_next_goes_out(mode: str, fault: str) -> None:
    pipelining, chunking = MODES[mode]
    expected = FAULTS[fault][list(MODES).index(mode)]
    handler = FaultyHandler(faults={"reader2@example.org": [fault]})
    with WireServer(handler, pipelining=pipelining, chunking=chunking) as server:
        results, told = send(server, [mail(1), mail(2), mail(3)])
    assert outcomes(results) == ["sent", expected, "sent"]
    assert told == results
    assert results[1].mailbox_gone == (fault.startswith("rcpt") and fault.endswith(":550"))
    accepted = ["reader1@example.org", "reader3@example.org"]
    if fault == "accept-drop-data":
        accepted.insert(1, "reader2@example.org")
    assert handler.messages == accepted
    lost = fault.startswith(("drop-", "accept-")) or "-close:" in fault
    assert len(server.log.connections()) == (2 if lost else 1)
    if not lost:  # refused: the transaction was reset and the connection carried on
        assert "RSET" in server.log.verbs()


def test_a_refused_recipient_in_a_pipelined_data_group_resets_and_continues() -> None:
    handler = FaultyHandler(faults={"reader1@example.org": ["rcpt:550"]})
    with WireServer(handler, pipelining=True, chunking=False) as server:
        results, _ = send(server, [mail(1), mail(2)])
    assert outcomes(results) == ["permanent", "sent"]
    assert results[0].detail.startswith("smtp 550")
    assert server.log.flights_of() == [["MAIL", "RCPT", "DATA"], ["RSET"],
                                       ["MAIL", "RCPT", "DATA"], ["."]]


def test_a_stalled_final_reply_after_bdat_is_uncertain() -> None:
    handler = FaultyHandler(faults={"reader1@example.org": ["stall-data"]})
    with WireServer(handler) as server:
        results, _ = send(server, [mail(1), mail(2)], timeout=0.5)
    assert outcomes(results) == ["uncertain", "sent"]
    assert "no reply after the whole message was sent" in results[0].detail


# --- through the whole send, on both databases ---------------------------------------------------


@pytest.fixture
def smtp_server() -> Iterator[WireServer]:
    """Overrides conftest's: the `newsletter` fixture then sends to a pipelining, BDAT server."""
    with WireServer(pipelining=True, chunking=True) as server:
        yield server


def test_a_whole_send_over_pipelining_and_bdat(newsletter: Newsletter,
                                               smtp_server: WireServer) -> None:
    load_month(newsletter)
    smtp = SMTPTransport(SMTPSettings(newsletter.config.smtp_host, newsletter.config.smtp_port))
    try:
        report = Sender(newsletter, smtp).send(MONTH)
    finally:
        smtp.close()
    assert (report.sent, report.failed, report.uncertain) == (3, 0, 0)
    received = by_recipient(smtp_server)
    assert {a: headlines(m[0]) for a, m in received.items()} == EXPECTED
    assert set(smtp_server.log.verbs()) <= {"MAIL", "RCPT", "BDAT", "NOOP"}
    assert smtp_server.log.verbs().count("BDAT") == 3


# --- Postfix's smtp-sink ---------------------------------------------------------------------


class SinkServer:
    """`smtp-sink` on a free loopback port, dumping each message into a folder of its own."""

    def __init__(self, *options: str) -> None:
        self.host, self.port = "127.0.0.1", free_port()
        # smtp-sink writes as nobody when started as root: a folder nobody can reach, not tmp_path
        self.folder = folder = Path(tempfile.mkdtemp(prefix="smtp_sink_"))
        folder.chmod(0o777)
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen(
            [SMTP_SINK, *user, "-d", f"{folder}/%H%M%S.", *options, f"{self.host}:{self.port}",
             "64"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.host, self.port), 0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.close()
        raise RuntimeError("smtp-sink did not start")

    def dumps(self) -> list[EmailMessage]:
        """Each dumped message, without the X-*/Received lines smtp-sink puts in front."""
        messages = []
        for path in sorted(self.folder.iterdir()):
            raw = path.read_bytes().split(b"\n")
            start = next(i for i, line in enumerate(raw) if line.startswith(b"Received:"))
            while raw[start + 1].startswith(b"\t"):
                start += 1
            message = message_from_bytes(b"\n".join(raw[start + 1:]), policy=policy.default)
            assert isinstance(message, EmailMessage)
            messages.append(message)
        return messages

    def close(self) -> None:
        self.process.terminate()
        self.errors = self.process.communicate(timeout=5)[1].decode("utf-8", "replace")
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def sink() -> Iterator[type[SinkServer]]:
    started: list[SinkServer] = []

    def start(*options: str) -> SinkServer:
        started.append(SinkServer(*options))
        return started[-1]

    if not Path(SMTP_SINK).exists():
        pytest.skip("needs Postfix's smtp-sink")
    yield start  # type: ignore[misc]
    for server in started:
        server.close()


def ehlo_features(host: str, port: int) -> set[str]:
    with smtplib.SMTP(host, port, timeout=5) as client:
        client.ehlo()
        return set(client.esmtp_features)


@pytest.mark.process
def test_smtp_sink_takes_pipelined_messages_whole(sink: type[SinkServer]) -> None:
    server = sink()
    assert {"pipelining"} <= ehlo_features(server.host, server.port)
    assert "chunking" not in ehlo_features(server.host, server.port)
    batch = [mail(i, body=HOSTILE_BODY) for i in range(1, 21)]
    results, told = send(server, batch, connections=2)
    assert outcomes(results) == ["sent"] * 20
    assert told and sorted(r.delivery_id for r in told) == list(range(1, 21))
    time.sleep(0.2)
    dumped = server.dumps()
    assert sorted(str(m["Subject"]) for m in dumped) == sorted(f"Digest {i}" for i in range(1, 21))
    assert all(m.get_content() == HOSTILE_BODY + "\n" for m in dumped)  # + the dump's separator


@pytest.mark.process
@pytest.mark.parametrize("options, expected", [
    (("-Q", "rcpt"), "temporary"),   # 421 and hang up inside the pipelined group
    (("-q", "."), "uncertain"),      # hang up after the final dot, without a reply
    (("-f", "rcpt"), "permanent"),   # 5xx to RCPT (smtp-sink then does not offer PIPELINING)
    (("-r", "rcpt"), "temporary"),   # 4xx to RCPT (likewise)
])
def test_smtp_sink_failures_map_per_message(sink: type[SinkServer], options: tuple[str, ...],
                                            expected: str) -> None:
    server = sink(*options)
    results, told = send(server, [mail(1), mail(2)])
    assert outcomes(results) == [expected, expected]
    assert told == results
    if expected != "uncertain":
        time.sleep(0.2)
        assert server.dumps() == []
