"""Emails to the editor: send started, end-of-send report, alerts.

They go out through the configured transport, outside the ledger, like `subscribers.mailer`, and
are composed by `newsletter.mail` with the headers of every other mail. They are plain text: they
are for one person who needs facts, not a designed message.
Without `editor_email` every note is only logged, and a note that cannot be delivered is logged
too: a notification never breaks a send.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from ..config import Config
from ..context import Newsletter
from ..db import utcnow
from ..errors import ConfigError, NewsletterError
from ..mail.compose import compose_plain
from ..mail.handover import hand_over, out_of_ledger_id
from ..mail.message import OutgoingMessage, Transport
from ..markdown import wrap_text
from ..sending.outcomes import SendReport, StopReason
from ..transports import make_transport
from .outbox import EditorNote, claim_retry, retry_due

__all__ = ["Notifier"]

log = logging.getLogger(__name__)
UNREACHABLE_ADVICE = ("Stopped before the end: the mail server did not answer several times in a "
                      "row. Check that it is running and reachable (NEWSLETTER_SMTP_HOST/_PORT); "
                      "the next send continues where this one stopped.")


class Notifier:
    """Tells the editor what the scheduler did; every method logs what it says. With a `store`,
    notes are kept until delivered (see `editor_notes`)."""

    def __init__(self, config: Config,
                 transport_factory: Callable[[Config], Transport] = make_transport, *,
                 store: Newsletter | None = None) -> None:
        self.config, self.transport_factory, self.store = config, transport_factory, store

    def started(self, month: str, scheduled_at: datetime | None) -> None:
        when = f" (scheduled for {scheduled_at:%Y-%m-%d %H:%M} UTC)" if scheduled_at else ""
        self.note(f"{month}: sending started", f"The {month} edition started sending at "
                  f"{utcnow():%Y-%m-%d %H:%M} UTC{when}.\nA report follows when it ends.")

    def unreachable(self, report: SendReport) -> None:
        """A run that gave up on a server that never answered: the editor must hear of it."""
        self.note(f"ALERT {report.month}: the mail server did not answer; sending stopped",
                  f"Sent before it stopped: {report.sent}\n{UNREACHABLE_ADVICE}\n"
                  + "\n".join(f"  {count} x {reason}"
                              for reason, count in report.reasons.most_common(3)))

    def report(self, report: SendReport) -> None:
        if report.stopped is StopReason.UNREACHABLE:
            self.unreachable(report)
            return
        lines = [f"Sent: {report.sent}", f"Failed (will be retried): {report.failed}",
                 f"Rejected: {report.rejected}",
                 f"Uncertain: {report.uncertain + report.recovered_uncertain}",
                 f"No matching topic (skipped): {report.planned.no_match}",
                 f"Left or paused during the send: {report.left}",
                 f"Duration: {report.elapsed:.1f} s"]
        lines += [f"  {count} x {reason}" for reason, count in report.reasons.most_common(10)]
        if report.stopped:
            lines.append(f"Stopped before the end: {report.stopped}; the next start continues.")
        elif not report.complete:
            lines.append("Some deliveries are still due: see `newsletter status "
                         f"{report.month}`.")
        bad = report.failed or report.rejected or report.uncertain or not report.complete
        self.note(f"{report.month}: {'send needs attention' if bad else 'sent'}", "\n".join(lines))

    def missed(self, month: str, scheduled_at: datetime | None) -> None:
        self.note(f"ALERT {month}: scheduled send missed", (
            f"The {month} edition was due at {scheduled_at:%Y-%m-%d %H:%M} UTC, but the scheduler "
            f"was not running until more than {self.config.schedule_grace_hours:g} hours later, "
            "so nothing was sent.\nSchedule it again: "
            f"newsletter schedule {month} --at \"YYYY-MM-DD HH:MM\""), level=logging.ERROR)

    def failed(self, month: str, error: BaseException) -> None:
        self.note(f"ALERT {month}: scheduled send failed", (
            f"The {month} edition could not be sent: {error}\n"
            f"See `newsletter status {month}`; `newsletter send {month}` continues it."),
            level=logging.ERROR)

    def note(self, subject: str, body: str, *, level: int = logging.INFO) -> None:
        log.log(level, "%s: %s", subject, body.replace("\n", " | "))
        recipient = self.config.editor_email
        if not recipient:
            return
        note_id = self._keep(recipient, subject, body)
        error = self._deliver(recipient, subject, body)
        if note_id is not None:
            self._attempt(note_id, error)

    def _keep(self, recipient: str, subject: str, body: str) -> int | None:
        """Store the note for retries; a store that fails (the alert may be about it) only costs
        the retries, never the first attempt."""
        if self.store is None:
            return None
        try:
            with self.store.session() as session:
                kept = EditorNote(recipient=recipient, subject=subject, body=body, attempted_at=utcnow())
                session.add(kept)
                session.flush()
                return kept.id
        except SQLAlchemyError as err:
            log.error("could not keep the editor's note for retries: %s", err)
            return None

    def retry_undelivered(self, now: datetime | None = None) -> int:
        """Try again the kept notes a mail server refused earlier; returns how many went out."""
        if self.store is None:
            return 0
        now = now or utcnow()
        with self.store.session() as session:
            due = [(n.id, n.recipient, n.subject, n.body, n.created_at) for n in retry_due(session, now)]
        delivered = 0
        for note_id, recipient, subject, body, created_at in due:
            with self.store.session() as session:
                if not claim_retry(session, note_id, now):
                    continue
            late = f"(Written at {created_at:%Y-%m-%d %H:%M} UTC; it could not be delivered then.)\n\n"
            error = self._deliver(recipient, subject, late + body)
            self._attempt(note_id, error)
            delivered += error is None
        return delivered

    def _deliver(self, recipient: str, subject: str, body: str) -> str | None:
        """Hand one note to the transport; the error, if it did not go out."""
        try:
            hand_over(lambda: self.transport_factory(self.config), self.build(subject, body, recipient),
                      "note")
        except (ConfigError, NewsletterError) as err:
            log.error("could not email the editor (%s): %s", recipient, err)
            return str(err)
        return None

    def _attempt(self, note_id: int, error: str | None) -> None:
        assert self.store is not None
        try:
            with self.store.session() as session:
                kept = session.get(EditorNote, note_id)
                if kept is None:
                    return
                kept.attempts += 1
                if error is None:
                    kept.sent_at = utcnow()
                else:
                    kept.last_error = error[:1000]
        except SQLAlchemyError as err:
            log.error("could not record the editor's note %d: %s", note_id, err)

    def build(self, subject: str, body: str, recipient: str | None = None) -> OutgoingMessage:
        """The note as the transport gets it: plain text wrapped to 72 columns (URLs whole), through
        every mail's header path. Notes are for the editor, so they stay in English."""
        c = self.config
        return compose_plain(sender=c.from_, email=recipient or c.editor_email,
                             subject=f"[{c.organisation}] {subject}", body=wrap_text(body) + "\n",
                             date=utcnow(), message_id_prefix="note",
                             delivery_id=out_of_ledger_id(),
                             extra_headers=(("Auto-Submitted", "auto-generated"),))
