"""The console's pages: sign-in (password, then code), sign-out, home (sessions, password, 2FA),
editors (owner) and the audit log. English only for now."""

from __future__ import annotations

import time

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from newsletter.editors import accounts, audit, sessions
from newsletter.editors.accounts import EditorError
from newsletter.editors.models import Editor, Role
from newsletter.editors.passwords import MAX_LENGTH, MIN_LENGTH, verify_password
from newsletter.editors.totp import new_secret, provisioning_uri

from ..security import CSRF_FIELD
from .auth import (
    clear_session_cookie,
    client_address,
    current_editor,
    current_session,
    limits,
    newsletter,
    public,
    requires,
    secret_box,
    set_session_cookie,
)

blueprint = Blueprint("admin", __name__, url_prefix="/admin")

PENDING = "console_pending"
"""The signed-session mark of a password accepted, waiting for its code: editor id and time."""
PENDING_SECONDS = 300
SETUP = "console_totp_setup"
"""A new TOTP secret being set up, sealed, until the editor proves a code from it."""
WRONG_LOGIN = "The email or password is not right."
WRONG_CODE = "That code is not right, or it was already used."
PER_PAGE = 50


def _too_many(wait: float) -> str:
    return f"Too many attempts. Wait {max(1, round(wait / 60))} minutes and try again."


def _fresh_browser_session() -> None:
    """New sign-in, new CSRF token: a token planted before sign-in is worth nothing after."""
    session.pop(CSRF_FIELD, None)
    session.pop(PENDING, None)
    session.pop(SETUP, None)


def _start(db: Session, editor: Editor, method: str) -> ResponseReturnValue:
    require = newsletter().config.console_require_2fa == 1
    setup_only = require and not editor.has_second_factor
    token = sessions.create(db, editor, client=client_address(),
                            user_agent=request.headers.get("User-Agent", ""), setup_only=setup_only)
    audit.record(db, "login.ok", actor=editor.email, client=client_address(),
                 detail={"method": method})
    _fresh_browser_session()
    target = url_for("admin.second_factor") if setup_only else url_for("admin.home")
    return set_session_cookie(redirect(target), token)


@blueprint.route("/login", methods=["GET", "POST"])
@public
def login() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("admin/login.html", email="", error="")
    email = request.form.get("email", "")[:320].strip()
    password = request.form.get("password", "")
    client = client_address()
    wait = limits().blocked(email, client)
    if wait:
        with newsletter().session() as db:
            audit.record(db, "login.limited", actor=email or "-", client=client)
        return render_template("admin/login.html", email=email, error=_too_many(wait)), 429
    with newsletter().session() as db:
        editor = accounts.authenticate(db, email, password)
        if editor is None:
            audit.record(db, "login.failed", actor=email or "-", client=client,
                         detail={"step": "password"})
        elif editor.has_second_factor:
            session[PENDING] = {"editor": editor.id, "at": time.time()}
            return redirect(url_for("admin.code"))
        else:
            return _start(db, editor, "password")
    limits().failed(email, client)
    return render_template("admin/login.html", email=email, error=WRONG_LOGIN), 401


def _pending(db: Session) -> Editor | None:
    mark = session.get(PENDING)
    if not isinstance(mark, dict) or time.time() - float(mark.get("at", 0)) > PENDING_SECONDS:
        return None
    editor = db.get(Editor, mark.get("editor"))
    return editor if editor is not None and editor.disabled_at is None else None


@blueprint.route("/login/code", methods=["GET", "POST"])
@public
def code() -> ResponseReturnValue:
    client = client_address()
    with newsletter().session() as db:
        editor = _pending(db)
        if editor is None:
            session.pop(PENDING, None)
            return redirect(url_for("admin.login"))
        if request.method == "GET":
            return render_template("admin/code.html", error="")
        wait = limits().blocked(editor.email, client)
        if wait:
            audit.record(db, "login.limited", actor=editor.email, client=client,
                         detail={"step": "code"})
            return render_template("admin/code.html", error=_too_many(wait)), 429
        method = accounts.check_second_factor(db, editor, request.form.get("code", "")[:64],
                                              secret_box())
        if method is not None:
            return _start(db, editor, method)
        audit.record(db, "login.failed", actor=editor.email, client=client, detail={"step": "code"})
        email = editor.email
    limits().failed(email, client)
    return render_template("admin/code.html", error=WRONG_CODE), 401


@blueprint.route("/logout", methods=["POST"])
@requires(during_setup=True)
def logout(db: Session) -> ResponseReturnValue:
    sessions.revoke(db, current_editor().id, current_session().id)
    audit.record(db, "logout", actor=current_editor().email, client=client_address())
    return clear_session_cookie(redirect(url_for("admin.login")))


@blueprint.route("/")
@requires()
def home(db: Session) -> ResponseReturnValue:
    editor = current_editor()
    return render_template("admin/home.html", editor=editor, this=current_session(),
                           sessions=sessions.of_editor(db, editor.id))


@blueprint.route("/sessions/<int:session_id>/revoke", methods=["POST"])
@requires()
def revoke_session(db: Session, session_id: int) -> ResponseReturnValue:
    editor = current_editor()
    if not sessions.revoke(db, editor.id, session_id):
        abort(404)
    audit.record(db, "session.revoke", actor=editor.email, client=client_address(),
                 detail={"session": session_id})
    if session_id == current_session().id:
        return clear_session_cookie(redirect(url_for("admin.login")))
    if request.headers.get("HX-Request") == "true":
        return ""  # htmx swaps the row out
    flash("The session was ended.")
    return redirect(url_for("admin.home"))


@blueprint.route("/password", methods=["GET", "POST"])
@requires()
def password(db: Session) -> ResponseReturnValue:
    editor, errors = current_editor(), {}
    if request.method == "POST":
        new, again = request.form.get("new", ""), request.form.get("again", "")
        if new != again:
            errors["again"] = "The two new passwords are not the same."
        else:
            try:
                ended = accounts.change_password(
                    db, editor, current=request.form.get("current", ""), new=new,
                    keep_session=current_session().id, client=client_address())
            except EditorError as err:
                errors["current" if err.field == "current" else "new"] = err.reason.capitalize() + "."
            else:
                flash(f"Your password is changed; {ended} other session(s) ended.")
                return redirect(url_for("admin.home"))
    return render_template("admin/password.html", errors=errors, min_length=MIN_LENGTH,
                           max_length=MAX_LENGTH), 400 if errors else 200


@blueprint.route("/2fa", methods=["GET", "POST"])
@requires(during_setup=True)
def second_factor(db: Session) -> ResponseReturnValue:
    editor, box, errors = current_editor(), secret_box(), {}
    sealed = session.get(SETUP)
    if request.method == "GET" or not isinstance(sealed, str):
        secret = new_secret()
        session[SETUP] = box.seal(secret)
    else:
        secret = box.open(sealed)
        if not verify_password(editor.password_hash, request.form.get("current", "")):
            errors["current"] = "The current password is not right."
        else:
            try:
                done = accounts.enable_second_factor(
                    db, editor, secret=secret, code=request.form.get("code", "")[:64], box=box,
                    keep_session=current_session().id, client=client_address())
            except EditorError as err:
                errors["code"] = err.reason.capitalize() + "."
            else:
                session.pop(SETUP, None)
                current_session().setup_only = False
                return render_template("admin/recovery_codes.html", codes=done.recovery_codes,
                                       ended=done.sessions_ended)
    return render_template("admin/second_factor.html", errors=errors, secret=secret,
                           uri=provisioning_uri(secret, editor.email), editor=editor,
                           required=current_session().setup_only), 400 if errors else 200


@blueprint.route("/editors", methods=["GET", "POST"])
@requires(Role.OWNER)
def editors(db: Session) -> ResponseReturnValue:
    owner, errors, form = current_editor(), {}, {"email": "", "name": "", "role": "editor"}
    if request.method == "POST":
        form = {k: request.form.get(k, "")[:320] for k in form}
        if not verify_password(owner.password_hash, request.form.get("current", "")):
            errors["current"] = "Your password is not right."
        else:
            try:
                role = Role(form["role"])
                accounts.add_editor(db, form["email"], name=form["name"],
                                    password=request.form.get("password", ""), role=role,
                                    actor=owner.email, client=client_address())
            except ValueError:
                errors["role"] = "Choose owner or editor."
            except EditorError as err:
                errors[err.field or "email"] = err.reason.capitalize() + "."
            else:
                flash(f"{form['email']} can now sign in.")
                return redirect(url_for("admin.editors"))
    return render_template("admin/editors.html", editors=accounts.list_editors(db),
                           errors=errors, form=form), 400 if errors else 200


@blueprint.route("/editors/<int:editor_id>/remove", methods=["POST"])
@requires(Role.OWNER)
def remove_editor(db: Session, editor_id: int) -> ResponseReturnValue:
    owner, target = current_editor(), db.get(Editor, editor_id)
    if target is None or target.disabled_at is not None:
        abort(404)
    if not verify_password(owner.password_hash, request.form.get("current", "")):
        flash("Not removed: your password is not right.")
        return redirect(url_for("admin.editors"))
    try:
        accounts.remove_editor(db, target.email, actor=owner.email, client=client_address())
    except EditorError as err:
        flash(f"Not removed: {err.reason}.")
    return redirect(url_for("admin.editors"))


@blueprint.route("/audit")
@requires(Role.OWNER)
def audit_log(db: Session) -> ResponseReturnValue:
    """Filtered by area (`action`, one of audit.ACTION_PREFIXES) and `actor`; anything else in
    those fields is ignored with a message next to it (400), not queried."""
    page = request.args.get("page", "1")
    number = int(page) if page.isdigit() and len(page) < 7 else 1
    action, actor = request.args.get("action", "")[:20], request.args.get("actor", "")[:320].strip()
    errors = {}
    if action and action not in audit.ACTION_PREFIXES:
        errors["action"], action = "Choose one of the areas in the list.", ""
    if len(actor) > 254:
        errors["actor"] = "An address is at most 254 characters."
    log = audit.entries(db, page=number, per_page=PER_PAGE, action=action,
                        actor="" if "actor" in errors else actor)
    return render_template("admin/audit.html", log=log, action=action, actor=actor,
                           areas=audit.ACTION_PREFIXES, errors=errors,
                           lines=audit.detail_lines), 400 if errors else 200
