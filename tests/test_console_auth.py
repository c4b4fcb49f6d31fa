"""The console's foundation through the real Flask app on SQLite and PostgreSQL: every /admin
route refuses anonymous requests, sign-in limits, TOTP replay and window, sessions ended by a
password change and by the idle timeout, CSRF on every POST, owner-only actions, argon2id,
cookies and the console's own CSP."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pyotp
import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from newsletter.context import Newsletter
from newsletter.db import utcnow
from newsletter.editors import audit, remove_editor
from newsletter.editors.accounts import authenticate, check_second_factor
from newsletter.editors.models import AuditEntry, Editor, EditorSession, RecoveryCode, Role
from newsletter.editors.totp import SecretBox, accepted_step, new_recovery_codes
from newsletter.web import create_app
from newsletter.web.admin import views
from newsletter.web.admin.views import WRONG_LOGIN

from .conftest import REPO
from .console_support import PASSWORD, TOKEN, csrf, editor_named, make_editor, sign_in

OWNER = "owner@example.org"
EDITOR = "editor@example.org"


@pytest.fixture
def team(newsletter: Newsletter) -> Newsletter:
    make_editor(newsletter, OWNER, name="Olive Owner", role=Role.OWNER)
    make_editor(newsletter, EDITOR, name="Eddie Editor")
    return newsletter


def admin_rules(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every /admin rule, arguments filled with 1."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin"):
            continue
        url = re.sub(r"<int:\w+>", "1", rule.rule)
        url = re.sub(r"<month>", "2015-01", url)
        url = re.sub(r"<(?:string:)?\w+>", "x", url)
        found += [(rule.endpoint, m, url) for m in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return found


def test_every_admin_view_declares_who_may_use_it(app: Flask) -> None:
    views = {endpoint for endpoint, _, _ in admin_rules(app)}
    assert len(views) >= 10
    undeclared = [e for e in views if not hasattr(app.view_functions[e], "console_role")]
    assert undeclared == []
    public = {e for e in views if app.view_functions[e].console_role is None}
    assert public == {"admin.login", "admin.code"}


def test_every_admin_route_refuses_an_anonymous_request(team: Newsletter, app: Flask,
                                                        client: FlaskClient) -> None:
    token = csrf(client)  # an anonymous browser with a valid CSRF token: only authorisation stops it
    checked = 0
    for endpoint, method, url in admin_rules(app):
        if app.view_functions[endpoint].console_role is None:
            continue
        if method == "GET":
            answer = client.get(url)
            assert answer.status_code == 302, url
            assert answer.headers["Location"] == "/admin/login", url
        else:
            answer = client.post(url, data={"csrf_token": token, "current": PASSWORD,
                                            "email": "x@example.org", "name": "X",
                                            "password": PASSWORD, "role": "owner"})
            assert answer.status_code == 403, url
            assert client.post(url).status_code == 400, url  # and without the token
        body = answer.get_data(as_text=True)
        for secret in (OWNER, EDITOR, "Olive", "Eddie", "x@example.org"):
            assert secret not in body, (url, secret)
        checked += 1
    assert checked >= 8
    with team.session() as session:  # nothing was added, no session was made
        assert sorted(session.scalars(select(Editor.email))) == [EDITOR, OWNER]
        assert session.scalars(select(EditorSession)).all() == []


def test_the_code_step_cannot_be_skipped(team: Newsletter, client: FlaskClient) -> None:
    secret = make_editor(team, "twofa@example.org", totp=True)
    answer = client.post("/admin/login?2fa=0&skip=1", data={
        "csrf_token": csrf(client), "email": "twofa@example.org", "password": PASSWORD,
        "code_verified": "1", "step": "done"})
    assert answer.headers["Location"] == "/admin/login/code"
    assert client.get("/admin/").headers["Location"] == "/admin/login"
    with team.session() as session:
        assert session.scalars(select(EditorSession)).all() == []
    now = pyotp.TOTP(secret or "").now()
    wrong = client.post("/admin/login/code", data={"csrf_token": csrf(client, "/admin/login/code"),
                                                   "code": "000000" if now != "000000" else "111111"})
    assert wrong.status_code == 401
    assert client.get("/admin/").status_code == 302
    good = client.post("/admin/login/code", data={"csrf_token": csrf(client, "/admin/login/code"),
                                                  "code": pyotp.TOTP(secret or "").now()})
    assert good.headers["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


@pytest.mark.slow  # several argon2id hashes, a fifth of a second each
def test_the_answer_is_the_same_for_unknown_accounts_and_wrong_passwords(
        team: Newsletter, client: FlaskClient) -> None:
    def attempt(email: str) -> tuple[int, str, float]:
        token = csrf(client)
        started = time.perf_counter()
        answer = client.post("/admin/login", data={"csrf_token": token, "email": email,
                                                   "password": "wrong password here"})
        elapsed = time.perf_counter() - started
        return answer.status_code, answer.get_data(as_text=True).replace(token, "T"), elapsed

    known = [attempt(OWNER) for _ in range(3)]
    unknown = [attempt("nobody@example.org") for _ in range(3)]
    assert known[0][0] == unknown[0][0] == 401
    assert WRONG_LOGIN in known[0][1]
    assert known[0][1].replace(OWNER, "E") == unknown[0][1].replace("nobody@example.org", "E")
    known_time = sorted(t for _, _, t in known)[1]
    unknown_time = sorted(t for _, _, t in unknown)[1]
    print(f"wrong password: {known_time * 1000:.1f} ms; unknown account: {unknown_time * 1000:.1f} ms")
    assert unknown_time > known_time / 3  # the dummy verify does the same argon2 work


def test_failed_logins_are_limited_per_account_for_known_and_unknown_alike(
        cheap_hashing: None, team: Newsletter, client: FlaskClient) -> None:
    for email in (OWNER, "nobody@example.org"):
        for _ in range(5):
            sign_in(client, email, "wrong password here", expect=401)
        refused = client.post("/admin/login", data={"csrf_token": csrf(client), "email": email,
                                                    "password": PASSWORD})
        assert refused.status_code == 429, email
        assert "Too many attempts" in refused.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302  # even the right password got no session
    sign_in(client, EDITOR)  # another account from the same client is still let in


def test_failed_logins_are_limited_per_client(cheap_hashing: None, team: Newsletter,
                                              client: FlaskClient) -> None:
    for n in range(20):
        sign_in(client, f"guess{n}@example.org", "wrong password here", expect=401)
    sign_in(client, EDITOR, expect=429)


def test_logins_go_to_the_audit_log_with_the_client_address(team: Newsletter,
                                                            client: FlaskClient) -> None:
    sign_in(client, OWNER, "wrong password here", expect=401)
    sign_in(client, OWNER)
    with team.session() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action.like("login.%"))
                               .order_by(AuditEntry.id)).all()
        assert [(r.action, r.actor, r.client) for r in rows] == [
            ("login.failed", OWNER, "127.0.0.1"), ("login.ok", OWNER, "127.0.0.1")]
        assert rows[1].detail == {"method": "password"}
    page = client.get("/admin/audit")
    assert page.status_code == 200 and "login.failed" in page.get_data(as_text=True)


def test_the_audit_page_is_paginated(team: Newsletter, client: FlaskClient) -> None:
    with team.session() as session:
        for n in range(120):
            audit.record(session, "test.entry", actor=OWNER, detail={"n": n})
    sign_in(client, OWNER)
    first = client.get("/admin/audit").get_data(as_text=True)
    assert "Page 1 of 3" in first and "n: 119" in first and "n: 0<" not in first
    last = client.get("/admin/audit?page=3").get_data(as_text=True)
    assert "Page 3 of 3" in last and "n: 0" in last
    assert client.get("/admin/audit?page=-1").status_code == 200


def test_a_reused_totp_code_or_one_from_outside_the_window_is_refused(team: Newsletter) -> None:
    secret = pyotp.random_base32()
    now = time.time()
    step = int(now // 30)
    totp = pyotp.TOTP(secret)
    assert accepted_step(secret, totp.at(now), None, now) == step
    assert accepted_step(secret, totp.at(now - 30), None, now) == step - 1  # one step late: fine
    assert accepted_step(secret, totp.at(now + 30), None, now) == step + 1
    assert accepted_step(secret, totp.at(now - 60), None, now) is None  # two steps: refused
    assert accepted_step(secret, totp.at(now + 60), None, now) is None
    assert accepted_step(secret, totp.at(now), step, now) is None  # used
    assert accepted_step(secret, totp.at(now - 30), step, now) is None  # older than the used one


def test_a_used_code_cannot_sign_in_twice(team: Newsletter, app: Flask) -> None:
    secret = make_editor(team, "twofa@example.org", totp=True)
    code = pyotp.TOTP(secret or "").now()
    sign_in(app.test_client(), "twofa@example.org", secret=secret, code=code)
    sign_in(app.test_client(), "twofa@example.org", secret=secret, code=code, expect=401)


def test_recovery_codes_work_once(team: Newsletter, app: Flask) -> None:
    make_editor(team, "twofa@example.org", totp=True)
    codes = new_recovery_codes()
    with team.session() as session:
        editor = session.scalar(select(Editor).where(Editor.email == "twofa@example.org"))
        assert editor is not None
        session.add_all(RecoveryCode(editor_id=editor.id, code_hash=h) for h in codes.hashes)
    sign_in(app.test_client(), "twofa@example.org", secret="", code=codes.shown[0].upper())
    sign_in(app.test_client(), "twofa@example.org", secret="", code=codes.shown[0], expect=401)
    with team.session() as session:
        editor = session.scalar(select(Editor).where(Editor.email == "twofa@example.org"))
        assert editor is not None
        assert check_second_factor(session, editor, codes.shown[1], SecretBox(
            team.config.secret_keys)) == "recovery"


def test_setting_up_2fa_shows_codes_once_and_ends_other_sessions(team: Newsletter, app: Flask) -> None:
    here, elsewhere = app.test_client(), app.test_client()
    sign_in(here, EDITOR)
    sign_in(elsewhere, EDITOR)
    page = here.get("/admin/2fa").get_data(as_text=True)
    assert "otpauth://totp/" in page
    secret = page.split("secret=")[1].split("&")[0]
    answer = here.post("/admin/2fa", data={"csrf_token": csrf(here, "/admin/"), "current": PASSWORD,
                                          "code": pyotp.TOTP(secret).now()})
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "shown only now" in body
    assert body.count("<li><code>") == 10
    assert elsewhere.get("/admin/").status_code == 302
    assert here.get("/admin/").status_code == 200
    assert "shown only now" not in here.get("/admin/").get_data(as_text=True)
    assert editor_named(team, EDITOR).has_second_factor


def test_2fa_set_up_needs_the_password(team: Newsletter, client: FlaskClient) -> None:
    sign_in(client, EDITOR)
    page = client.get("/admin/2fa").get_data(as_text=True)
    secret = page.split("secret=")[1].split("&")[0]
    answer = client.post("/admin/2fa", data={"csrf_token": csrf(client, "/admin/"),
                                             "current": "not it", "code": pyotp.TOTP(secret).now()})
    assert answer.status_code == 400
    assert not editor_named(team, EDITOR).has_second_factor


def test_required_2fa_lets_a_new_session_only_set_it_up(make_newsletter) -> None:  # type: ignore[no-untyped-def]
    nl = make_newsletter(console_require_2fa=1)
    make_editor(nl, EDITOR)
    client = create_app(nl, testing=True).test_client()
    sign_in(client, EDITOR)
    assert client.get("/admin/").headers["Location"] == "/admin/2fa"
    assert client.get("/admin/password").headers["Location"] == "/admin/2fa"
    page = client.get("/admin/2fa").get_data(as_text=True)
    secret = page.split("secret=")[1].split("&")[0]
    token = TOKEN.search(page).group(1)  # type: ignore[union-attr]
    client.post("/admin/2fa", data={"csrf_token": token, "current": PASSWORD,
                                    "code": pyotp.TOTP(secret).now()})
    assert client.get("/admin/").status_code == 200


@pytest.mark.slow  # several argon2id hashes, a fifth of a second each
def test_a_password_change_ends_every_other_session(team: Newsletter, app: Flask) -> None:
    here, elsewhere = app.test_client(), app.test_client()
    sign_in(here, EDITOR)
    sign_in(elsewhere, EDITOR)
    assert elsewhere.get("/admin/").status_code == 200
    wrong = here.post("/admin/password", data={"csrf_token": csrf(here, "/admin/password"),
                                               "current": "not it", "new": "a new long password",
                                               "again": "a new long password"})
    assert wrong.status_code == 400 and "current password is not right" in wrong.get_data(as_text=True)
    changed = here.post("/admin/password", data={"csrf_token": csrf(here, "/admin/password"),
                                                 "current": PASSWORD, "new": "a new long password",
                                                 "again": "a new long password"})
    assert changed.headers["Location"] == "/admin/"
    assert elsewhere.get("/admin/").headers["Location"] == "/admin/login"
    assert "1 other session(s) ended" in here.get("/admin/").get_data(as_text=True)
    sign_in(app.test_client(), EDITOR, expect=401)
    sign_in(app.test_client(), EDITOR, "a new long password")


def test_a_session_ends_after_the_idle_timeout(team: Newsletter, client: FlaskClient) -> None:
    sign_in(client, EDITOR)
    assert client.get("/admin/").status_code == 200
    with team.session() as session:
        session.execute(update(EditorSession).values(
            last_seen_at=utcnow() - timedelta(minutes=team.config.console_idle_minutes, seconds=5)))
    assert client.get("/admin/").headers["Location"] == "/admin/login"
    with team.session() as session:
        assert session.scalar(select(EditorSession.revoked_at)) is not None


def test_a_session_can_be_revoked_with_the_htmx_header(team: Newsletter, app: Flask) -> None:
    here, elsewhere = app.test_client(), app.test_client()
    sign_in(here, EDITOR)
    sign_in(elsewhere, EDITOR)
    with team.session() as session:
        other = max(session.scalars(select(EditorSession.id)))
    token = csrf(here, "/admin/")
    assert here.post(f"/admin/sessions/{other}/revoke",
                     headers={"X-CSRF-Token": "forged", "HX-Request": "true"}).status_code == 400
    answer = here.post(f"/admin/sessions/{other}/revoke",
                       headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert answer.status_code == 200 and answer.get_data() == b""
    assert elsewhere.get("/admin/").status_code == 302
    assert here.post(f"/admin/sessions/{other}/revoke", data={"csrf_token": token}).status_code == 404


def test_no_one_can_revoke_another_editors_session(team: Newsletter, app: Flask) -> None:
    owner, editor = app.test_client(), app.test_client()
    sign_in(owner, OWNER)
    sign_in(editor, EDITOR)
    with team.session() as session:
        theirs = session.scalar(select(EditorSession.id).join(Editor).where(Editor.email == OWNER))
    answer = editor.post(f"/admin/sessions/{theirs}/revoke", data={"csrf_token": csrf(editor, "/admin/")})
    assert answer.status_code == 404
    assert owner.get("/admin/").status_code == 200


def test_every_admin_post_refuses_a_missing_or_forged_csrf_token(team: Newsletter, app: Flask,
                                                                 client: FlaskClient) -> None:
    sign_in(client, OWNER)
    posts = [url for _, method, url in admin_rules(app) if method == "POST"]
    assert len(posts) >= 7
    for url in posts:
        for data, headers in (({}, {}), ({"csrf_token": "forged"}, {}),
                              ({}, {"X-CSRF-Token": "forged"})):
            answer = client.post(url, data={**data, "current": PASSWORD, "email": "n@example.org",
                                            "name": "N", "password": PASSWORD}, headers=headers)
            assert answer.status_code == 400, (url, data, headers)
    assert client.get("/admin/").status_code == 200  # nothing was done: still signed in
    assert [e.email for e in [editor_named(team, OWNER), editor_named(team, EDITOR)]]
    with team.session() as session:
        assert session.scalar(select(Editor).where(Editor.email == "n@example.org")) is None


def test_an_editor_is_refused_owner_actions(team: Newsletter, client: FlaskClient) -> None:
    sign_in(client, EDITOR)
    token = csrf(client, "/admin/")
    owner_id = editor_named(team, OWNER).id
    for answer in (client.get("/admin/editors"), client.get("/admin/audit"),
                   client.post("/admin/editors", data={"csrf_token": token, "current": PASSWORD,
                                                       "email": "new@example.org", "name": "New",
                                                       "password": PASSWORD, "role": "owner"}),
                   client.post(f"/admin/editors/{owner_id}/remove",
                               data={"csrf_token": token, "current": PASSWORD})):
        assert answer.status_code == 403
        assert OWNER not in answer.get_data(as_text=True)
    with team.session() as session:
        assert sorted(session.scalars(select(Editor.email).where(Editor.disabled_at.is_(None)))) \
            == [EDITOR, OWNER]


@pytest.mark.slow  # several argon2id hashes, a fifth of a second each
def test_an_owner_adds_and_removes_editors_after_giving_the_password_again(
        team: Newsletter, client: FlaskClient) -> None:
    sign_in(client, OWNER)
    form = {"email": "new@example.org", "name": "New One", "password": "another long password",
            "role": "editor"}
    refused = client.post("/admin/editors", data={**form, "csrf_token": csrf(client, "/admin/editors"),
                                                  "current": "not it"})
    assert refused.status_code == 400 and "Your password is not right" in refused.get_data(as_text=True)
    added = client.post("/admin/editors", data={**form, "csrf_token": csrf(client, "/admin/editors"),
                                                "current": PASSWORD})
    assert added.status_code == 302
    new_id = editor_named(team, "new@example.org").id
    client.post(f"/admin/editors/{new_id}/remove", data={"csrf_token": csrf(client, "/admin/editors"),
                                                         "current": PASSWORD})
    with team.session() as session:
        assert session.scalars(select(AuditEntry.action).where(AuditEntry.actor == OWNER)
                               .order_by(AuditEntry.id)).all()[-2:] == ["editor.add", "editor.remove"]
        assert session.get(Editor, new_id).disabled_at is not None  # type: ignore[union-attr]


def test_passwords_are_argon2id_and_rehashed_when_the_parameters_change(team: Newsletter) -> None:
    current = PasswordHasher()
    assert editor_named(team, OWNER).password_hash.startswith(
        f"$argon2id$v=19$m={current.memory_cost},t={current.time_cost},p={current.parallelism}$")
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    with team.session() as session:
        session.execute(update(Editor).where(Editor.email == EDITOR)
                        .values(password_hash=weak.hash(PASSWORD)))
    with team.session() as session:
        assert authenticate(session, EDITOR, "wrong password here") is None
    assert editor_named(team, EDITOR).password_hash.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    with team.session() as session:
        assert authenticate(session, EDITOR, PASSWORD) is not None
    stored = editor_named(team, EDITOR).password_hash
    assert stored.startswith(f"$argon2id$v=19$m={current.memory_cost},t={current.time_cost}")
    assert current.verify(stored, PASSWORD)


def test_script_in_an_editors_name_shows_as_text(newsletter: Newsletter, client: FlaskClient) -> None:
    make_editor(newsletter, OWNER, name='<script>alert(1)</script><img src=x onerror=alert(2)>',
                role=Role.OWNER)
    sign_in(client, OWNER)
    for path in ("/admin/", "/admin/editors"):
        body = client.get(path).get_data(as_text=True)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in body
        assert "<script>alert" not in body and "<img src=x" not in body


def test_the_console_has_its_own_csp_and_cookie(newsletter: Newsletter) -> None:
    make_editor(newsletter, OWNER, role=Role.OWNER)
    client = create_app(newsletter, testing=False).test_client()  # base_url is https
    answer = client.post("/admin/login", data={"csrf_token": csrf(client), "email": OWNER,
                                               "password": PASSWORD})
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("nl_console=")
    for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/admin"):
        assert flag in cookie
    console = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in console and "'unsafe-inline'" not in console
    public = client.get("/subscribe").headers["Content-Security-Policy"]
    assert "script-src" not in public and public.startswith("default-src 'none'")


def test_htmx_is_served_from_the_site_with_its_licence(client: FlaskClient) -> None:
    with client.get("/static/vendor/htmx-2.0.11.min.js") as script:
        assert script.status_code == 200 and b"htmx" in script.get_data()[:2000]
    licence = (REPO / "templates" / "web" / "static" / "vendor" / "htmx-LICENSE").read_text()
    assert "Zero-Clause BSD" in licence or "Permission" in licence


def test_removing_an_editor_ends_their_sessions_at_once(team: Newsletter, client: FlaskClient) -> None:
    sign_in(client, EDITOR)
    assert client.get("/admin/").status_code == 200
    with team.session() as session:
        remove_editor(session, EDITOR)
    assert client.get("/admin/").headers["Location"] == "/admin/login"
    sign_in(client, EDITOR, expect=401)


def test_a_password_step_left_waiting_expires(team: Newsletter, client: FlaskClient,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    secret = make_editor(team, "twofa@example.org", totp=True)
    client.post("/admin/login", data={"csrf_token": csrf(client), "email": "twofa@example.org",
                                      "password": PASSWORD})
    assert client.get("/admin/login/code").status_code == 200
    monkeypatch.setattr(views, "PENDING_SECONDS", -1)
    assert client.get("/admin/login/code").headers["Location"] == "/admin/login"
    answer = client.post("/admin/login/code", data={"csrf_token": csrf(client),
                                                    "code": pyotp.TOTP(secret or "").now()})
    assert answer.headers["Location"] == "/admin/login"
    assert client.get("/admin/").headers["Location"] == "/admin/login"
