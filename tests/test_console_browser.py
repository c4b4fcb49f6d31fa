"""The console in Debian's Chromium (Playwright) against the app on a real WSGI server: sign-in
with a TOTP code pyotp computes, a session revoked through htmx under the console's CSP, and
axe-core on every console page (no serious or critical violation), with no horizontal scroll at
375 px. Screenshots go to test-artifacts/console/."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from newsletter.context import Newsletter
from newsletter.editors import sessions
from newsletter.editors.models import Editor, EditorSession, Role
from newsletter.web import create_app

from .conftest import REPO, make_config
from .console_support import PASSWORD, make_editor
from .test_web_browser import AXE, CHROMIUM, browser  # noqa: F401  (the fixture)

SHOTS = REPO / "test-artifacts" / "console"
EMAIL = "ada@example.org"

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")]


@pytest.fixture
def console(sqlite_url: str) -> Iterator[tuple[str, Newsletter, str]]:
    holder: dict[str, Any] = {}
    server = make_server("127.0.0.1", 0, lambda env, start: holder["app"](env, start), threaded=True)
    base = f"http://127.0.0.1:{server.port}"
    nl = Newsletter.open(make_config(sqlite_url, base_url=base))
    nl.init()
    secret = make_editor(nl, EMAIL, name="Ada <b>Lovelace</b>", role=Role.OWNER, totp=True)
    holder["app"] = create_app(nl, testing=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base, nl, secret or ""
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        nl.close()


def sign_in(page, base: str, secret: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/admin/")
    assert page.url.endswith("/admin/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/admin/login/code")
    page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/")


def test_sign_in_with_totp_and_revoke_a_session_through_htmx(
        console: tuple[str, Newsletter, str], browser) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    base, nl, secret = console
    with nl.session() as session:
        editor = session.scalar(select(Editor).where(Editor.email == EMAIL))
        assert editor is not None
        sessions.create(session, editor, client="192.0.2.7", user_agent="Phone browser")
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text)
            if m.type == "error" and "favicon.ico" not in m.location.get("url", "") else None)
    sign_in(page, base, secret)
    assert "Signed in as Ada <b>Lovelace</b>" in page.locator("main").inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "home.png"), full_page=True)
    phone = page.locator("li", has_text="Phone browser")
    assert phone.count() == 1
    phone.get_by_role("button", name="Revoke").click()
    phone.wait_for(state="detached")
    assert page.url == f"{base}/admin/"  # htmx swapped the row; no navigation
    with nl.session() as session:
        revoked = session.scalar(select(EditorSession).where(EditorSession.client == "192.0.2.7"))
        assert revoked is not None and revoked.revoked_at is not None
    assert problems == []  # htmx ran under script-src 'self' with no CSP complaint
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/admin/login")
    page.goto(f"{base}/admin/")
    assert page.url.endswith("/admin/login")


def _serious(page) -> list[tuple[str, str, list[Any]]]:  # type: ignore[no-untyped-def]
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def _scrolls_sideways(page) -> bool:  # type: ignore[no-untyped-def]
    return bool(page.evaluate("document.documentElement.scrollWidth > "
                              "document.documentElement.clientWidth"))


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_and_a_phone_width_on_every_console_page(
        console: tuple[str, Newsletter, str], browser, scheme: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    base, nl, secret = console
    context = browser.new_context(color_scheme=scheme, bypass_csp=True,  # axe is injected
                                  viewport={"width": 375, "height": 800})
    page = context.new_page()
    found: dict[str, Any] = {}

    def check(name: str) -> None:
        problems = _serious(page)
        if problems:
            found[name] = problems
        if _scrolls_sideways(page):
            found[f"{name} at 375 px"] = "scrolls sideways"

    page.goto(f"{base}/admin/login")
    check("login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Continue").click()
    check("login, wrong password")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/admin/login/code")
    check("code")
    page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/")
    for path in ("/admin/", "/admin/password", "/admin/2fa", "/admin/editors", "/admin/audit"):
        page.goto(base + path)
        check(path)
        page.screenshot(path=str(SHOTS / f"{path.strip('/').replace('/', '-')}-{scheme}.png"),
                        full_page=True)
    context.close()
    assert found == {}
