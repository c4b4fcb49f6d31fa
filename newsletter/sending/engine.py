"""The send loop: plan → render once per variant → fill in per recipient → transport → ledger.

It owns no SQL (ledger.py) and no socket (transports/); it only sequences them so that a row is
committed `in_flight` before its message leaves and its result is committed as soon as known.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from subscribers.models import SubscriberStatus
from subscribers.store import chosen_topics, iter_audience, suppress

from ..content.models import Edition, EditionStatus
from ..content.store import edition_content, get_edition
from ..context import Newsletter
from ..db import utcnow
from ..domain import EditionContent
from ..errors import ConfigError, ContentError
from ..render import Renderer
from ..transports.base import Outcome, OutgoingMessage, SendResult, Transport
from . import ledger
from .compose import Composer, make_renderer
from .plan import PlanCounts, variant_for, variant_key

RETRY_DELAY = timedelta(minutes=5)
Progress = Callable[[int, int], None]


@dataclass
class SendReport:
    month: str
    planned: PlanCounts = field(default_factory=PlanCounts)
    sent: int = 0
    failed: int = 0
    rejected: int = 0
    recovered_uncertain: int = 0
    variants_rendered: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    complete: bool = False
    ledger: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        handed = self.sent + self.failed + self.rejected
        return handed / self.elapsed if self.elapsed else 0.0


class Sender:
    def __init__(self, nl: Newsletter, transport: Transport, *, renderer: Renderer | None = None,
                 clock: Callable[[], datetime] = utcnow, progress: Progress | None = None) -> None:
        self.nl, self.transport, self.clock = nl, transport, clock
        self.renderer = renderer or make_renderer(nl)
        self.progress = progress or (lambda done, total: None)
        nl.config.secret_keys  # noqa: B018  (fail before touching the ledger if unset)

    def send(self, month: str, *, resend_uncertain: bool = False) -> SendReport:
        started = time.monotonic()
        report = SendReport(month)
        edition, run_id = self._start(month, report, resend_uncertain)
        try:
            report.planned = self._plan(edition)
            self._deliver(edition, run_id, report)
        finally:
            self._finish(edition, run_id, report)
            report.elapsed = time.monotonic() - started
        return report

    def _start(self, month: str, report: SendReport,
               resend_uncertain: bool) -> tuple[EditionContent, str]:
        now = self.clock()
        with self.nl.session() as session:
            edition = get_edition(session, month)
            if edition.status is EditionStatus.CANCELLED:
                raise ContentError(f"the {month} edition is cancelled", field="month")
            run_id, report.recovered_uncertain = ledger.start_run(session, edition.id, now)
            if resend_uncertain:
                ledger.requeue_uncertain(session, edition.id, now)
            edition.status = EditionStatus.SENDING
            content = edition_content(edition)
        return content, run_id

    def _plan(self, edition: EditionContent) -> PlanCounts:
        """Give every matching active subscriber a pending row; count those with no match."""
        counts = PlanCounts()
        assert edition.id is not None
        with self.nl.sessions() as session:
            for chunk in iter_audience(session):
                keys = [variant_key(variant_for(edition, r.topics)) for r in chunk]
                counts.add(keys)
                ledger.add_pending(session, edition.id,
                                   [(r.id, k) for r, k in zip(chunk, keys, strict=True) if k], self.clock())
                session.commit()
        return counts

    def _deliver(self, edition: EditionContent, run_id: str, report: SendReport) -> None:
        assert edition.id is not None
        with self.nl.session() as session:
            total = ledger.count_due(session, edition.id, self.clock())
        composer = Composer(self.nl, edition, self.renderer)
        done = 0
        self.progress(done, total)
        while True:
            with self.nl.session() as session:
                claimed = ledger.claim_batch(session, edition.id, run_id,
                                             self.transport.batch_size, self.clock())
                ledger.heartbeat(session, run_id, self.clock())
                chosen = self._chosen_topics(session, claimed)
            if not claimed:
                break
            now = self.clock()
            messages = [composer.compose(delivery_id=c.delivery_id, variant=c.variant, uid=c.uid,
                                         email=c.email, name=c.name,
                                         topics=chosen[c.subscriber_id], date=now)
                        for c in claimed]
            results = self._hand_over(messages)
            self._record(claimed, results, report)
            done += len(claimed)
            self.progress(done, max(total, done))
        report.variants_rendered = composer.variants_rendered

    @staticmethod
    def _chosen_topics(session: Session, claimed: list[ledger.Claimed]
                       ) -> dict[int, frozenset[str] | None]:
        partial = [c.subscriber_id for c in claimed if not c.all_topics]
        picked = chosen_topics(session, partial) if partial else {}
        return {c.subscriber_id: None if c.all_topics else frozenset(picked.get(c.subscriber_id, ()))
                for c in claimed}

    def _hand_over(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        try:
            return self.transport.send(messages)
        except ConfigError:
            with self.nl.session() as session:
                ledger.release(session, [m.delivery_id for m in messages], self.clock())
            raise

    def _record(self, claimed: list[ledger.Claimed], results: list[SendResult],
                report: SendReport) -> None:
        now = self.clock()
        email_of = {c.delivery_id: c.email for c in claimed}
        with self.nl.session() as session:
            ledger.record_results(session, results, now, now + RETRY_DELAY)
            for result in results:
                if result.outcome is Outcome.SENT:
                    report.sent += 1
                    continue
                report.reasons[result.detail] += 1
                if result.outcome is Outcome.TEMPORARY:
                    report.failed += 1
                else:
                    report.rejected += 1
                if result.mailbox_gone:
                    suppress(session, email_of[result.delivery_id], "hard-bounce",
                             result.detail, SubscriberStatus.BOUNCED)

    def _finish(self, edition: EditionContent, run_id: str, report: SendReport) -> None:
        now = self.clock()
        with self.nl.session() as session:
            ledger.finish_run(session, run_id, now)
            report.ledger = ledger.status_counts(session, edition.id or 0)
            open_rows = sum(report.ledger[s] for s in ("pending", "in_flight", "failed"))
            report.complete = open_rows == 0
            row = session.get(Edition, edition.id)
            if row is not None and report.complete:
                row.status, row.sent_at = EditionStatus.SENT, row.sent_at or now
