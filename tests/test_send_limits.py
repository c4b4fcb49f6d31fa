"""A send always ends: used-up retries wait for a later run even with `retry_later = 0`, and a
mail server that accepts connections but never answers stops the run after a few batches (one
timeout per connection each), with a note kept for the editor. Real sockets on loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from newsletter.catcher import SMTPCatcher
from newsletter.context import Newsletter
from newsletter.notify.outbox import EditorNote
from newsletter.sending.engine import UNREACHABLE_BATCHES, Sender
from newsletter.sending.report import edition_status
from newsletter.sending.retry import RetryPolicy
from newsletter.transports.smtp import SMTPSettings, SMTPTransport

from .builders import MONTH, load_month
from .conftest import MakeNewsletter, RunCli, make_config
from .fault_server import FaultyHandler
from .test_faults import FakeClock, audience, run_send


class SilentServer:
    """Accepts TCP connections and never says a word: a hung MTA, or a black-holing firewall."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    with SilentServer() as server:
        yield server


def test_used_up_rows_are_not_claimed_again_within_the_run_even_with_no_later_delay(
        make_newsletter: MakeNewsletter, server: SMTPCatcher, handler: FaultyHandler) -> None:
    nl = make_newsletter()
    handler.faults = {"down@example.org": ["rcpt:451"] * 10}
    load_month(nl, audience=audience("down@example.org", ok=3))
    policy = RetryPolicy(max_attempts=3, initial=0.0, cap=0.0, jitter="none", later=0.0)

    report = run_send(nl, server, FakeClock(), retry=policy)

    assert handler.attempts["down@example.org"] == 3
    assert handler.received["down@example.org"] == 0
    assert report.sent == 3 and report.failed == 1 and not report.complete
    assert edition_status(nl, MONTH)["counts"]["failed"] == 1


def test_a_server_that_never_answers_stops_the_run_after_a_few_timeouts(
        make_newsletter: MakeNewsletter, silent: SilentServer) -> None:
    nl = make_newsletter()
    load_month(nl, audience=audience(ok=40))
    transport = SMTPTransport(SMTPSettings("127.0.0.1", silent.port, timeout=0.2),
                              batch_size=8, connections=2)
    try:
        report = Sender(nl, transport, sleep=lambda seconds: None).send(MONTH)
    finally:
        transport.close()

    assert report.stopped == "unreachable"
    assert len(silent.accepted) == UNREACHABLE_BATCHES * 2  # one timeout per connection a batch
    assert report.sent == 0 and not report.complete
    assert set(report.reasons) == {f"smtp: 127.0.0.1:{silent.port} did not answer within 0.2 s"}
    counts = edition_status(nl, MONTH)["counts"]
    assert counts["uncertain"] == counts["in_flight"] == counts["sent"] == 0
    assert counts["failed"] + counts["pending"] == 40
    assert 8 <= counts["failed"] <= UNREACHABLE_BATCHES * 8


def test_cli_send_to_a_silent_server_stops_and_keeps_a_note_for_the_editor(
        silent: SilentServer, run_cli: RunCli) -> None:
    run_cli.env.update(NEWSLETTER_SMTP_HOST="127.0.0.1", NEWSLETTER_SMTP_PORT=str(silent.port),
                       NEWSLETTER_SMTP_TIMEOUT="0.2", NEWSLETTER_EDITOR_EMAIL="editor@example.org")
    run_cli("init")
    nl = Newsletter.open(make_config(run_cli.env["NEWSLETTER_DATABASE_URL"]))
    load_month(nl, audience=audience(ok=20))

    result = run_cli("send", MONTH)

    assert "did not answer several connections in a row" in result.stderr
    with nl.session() as session:
        notes = session.scalars(select(EditorNote)).all()
    nl.close()
    assert [n.subject for n in notes] == [
        f"ALERT {MONTH}: the mail server did not answer; sending stopped"]
    assert notes[0].sent_at is None and notes[0].recipient == "editor@example.org"
    assert "did not answer within 0.2 s" in notes[0].body
