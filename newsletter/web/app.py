"""The Flask app factory: settings, security headers, CSRF, error pages and the blueprints.

Views live in blueprints (`web.signup` for signup, confirmation, preferences and unsubscribe;
the archive and provider webhooks later), registered in one place: `register_blueprints`.

Security headers and CSRF are in `security.py`, which imports no blueprint, so every blueprint
can use them. Request bodies are capped (MAX_CONTENT_LENGTH).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import secrets
from pathlib import Path

import jinja2
from flask import Flask, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.middleware.proxy_fix import ProxyFix

from ..config import load_config
from ..context import Newsletter
from ..errors import ConfigError
from ..mail.compose import branding_for
from ..paths import templates_dir
from .language import init_languages
from .security import CSRF_FIELD, csrf_protect, csrf_token, security_headers

__all__ = ["MAX_REQUEST_BYTES", "create_app", "register_blueprints"]

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 16 * 1024
ERROR_PAGES = {
    400: (_l("This request could not be used"), _l("Something in it was missing or not valid. "
          "Go back, reload the page and try again.")),
    404: (_l("Page not found"), _l("There is no page at this address.")),
    405: (_l("Not allowed here"), _l("This page cannot be used that way.")),
    413: (_l("Too much data"), _l("What was sent is larger than any of our forms accepts.")),
    429: (_l("Too many requests"), _l("Please wait a little and try again.")),
    500: (_l("Something went wrong on our side"), _l("Nothing was changed. Please try again "
                                                      "later.")),
}

def create_app(nl: Newsletter | None = None, *, testing: bool = False, proxy_fix: bool = True) -> Flask:
    """The public site for one newsletter (opened from the settings if not given).

    Refuses to start without NEWSLETTER_SECRET_KEY unless `testing`, where a random key is used.
    With `proxy_hops` set, ProxyFix reads X-Forwarded-For/-Proto; `proxy_fix=False` when the WSGI
    server already does (waitress under `newsletter serve`), so they are not applied twice.
    """
    if nl is None:
        nl = Newsletter.open(load_config())
        nl.require_ready()
    nl = _with_secret(nl, testing)
    keys = nl.config.secret_keys
    static = _first_dir(nl.config.templates_dir, "web/static")
    app = Flask("newsletter.web", static_folder=str(static), static_url_path="/static",
                template_folder=None)
    search = [nl.config.templates_dir] if nl.config.templates_dir else []
    app.jinja_loader = jinja2.FileSystemLoader([*search, str(templates_dir())])
    app.config.update(
        TESTING=testing,
        SECRET_KEY=_derive(keys[0]), SECRET_KEY_FALLBACKS=[_derive(k) for k in keys[1:]],
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES, MAX_FORM_MEMORY_SIZE=MAX_REQUEST_BYTES,
        MAX_FORM_PARTS=200,
        SESSION_COOKIE_NAME="nl_session", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=nl.config.base_url.startswith("https://") and not testing,
        # Emails go out after the response is sent, so response time says nothing about the address.
        NEWSLETTER_MAIL_AFTER_RESPONSE=not testing,
    )
    app.extensions["newsletter"] = nl
    branding = branding_for(nl)
    app.jinja_env.globals.update(site=branding, csrf_token=csrf_token, csrf_field=CSRF_FIELD)
    hops = nl.config.proxy_hops
    if hops > 0 and proxy_fix:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    app.after_request(security_headers)
    app.before_request(csrf_protect)
    init_languages(app)
    _install_error_pages(app)
    register_blueprints(app)
    if not any(rule.rule == "/" for rule in app.url_map.iter_rules()):
        app.add_url_rule("/", "home", lambda: redirect(url_for("subscribers.subscribe")))
    return app


def register_blueprints(app: Flask) -> None:
    """Every part of the public site. Add new blueprints (archive, webhooks) here."""
    from newsletter.web.admin import blueprint as admin_blueprint
    from newsletter.web.archive import archive_blueprint, front_blueprint
    from newsletter.web.redirect import redirect_blueprint
    from newsletter.web.signup import blueprint as subscribers_blueprint
    from newsletter.web.webhooks import webhooks_blueprint

    app.register_blueprint(subscribers_blueprint)
    app.register_blueprint(archive_blueprint)
    app.register_blueprint(front_blueprint)
    app.register_blueprint(redirect_blueprint)
    app.register_blueprint(webhooks_blueprint)
    app.register_blueprint(admin_blueprint)


def _install_error_pages(app: Flask) -> None:
    def http_error(error: HTTPException) -> tuple[str, int, list[tuple[str, str]]]:
        code = error.code or 500
        title, default = ERROR_PAGES.get(code, (error.name, ""))
        message = error.description if error.description != type(error).description else default
        headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
        return render_template("web/error.html", code=code, title=title, message=message), \
            code, headers

    def unexpected(error: Exception) -> tuple[str, int, list[tuple[str, str]]]:
        if isinstance(error, HTTPException):
            return http_error(error)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return http_error(InternalServerError())

    for code in ERROR_PAGES:
        app.register_error_handler(code, http_error)
    app.register_error_handler(Exception, unexpected)


# -- setup helpers -----------------------------------------------------------------------------

def _with_secret(nl: Newsletter, testing: bool) -> Newsletter:
    try:
        nl.config.secret_keys  # noqa: B018
    except ConfigError:
        if not testing:
            raise
        config = nl.config.with_overrides(secret_key=secrets.token_urlsafe(32))
        return dataclasses.replace(nl, config=config)
    return nl


def _derive(key: str) -> str:
    """The session cookie's key: derived, so a leaked cookie key cannot sign email links."""
    return hmac.new(key.encode("utf-8"), b"newsletter.web.session", hashlib.sha256).hexdigest()


def _first_dir(override: str, relative: str) -> Path:
    if override and (Path(override) / relative).is_dir():
        return Path(override) / relative
    return templates_dir() / relative
