"""The subscriber pages: a Flask blueprint over `subscribers.flows`. Parses forms, renders pages.

    GET  /subscribe                 the signup form
    POST /subscribe                 → 303 /subscribe/check-your-inbox, whatever the address,
                                    in the same time: the address's work is deferred
    GET  /confirm/<token>           a page with one button: never confirms by itself
    POST /confirm/<token>           activates the subscription (the page's button, CSRF)
    GET  /preferences/<token>       the preference centre; POST changes name/topics, pauses,
                                    resumes, resubscribes or unsubscribes (CSRF-protected)
    GET  /u/<token>                 a page with one button: never unsubscribes by itself
    POST /u/<token>                 unsubscribes: the page's button (CSRF) or RFC 8058 one-click
                                    (`List-Unsubscribe=One-Click`, no CSRF), answers 200
    GET  /healthz                   200 when the store answers
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from newsletter.context import Newsletter
from newsletter.domain import Named
from newsletter.errors import ContentErrors
from newsletter.web.security import check_csrf, csrf_exempt
from subscribers.addresses import address_hash
from subscribers.flows import MAX_NAME_LENGTH, Flows, StaleConfirmation, SubscriberView, Unsubscribed
from subscribers.models import SubscriberStatus
from subscribers.ratelimit import SlidingWindowLimiter

from ..tokens import InvalidToken, Purpose

__all__ = ["blueprint"]

log = logging.getLogger(__name__)

blueprint = Blueprint("subscribers", __name__)
ONE_CLICK = ("List-Unsubscribe", "One-Click")
MAX_EMAIL_FIELD = 320
MAX_TOPIC_FIELDS = 100
NOTICES = {
    "saved": "Your preferences are saved.",
    "paused": "Emails are paused. Your topics are kept: choose “Resume emails” to start again.",
    "resumed": "Emails are on again, with your topics as they were.",
    "resubscribed": "Welcome back: you are subscribed again.",
}
SAVED_WHILE_PAUSED = "Your preferences are saved. Emails stay paused until you resume them."


@dataclass
class Site:
    """Per-app state: the flows and the signup rate limits (in-process; see ratelimit.py)."""

    flows: Flows
    per_client: SlidingWindowLimiter
    per_address: SlidingWindowLimiter


@blueprint.record_once
def _setup(state: BlueprintSetupState) -> None:
    app = state.app
    nl: Newsletter = app.extensions["newsletter"]
    window = float(nl.config.rate_limit_window_seconds)
    app.extensions["subscribers"] = Site(
        Flows(nl, defer=_defer),
        SlidingWindowLimiter(nl.config.rate_limit_per_client, window),
        SlidingWindowLimiter(nl.config.rate_limit_per_address, window))


def _site() -> Site:
    site: Site = current_app.extensions["subscribers"]
    return site


def _defer(job: Callable[[], None]) -> None:
    """Run beside the response, in a thread of its own (in production), or now (tests, CLI)."""
    if current_app.config.get("NEWSLETTER_MAIL_AFTER_RESPONSE"):
        threading.Thread(target=_logged(job), name="newsletter-subscriber-job", daemon=True).start()
    else:
        job()


def _logged(job: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        try:
            job()
        except Exception:
            logging.getLogger(__name__).exception("a deferred subscriber job (signup or email) failed")
    return run


# -- signup ------------------------------------------------------------------------------------

@blueprint.get("/subscribe")
def subscribe() -> Any:
    return _signup_page({}, {"topics_mode": "all"})


@blueprint.post("/subscribe")
def subscribe_post() -> Any:
    site = _site()
    client = request.remote_addr or ""
    verdict = site.per_client.hit(client)
    if not verdict.allowed:
        abort(429, description="Too many signups from your network. Please wait a while and try "
                               "again.", retry_after=int(verdict.retry_after) + 1)
    form = request.form
    email, name = form.get("email", ""), form.get("name", "")
    errors: dict[str, str] = {}
    topics = _topic_choice(errors)
    if len(email) > MAX_EMAIL_FIELD:
        errors["email"], email = "The address is too long.", ""
    try:
        address, name, topics = site.flows.validate(email, name, topics)
    except ContentErrors as err:
        errors = {**_field_errors(err), **errors}  # the form's own reading of a field wins
    if errors:
        return _signup_page(errors, form, status=400)
    if site.per_address.hit(address_hash(address)).allowed:
        site.flows.signup_validated(address, name, topics, client)
    else:  # the same hand-off as a signup, so the answer's timing does not tell either
        site.flows.defer(lambda: log.info("signup rate limit reached for one address: "
                                          "no email sent"))
    return redirect(url_for(".check_inbox"), code=303)


@blueprint.get("/subscribe/check-your-inbox")
def check_inbox() -> str:
    return render_template("web/check_inbox.html")


@blueprint.get("/confirm/<token>")
def confirm(token: str) -> Any:
    """Only a page (GET and HEAD alike): mail scanners follow links, and must not subscribe
    anyone. Someone already subscribed sees so, with no button."""
    flows = _site().flows
    try:
        view = flows.confirmation(token)
    except InvalidToken as err:
        return _bad_link(err)
    if view.suppressed or view.status is SubscriberStatus.ACTIVE:
        return _confirmed_page(flows, view, newly=False)
    return render_template("web/confirm.html", view=view,
                           topics=_topic_names(view, flows.topics()))


@blueprint.post("/confirm/<token>")
def confirm_post(token: str) -> Any:
    """The page's button (CSRF-checked by the app, like every form): activates and welcomes."""
    flows = _site().flows
    try:
        view, newly = flows.confirm(token, request.remote_addr or "")
    except InvalidToken as err:
        return _bad_link(err)
    return _confirmed_page(flows, view, newly=newly)


def _confirmed_page(flows: Flows, view: SubscriberView, *, newly: bool) -> Any:
    return render_template("web/confirmed.html", view=view, newly=newly,
                           topics=_topic_names(view, flows.topics()),
                           preferences_url=url_for(".preferences", token=flows.sign(
                               Purpose.PREFERENCES, view.uid)))


# -- preferences -------------------------------------------------------------------------------

@blueprint.get("/preferences/<token>")
def preferences(token: str) -> Any:
    flows = _site().flows
    try:
        view = flows.view(Purpose.PREFERENCES, token)
    except InvalidToken as err:
        return _bad_link(err)
    if view is None:
        return _bad_link(InvalidToken("this link is no longer valid"))
    form = {"name": view.name, "topics_mode": "all" if view.topics is None else "chosen",
            "topic": sorted(view.topics or ())}
    return _preferences_page(token, view, form, {},
                             notice=_notice(request.args.get("done", ""), view))


@blueprint.post("/preferences/<token>")
def preferences_post(token: str) -> Any:
    flows = _site().flows
    action = request.form.get("action", "save")
    try:
        view = flows.view(Purpose.PREFERENCES, token)
        if view is None:
            raise InvalidToken("this link is no longer valid")
        if action == "unsubscribe":
            flows.unsubscribe(flows.sign(Purpose.UNSUBSCRIBE, view.uid))
            return _unsubscribed_page(flows, view.uid, view.email, Unsubscribed.NOW)
        if action == "pause":
            flows.pause(token)
            return _back_to_preferences(token, "paused")
        if action == "resume":
            flows.resume(token)
            return _back_to_preferences(token, "resumed")
        if action == "resubscribe":
            flows.resubscribe(token, request.remote_addr or "")
            return _back_to_preferences(token, "resubscribed")
        if action != "save":
            abort(400)
        errors: dict[str, str] = {}
        topics = _topic_choice(errors)
        if not errors:
            try:
                flows.update_preferences(token, request.form.get("name", ""), topics)
                return _back_to_preferences(token, "saved")
            except ContentErrors as err:
                errors = _field_errors(err)
        return _preferences_page(token, view, request.form, errors, status=400)
    except InvalidToken as err:
        return _bad_link(err)


# -- unsubscribe -------------------------------------------------------------------------------

@blueprint.get("/u/<token>")
def unsubscribe(token: str) -> Any:
    """Only a page: mail scanners follow links, and must not unsubscribe anyone."""
    flows = _site().flows
    try:
        view = flows.view(Purpose.UNSUBSCRIBE, token)
    except InvalidToken as err:
        return _bad_link(err)
    if view is None or view.status not in (SubscriberStatus.ACTIVE, SubscriberStatus.UNCONFIRMED):
        return _unsubscribed_page(flows, view.uid if view else None, view.email if view else "",
                                  Unsubscribed.UNKNOWN if view is None else Unsubscribed.ALREADY)
    return render_template("web/unsubscribe.html", view=view, preferences_url=url_for(
        ".preferences", token=flows.sign(Purpose.PREFERENCES, view.uid)))


@blueprint.post("/u/<token>")
@csrf_exempt
def unsubscribe_post(token: str) -> Any:
    """RFC 8058: a POST with `List-Unsubscribe=One-Click` needs no CSRF token (the mail client
    sends it without cookies); the token in the URL is the authority. Anything else is the
    page's own form, which must carry its CSRF token."""
    one_click = request.form.get(ONE_CLICK[0]) == ONE_CLICK[1]
    if not one_click:
        check_csrf()
    flows = _site().flows
    try:
        view = flows.view(Purpose.UNSUBSCRIBE, token)
        outcome = flows.unsubscribe(token)
    except InvalidToken as err:
        return _bad_link(err)
    return _unsubscribed_page(flows, view.uid if view else None, view.email if view else "",
                              outcome)


# -- health ------------------------------------------------------------------------------------

@blueprint.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    nl: Newsletter = current_app.extensions["newsletter"]
    try:
        with nl.session() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        log.exception("health check: the store does not answer")
        return {"status": "unavailable"}, 503
    return {"status": "ok"}, 200


# -- helpers -----------------------------------------------------------------------------------

def _topic_choice(errors: dict[str, str]) -> frozenset[str] | None:
    """`All topics` (None) or the ticked ones; a form that says both is sent back to choose."""
    mode = request.form.get("topics_mode", "all")
    ticked = request.form.getlist("topic")
    if len(ticked) > MAX_TOPIC_FIELDS or any(len(t) > 100 for t in ticked):
        errors["topics"] = "Unknown topic."
        return None
    if mode == "all":
        if ticked:
            errors["topics"] = ("You chose “All topics” and also ticked some topics. Choose "
                                "“Only the topics I tick” to get just those, or untick them.")
        return None
    if mode != "chosen":
        errors["topics"] = "Choose “All topics” or “Only the topics I tick”."
        return None
    return frozenset(ticked)


def _field_errors(err: ContentErrors) -> dict[str, str]:
    errors: dict[str, str] = {}
    for problem in err.errors:
        reason = problem.reason[:1].upper() + problem.reason[1:]
        errors.setdefault(problem.field or "form", reason.rstrip(".") + ".")
    return errors


def _signup_page(errors: dict[str, str], form: Any, status: int = 200) -> Any:
    return render_template("web/subscribe.html", errors=errors, form=_form_values(form),
                           topics=_site().flows.topics(), max_name=MAX_NAME_LENGTH), status


def _preferences_page(token: str, view: SubscriberView, form: Any, errors: dict[str, str],
                      status: int = 200, notice: str | None = None) -> Any:
    flows = _site().flows
    topics = flows.topics()
    return render_template(
        "web/preferences.html", view=view, errors=errors, form=_form_values(form), topics=topics,
        current=_topic_names(view, topics), status_text=_status_text(view), notice=notice,
        max_name=MAX_NAME_LENGTH,
        action_url=url_for(".preferences_post", token=token)), status


def _form_values(form: Any) -> dict[str, Any]:
    """What to put back into the form: strings clipped, topics as a set."""
    def get(name: str) -> str:
        return str(form.get(name, "") or "")[:MAX_EMAIL_FIELD]
    ticked = form.getlist("topic") if hasattr(form, "getlist") else form.get("topic", [])
    return {"email": get("email"), "name": get("name"),
            "topics_mode": get("topics_mode") or "all", "topic": set(ticked[:MAX_TOPIC_FIELDS])}


def _topic_names(view: SubscriberView, topics: list[Named]) -> str:
    if view.topics is None:
        return "all topics, including topics added later"
    if view.has_no_topics:
        return "nothing: no topics are chosen. Choose some below and save."
    return ", ".join(t.name for t in topics if t.slug in view.topics)


def _status_text(view: SubscriberView) -> str:
    if view.suppressed:
        return "not receiving email (blocked)"
    if view.status is SubscriberStatus.UNCONFIRMED:
        return "waiting for you to confirm (see your inbox)"
    if view.status is not SubscriberStatus.ACTIVE:
        return view.status.value
    return f"paused since {_day(view.paused_since)}" if view.paused else "subscribed"


def _day(moment: datetime | None) -> str:
    """`3 March 2027`: unambiguous in every English-speaking country (the date is UTC's)."""
    return f"{moment.day} {moment:%B %Y}" if moment else ""


def _notice(done: str, view: SubscriberView) -> str | None:
    if done == "saved" and view.paused:
        return SAVED_WHILE_PAUSED
    return NOTICES.get(done)


def _back_to_preferences(token: str, done: str) -> Any:
    """Post/redirect/get, to our own page only: the target is built here, never taken from input."""
    return redirect(url_for(".preferences", token=token, done=done), code=303)


def _unsubscribed_page(flows: Flows, uid: str | None, email: str, outcome: Unsubscribed) -> Any:
    preferences_url = url_for(".preferences", token=flows.sign(Purpose.PREFERENCES, uid)) \
        if uid else None
    return render_template("web/unsubscribed.html", outcome=outcome.value, email=email,
                           preferences_url=preferences_url)


def _bad_link(err: InvalidToken) -> Any:
    return render_template("web/bad_link.html", expired=err.expired,
                           stale=isinstance(err, StaleConfirmation)), 400
