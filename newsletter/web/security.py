"""Security for every response and every POST, apart from any blueprint so that all can use it.

Every response: a strict Content-Security-Policy (no script, no inline style, no framing; the
console under /admin may run this site's own scripts, `CONSOLE_CSP`),
X-Frame-Options, Referrer-Policy `no-referrer` (links carry tokens), nosniff, `Cache-Control:
no-store` on pages, and HSTS when the request came over https.

CSRF: every POST must carry the `csrf_token` form field, equal to the random value kept in the
signed session cookie (itsdangerous, keyed from NEWSLETTER_SECRET_KEY), or the same value in
the `X-CSRF-Token` header (htmx requests). A view that must accept a
POST without it (RFC 8058 one-click unsubscribe) is marked `@csrf_exempt` and checks for itself.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Response, abort, current_app, request, session
from flask_babel import gettext

__all__ = ["CONSOLE_CSP", "CSRF_FIELD", "CSRF_HEADER", "check_csrf", "csrf_exempt", "csrf_protect",
           "csrf_token", "image_sources", "security_headers", "with_image_sources"]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
"""Where an htmx request (which sends no form field of its own) carries the same token."""
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
CONSOLE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
               "connect-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; "
               "base-uri 'none'")
"""The editors' console (/admin) runs the shipped htmx and frames its own previews (each with
its own sandboxing CSP); the public pages still run no script."""
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}
F = TypeVar("F", bound=Callable[..., Any])


def csrf_token() -> str:
    """The value every form of this browser session carries (set on first use)."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return str(session[CSRF_FIELD])


def check_csrf() -> None:
    """400 unless the form's token matches the session's, compared in constant time."""
    expected = session.get(CSRF_FIELD)
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
    if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, description=gettext("This form has expired or did not come from this site. "
                                       "Reload the page and send it again."))


def csrf_exempt(view: F) -> F:
    """Mark a view that checks CSRF itself (or must accept a POST without it)."""
    view.csrf_exempt = True  # type: ignore[attr-defined]
    return view


def csrf_protect() -> None:
    if request.method in ("GET", "HEAD", "OPTIONS") or request.routing_exception is not None:
        return  # nothing to protect; a 404 or 405 is answered as such
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "csrf_exempt", False):
        return
    check_csrf()


def image_sources() -> str:
    """`img-src`: this site, plus the origin of the masthead's logo when `logo_url` is an
    https URL elsewhere (nothing else from elsewhere is ever loaded)."""
    nl = current_app.extensions.get("newsletter")
    parts = urlsplit(str(getattr(getattr(nl, "config", None), "logo_url", "") or ""))
    if parts.scheme == "https" and parts.netloc and re.fullmatch(r"[A-Za-z0-9.:\[\]-]+", parts.netloc):
        return f"'self' https://{parts.netloc}"
    return "'self'"


def with_image_sources(policy: str) -> str:
    return policy.replace("img-src 'self'", "img-src " + image_sources())


def _in_console() -> bool:
    return request.path == "/admin" or request.path.startswith("/admin/")


def security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        if name == "Content-Security-Policy":
            value = with_image_sources(CONSOLE_CSP if _in_console() else value)
        response.headers.setdefault(name, value)
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response
