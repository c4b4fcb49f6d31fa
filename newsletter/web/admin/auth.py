"""Who is asking: the console session named by the `nl_console` cookie, checked on every view.

The cookie holds a random id (its hash is in editor_sessions), HttpOnly, SameSite=Strict, path
/admin, Secure when the base URL is https. A session exists only after every step of the sign-in:
the password step leaves a short-lived "pending" mark in the signed Flask session, and only the
code step (or no second factor, when none is set up or required) creates the server session, so
no request flag can skip the code. Sign-in attempts are limited per account and per client
(in-process, as subscribers/ratelimit.py explains).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from flask import Flask, abort, current_app, g, redirect, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from newsletter.context import Newsletter
from newsletter.editors import sessions
from newsletter.editors.models import Editor, EditorSession, Role
from newsletter.editors.totp import SecretBox
from subscribers.ratelimit import SlidingWindowLimiter

__all__ = ["COOKIE", "LoginLimits", "client_address", "current_editor", "current_session",
           "limits", "public", "requires", "secret_box", "set_session_cookie"]

COOKIE = "nl_console"
COOKIE_PATH = "/admin"
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class LoginLimits:
    """Failed sign-in steps: per account (typed address, known or not, so the answer is the same)
    and per client address."""

    account: SlidingWindowLimiter
    client: SlidingWindowLimiter

    @classmethod
    def default(cls) -> LoginLimits:
        return cls(SlidingWindowLimiter(5, 15 * 60), SlidingWindowLimiter(20, 15 * 60))

    def blocked(self, account: str, client: str) -> float:
        """Seconds to wait before another attempt (0: go ahead)."""
        verdicts = [self.account.check(account.lower()), self.client.check(client)]
        return max((v.retry_after for v in verdicts if not v.allowed), default=0.0)

    def failed(self, account: str, client: str) -> None:
        self.account.record(account.lower())
        self.client.record(client)


def limits(app: Flask | None = None) -> LoginLimits:
    app = app or current_app
    return app.extensions.setdefault("console_limits", LoginLimits.default())


def newsletter() -> Newsletter:
    return current_app.extensions["newsletter"]


def secret_box() -> SecretBox:
    return SecretBox(newsletter().config.secret_keys)


def client_address() -> str:
    return (request.remote_addr or "unknown")[:64]


def set_session_cookie(response: Response, token: str) -> Response:
    config = newsletter().config
    response.set_cookie(COOKIE, token, path=COOKIE_PATH, httponly=True, samesite="Strict",
                        secure=config.base_url.startswith("https://") and not current_app.testing,
                        max_age=config.console_idle_minutes * 60 * 48)
    return response


def clear_session_cookie(response: Response) -> Response:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="Strict")
    return response


def _load(db: Session) -> tuple[EditorSession, Editor] | None:
    idle = timedelta(minutes=newsletter().config.console_idle_minutes)
    return sessions.live(db, request.cookies.get(COOKIE, ""), idle=idle)


def current_session() -> EditorSession:
    return g.console[0]


def current_editor() -> Editor:
    return g.console[1]


def _refuse() -> Any:
    """Anonymous: a GET goes to the sign-in page, anything else is forbidden; no data either way."""
    if request.method in ("GET", "HEAD"):
        return redirect(url_for("admin.login"))
    abort(403)


def requires(role: Role = Role.EDITOR, *, during_setup: bool = False) -> Callable[[F], F]:
    """Only a live session of an editor with `role` (owner includes editor) reaches the view,
    which gets the store session as `db` (committed when the view returns). A session that must
    still set up 2FA reaches only views marked `during_setup`."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with newsletter().session() as db:  # committed when the view returns
                found = _load(db)
                if found is not None:
                    g.console = found
                    if found[0].setup_only and not during_setup:
                        return redirect(url_for("admin.second_factor"))
                    if role is Role.OWNER and found[1].role is not Role.OWNER:
                        abort(403, description="Only an owner can do this.")
                    return view(*args, db=db, **kwargs)
            return _refuse()  # outside the unit of work, so an idle session found now stays ended

        wrapper.console_role = role  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def public(view: F) -> F:
    """A console view anyone may reach (the sign-in steps)."""
    view.console_role = None  # type: ignore[attr-defined]
    return view
