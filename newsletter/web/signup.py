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
import math
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
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from newsletter.archive.site import logo
from newsletter.context import Newsletter
from newsletter.domain import Named
from newsletter.errors import ContentError, ContentErrors
from newsletter.i18n import DEFAULT_LANGUAGE, format_date, negotiate, normalise_language
from newsletter.mail.compose import branding_for
from newsletter.web.language import page_language, use_language
from newsletter.web.security import check_csrf, csrf_exempt
from subscribers.addresses import address_hash
from subscribers.flows import (
    MAX_NAME_LENGTH,
    Flows,
    StaleConfirmation,
    SubscriberView,
    Unsubscribed,
    check_language,
)
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
    "saved": _l("Your preferences are saved."),
    "paused": _l("Emails are paused. Your topics are kept: choose “Resume emails” to start "
                 "again."),
    "resumed": _l("Emails are on again, with your topics as they were."),
    "resubscribed": _l("Welcome back: you are subscribed again."),
}
SAVED_WHILE_PAUSED = _l("Your preferences are saved. Emails stay paused until you resume them.")
# The library's reasons, in the reader's language; a reason with no entry is shown as it is.
REASONS = (
    ("name", "the name cannot contain line breaks",
     _l("The name cannot contain line breaks or control characters.")),
    ("name", "the name is longer than", _l("The name is too long.")),
    ("name", "the name cannot contain a web address", _l("The name cannot contain a web address.")),
    ("name", "the name cannot contain an encoded word",
     _l("The name cannot contain an encoded word (=?…?=), which mail programs decode.")),
    ("topics", "choose at least one topic", _l("Choose at least one topic, or all topics.")),
    ("topics", "unknown topic", _l("Unknown topic.")),
    ("language", "unknown language", _l("Choose one of the languages offered.")),
)
EMAIL_REASON = _l("This is not an email address we can use. Check it and try again.")


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


@blueprint.app_context_processor
def _frame_values() -> dict[str, Any]:
    """What the shared frame needs on every page of the app: the optional masthead logo."""
    nl: Newsletter = current_app.extensions["newsletter"]
    return {"logo": logo(branding_for(nl))}


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
    """The form; `?email=` (the archive's subscribe box) fills in the address, nothing more."""
    return _signup_page({}, {"email": request.args.get("email", ""), "topics_mode": "all",
                             "language": page_language()})


@blueprint.post("/subscribe")
def subscribe_post() -> Any:
    """Only an accepted signup counts towards the network's limit: a typo sent back with its
    error costs nothing, and the limit's page keeps what was typed and says how long to wait."""
    site = _site()
    client = request.remote_addr or ""
    form = request.form
    email, name = form.get("email", ""), form.get("name", "")
    errors: dict[str, str] = {}
    topics = _topic_choice(errors)
    if len(email) > MAX_EMAIL_FIELD:
        errors["email"], email = gettext("The address is too long."), ""
    language = _language_choice(errors)
    try:
        address, name, topics = site.flows.validate(email, name, topics)
    except ContentErrors as err:
        errors = {**_field_errors(err), **errors}  # the form's own reading of a field wins
    if errors:
        return _signup_page(errors, form, status=400)
    verdict = site.per_client.check(client)
    if not verdict.allowed:
        wait = max(1, math.ceil(verdict.retry_after))
        page, status = _signup_page({}, form, status=429, wait=_too_many(wait))
        return page, status, {"Retry-After": str(wait)}
    site.per_client.record(client)
    if site.per_address.hit(address_hash(address)).allowed:
        site.flows.signup_validated(address, name, topics, client, language=language)
    else:  # the same hand-off as a signup, so the answer's timing does not tell either
        site.flows.defer(lambda: log.info("signup rate limit reached for one address: "
                                          "no email sent"))
    negotiated = negotiate(request.headers.get("Accept-Language"))
    return redirect(url_for(".check_inbox", lang=None if language == negotiated else language),
                    code=303)


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
    use_language(view.language)
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
    use_language(view.language)
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
    use_language(view.language)
    form = {"name": view.name, "topics_mode": "all" if view.topics is None else "chosen",
            "topic": sorted(view.topics or ()), "language": view.language}
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
        use_language(view.language)
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
        language = _language_choice(errors, default=view.language)
        if not errors:
            try:
                flows.update_preferences(token, request.form.get("name", ""), topics, language)
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
    if view is not None:
        use_language(view.language)
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
        use_language(view.language if view else None)
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

def _too_many(wait_seconds: int) -> str:
    if wait_seconds >= 60:
        minutes = math.ceil(wait_seconds / 60)
        wait = ngettext("%(num)s minute", "%(num)s minutes", minutes)
    else:
        wait = ngettext("%(num)s second", "%(num)s seconds", wait_seconds)
    return gettext("Many people on your network have signed up in the last hour. Please wait "
                   "%(wait)s and press Subscribe again: what you typed is kept below.", wait=wait)


def _language_choice(errors: dict[str, str], default: str | None = None) -> str:
    """The language the form chose (the page's own when it chose none)."""
    try:
        return check_language(request.form.get("language") or default or page_language())
    except ContentError:
        errors["language"] = gettext("Choose one of the languages offered.")
        return page_language()


def _topic_choice(errors: dict[str, str]) -> frozenset[str] | None:
    """`All topics` (None) or the ticked ones. Ticked topics mean chosen topics, whatever the
    radio says: ticking is the clearer act, and people tick without touching the radio."""
    mode = request.form.get("topics_mode", "all")
    ticked = request.form.getlist("topic")
    if len(ticked) > MAX_TOPIC_FIELDS or any(len(t) > 100 for t in ticked):
        errors["topics"] = "Unknown topic."
        return None
    if ticked:
        return frozenset(ticked)
    if mode == "all":
        return None
    if mode != "chosen":
        errors["topics"] = "Choose “All topics” or “Only the topics I tick”."
        return None
    return frozenset(ticked)


def _field_errors(err: ContentErrors) -> dict[str, str]:
    errors: dict[str, str] = {}
    for problem in err.errors:
        errors.setdefault(problem.field or "form", _reason(problem))
    return errors


def _reason(problem: ContentError) -> str:
    """The library's reason in the page's language: English as the library wrote it (it may
    name the very character or topic), another language from REASONS."""
    if page_language() == DEFAULT_LANGUAGE:
        reason = problem.reason[:1].upper() + problem.reason[1:]
        return reason.rstrip(".") + "."
    if problem.field == "email":
        return str(EMAIL_REASON)
    for field, start, translated in REASONS:
        if problem.field == field and problem.reason.startswith(start):
            return str(translated)
    return problem.reason


def _signup_page(errors: dict[str, str], form: Any, status: int = 200, wait: str = "") -> Any:
    return render_template("web/subscribe.html", errors=errors, form=_form_values(form),
                           topics=_site().flows.topics(), max_name=MAX_NAME_LENGTH,
                           wait=wait), status


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
    mode = "chosen" if ticked else get("topics_mode") or "all"
    return {"email": get("email"), "name": get("name"), "topics_mode": mode,
            "topic": set(ticked[:MAX_TOPIC_FIELDS]),
            "language": normalise_language(get("language")) or page_language()}


def _topic_names(view: SubscriberView, topics: list[Named]) -> str:
    if view.topics is None:
        return gettext("all topics, including topics added later")
    if view.has_no_topics:
        return gettext("nothing: no topics are chosen. Choose some below and save.")
    return ", ".join(t.name for t in topics if t.slug in view.topics)


STATUS_WORDS = {SubscriberStatus.UNSUBSCRIBED: _l("unsubscribed"),
                SubscriberStatus.BOUNCED: _l("bounced"),
                SubscriberStatus.COMPLAINED: _l("complained")}


def _status_text(view: SubscriberView) -> str:
    if view.suppressed:
        return gettext("not receiving email (blocked)")
    if view.status is SubscriberStatus.UNCONFIRMED:
        return gettext("waiting for you to confirm (see your inbox)")
    if view.status is not SubscriberStatus.ACTIVE:
        return str(STATUS_WORDS.get(view.status, view.status.value))
    if view.paused:
        return gettext("paused since %(day)s", day=_day(view.paused_since))
    return gettext("subscribed")


def _day(moment: datetime | None) -> str:
    """`3 March 2027` / `3 mars 2027`, by Babel in the page's language (the date is UTC's)."""
    return format_date(moment, page_language(), "d MMMM y") if moment else ""


def _notice(done: str, view: SubscriberView) -> str | None:
    if done == "saved" and view.paused:
        return str(SAVED_WHILE_PAUSED)
    return str(NOTICES[done]) if done in NOTICES else None


def _back_to_preferences(token: str, done: str) -> Any:
    """Post/redirect/get, to our own page only: the target is built here, never taken from input
    (the page speaks the language just saved, since it is the subscriber's)."""
    return redirect(url_for(".preferences", token=token, done=done), code=303)


def _unsubscribed_page(flows: Flows, uid: str | None, email: str, outcome: Unsubscribed) -> Any:
    preferences_url = url_for(".preferences", token=flows.sign(Purpose.PREFERENCES, uid)) \
        if uid else None
    return render_template("web/unsubscribed.html", outcome=outcome.value, email=email,
                           preferences_url=preferences_url)


def _bad_link(err: InvalidToken) -> Any:
    return render_template("web/bad_link.html", expired=err.expired,
                           stale=isinstance(err, StaleConfirmation)), 400
