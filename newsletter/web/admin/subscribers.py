"""Subscribers: search (address or name, status, 50 a page), one person's record (what
`subscribers show` prints), suppress and unsuppress with a reason, CSV import with a dry run,
export (owner) and erase (owner, password again). Every action calls `subscribers.admin` or
`newsletter.privacy`, as the CLI does, and is audited there.

The import's two steps: the uploaded file is kept on the server (a private folder, one file
named by a random token) and the token, the file's SHA-256 and the editor go in the signed
session; "Import N rows" re-reads that exact file, parses and decides it again against the
store as it is then, and writes. Nothing the browser sends (no count, no rows) is trusted, and
the editor does not have to pick the file twice. Staged files older than an hour are deleted.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from flask import Response, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.db.models import Topic
from newsletter.editors.models import Role
from newsletter.errors import ContentError, ContentErrors
from newsletter.feedback.history import history_in
from newsletter.privacy import describe_in, erase_in
from subscribers import admin
from subscribers.models import Subscriber

from ..security import check_csrf, csrf_exempt
from .auth import client_address, current_editor, requires
from .common import page_number, password_again
from .views import blueprint

PER_PAGE = 50
LAST_DELIVERIES = 24
LAST_EVENTS = 50
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
"""The console's cap (the CLI's is csv_io.MAX_CSV_BYTES): 300 000 rows of a typical list."""
UPLOAD_MARGIN = 64 * 1024
"""The multipart envelope around the file, so a file just over the cap gets its own message."""
FORM_MEMORY_BYTES = 1024 * 1024
"""The multipart parser's buffer (it reads 64 KB at a time; the app's 16 KB would refuse any
file); the other fields of this form are a few bytes."""
STAGED = "console_import"
STAGED_SECONDS = 3600
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
TOO_LARGE = f"The file is larger than {MAX_UPLOAD_BYTES >> 20} MB: split it and import each part."


@blueprint.route("/subscribers")
@requires()
def subscribers(db: Session) -> ResponseReturnValue:
    query, status, errors = request.args.get("q", ""), request.args.get("status", ""), {}
    if len(query) > admin.MAX_QUERY:
        errors["q"] = f"A search is at most {admin.MAX_QUERY} characters."
    if status not in ("", *admin.STATUS_FILTERS):
        errors["status"], status = "Choose one of the statuses in the list.", ""
    found = admin.search(db, "" if "q" in errors else query, status=status,
                         page=page_number(), per_page=PER_PAGE)
    return render_template("admin/subscribers.html", editor=current_editor(), found=found,
                           q=query[:1000], status=status, statuses=admin.STATUS_FILTERS,
                           errors=errors), 400 if errors else 200


def _subscriber(db: Session, subscriber_id: int) -> Subscriber:
    subscriber = db.get(Subscriber, subscriber_id)
    if subscriber is None:
        abort(404)
    return subscriber


def _record_page(db: Session, subscriber: Subscriber, errors: dict[str, str] | None = None,
                 reason: str = "") -> ResponseReturnValue:
    record = describe_in(db, subscriber.email, last_deliveries=LAST_DELIVERIES)
    assert record is not None  # the subscriber exists
    names: dict[str, str] = {slug: name for slug, name in db.execute(select(Topic.slug, Topic.name))}
    return render_template(
        "admin/subscriber.html", editor=current_editor(), subscriber=subscriber, record=record,
        person=record["subscriber"], suppression=record["suppression"],
        events=history_in(db, subscriber.email, last=LAST_EVENTS), topic_names=names,
        shown=admin.shown_status(subscriber.status, subscriber.paused_at), errors=errors or {},
        reason=reason[:1000], max_reason=admin.MAX_REASON), 400 if errors else 200


@blueprint.route("/subscribers/<int:subscriber_id>")
@requires()
def subscriber(db: Session, subscriber_id: int) -> ResponseReturnValue:
    return _record_page(db, _subscriber(db, subscriber_id))


def _change_suppression(db: Session, subscriber_id: int, action: str) -> ResponseReturnValue:
    target, reason = _subscriber(db, subscriber_id), request.form.get("reason", "")
    change = admin.suppress if action == "suppress" else admin.unsuppress
    try:
        change(db, target.email, reason, actor=current_editor().email, client=client_address())
    except ContentError as err:
        return _record_page(db, target, {err.field or "reason": err.reason.capitalize() + "."},
                            reason)
    flash("Suppressed: no edition or mail goes to this address." if action == "suppress"
          else "No longer suppressed; the subscriber's status is as it was.")
    return redirect(url_for("admin.subscriber", subscriber_id=subscriber_id))


@blueprint.route("/subscribers/<int:subscriber_id>/suppress", methods=["POST"])
@requires()
def subscriber_suppress(db: Session, subscriber_id: int) -> ResponseReturnValue:
    return _change_suppression(db, subscriber_id, "suppress")


@blueprint.route("/subscribers/<int:subscriber_id>/unsuppress", methods=["POST"])
@requires()
def subscriber_unsuppress(db: Session, subscriber_id: int) -> ResponseReturnValue:
    return _change_suppression(db, subscriber_id, "unsuppress")


@blueprint.route("/subscribers/<int:subscriber_id>/erase", methods=["POST"])
@requires(Role.OWNER)
def subscriber_erase(db: Session, subscriber_id: int) -> ResponseReturnValue:
    target = _subscriber(db, subscriber_id)
    if not password_again(current_editor()):
        return _record_page(db, target, {"current": "Your password is not right."})
    erase_in(db, target.email, actor=current_editor().email, client=client_address())
    flash("Erased: everything held about this person is deleted; only a hash of the address is "
          "kept, so they are never mailed again.")
    return redirect(url_for("admin.subscribers"))


@blueprint.route("/subscribers/export", methods=["POST"])
@requires(Role.OWNER)
def subscribers_export(db: Session) -> ResponseReturnValue:
    text = admin.export_csv(db, actor=current_editor().email, client=client_address())
    name = f"subscribers-{date.today().isoformat()}.csv"
    return Response(text, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


# -- import: upload and dry run, then write ----------------------------------------------------

def _large_upload(view: Callable[..., Any]) -> Callable[..., Any]:
    """This one form may carry a file up to MAX_UPLOAD_BYTES (the app caps bodies at 16 KB), so
    it checks CSRF itself once the limit is raised; a body over the cap is not read at all (the
    view answers 413 with the message next to the field)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.upload_too_large = False
        if request.method == "POST":
            limit = MAX_UPLOAD_BYTES + UPLOAD_MARGIN
            if (request.content_length or 0) > limit:
                g.upload_too_large = True
            else:
                request.max_content_length = limit
                request.max_form_memory_size = FORM_MEMORY_BYTES
                check_csrf()
        return view(*args, **kwargs)

    return csrf_exempt(wrapper)


def _staging() -> Path:
    folder = Path(current_app.config.get("CONSOLE_IMPORT_DIR") or os.path.join(
        tempfile.gettempdir(), f"newsletter-imports-{os.getuid()}"))
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    cutoff = time.time() - STAGED_SECONDS
    for old in folder.glob("*.csv"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
    return folder


def _display_name(raw: str | None) -> str:
    name = " ".join((raw or "").replace("\\", "/").rsplit("/", 1)[-1].split())
    return "".join(c for c in name if c.isprintable())[:100] or "upload.csv"


def _import_form(errors: dict[str, str], code: int = 400,
                 problems: list[ContentError] | None = None) -> ResponseReturnValue:
    return render_template("admin/subscriber_import.html", editor=current_editor(),
                           errors=errors, problems=problems or [], outcome=None,
                           max_mb=MAX_UPLOAD_BYTES >> 20), code


@blueprint.route("/subscribers/import", methods=["GET", "POST"])
@_large_upload
@requires()
def subscribers_import(db: Session) -> ResponseReturnValue:
    if request.method == "GET":
        return _import_form({}, 200)
    if g.upload_too_large:
        return _import_form({"file": TOO_LARGE}, 413)
    upload = request.files.get("file")
    data = b""
    if upload is not None:
        try:
            data = upload.read(MAX_UPLOAD_BYTES + 1)
        finally:  # a large upload is a temporary file: closed now, not at collection
            upload.close()
    if not data:
        return _import_form({"file": "Choose a CSV file (columns email,name,topics,language)."})
    if len(data) > MAX_UPLOAD_BYTES:
        return _import_form({"file": TOO_LARGE}, 413)
    name = _display_name(upload.filename if upload is not None else "")
    try:
        outcome = admin.import_csv(db, data, name, dry_run=True, actor=current_editor().email)
    except ContentErrors as err:
        return _import_form({"file": "This file cannot be imported: " + "; ".join(
            e.reason for e in err.errors)}, problems=err.errors)
    token = secrets.token_urlsafe(24)
    (_staging() / f"{token}.csv").write_bytes(data)
    session[STAGED] = {"token": token, "sha256": hashlib.sha256(data).hexdigest(), "name": name,
                       "editor": current_editor().id, "at": time.time()}
    return render_template("admin/subscriber_import.html", editor=current_editor(), errors={},
                           problems=outcome.problems, outcome=outcome, name=name,
                           max_mb=MAX_UPLOAD_BYTES >> 20)


def _staged_file() -> tuple[bytes, str] | None:
    """The file this editor checked in this browser session, unchanged, or None."""
    mark = session.get(STAGED)
    if not isinstance(mark, dict) or mark.get("editor") != current_editor().id \
            or time.time() - float(mark.get("at", 0)) > STAGED_SECONDS \
            or not _TOKEN.fullmatch(str(mark.get("token", ""))):
        return None
    path = _staging() / f"{mark['token']}.csv"
    try:
        data = path.read_bytes()
    except OSError:
        return None
    path.unlink(missing_ok=True)
    if not secrets.compare_digest(hashlib.sha256(data).hexdigest(), str(mark.get("sha256"))):
        return None
    return data, str(mark.get("name", "upload.csv"))


@blueprint.route("/subscribers/import/confirm", methods=["POST"])
@requires()
def subscribers_import_confirm(db: Session) -> ResponseReturnValue:
    staged = _staged_file()
    session.pop(STAGED, None)
    if staged is None:
        flash("Nothing was imported: that check is over an hour old or was already imported. "
              "Upload the file again.")
        return redirect(url_for("admin.subscribers_import"))
    data, name = staged
    try:
        outcome = admin.import_csv(db, data, name, dry_run=False, actor=current_editor().email,
                                   client=client_address())
    except ContentErrors:  # the topics changed between the two steps
        flash("Nothing was imported: the file no longer passes the checks. Upload it again.")
        return redirect(url_for("admin.subscribers_import"))
    report = outcome.report
    skipped = sum(len(lines) for lines in report.skipped.values())
    flash(f"Imported {name}: {report.added} added, {report.updated} updated, "
          f"{report.unchanged} unchanged, {skipped} skipped, {len(outcome.problems)} invalid "
          "rows not imported.")
    return redirect(url_for("admin.subscribers"))
