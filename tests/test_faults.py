"""Delivery under faults, over real SMTP on loopback: every temporary failure ends delivered exactly
once (counted at the server), every permanent one rejected, every lost reply to the final dot
uncertain and never sent again on its own. Sleeps are injected, so retries that would wait
minutes take no time; only the stalls past the 0.5 s client timeout are real."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from newsletter.catcher import SMTPCatcher
from newsletter.context import Newsletter
from newsletter.db import utcnow
from newsletter.errors import StateError
from newsletter.mail.message import OutgoingMessage
from newsletter.sending import control
from newsletter.sending.engine import Sender, SendReport
from newsletter.sending.models import Delivery, SendRun
from newsletter.sending.report import edition_status
from newsletter.sending.retry import RetryPolicy
from newsletter.transports.smtp import SMTPSettings, SMTPTransport
from subscribers.models import SubscriberStatus, Suppression
from subscribers.store import find

from .builders import MONTH, load_month
from .conftest import MakeNewsletter, RunCli
from .fault_server import FaultyHandler

TIMEOUT = 0.5


class FakeClock:
    """Time that moves only when the engine sleeps."""

    def __init__(self) -> None:
        self.now = utcnow()
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def audience(*addresses: str, ok: int = 0) -> tuple[tuple[str, str, None], ...]:
    everyone = [*addresses, *(f"ok{i}@example.org" for i in range(ok))]
    return tuple((address.split("@")[0].title(), address, None) for address in everyone)


def run_send(nl: Newsletter, server: SMTPCatcher, clock: FakeClock, *, connections: int = 4,
             batch_size: int = 8, resend_uncertain: bool = False, timeout: float = TIMEOUT,
             **options: object) -> SendReport:
    """`timeout` is short so that stalls cost little; tests without stalls give the loaded
    machine's connection setup more room."""
    transport = SMTPTransport(SMTPSettings(server.host, server.port, timeout=timeout),
                              batch_size=batch_size, connections=connections)
    try:
        return Sender(nl, transport, clock=clock, sleep=clock.sleep,  # type: ignore[arg-type]
                      **options).send(MONTH, resend_uncertain=resend_uncertain)
    finally:
        transport.close()


TEMPORARY = {
    "busy@example.org": ["rcpt:421", "rcpt:421"],
    "greylisted@example.org": ["rcpt:451", "rcpt:451", "rcpt:451"],
    "later@example.org": ["data:451"],
    "full@example.org": ["data:552", "data:552"],
    "drop-rcpt@example.org": ["drop-rcpt", "drop-rcpt"],
    "stall-rcpt@example.org": ["stall-rcpt"],
}
NO_FINAL_REPLY = {
    "drop-data@example.org": "drop-data",
    "stall-data@example.org": "stall-data",
    "accept-drop@example.org": "accept-drop-data",
    "accept-hang@example.org": "accept-hang-data",
}
ACCEPTED_UNANSWERED = {"accept-drop@example.org", "accept-hang@example.org"}


@pytest.mark.parametrize("connections", [1, 4])
def test_every_temporary_failure_ends_delivered_exactly_once(
        make_newsletter: MakeNewsletter, server: SMTPCatcher, handler: FaultyHandler,
        connections: int) -> None:
    nl = make_newsletter(smtp_host=server.host, smtp_port=server.port)
    handler.faults = {address: list(faults) for address, faults in TEMPORARY.items()}
    load_month(nl, audience=audience(*TEMPORARY, ok=24))
    clock = FakeClock()

    report = run_send(nl, server, clock, connections=connections)

    assert set(handler.received.values()) == {1}
    assert len(handler.received) == len(TEMPORARY) + 24
    assert (report.sent, report.failed, report.rejected, report.uncertain) == (30, 0, 0, 0)
    assert report.retried == sum(len(f) for f in TEMPORARY.values()) == 11
    assert report.complete and report.stopped is None
    assert clock.slept and all(0 <= s <= RetryPolicy().cap for s in clock.slept)
    counts = edition_status(nl, MONTH)["counts"]
    assert counts["sent"] == 30 and counts["failed"] == counts["uncertain"] == 0
    assert handler.attempts["greylisted@example.org"] == 4
    assert len(handler.connections) <= connections + 5  # each 421, drop and stall reconnects


@pytest.mark.parametrize("connections", [1, 4])
def test_no_reply_to_the_final_dot_is_uncertain_and_sent_again_only_on_request(
        make_newsletter: MakeNewsletter, server: SMTPCatcher, handler: FaultyHandler,
        connections: int) -> None:
    nl = make_newsletter(smtp_host=server.host, smtp_port=server.port)
    handler.faults = {address: [fault] for address, fault in NO_FINAL_REPLY.items()}
    load_month(nl, audience=audience(*NO_FINAL_REPLY, ok=12))
    ok = {f"ok{i}@example.org" for i in range(12)}
    clock = FakeClock()

    first = run_send(nl, server, clock, connections=connections)

    assert (first.sent, first.uncertain, first.failed, first.retried, first.rejected) == \
        (12, 4, 0, 0, 0)
    assert clock.slept == []
    assert handler.received == Counter(ok | ACCEPTED_UNANSWERED)
    status = edition_status(nl, MONTH)
    assert (status["counts"]["sent"], status["counts"]["uncertain"]) == (12, 4)
    assert {row["email"] for row in status["attention"]} == set(NO_FINAL_REPLY)
    for row in status["attention"]:
        assert (row["status"], row["attempts"]) == ("uncertain", 1)
        assert row["last_error"].startswith("smtp: no reply after the whole message was sent")

    again = run_send(nl, server, clock, connections=connections)
    assert (again.sent, again.uncertain) == (0, 0)
    assert handler.received == Counter(ok | ACCEPTED_UNANSWERED)
    assert all(handler.attempts[address] == 1 for address in NO_FINAL_REPLY)

    resent = run_send(nl, server, clock, connections=connections, resend_uncertain=True)
    assert (resent.sent, resent.uncertain, resent.complete) == (4, 0, True)
    assert handler.received == Counter(ok | set(NO_FINAL_REPLY)) + Counter(ACCEPTED_UNANSWERED)
    assert edition_status(nl, MONTH)["counts"]["sent"] == 16


def test_permanent_failures_are_rejected_and_gone_mailboxes_suppressed(
        make_newsletter: MakeNewsletter, server: SMTPCatcher, handler: FaultyHandler) -> None:
    nl = make_newsletter(smtp_host=server.host, smtp_port=server.port)
    handler.faults = {"gone@example.org": ["rcpt:550"], "moved@example.org": ["rcpt:553"],
                      "spam@example.org": ["data:554"]}
    load_month(nl, audience=audience(*handler.faults, ok=5))

    report = run_send(nl, server, FakeClock())

    assert (report.sent, report.rejected, report.failed, report.retried) == (5, 3, 0, 0)
    assert not set(handler.faults) & set(handler.received)
    assert set(handler.received.values()) == {1}
    with nl.session() as session:
        suppressed = set(session.scalars(select(Suppression.email)))
        assert suppressed == {"gone@example.org", "moved@example.org"}
        assert find(session, "gone@example.org").status is SubscriberStatus.BOUNCED  # type: ignore[union-attr]
        assert find(session, "spam@example.org").status is SubscriberStatus.ACTIVE  # type: ignore[union-attr]
        rows = session.scalars(select(Delivery).where(Delivery.status == "rejected")).all()
        assert sorted(r.attempts for r in rows) == [1, 1, 1]
        assert all(r.last_error and r.last_error.startswith("smtp 55") for r in rows)


def test_used_up_retries_stay_failed_until_a_later_send(
        make_newsletter: MakeNewsletter, server: SMTPCatcher, handler: FaultyHandler) -> None:
    nl = make_newsletter(smtp_host=server.host, smtp_port=server.port)
    handler.faults = {"stubborn@example.org": ["rcpt:451"] * 3}
    load_month(nl, audience=audience("stubborn@example.org", ok=2))
    clock = FakeClock()

    first = run_send(nl, server, clock, retry=RetryPolicy(max_attempts=3))

    assert (first.sent, first.failed, first.retried, first.complete) == (2, 1, 3, False)
    status = edition_status(nl, MONTH)
    [row] = status["attention"]
    assert (row["email"], row["status"], row["attempts"]) == ("stubborn@example.org", "failed", 3)
    assert row["last_error"].startswith("smtp 451")
    assert datetime.fromisoformat(row["next_attempt_at"]) == clock.now + timedelta(hours=1)
    assert status["last_run"]["sent"] == 2 and status["last_run"]["finished"]
    assert run_send(nl, server, clock).sent == 0  # not due yet: nobody is mailed early

    clock.now += timedelta(hours=1, seconds=1)
    second = run_send(nl, server, clock)
    assert (second.sent, second.complete) == (1, True)
    assert set(handler.received.values()) == {1} and len(handler.received) == 3


def test_rate_limit_spreads_batches_over_time(make_newsletter: MakeNewsletter, server: SMTPCatcher,
                                              handler: FaultyHandler) -> None:
    nl = make_newsletter(smtp_host=server.host, smtp_port=server.port)
    load_month(nl, audience=audience(ok=30))
    clock = FakeClock()
    batches: list[int] = []
    report = run_send(nl, server, clock, batch_size=200, rate_limit=10.0,
                      progress=lambda done, total: batches.append(done))
    assert report.sent == 30
    assert batches == [0, 10, 20, 30]
    assert sum(clock.slept) == pytest.approx(2.0)


def _after_first_batch(action):  # type: ignore[no-untyped-def]
    def progress(done: int, total: int) -> None:
        if done == 5:
            action()
    return progress


@pytest.mark.parametrize("verb", ["pause", "cancel"])
def test_pause_or_cancel_stops_a_running_send_between_batches(
        make_newsletter: MakeNewsletter, server: SMTPCatcher, handler: FaultyHandler,
        verb: str) -> None:
    nl = make_newsletter(smtp_host=server.host, smtp_port=server.port)
    load_month(nl, audience=audience(ok=20))
    clock = FakeClock()
    command = getattr(control, verb)
    report = run_send(nl, server, clock, batch_size=5, connections=2,
                      progress=_after_first_batch(lambda: command(nl, MONTH)))

    state = "paused" if verb == "pause" else "cancelled"
    assert (report.sent, report.stopped, report.complete) == (5, state, False)
    status = edition_status(nl, MONTH)
    assert status["edition_status"] == state
    assert (status["counts"]["sent"], status["counts"]["pending"]) == (5, 15)
    with pytest.raises(StateError, match=state):
        run_send(nl, server, clock)
    if verb == "pause":
        control.resume(nl, MONTH)
        assert run_send(nl, server, clock).sent == 15
        assert edition_status(nl, MONTH)["edition_status"] == "sent"
    assert set(handler.received.values()) == {1}


def test_stop_event_finishes_the_batch_and_marks_the_run_finished(
        make_newsletter: MakeNewsletter, server: SMTPCatcher, handler: FaultyHandler) -> None:
    import threading
    nl = make_newsletter(smtp_host=server.host, smtp_port=server.port)
    load_month(nl, audience=audience(ok=20))
    stop, clock = threading.Event(), FakeClock()
    report = run_send(nl, server, clock, batch_size=5, stop=stop, timeout=10.0,
                      progress=_after_first_batch(stop.set))

    assert (report.sent, report.stopped) == (5, "interrupted"), report.reasons
    with nl.session() as session:
        assert all(r.finished_at for r in session.scalars(select(SendRun)))
    counts = edition_status(nl, MONTH)["counts"]
    assert (counts["in_flight"], counts["uncertain"], counts["pending"]) == (0, 0, 15)
    assert run_send(nl, server, clock).sent == 15
    assert set(handler.received.values()) == {1} and len(handler.received) == 20


def test_retry_policy_backs_off_exponentially_with_jitter_and_honours_retry_after() -> None:
    plain = RetryPolicy(initial=1.0, factor=2.0, cap=60.0, jitter="none")
    assert [plain.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert plain.delay(10_000) == 60
    assert plain.delay(1, retry_after=30.0) == 30.0 and plain.delay(7, retry_after=5.0) == 60
    assert [plain.gives_up(n) for n in (4, 5, 6)] == [False, True, True]
    top = RetryPolicy(jitter="full", uniform=lambda low, high: high)
    bottom = RetryPolicy(jitter="equal", uniform=lambda low, high: low)
    assert (top.delay(3), bottom.delay(3), RetryPolicy(jitter="full",
                                                       uniform=lambda a, b: a).delay(3)) == (4, 2, 0)
    import random
    random.seed(7)
    assert all(0 <= RetryPolicy().delay(4) <= 8 for _ in range(200))
    with pytest.raises(ValueError):
        RetryPolicy(jitter="sometimes")  # type: ignore[arg-type]


def test_retry_times_use_attempts_and_the_servers_retry_after() -> None:
    from newsletter.mail.message import Outcome, SendResult
    from newsletter.sending.ledger import Claimed
    from newsletter.sending.outcomes import retry_times
    policy, now = RetryPolicy(max_attempts=3, jitter="none"), utcnow()
    claimed = [Claimed(i, "1", i, "u", f"{i}@x.org", "", True, attempts=a)
               for i, a in ((1, 1), (2, 2), (3, 3), (4, 1))]
    results = [SendResult(1, Outcome.TEMPORARY), SendResult(2, Outcome.TEMPORARY, retry_after=90),
               SendResult(3, Outcome.TEMPORARY), SendResult(4, Outcome.SENT)]
    due = retry_times(claimed, results, now, policy)
    assert {k: (v - now).total_seconds() for k, v in due.items()} == {1: 1, 2: 90, 3: 3600}


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    from newsletter.sending.throttle import TokenBucket
    bucket = TokenBucket(rate=100.0)
    assert bucket.chunk(200) == 100 and TokenBucket(0.5).chunk(200) == 1
    assert bucket.reserve(100, now=0.0) == 0.0
    assert bucket.reserve(50, now=0.0) == pytest.approx(0.5)
    assert bucket.reserve(50, now=0.5) == pytest.approx(0.5)
    assert bucket.reserve(10, now=10.0) == 0.0
    with pytest.raises(ValueError):
        TokenBucket(0)


def _messages(count: int) -> list[OutgoingMessage]:
    return [OutgoingMessage(i, "digest@pprnet.example", f"r{i}@example.org",
                            f"Subject: {i}\r\n\r\nbody {i}\r\n".encode()) for i in range(count)]


def test_pool_keeps_batch_order_and_reuses_its_connections(server: SMTPCatcher,
                                                           handler: FaultyHandler) -> None:
    handler.faults = {"r5@example.org": ["rcpt:550"], "r17@example.org": ["data:451"]}
    transport = SMTPTransport(SMTPSettings(server.host, server.port, timeout=TIMEOUT),
                              connections=4)
    try:
        first = transport.send(_messages(23))
        second = transport.send(_messages(40)[23:])
    finally:
        transport.close()
    assert [r.delivery_id for r in first + second] == list(range(40))
    assert [r.delivery_id for r in first + second if r.outcome != "sent"] == [5, 17]
    assert len(handler.connections) == 4  # a 5xx or 4xx answer does not cost the connection


def test_after_a_lost_final_reply_the_slice_goes_on_over_a_fresh_connection(
        server: SMTPCatcher, handler: FaultyHandler) -> None:
    handler.faults = {"r1@example.org": ["accept-hang-data"], "r3@example.org": ["drop-rcpt"]}
    transport = SMTPTransport(SMTPSettings(server.host, server.port, timeout=TIMEOUT),
                              connections=1)
    try:
        results = transport.send(_messages(5))
    finally:
        transport.close()
    assert [r.outcome for r in results] == ["sent", "uncertain", "sent", "temporary", "sent"]
    assert "timed out" in results[1].detail
    assert handler.received == Counter({f"r{i}@example.org": 1 for i in (0, 1, 2, 4)})


def test_pool_overlaps_a_slow_servers_latency(server: SMTPCatcher, handler: FaultyHandler) -> None:
    handler.delay = 0.05
    transport = SMTPTransport(SMTPSettings(server.host, server.port), connections=4)
    try:
        results = transport.send(_messages(16))
    finally:
        transport.close()
    assert [r.outcome for r in results] == ["sent"] * 16
    assert handler.peak == 4


@pytest.fixture
def dkim_key(tmp_path):  # type: ignore[no-untyped-def]
    """A fresh RSA key (openssl) and the DNS TXT record that publishes it."""
    import base64
    import shutil
    import subprocess
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test key")
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True,
                   capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_dkim_signature_verifies_and_covers_the_headers_that_matter(
        newsletter: Newsletter, smtp_server: SMTPCatcher, dkim_key) -> None:  # type: ignore[no-untyped-def]
    dkim = pytest.importorskip("dkim")
    key, record = dkim_key
    load_month(newsletter)
    transport = SMTPTransport(SMTPSettings(smtp_server.host, smtp_server.port),
                              dkim_selector="nl2015", dkim_domain="pprnet.example",
                              dkim_private_key_path=str(key))
    try:
        assert Sender(newsletter, transport).send(MONTH).sent == 3
    finally:
        transport.close()

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"nl2015._domainkey.pprnet.example."
        return record

    for received in smtp_server.messages:
        assert dkim.verify(received.data, dnsfunc=dns)
        signature = received.parse()["DKIM-Signature"]
        tags = dict(t.strip().split("=", 1) for t in str(signature).split(";") if "=" in t)
        signed = {h.strip().lower() for h in tags["h"].split(":")}
        assert signed >= {"from", "to", "subject", "date", "message-id", "list-unsubscribe",
                          "list-unsubscribe-post", "mime-version", "content-type"}
        assert (tags["d"], tags["s"]) == ("pprnet.example", "nl2015")
        assert not dkim.verify(received.data.replace(b"Subject: ", b"Subject: Re: ", 1),
                               dnsfunc=dns)


def test_dkim_settings_are_checked_before_anything_is_sent(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from newsletter.errors import ConfigError
    settings = SMTPSettings("127.0.0.1", 1)
    with pytest.raises(ConfigError, match="all of"):
        SMTPTransport(settings, dkim_selector="s")
    with pytest.raises(ConfigError, match="DKIM private key"):
        SMTPTransport(settings, dkim_selector="s", dkim_domain="d.example",
                      dkim_private_key_path=str(tmp_path / "missing.pem"))
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(ConfigError, match="cannot sign"):
        SMTPTransport(settings, dkim_selector="s", dkim_domain="d.example",
                      dkim_private_key_path=str(tmp_path / "bad.pem"))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cli_pause_resume_cancel_and_status(make_newsletter: MakeNewsletter, server: SMTPCatcher,
                                            handler: FaultyHandler, run_cli: RunCli) -> None:
    nl = make_newsletter(smtp_host=server.host, smtp_port=server.port)
    handler.faults = {"stubborn@example.org": ["rcpt:451"] * 9}
    load_month(nl, audience=audience("stubborn@example.org", ok=2))
    run_cli.env.update(NEWSLETTER_SMTP_HOST=server.host, NEWSLETTER_SMTP_PORT=str(server.port))

    def run(*args: str, code: int = 0) -> str:
        return run_cli(*args, code=code).output

    assert "Error: cannot pause the 2015-01 edition: it is draft" in run("pause", MONTH, code=1)
    clock = FakeClock()
    run_send(nl, server, clock, retry=RetryPolicy(max_attempts=2))
    text = run("status", MONTH)
    assert "sent 2" in text and "last run: 2 sent in" in text
    assert "failed    stubborn@example.org" in text and "attempts 2, next " in text
    assert "smtp 451 fault injected" in text
    assert run("pause", MONTH) == f"{MONTH}: paused (was sending).\n"
    assert "is paused: run `newsletter resume 2015-01` first" in run("send", MONTH, code=1)
    assert "resumed (was paused)" in run("resume", MONTH)
    assert "cancelled (was sending)" in run("cancel", MONTH)
    assert "cannot resume the 2015-01 edition: it is cancelled" in run("resume", MONTH, code=1)
    assert "edition is cancelled" in run("send", MONTH, code=1)
