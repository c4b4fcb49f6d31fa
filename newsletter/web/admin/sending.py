"""Schedule and send: every schedule and the monthly rule, an edition's schedule (ask, confirm,
cancel), "send now" with an undo window, a send watched live, and the report afterwards.

Every action calls the library the CLI calls (`schedule.editions`, `sending.control`,
`sending.run.send_edition`, `status.status_document`). Library calls open their own store
sessions, so a view reads through its own session without flushing it (on SQLite a flushed
sign-in touch would hold the write lock the library's session then waits for) and writes its
audit entry last. "Send now" schedules the edition UNDO_SECONDS ahead: the running scheduler
(`newsletter run` or `newsletter scheduler`) sends it, and "Undo" takes it off the schedule.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.content.models import Edition, EditionStatus
from newsletter.context import Newsletter
from newsletter.db import utcnow
from newsletter.db.paging import page_count
from newsletter.editors import audit
from newsletter.errors import ConfigError, ContentError, NewsletterError, SendInProgress
from newsletter.schedule import editions as schedules_lib
from newsletter.schedule.editions import zone
from newsletter.schedule.liveness import job_stored, scheduler_here
from newsletter.schedule.recurring import MonthlyRule, describe
from newsletter.sending import control, ledger
from newsletter.sending.report import first_and_last_sent, live_counts, plan_without_sending
from newsletter.sending.run import send_edition
from newsletter.status import status_document

from .auth import client_address, current_editor, newsletter, requires
from .common import is_htmx, month_or_404, page_number, password_again
from .views import blueprint

UNDO_SECONDS = 30
"""How long "send now" waits before the scheduler may send: the window in which "Undo" works.
The app's `CONSOLE_UNDO_SECONDS` setting (Flask config) changes it."""
PER_PAGE = 50
AT_FIELD_MAX = 40
COUNTS = ("pending", "in_flight", "sent", "failed", "rejected", "uncertain")
_RESENDS = "console_resends"
"""app.extensions key: month → the background thread of a console "resend to uncertain"."""


def _edition(db: Session, month: str) -> Edition:
    with db.no_autoflush:  # the sign-in touch stays unwritten: see the module's docstring
        edition = db.scalar(select(Edition).where(Edition.month == month_or_404(month)))
    if edition is None:
        abort(404)
    return edition


def _audit(db: Session, action: str, **detail: Any) -> None:
    audit.record(db, action, actor=current_editor().email, client=client_address(), detail=detail)


def _times(when: datetime | None) -> dict[str, str] | None:
    """A UTC time as the editor reads it (their zone, with seconds) and in UTC."""
    if when is None:
        return None
    tz = newsletter().config.timezone
    return {"local": f"{when.astimezone(zone(tz)):%Y-%m-%d %H:%M:%S %Z}", "zone": tz,
            "utc": f"{when:%Y-%m-%d %H:%M:%S} UTC",
            "picker": f"{when.astimezone(zone(tz)):%Y-%m-%dT%H:%M:%S}"}


def _message(err: Exception) -> str:
    text = err.reason if isinstance(err, ContentError) else str(err)
    return text[:1].upper() + text[1:]


def _page(template: str, status: int = 200, **values: Any) -> ResponseReturnValue:
    return render_template(template, editor=current_editor(), **values), status


@blueprint.route("/schedule")
@requires()
def schedules(db: Session) -> ResponseReturnValue:
    nl = newsletter()
    with db.no_autoflush:
        rows = [{"month": e.month, "state": e.status.value, "at": _times(e.scheduled_at)}
                for e in db.scalars(select(Edition).where(Edition.scheduled_at.is_not(None))
                                    .order_by(Edition.month.desc()))]
    monthly = MonthlyRule.of(nl.config)
    rule = describe(nl, monthly, utcnow()) if monthly else None
    return _page("admin/schedule.html", rows=rows, rule=rule, zone_name=nl.config.timezone,
                 here=scheduler_here(nl))


def _schedule_page(db: Session, month: str, *, errors: dict[str, str] | None = None,
                   typed: str | None = None) -> ResponseReturnValue:
    edition = _edition(db, month)
    at = _times(edition.scheduled_at)
    if typed is None:  # "Back" from the confirmation brings what was typed
        typed = request.args.get("at", "")[:AT_FIELD_MAX]
    value = typed or (at["picker"] if at and edition.status in (
        EditionStatus.SCHEDULED, EditionStatus.MISSED) else "")
    return _page("admin/schedule_edition.html", 400 if errors else 200, edition=edition, at=at,
                 errors=errors or {}, value=value, zone_name=newsletter().config.timezone,
                 undo=_undo_seconds())


def _typed_time() -> str:
    """The picker's value (`2026-12-01T09:00[:30]`) as the CLI's `--at` reads it."""
    return request.form.get("at", "")[:AT_FIELD_MAX].strip().replace("T", " ", 1)


@blueprint.route("/editions/<month>/schedule", methods=["GET", "POST"])
@requires()
def schedule_edition(db: Session, month: str) -> ResponseReturnValue:
    """GET: the form. POST ("Schedule"): the time checked as the CLI checks it, then a
    confirmation page with the recipient count and whatever makes the edition unsendable."""
    if request.method == "GET":
        return _schedule_page(db, month)
    edition, nl, typed = _edition(db, month), newsletter(), _typed_time()
    tz = nl.config.timezone
    try:
        when = schedules_lib.check_time(typed, tz, utcnow())
    except ContentError as err:
        return _schedule_page(db, month, errors={"at": _message(err)},
                              typed=request.form.get("at", "")[:AT_FIELD_MAX])
    problems = schedules_lib.check_sendable(nl, edition.month)
    plan = plan_without_sending(nl, edition.month)
    return _page("admin/schedule_confirm.html", 400 if problems else 200, edition=edition,
                 at=_times(when), typed=typed, plan=plan, problems=problems)


@blueprint.route("/editions/<month>/schedule/confirm", methods=["POST"])
@requires()
def confirm_schedule(db: Session, month: str) -> ResponseReturnValue:
    edition, nl, typed = _edition(db, month), newsletter(), _typed_time()
    try:
        row = schedules_lib.schedule(nl, edition.month, typed)
    except NewsletterError as err:
        return _schedule_page(db, month, errors={"at": _message(err)},
                              typed=request.form.get("at", "")[:AT_FIELD_MAX])
    times = _times(row.scheduled_at)
    assert times is not None
    _audit(db, "schedule.set", month=row.month, at=times["utc"], local=times["local"])
    flash(f"Scheduled for {times['local']} ({times['zone']}), {times['utc']}.")
    return redirect(url_for("admin.schedule_edition", month=row.month))


@blueprint.route("/editions/<month>/schedule/cancel", methods=["POST"])
@requires()
def cancel_schedule(db: Session, month: str) -> ResponseReturnValue:
    edition = _edition(db, month)
    try:
        schedules_lib.unschedule(newsletter(), edition.month)
    except NewsletterError as err:
        flash(f"Not cancelled: {err}.")
    else:
        _audit(db, "schedule.cancel", month=edition.month)
        flash(f"The {edition.month} edition is no longer scheduled (draft).")
    back = "admin.schedules" if request.form.get("from") == "list" else "admin.schedule_edition"
    return redirect(url_for(back, month=edition.month) if back != "admin.schedules"
                    else url_for(back))


def _undo_seconds() -> int:
    return int(current_app.config.get("CONSOLE_UNDO_SECONDS", UNDO_SECONDS))


@blueprint.route("/editions/<month>/send-now", methods=["GET", "POST"])
@requires()
def send_now(db: Session, month: str) -> ResponseReturnValue:
    """Asks for the password again; then the edition is scheduled UNDO_SECONDS from now."""
    edition, errors = _edition(db, month), {}
    if request.method == "POST":
        if not password_again(current_editor()):
            errors["current"] = "Your password is not right."
        else:
            now = utcnow()
            try:
                row = schedules_lib.schedule_utc(newsletter(), edition.month,
                                                 now + timedelta(seconds=_undo_seconds()), now=now)
            except NewsletterError as err:
                errors["send"] = _message(err)
            else:
                _audit(db, "send.now", month=row.month, at=f"{row.scheduled_at:%Y-%m-%d %H:%M:%S} UTC")
                return redirect(url_for("admin.send_undo", month=row.month))
    return _page("admin/send_now.html", 400 if errors else 200, edition=edition, errors=errors,
                 seconds=_undo_seconds())


def _countdown(edition: Edition) -> dict[str, Any]:
    """Seconds left in the undo window (None: the edition is no longer waiting for it)."""
    nl = newsletter()
    left = None
    if edition.status is EditionStatus.SCHEDULED and edition.scheduled_at is not None:
        left = max(0, int((edition.scheduled_at - utcnow()).total_seconds() + 0.999))
    return {"left": left, "at": _times(edition.scheduled_at), "here": scheduler_here(nl),
            "job": job_stored(nl, edition.month), "state": edition.status.value}


@blueprint.route("/editions/<month>/send-now/undo", methods=["GET", "POST"])
@requires()
def send_undo(db: Session, month: str) -> ResponseReturnValue:
    edition = _edition(db, month)
    if request.method == "POST":
        try:
            schedules_lib.unschedule(newsletter(), edition.month)
        except NewsletterError as err:
            flash(f"Too late to undo: {err}.")
            return redirect(url_for("admin.watch", month=edition.month))
        _audit(db, "send.undo", month=edition.month)
        flash("Undone: the edition will not be sent now; it is a draft again.")
        return redirect(url_for("admin.schedule_edition", month=edition.month))
    template = "admin/send_undo_fragment.html" if is_htmx() else "admin/send_undo.html"
    return _page(template, edition=edition, **_countdown(edition))


@blueprint.route("/editions/<month>/send")
@requires()
def watch(db: Session, month: str) -> ResponseReturnValue:
    edition = _edition(db, month)
    template = "admin/send_counts.html" if is_htmx() else "admin/send_watch.html"
    return _page(template, edition=edition, live=_live(edition.month), names=COUNTS)


@blueprint.route("/editions/<month>/send/counts")
@requires()
def watch_counts(db: Session, month: str) -> ResponseReturnValue:
    """The fragment htmx polls every 2 s; once the send is over it no longer asks to be polled."""
    edition = _edition(db, month)
    return _page("admin/send_counts.html", edition=edition, live=_live(edition.month), names=COUNTS)


def _live(month: str) -> dict[str, Any]:
    nl = newsletter()
    live = live_counts(nl, month)
    live["first"], live["last"] = _times(live["first_sent"]), _times(live["last_sent"])
    live["workers"] = control.workers(nl, month)
    live["resending"] = _resend_running(month)
    return live


_CONTROLS = {"pause": (control.pause, "paused"), "resume": (control.resume, "resumed"),
             "cancel": (control.cancel, "cancelled")}


@blueprint.route("/editions/<month>/send/<verb>", methods=["GET", "POST"])
@requires()
def steer(db: Session, month: str, verb: str) -> ResponseReturnValue:
    """Pause, resume, cancel (cancel asks to confirm first: its GET is that question)."""
    if verb not in _CONTROLS:
        abort(404)
    edition = _edition(db, month)
    if request.method == "GET":
        if verb != "cancel":
            return redirect(url_for("admin.watch", month=edition.month))
        return _page("admin/send_cancel.html", edition=edition)
    action, done = _CONTROLS[verb]
    try:
        before = action(newsletter(), edition.month)
    except NewsletterError as err:
        flash(f"Not {done}: {err}.")
    else:
        _audit(db, f"send.{verb}", month=edition.month, before=before.value)
        flash(f"The {edition.month} send is {done} (it was {before.value})."
              + (" A running send stops after its current batch." if verb != "resume" else
                 " A running scheduler continues it at its next poll; otherwise run "
                 f"`newsletter send {edition.month}`."))
    return redirect(url_for("admin.watch", month=edition.month))


@blueprint.route("/editions/<month>/report")
@requires()
def report(db: Session, month: str) -> ResponseReturnValue:
    edition, page = _edition(db, month), page_number()
    document = status_document(newsletter(), edition.month, deliveries=False, rejected=True,
                               attention_offset=(page - 1) * PER_PAGE, attention_limit=PER_PAGE)
    first, last = first_and_last_sent(newsletter(), edition.month)
    seconds = (last - first).total_seconds() if first and last else 0.0
    pages = page_count(document["attention_total"], PER_PAGE)
    return _page("admin/report.html", edition=edition, doc=document, page=page, pages=pages,
                 first=_times(first), last=_times(last),
                 rate=document["counts"]["sent"] / seconds if seconds else None,
                 resending=_resend_running(edition.month))


def _resend_running(month: str) -> bool:
    thread = current_app.extensions.get(_RESENDS, {}).get(month)
    return thread is not None and thread.is_alive()


def _resend(nl: Newsletter, month: str) -> None:
    """`newsletter send MONTH --resend-uncertain`, in a thread of the web process."""
    try:
        send_edition(nl, month, resend_uncertain=True)
    except (SendInProgress, NewsletterError, ConfigError):
        current_app.logger.exception("%s: resend to uncertain recipients failed", month)


@blueprint.route("/editions/<month>/report/resend-uncertain", methods=["POST"])
@requires()
def resend_uncertain(db: Session, month: str) -> ResponseReturnValue:
    """Sends to the uncertain recipients in the background (a send takes longer than a request);
    refused while any send of the edition is running here or elsewhere."""
    edition, nl = _edition(db, month), newsletter()
    with db.no_autoflush:
        running = ledger.live_run_ids(db, edition.id, utcnow())
    if _resend_running(edition.month) or running:
        flash("Not started: a send of this edition is running; try again when it has ended.")
        return redirect(url_for("admin.report", month=edition.month))
    if edition.status in (EditionStatus.PAUSED, EditionStatus.CANCELLED):
        flash(f"Not started: the edition is {edition.status.value}.")
        return redirect(url_for("admin.report", month=edition.month))
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def run() -> None:
        with app.app_context():
            _resend(nl, edition.month)

    thread = threading.Thread(target=run, name=f"resend-{edition.month}", daemon=True)
    app.extensions.setdefault(_RESENDS, {})[edition.month] = thread
    thread.start()
    _audit(db, "send.resend_uncertain", month=edition.month)
    flash("Sending to the uncertain recipients has started; watch it below.")
    return redirect(url_for("admin.watch", month=edition.month))
