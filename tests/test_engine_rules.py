"""The send loop's rules against a store in memory and `MemoryTransport`: no database, no socket.

Claim order, a temporary failure retried within the run after its backoff, used-up attempts
left for a later run, an uncertain answer never retried on its own, the stop event, pause and
cancel taking effect at the next claim, the unreachable stop, a ConfigError giving its batch
back and a message that cannot be composed failing only its own row. `MemorySendStore` keeps
the `SendStore` contract (store.py) the way `SqlSendStore` does; the database tests check that.
"""

from __future__ import annotations

import itertools
import json
import mmap
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from newsletter.content.models import EditionStatus
from newsletter.context import Newsletter
from newsletter.domain import Citation, EditionContent, Named, SummaryItem
from newsletter.errors import ComposeError, ConfigError, ContentError, SendInProgress, StateError
from newsletter.mail.message import Outcome, OutgoingMessage, SendResult
from newsletter.sending import journal as journal_module
from newsletter.sending.engine import UNREACHABLE_BATCHES, Sender, SendReport, StopReason
from newsletter.sending.journal import Journal, hand_over_shape, settle
from newsletter.sending.ledger import ORPHANED
from newsletter.sending.models import DeliveryStatus
from newsletter.sending.retry import RetryPolicy
from newsletter.sending.store import (
    HALTED,
    Batch,
    Claimed,
    Recipient,
    StartedRun,
    cannot_start,
    is_complete,
)
from newsletter.sending.throttle import TokenBucket
from newsletter.transports.memory import MemoryTransport, Scripted
from newsletter.transports.smtp import SMTPSettings, SMTPTransport

from .conftest import make_config

MONTH = "2015-01"
START = datetime(2015, 1, 6, 9, 0).astimezone()
EMPATHY, ALLIANCE = Named("empathy", "Empathy"), Named("alliance", "Alliance")
POLICY = RetryPolicy(max_attempts=3, initial=1.0, factor=2.0, cap=60.0, jitter="none", later=3600.0)


def _item(summary_id: int, topic: Named) -> SummaryItem:
    return SummaryItem(id=summary_id, uid=f"s{summary_id}", month=MONTH, headline=f"Summary {summary_id}",
                       citation=Citation(authors=("A",), year=2014, title="T", source="S"),
                       body_md="Body.", implications_md="So.", topics=(topic,),
                       research_type=Named("review", "Review"))


EDITION = EditionContent(month=MONTH, subject="", preheader="", id=1,
                         items=(_item(10, EMPATHY), _item(11, ALLIANCE)))


@dataclass
class Row:
    id: int
    recipient: Recipient
    variant: str
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    run_id: str | None = None
    next_attempt_at: datetime | None = None
    last_error: str | None = None


@dataclass
class MemorySendStore:
    """The `SendStore` contract over a few lists. Runs are live until finished (no crashes)."""

    audience: list[Recipient]
    status: EditionStatus = EditionStatus.SCHEDULED
    rows: dict[int, Row] = field(default_factory=dict)
    receiving: set[int] = field(default_factory=set)
    live_runs: set[str] = field(default_factory=set)
    heartbeats: list[tuple[str, datetime]] = field(default_factory=list)
    bounced: list[tuple[str, str]] = field(default_factory=list)
    chunk_size: int = 2
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.receiving = {r.id for r in self.audience}

    def start_run(self, month: str, now: datetime, *, resend_uncertain: bool) -> StartedRun:
        if month != MONTH:
            raise ContentError(f"no edition for {month}", field="month")
        if self.live_runs:
            raise SendInProgress("another send of this edition is running")
        if self.status in HALTED:
            raise cannot_start(month, self.status)
        orphaned = self._where(DeliveryStatus.IN_FLIGHT)
        for row in orphaned:
            row.status, row.last_error = DeliveryStatus.UNCERTAIN, ORPHANED
        if resend_uncertain:
            for row in self._where(DeliveryStatus.UNCERTAIN):
                row.status = DeliveryStatus.PENDING
        self.status = EditionStatus.SENDING
        run_id = f"run{next(self._ids)}"
        self.live_runs.add(run_id)
        return StartedRun(EDITION, run_id, len(orphaned))

    def join(self, month: str, now: datetime) -> StartedRun | None:
        if self.status is not EditionStatus.SENDING or not self.live_runs:
            return None
        run_id = f"run{next(self._ids)}"
        self.live_runs.add(run_id)
        return StartedRun(EDITION, run_id, 0)

    def recover(self, edition_id: int, now: datetime) -> int:
        return 0

    def live_senders(self, edition_id: int, now: datetime) -> int:
        return max(1, len(self.live_runs))

    def recheck(self, edition_id: int, delivery_ids: Sequence[int],
                now: datetime) -> tuple[list[int], EditionStatus | None]:
        if self.status in HALTED:
            return [], self.status
        gone = [i for i in delivery_ids if self.rows[i].status is DeliveryStatus.IN_FLIGHT
                and self.rows[i].recipient.id not in self.receiving]
        for i in gone:
            self.rows[i].status = DeliveryStatus.REJECTED
        return gone, None

    def plan(self, edition_id: int, variant_keys: Callable[[Sequence[Recipient]], Sequence[str]],
             clock: Callable[[], datetime]) -> None:
        audience = [r for r in self.audience if r.id in self.receiving]
        planned = {row.recipient.id for row in self.rows.values()}
        for start in range(0, len(audience), self.chunk_size):
            chunk = audience[start:start + self.chunk_size]
            for recipient, key in zip(chunk, variant_keys(chunk), strict=True):
                if key and recipient.id not in planned:
                    row_id = len(self.rows) + 1
                    self.rows[row_id] = Row(row_id, recipient, key)

    def _due(self, now: datetime) -> list[Row]:
        return [r for r in self.rows.values() if r.status is DeliveryStatus.PENDING or (
            r.status is DeliveryStatus.FAILED and r.next_attempt_at is not None
            and r.next_attempt_at <= now)]

    def count_due(self, edition_id: int, now: datetime) -> int:
        return len(self._due(now))

    def claim(self, edition_id: int, run_id: str, limit: int, now: datetime,
              max_attempts: int) -> Batch:
        self.heartbeats.append((run_id, now))
        if self.status in HALTED:
            return Batch([], {}, halted=self.status)
        due = sorted((r for r in self._due(now) if r.status is DeliveryStatus.PENDING
                      or r.attempts < max_attempts or r.run_id != run_id), key=lambda r: r.id)[:limit]
        gone = [r for r in due if r.recipient.id not in self.receiving]
        for row in gone:
            row.status = DeliveryStatus.REJECTED
            row.last_error = "subscriber unsubscribed, paused or was suppressed before delivery"
        claimed = []
        for row in (r for r in due if r.recipient.id in self.receiving):
            row.status, row.run_id, row.attempts = DeliveryStatus.IN_FLIGHT, run_id, row.attempts + 1
            r = row.recipient
            claimed.append(Claimed(row.id, row.variant, r.id, r.uid, r.email, r.name,
                                   r.topics is None, row.attempts))
        return Batch(claimed, {c.subscriber_id: self._recipient(c).topics for c in claimed}, len(gone))

    def _recipient(self, claimed: Claimed) -> Recipient:
        return self.rows[claimed.delivery_id].recipient

    def record(self, results: Sequence[SendResult], now: datetime, *,
               retry_at: Mapping[int, datetime], uncertain: Mapping[str, Sequence[int]],
               bounced: Sequence[tuple[str, str]]) -> None:
        status = {Outcome.SENT: DeliveryStatus.SENT, Outcome.TEMPORARY: DeliveryStatus.FAILED,
                  Outcome.PERMANENT: DeliveryStatus.REJECTED}
        for result in results:
            row = self.rows[result.delivery_id]
            row.status, row.last_error = status[result.outcome], result.detail or None
            row.next_attempt_at = retry_at.get(row.id) if result.outcome is Outcome.TEMPORARY else None
        for reason, delivery_ids in uncertain.items():
            for row in (self.rows[i] for i in delivery_ids):
                if row.status is DeliveryStatus.IN_FLIGHT:
                    row.status, row.last_error = DeliveryStatus.UNCERTAIN, reason
        self.bounced.extend(bounced)
        gone = {email for email, _ in bounced}
        self.receiving -= {r.id for r in self.audience if r.email in gone}

    def release(self, delivery_ids: Sequence[int], now: datetime) -> None:
        for row in (self.rows[i] for i in delivery_ids):
            if row.status is DeliveryStatus.IN_FLIGHT:
                row.status, row.attempts = DeliveryStatus.PENDING, row.attempts - 1

    def next_retry(self, edition_id: int, max_attempts: int) -> datetime | None:
        return min((r.next_attempt_at for r in self._where(DeliveryStatus.FAILED)
                    if r.attempts < max_attempts and r.next_attempt_at), default=None)

    def finish_run(self, edition_id: int, run_id: str, now: datetime) -> dict[str, int]:
        self.live_runs.discard(run_id)
        counts = self.counts()
        if is_complete(counts) and self.status is EditionStatus.SENDING:
            self.status = EditionStatus.SENT
        return counts

    def _where(self, status: DeliveryStatus) -> list[Row]:
        return [r for r in self.rows.values() if r.status is status]

    def counts(self) -> dict[str, int]:
        return {s.value: len(self._where(s)) for s in DeliveryStatus}

    def row(self, email: str) -> Row:
        [found] = [r for r in self.rows.values() if r.recipient.email == email]
        return found


class FakeComposer:
    """Bytes that name the recipient; refuses the addresses in `refuse` as a bad name would."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.refuse, self.variants = refuse, set[str]()

    @property
    def variants_rendered(self) -> int:
        return len(self.variants)

    def compose(self, *, delivery_id: int, variant: str, uid: str, email: str, name: str,
                topics: frozenset[str] | None, date: datetime) -> OutgoingMessage:
        if email in self.refuse:
            raise ComposeError("the name or address cannot be encoded")
        self.variants.add(variant)
        return OutgoingMessage(delivery_id, "digest@example.org", email,
                               f"To: {email}\r\n\r\n{variant}\r\n".encode())


class Clock:
    """Time that moves only when the loop sleeps."""

    def __init__(self) -> None:
        self.now, self.slept = START, list[float]()

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


class NoDatabase:
    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the send loop touched the database ({name})")

    def __call__(self, *args: object, **kwargs: object) -> object:
        raise AssertionError("the send loop opened a session")


NL = Newsletter(make_config("sqlite:///never-opened.db"), NoDatabase(), NoDatabase())  # type: ignore[arg-type]


def people(*names: str, topics: frozenset[str] | None = None) -> list[Recipient]:
    return [Recipient(i, f"uid{i}", f"{name}@example.org", name.title(), topics)
            for i, name in enumerate(names, 1)]


@dataclass
class Run:
    store: MemorySendStore
    transport: MemoryTransport
    clock: Clock = field(default_factory=Clock)
    composer: FakeComposer = field(default_factory=FakeComposer)
    stop: threading.Event = field(default_factory=threading.Event)

    def send(self, *, retry: RetryPolicy = POLICY, resend_uncertain: bool = False,
             progress: Callable[[int, int], None] | None = None) -> SendReport:
        sender = Sender(NL, self.transport, store=self.store, composer=lambda edition: self.composer,
                        clock=self.clock, sleep=self.clock.sleep, retry=retry, stop=self.stop,
                        progress=progress)
        return sender.send(MONTH, resend_uncertain=resend_uncertain)

    def handed(self) -> list[list[str]]:
        return [[m.recipient.partition("@")[0] for m in batch] for batch in self.transport.batches]

    def tries(self, name: str) -> int:
        return sum(m.recipient == f"{name}@example.org" for m in self.transport.messages)


def run(names: Sequence[str], script: Mapping[str, list[Scripted]] | None = None, *,
        batch_size: int = 2, default: Outcome | SendResult = Outcome.SENT) -> Run:
    transport = MemoryTransport({f"{k}@example.org": v for k, v in (script or {}).items()},
                                default=default, batch_size=batch_size)
    return Run(MemorySendStore(people(*names)), transport)


def test_rows_are_claimed_in_order_a_batch_at_a_time_and_the_edition_ends_sent() -> None:
    r = run(["ada", "bob", "cy", "di", "eve"])
    report = r.send()

    assert r.handed() == [["ada", "bob"], ["cy", "di"], ["eve"]]
    assert (report.sent, report.complete, report.stopped) == (5, True, None)
    assert report.planned.recipients == 5 and report.variants_rendered == 1
    assert r.store.status is EditionStatus.SENT and not r.store.live_runs
    # one per claim: the next batch is claimed while one is on the wire, so the last batch's
    # results are committed after an empty claim, and one more claim sees them
    assert len(r.store.heartbeats) == 5
    assert r.send().sent == 0 and r.tries("ada") == 1  # nothing due: nobody is mailed twice


def test_subscribers_without_a_matching_topic_get_no_row() -> None:
    store = MemorySendStore([*people("ada"), Recipient(2, "uid2", "bob@example.org", "Bob",
                                                           frozenset({"neuroscience"}))])
    r = Run(store, MemoryTransport())
    report = r.send()
    assert (report.planned.recipients, report.planned.no_match, report.sent) == (1, 1, 1)
    assert r.handed() == [["ada"]]


def test_who_leaves_during_the_send_is_rejected_at_their_claim_not_mailed() -> None:
    r = run(["ada", "bob", "cy", "di"])
    report = r.send(progress=lambda done, total: r.store.receiving.discard(4) if done == 2 else None)
    assert r.handed() == [["ada", "bob"], ["cy"]]
    assert (report.sent, report.left, report.complete) == (3, 1, True)
    assert r.store.row("di@example.org").status is DeliveryStatus.REJECTED


def test_a_temporary_failure_comes_back_within_the_run_after_its_backoff() -> None:
    r = run(["ada", "bob", "cy"], {"bob": [Outcome.TEMPORARY, Outcome.TEMPORARY]})
    report = r.send()

    assert r.handed() == [["ada", "bob"], ["cy"], ["bob"], ["bob"]]
    assert r.clock.slept == [1.0, 2.0]  # initial, then doubled; nothing else was due meanwhile
    assert (report.sent, report.retried, report.failed, report.complete) == (3, 2, 0, True)
    assert r.store.row("bob@example.org").attempts == 3


def test_a_retry_after_longer_than_the_backoff_is_honoured() -> None:
    later = SendResult(0, Outcome.TEMPORARY, detail="429 slow down", retry_after=30.0)
    r = run(["ada"], {"ada": [later]})
    assert r.send().sent == 1 and r.clock.slept == [30.0]


@pytest.mark.parametrize("later", [3600.0, 0.0])
def test_used_up_attempts_are_left_for_a_later_run(later: float) -> None:
    """Even when `later` makes the row due at once: retrying it in this run would never end."""
    r = run(["ada", "bob"], {"bob": [Outcome.TEMPORARY] * 3})
    policy = RetryPolicy(max_attempts=3, initial=1.0, jitter="none", later=later)
    report = r.send(retry=policy)

    bob = r.store.row("bob@example.org")
    assert r.tries("bob") == 3 and (bob.status, bob.attempts) == (DeliveryStatus.FAILED, 3)
    assert bob.next_attempt_at == r.clock.now + timedelta(seconds=later)
    assert (report.sent, report.failed, report.complete) == (1, 1, False)
    assert r.store.status is EditionStatus.SENDING

    r.clock.now += timedelta(seconds=later + 1)
    again = r.send(retry=policy)
    assert (again.sent, again.complete, r.tries("bob")) == (1, True, 4)
    assert r.store.status is EditionStatus.SENT


def test_an_uncertain_answer_is_never_retried_on_its_own() -> None:
    r = run(["ada", "bob"], {"bob": [Outcome.UNCERTAIN]})
    report = r.send()
    assert (report.sent, report.uncertain, report.retried, report.complete) == (1, 1, 0, True)
    assert r.store.row("bob@example.org").status is DeliveryStatus.UNCERTAIN
    assert r.clock.slept == []

    assert r.send().sent == 0 and r.tries("bob") == 1
    assert r.send(resend_uncertain=True).sent == 1 and r.tries("bob") == 2


def test_a_message_the_transport_gave_no_answer_for_is_uncertain() -> None:
    class Forgetful(MemoryTransport):
        def send(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
            return super().send(batch)[1:]

    r = Run(MemorySendStore(people("ada", "bob")), Forgetful(batch_size=2))
    report = r.send()
    ada = r.store.row("ada@example.org")
    assert (ada.status, ada.last_error) == (DeliveryStatus.UNCERTAIN,
                                            "memory: handed over without a result")
    assert (report.sent, report.uncertain) == (1, 1)


def test_rows_a_dead_run_left_in_flight_become_uncertain_and_are_not_resent() -> None:
    r = run(["ada", "bob"])
    r.store.plan(1, lambda chunk: ["10,11"] * len(chunk), r.clock)
    r.store.rows[1].status = DeliveryStatus.IN_FLIGHT
    report = r.send()
    assert (report.recovered_uncertain, report.sent) == (1, 1) and r.handed() == [["bob"]]
    assert r.store.rows[1].last_error == ORPHANED


def test_the_stop_event_ends_the_run_at_the_next_claim_and_the_next_run_continues() -> None:
    r = run(["ada", "bob", "cy", "di", "eve"])
    report = r.send(progress=lambda done, total: r.stop.set() if done == 2 else None)

    assert (report.sent, report.stopped, report.complete) == (2, StopReason.INTERRUPTED, False)
    assert report.stopped == "interrupted"  # what reports and JSON show
    assert r.store.counts()["pending"] == 3 and not r.store.live_runs
    r.stop.clear()
    assert r.send().sent == 3
    assert all(r.tries(name) == 1 for name in ("ada", "bob", "cy", "di", "eve"))


@pytest.mark.parametrize("state", [EditionStatus.PAUSED, EditionStatus.CANCELLED])
def test_pause_and_cancel_stop_at_the_next_claim_and_refuse_a_new_start(state: EditionStatus) -> None:
    r = run(["ada", "bob", "cy", "di"])

    def editor_acts(done: int, total: int) -> None:
        if done == 2:
            r.store.status = state

    report = r.send(progress=editor_acts)
    assert (report.sent, report.stopped.value if report.stopped else None) == (2, state.value)
    assert r.handed() == [["ada", "bob"]] and r.store.counts()["pending"] == 2
    with pytest.raises(StateError, match=f"is {state.value}"):
        r.send()


def test_a_server_that_never_answers_stops_the_run_after_a_few_batches() -> None:
    silent = SendResult(0, Outcome.TEMPORARY, detail="memory: did not answer", unreachable=True)
    r = run([f"p{i}" for i in range(10)], default=silent)
    report = r.send()

    assert len(r.transport.batches) == UNREACHABLE_BATCHES
    assert (report.stopped, report.sent, report.complete) == (StopReason.UNREACHABLE, 0, False)
    assert set(report.reasons) == {"memory: did not answer"}
    counts = r.store.counts()
    assert (counts["failed"], counts["pending"]) == (2 * UNREACHABLE_BATCHES, 10 - 2 * UNREACHABLE_BATCHES)


def test_a_batch_that_reaches_the_server_resets_the_unreachable_count() -> None:
    silent = SendResult(0, Outcome.TEMPORARY, detail="memory: did not answer", unreachable=True)
    names = [f"p{i}" for i in range(8)]
    r = run(names, {n: [silent] for i, n in enumerate(names) if i != 4}, batch_size=2)
    report = r.send()
    assert report.stopped is None and report.complete


def test_a_config_error_gives_the_batch_back_untried_and_stops_the_send() -> None:
    r = run(["ada", "bob", "cy"], {"cy": [ConfigError("SMTP refused the login")]})
    with pytest.raises(ConfigError, match="refused the login"):
        r.send()
    cy = r.store.row("cy@example.org")
    assert (cy.status, cy.attempts) == (DeliveryStatus.PENDING, 0)
    assert r.store.counts()["sent"] == 2 and not r.store.live_runs
    assert r.send().sent == 1


def test_a_message_that_cannot_be_composed_fails_only_its_own_row() -> None:
    r = run(["ada", "bob", "cy"])
    r.composer = FakeComposer(refuse=frozenset({"bob@example.org"}))
    report = r.send()

    assert r.handed() == [["ada"], ["cy"]]
    bob = r.store.row("bob@example.org")
    assert bob.status is DeliveryStatus.REJECTED
    assert bob.last_error == "cannot compose the message: the name or address cannot be encoded"
    assert (report.sent, report.rejected, report.complete) == (2, 1, True)


def test_a_vanished_mailbox_is_rejected_and_suppressed() -> None:
    gone = SendResult(0, Outcome.PERMANENT, detail="550 no such user", mailbox_gone=True)
    r = run(["ada", "bob"], {"bob": [gone]})
    report = r.send()
    assert (report.sent, report.rejected) == (1, 1)
    assert r.store.bounced == [("bob@example.org", "550 no such user")]


def test_a_second_start_while_a_run_is_live_is_refused() -> None:
    r = run(["ada"])
    r.store.live_runs.add("elsewhere")
    with pytest.raises(SendInProgress):
        r.send()
    assert r.transport.messages == [] and r.store.status is EditionStatus.SCHEDULED


# --- the result journal (journal.py): what a dead worker's rows become --------------------------


def test_a_dead_workers_rows_are_settled_by_what_each_connection_had_answered(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "run.jnl")
    journal.handed([[[1], [2], [3]], [[4], [5], [6]]])  # two connections, three messages each
    journal.result(SendResult(1, Outcome.SENT, provider_id="q1"))
    journal.result(SendResult(4, Outcome.TEMPORARY, detail="smtp 451 try later", retry_after=30.0))
    journal.close(remove=False)  # what a SIGKILL leaves

    settled = settle(tmp_path / "run.jnl", [1, 2, 3, 4, 5, 6, 7])  # 7: claimed, never handed over
    assert settled.results == {1: SendResult(1, Outcome.SENT, provider_id="q1"),
                               4: SendResult(4, Outcome.TEMPORARY, detail="smtp 451 try later",
                                             retry_after=30.0)}
    assert settled.uncertain == [2, 5]  # on the wire: one per connection
    assert settled.pending == [3, 6, 7]  # never left


def test_a_plain_success_is_written_as_the_json_encoder_would_and_reads_back(tmp_path: Path) -> None:
    """Plain successes skip the encoder; anything more (a provider id) still goes through it."""
    journal = Journal(tmp_path / "run.jnl")
    results = [SendResult(9_876_543_210, Outcome.SENT), SendResult(2, Outcome.SENT, provider_id="q")]
    journal.handed([[[9_876_543_210], [2]]])
    for result in results:
        journal.result(result)
    journal.close(remove=False)
    lines = (tmp_path / "run.jnl").read_bytes().splitlines()[1:]
    assert lines[0] == json.dumps({"r": [9_876_543_210, "sent", None, "", False, None]},
                                  separators=(",", ":")).encode()
    assert json.loads(lines[1]) == {"r": [2, "sent", "q", "", False, None]}
    settled = settle(tmp_path / "run.jnl", [9_876_543_210, 2])
    assert settled.results == {r.delivery_id: r for r in results}


def test_without_its_journal_or_with_a_damaged_one_nothing_becomes_pending(tmp_path: Path) -> None:
    assert settle(None, [1, 2]).uncertain == [1, 2]
    assert settle(tmp_path / "missing.jnl", [1, 2]).uncertain == [1, 2]
    journal = Journal(tmp_path / "run.jnl")
    journal.handed([[[1], [2], [3]]])
    journal.result(SendResult(1, Outcome.SENT))
    journal.close(remove=False)
    with (tmp_path / "run.jnl").open("ab") as damaged:
        damaged.write(b'{"h": [[[4], [5')  # a hand-over cut short: 4 and 5 may be on the wire
    settled = settle(tmp_path / "run.jnl", [1, 2, 3, 4, 5])
    assert (list(settled.results), settled.uncertain, settled.pending) == ([1], [2, 3, 4, 5], [])


def test_a_row_handed_over_again_is_judged_by_its_latest_hand_over(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "run.jnl")
    journal.handed([[[1], [2]]])
    journal.result(SendResult(1, Outcome.TEMPORARY, detail="smtp 421"))
    journal.result(SendResult(2, Outcome.SENT))
    journal.handed([[[3], [1]]])  # 1 again, after its backoff
    journal.result(SendResult(3, Outcome.SENT))
    journal.close(remove=False)
    settled = settle(tmp_path / "run.jnl", [1])
    assert (settled.results, settled.uncertain, settled.pending) == ({}, [1], [])


def _mapped_bytes(path: Path) -> int:
    """How much of `path` this process has mapped, from the kernel's own list."""
    total = 0
    for line in Path("/proc/self/maps").read_text().splitlines():
        if line.endswith(str(path)):
            start, end = line.split()[0].split("-")
            total += int(end, 16) - int(start, 16)
    return total


def test_a_long_journal_maps_one_window_and_reads_back_whole(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A mapped page counts in the worker's memory: past a window, the journal maps the next
    one instead of the whole file, and lines that straddle the seam read back intact."""
    window = 2 * mmap.ALLOCATIONGRANULARITY
    monkeypatch.setattr(journal_module, "MAP_WINDOW", window)
    path = tmp_path / "run.jnl"
    journal = Journal(path)
    ids = list(range(1, 3_001))
    results = {i: (SendResult(i, Outcome.SENT) if i % 7 else
                   SendResult(i, Outcome.TEMPORARY, detail="smtp 451 " + "x" * (i % 300)))
               for i in ids}
    mapped = []
    for start in range(0, len(ids), 200):
        journal.handed([[[i] for i in ids[start:start + 200]]])
        for i in ids[start:start + 200]:
            journal.result(results[i])
        mapped.append(_mapped_bytes(path))
    assert path.stat().st_size > 10 * window
    assert max(mapped) == window
    journal.close(remove=False)
    assert settle(path, ids).results == results


def test_the_hand_over_shape_follows_each_transport() -> None:
    messages = [OutgoingMessage(i, "d@example.org", f"r{i}@example.org", b"x") for i in range(1, 6)]
    smtp = SMTPTransport(SMTPSettings("127.0.0.1", 1), connections=2)
    assert hand_over_shape(smtp, messages, told=True) == [[[1], [2]], [[3], [4], [5]]]
    assert hand_over_shape(MemoryTransport(), messages, told=True) == [[[1], [2], [3], [4], [5]]]
    assert hand_over_shape(smtp, messages, told=False) == [[[1, 2, 3, 4, 5]]]  # all at once
    smtp.close()


def test_the_rate_limit_is_shared_by_the_live_workers() -> None:
    bucket = TokenBucket(10.0)
    assert bucket.reserve(10, 0.0) == 0.0
    bucket.rate_share(2)  # another worker joined: 5 messages/s each
    assert bucket.reserve(10, 0.0) == pytest.approx(2.0)
    bucket.rate_share(1)
    assert bucket.reserve(10, 0.0) == pytest.approx(2.0)  # 20 in debt at 10/s
