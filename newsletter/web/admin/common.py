"""Small things every console page needs: a month from the URL, the password asked again, htmx
requests told apart, and page numbers read safely."""

from __future__ import annotations

from flask import abort, request

from newsletter.content.assemble import check_month
from newsletter.editors.models import Editor
from newsletter.editors.passwords import verify_password
from newsletter.errors import ContentError

__all__ = ["is_htmx", "month_or_404", "page_number", "password_again"]

PASSWORD_AGAIN_FIELD = "current"
"""The form field that carries the editor's password when an action asks for it again."""


def month_or_404(month: str) -> str:
    """A `YYYY-MM` path segment, or the console's 404 (nothing else reaches a query)."""
    try:
        return check_month(month)
    except ContentError:
        abort(404)


def password_again(editor: Editor) -> bool:
    """The editor typed their password again in this request's form (send now, erase, editors)."""
    return verify_password(editor.password_hash, request.form.get(PASSWORD_AGAIN_FIELD, "")[:1024])


def is_htmx() -> bool:
    """htmx asked (it wants a fragment); a plain form post wants a page or a redirect."""
    return request.headers.get("HX-Request") == "true"


def page_number(name: str = "page") -> int:
    """A 1-based page number from the query string; anything odd is page 1."""
    raw = request.args.get(name, "1")
    return int(raw) if raw.isdigit() and 0 < len(raw) < 7 and int(raw) > 0 else 1
