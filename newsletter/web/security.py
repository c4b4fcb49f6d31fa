"""Security for every response and every POST, apart from any blueprint so that all can use it.

Every response: a strict Content-Security-Policy (no script, no inline style, no framing),
X-Frame-Options, Referrer-Policy `no-referrer` (links carry tokens), nosniff, `Cache-Control:
no-store` on pages, and HSTS when the request came over https.

CSRF: every POST must carry the `csrf_token` form field, equal to the random value kept in the
signed session cookie (itsdangerous, keyed from NEWSLETTER_SECRET_KEY). A view that must accept a
POST without it (RFC 8058 one-click unsubscribe) is marked `@csrf_exempt` and checks for itself.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, abort, current_app, request, session

__all__ = ["CSRF_FIELD", "check_csrf", "csrf_exempt", "csrf_protect", "csrf_token",
           "security_headers"]

CSRF_FIELD = "csrf_token"
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
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
    sent = request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, description="This form has expired or did not come from this site. Reload the "
                               "page and send it again.")


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


def security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response
