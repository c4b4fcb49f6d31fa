"""Helpers for the console tests: editors made through the library, sign-in through the real
views, CSRF tokens read from the pages as a browser would."""

from __future__ import annotations

import re

import pyotp
from flask.testing import FlaskClient

from newsletter.context import Newsletter
from newsletter.editors import add_editor, find_editor
from newsletter.editors.models import Editor, Role
from newsletter.editors.totp import SecretBox, new_secret

PASSWORD = "correct horse battery staple"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_editor(nl: Newsletter, email: str, *, name: str = "Ada Lovelace",
                role: Role = Role.EDITOR, password: str = PASSWORD, totp: bool = False) -> str | None:
    """Adds the editor; returns their TOTP secret when `totp` (set as the console would)."""
    secret = new_secret() if totp else None
    with nl.session() as session:
        editor = add_editor(session, email, name=name, password=password, role=role)
        if secret:
            editor.totp_secret = SecretBox(nl.config.secret_keys).seal(secret)
    return secret


def csrf(client: FlaskClient, path: str = "/admin/login") -> str:
    page = client.get(path)
    found = TOKEN.search(page.get_data(as_text=True))
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD, *,
            secret: str | None = None, code: str | None = None, expect: int = 302) -> None:
    answer = client.post("/admin/login", data={"csrf_token": csrf(client), "email": email,
                                               "password": password})
    if secret is None and code is None:
        assert answer.status_code == expect, answer.get_data(as_text=True)
        return
    assert answer.headers["Location"] == "/admin/login/code"
    typed = code if code is not None else pyotp.TOTP(secret or "").now()
    answer = client.post("/admin/login/code", data={"csrf_token": csrf(client, "/admin/login/code"),
                                                    "code": typed})
    assert answer.status_code == expect, answer.get_data(as_text=True)


def editor_named(nl: Newsletter, email: str) -> Editor:
    with nl.session() as session:
        editor = find_editor(session, email)
        assert editor is not None
        session.expunge(editor)
        return editor
