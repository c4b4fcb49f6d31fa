"""The console's security across every page that exists, through the real Flask app on SQLite and
PostgreSQL (and, for the preview, in Chromium): anonymous requests with real ids, an editor
trying every owner-only route, CSRF missing or forged on every POST with real ids, script typed
into every text field shown as text in the console, the previews and the email, and the
preview's sandboxed iframe.

"Nothing changed" is checked on the whole store: every table's rows before and after, except
the session rows a request touches and the sign-in lines of the audit log."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import MetaData, select

from newsletter.catcher import SMTPCatcher
from newsletter.content.models import Summary
from newsletter.context import Newsletter
from newsletter.editors.models import Role
from newsletter.taxonomy import default_topics
from subscribers.models import Subscriber

from .console_journey_support import Seeded, fill_rule, seed_console, values_for
from .console_support import PASSWORD, csrf, make_editor, sign_in
from .test_web_browser import CHROMIUM, browser  # noqa: F401  (the fixture)

OWNER = "owner@example.org"
EDITOR = "editor@example.org"
MONTH = "2015-01"
PAYLOAD = "<script>console.log(31337)</script><img src=x onerror=console.log(31338)>"
"""Valid script if it were ever put into a page as markup: the browser test watches for its logs."""
SHORT = "<script>console.log(31339)</script>"
"""For the fields capped at 50 characters (volume, issue, pages)."""
SKIPPED_TABLES = {"editor_sessions", "alembic_version", "apscheduler_jobs"}


@pytest.fixture
def team(newsletter: Newsletter, cheap_hashing: None) -> tuple[Newsletter, Seeded]:
    """Two editors and a seeded month (tests of authorisation, not of hashing)."""
    make_editor(newsletter, OWNER, name="Olive Owner", role=Role.OWNER)
    make_editor(newsletter, EDITOR, name="Eddie Editor")
    return newsletter, seed_console(newsletter, MONTH, editor_email=OWNER)


def store_rows(nl: Newsletter) -> dict[str, list[tuple[str, ...]]]:
    """Every table's rows as text, sorted (minus SKIPPED_TABLES and sign-in audit lines)."""
    metadata = MetaData()
    metadata.reflect(nl.engine)
    found: dict[str, list[tuple[str, ...]]] = {}
    with nl.engine.connect() as connection:
        for name, table in sorted(metadata.tables.items()):
            if name in SKIPPED_TABLES:
                continue
            rows = [tuple(map(str, row)) for row in connection.execute(select(table))]
            if name == "audit_log":
                action = list(table.columns.keys()).index("action")
                rows = [r for r in rows if not r[action].startswith("login.")]
            found[name] = sorted(rows)
    return found


def rules(app: Flask, seeded: Seeded) -> Iterator[tuple[str, str, str]]:
    """(endpoint, method, url) of every /admin rule, its arguments filled with seeded ids."""
    values = values_for(seeded)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/admin"):
            continue
        url = fill_rule(rule.rule, values)
        assert url is not None, f"{rule.rule}: an argument this test does not know; add it"
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, url


def role_of(app: Flask, endpoint: str) -> Role | None:
    return getattr(app.view_functions[endpoint], "console_role", None)


def problems(markup: str) -> list[str]:
    """The form's messages (field errors and the problem list), for a readable failure."""
    document = lxml.html.fromstring(markup)
    return [el.text_content().strip() for el in document.xpath(
        '//*[contains(@class, "error") or @role="alert"]')]


FORM = {"current": PASSWORD, "email": "new@example.org", "name": "New", "password": PASSWORD,
        "role": "owner", "reason": "test", "confirm": "yes", "to": "new@example.org"}
"""Plausible values for any console form: a refused request must not be refused for want of them."""


@pytest.mark.slow  # every route, the whole store read twice
def test_every_route_refuses_an_anonymous_request_with_real_ids(team: tuple[Newsletter, Seeded],
                                                                app: Flask,
                                                                client: FlaskClient) -> None:
    """test_console_auth walks the map with ids of 1; here the ids name real rows, so a view
    that checked the row before the session would show it."""
    nl, seeded = team
    before = store_rows(nl)
    token = csrf(client)
    checked = 0
    for endpoint, method, url in rules(app, seeded):
        if role_of(app, endpoint) is None:
            continue
        if method == "GET":
            answer = client.get(url)
            assert (answer.status_code, answer.headers.get("Location")) == (302, "/admin/login"), url
        else:
            answer = client.post(url, data={**FORM, "csrf_token": token})
            assert answer.status_code == 403, url
        body = answer.get_data(as_text=True)
        for secret in (*seeded.secrets, OWNER, EDITOR):
            assert secret not in body, (url, secret)
        checked += 1
    assert checked >= 20
    assert store_rows(nl) == before


@pytest.mark.slow  # every owner-only route, the whole store read twice
def test_an_editor_is_refused_every_owner_only_route(team: tuple[Newsletter, Seeded], app: Flask,
                                                     client: FlaskClient) -> None:
    nl, seeded = team
    sign_in(client, EDITOR)
    token = csrf(client, "/admin/")
    before = store_rows(nl)
    owner_only = [(e, m, u) for e, m, u in rules(app, seeded)
                  if role_of(app, e) is Role.OWNER]
    assert {e for e, _, _ in owner_only} >= {"admin.editors", "admin.remove_editor", "admin.audit_log"}
    for _, method, url in owner_only:
        answer = (client.get(url) if method == "GET" else
                  client.post(url, data={**FORM, "csrf_token": token},
                              headers={"X-CSRF-Token": token}))
        assert answer.status_code == 403, (method, url)
        assert OWNER not in answer.get_data(as_text=True), url
    assert store_rows(nl) == before
    assert client.get("/admin/").status_code == 200  # the editor is still signed in


@pytest.mark.slow  # every POST three ways, the whole store read twice
def test_every_post_refuses_a_missing_or_forged_csrf_token_with_real_ids(
        team: tuple[Newsletter, Seeded], app: Flask, client: FlaskClient) -> None:
    nl, seeded = team
    sign_in(client, OWNER)
    before = store_rows(nl)
    posts = [url for _, method, url in rules(app, seeded) if method == "POST"]
    assert len(posts) >= 20
    for url in posts:
        for data, headers in (({}, {}), ({"csrf_token": "forged"}, {}),
                              ({}, {"X-CSRF-Token": "forged", "HX-Request": "true"})):
            answer = client.post(url, data={**FORM, **data}, headers=headers)
            assert answer.status_code == 400, (url, data, headers)
    assert store_rows(nl) == before
    assert client.get("/admin/").status_code == 200


# --- script in every text field --------------------------------------------------------------

def assert_shown_as_text(markup: str, where: str, expected: str | None = PAYLOAD) -> None:
    """No element the payload could have made (a script of its own, an event handler), and the
    payload there as text or as a form field's value."""
    document = lxml.html.fromstring(markup)
    for script in document.iter("script"):
        assert script.get("src") and not (script.text or "").strip(), (where, lxml.html.tostring(script))
    handlers = [(el.tag, name) for el in document.iter() if isinstance(el.tag, str)
                for name in el.attrib if name.lower().startswith("on")]
    assert handlers == [], (where, handlers)
    assert not [img for img in document.iter("img") if img.get("src") == "x"], where
    if expected is None:  # only safe: the page need not show it
        return
    values = [v for el in document.iter() if isinstance(el.tag, str) for v in el.attrib.values()]
    assert flat(expected) in flat(document.text_content()) or expected in values, where


def flat(text: str) -> str:
    """Whitespace runs as one space: the text part wraps long lines."""
    return " ".join(text.split())


TOPIC = default_topics()[13].slug  # empathy
SUMMARY_TEXT = ("headline", "byline", "title", "source", "volume", "issue", "pages", "note", "body",
                "implications")
CHAPTER_TEXT = ("headline", "title", "book_title", "publisher", "pages")
"""The summary form's free-text fields (the others are checked formats: month, year, DOI, URL)."""


def summary_form(**changes: str) -> dict[str, Any]:
    return {"month": MONTH, "status": "ready", "authors": "Lovelace, A.", "year": "2020",
            "research_type": "review", "topics": [TOPIC], "doi": "", "url": "",
            **{name: typed(name) for name in SUMMARY_TEXT}, **changes}


def typed(name: str) -> str:
    return f"{name} {SHORT if name in ('volume', 'issue', 'pages') else PAYLOAD}"


@pytest.mark.slow  # two summaries saved and rendered
def test_script_in_every_summary_field_shows_as_text_in_the_form_and_its_preview(
        team: tuple[Newsletter, Seeded], client: FlaskClient) -> None:
    nl, _ = team
    sign_in(client, OWNER)
    token = csrf(client, "/admin/summaries/new")
    saved = client.post("/admin/summaries/new", data={**summary_form(), "csrf_token": token})
    assert saved.status_code == 302, problems(saved.get_data(as_text=True))
    with nl.session() as session:
        summary = session.scalar(select(Summary).where(Summary.headline.startswith("headline <")))
        assert summary is not None
        sid = summary.id
    page = client.get(f"/admin/summaries/{sid}").get_data(as_text=True)
    for name in SUMMARY_TEXT:
        assert_shown_as_text(page, f"summary form, {name}", typed(name))
    fragment = client.post("/admin/summaries/preview", data={**summary_form(), "csrf_token": token},
                           headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    for name in ("headline", "body", "implications"):
        assert_shown_as_text(fragment.get_data(as_text=True), f"live preview, {name}",
                             f"{name} {PAYLOAD}")
    listing = client.get("/admin/summaries").get_data(as_text=True)
    assert_shown_as_text(listing, "summary list", f"headline {PAYLOAD}")
    chapter = summary_form(source="", volume="", issue="", headline=f"chapter {PAYLOAD}",
                           **{name: typed(name) for name in CHAPTER_TEXT[2:]})
    saved = client.post("/admin/summaries/new", data={**chapter, "csrf_token": token})
    assert saved.status_code == 302, problems(saved.get_data(as_text=True))
    page = client.get(saved.headers["Location"]).get_data(as_text=True)
    for name in CHAPTER_TEXT[2:]:
        assert_shown_as_text(page, f"chapter form, {name}", typed(name))


def edition_with_script(client: FlaskClient, nl: Newsletter) -> None:
    """The seeded month's edition with a summary carrying the payload, and the payload in its
    subject, preheader and introduction, all through the console's forms."""
    token = csrf(client, "/admin/summaries/new")
    assert client.post("/admin/summaries/new", data={**summary_form(), "csrf_token": token}) \
        .status_code == 302
    assert client.post(f"/admin/editions/{MONTH}/assemble", data={"csrf_token": token}) \
        .status_code == 302
    page = client.get(f"/admin/editions/{MONTH}").get_data(as_text=True)
    items = re.findall(r'name="item" value="(\d+)"', page)
    answer = client.post(f"/admin/editions/{MONTH}", data={
        "csrf_token": token, "item": items, "subject": f"Subject {PAYLOAD}",
        "preheader": f"Preheader {PAYLOAD}", "intro": f"Intro {PAYLOAD}"})
    assert answer.status_code == 302, answer.get_data(as_text=True)


EDITION_TEXT = ("Subject", "Preheader", "Intro")


@pytest.mark.slow  # renders and sends the edition
def test_script_in_the_edition_and_its_summaries_shows_as_text_in_the_preview_and_the_email(
        team: tuple[Newsletter, Seeded], client: FlaskClient, smtp_server: SMTPCatcher) -> None:
    nl, _ = team
    sign_in(client, OWNER)
    edition_with_script(client, nl)
    page = client.get(f"/admin/editions/{MONTH}").get_data(as_text=True)
    for name in EDITION_TEXT:
        assert_shown_as_text(page, f"edition page, {name}", f"{name} {PAYLOAD}")
    preview = client.get(f"/admin/editions/{MONTH}/preview?as=topics&topic={TOPIC}")
    assert preview.status_code == 200
    text_part = lxml.html.fromstring(preview.get_data(as_text=True)).xpath("//pre")
    assert text_part and flat(f"headline {PAYLOAD}") in flat(text_part[0].text_content())
    assert_shown_as_text(preview.get_data(as_text=True), "preview page", f"headline {PAYLOAD}")
    framed = client.get(f"/admin/editions/{MONTH}/preview.html?as=topics&topic={TOPIC}")
    assert framed.status_code == 200
    for name in ("headline", "body", "implications", "Intro"):
        assert_shown_as_text(framed.get_data(as_text=True), f"preview.html, {name}",
                             f"{name} {PAYLOAD}")
    token = csrf(client, f"/admin/editions/{MONTH}")
    sent = client.post(f"/admin/editions/{MONTH}/test", data={
        "csrf_token": token, "to": "tester@example.org", "as": "sample", "topic": [TOPIC]})
    assert sent.status_code == 302, sent.get_data(as_text=True)
    message = next(m for m in smtp_server.messages if "tester@example.org" in m.recipients).parse()
    assert f"Subject {PAYLOAD}" in str(message["Subject"])
    html = message.get_body(preferencelist=("html",))
    text = message.get_body(preferencelist=("plain",))
    assert html is not None and text is not None
    for name in ("headline", "body", "implications", "Intro", "Preheader"):
        assert_shown_as_text(str(html.get_content()), f"email, {name}", f"{name} {PAYLOAD}")
    assert flat(f"headline {PAYLOAD}") in flat(str(text.get_content()))


def test_script_in_an_editors_name_typed_into_the_form_shows_as_text(
        team: tuple[Newsletter, Seeded], client: FlaskClient) -> None:
    sign_in(client, OWNER)
    answer = client.post("/admin/editors", data={
        "csrf_token": csrf(client, "/admin/editors"), "current": PASSWORD, "email": "n@example.org",
        "name": f"Name {PAYLOAD}", "password": "another long password", "role": "editor"})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert_shown_as_text(client.get("/admin/editors").get_data(as_text=True), "editors",
                         f"Name {PAYLOAD}")


def test_script_in_an_imported_name_and_a_suppression_reason_shows_as_text(
        team: tuple[Newsletter, Seeded], client: FlaskClient) -> None:
    nl, _ = team
    sign_in(client, OWNER)
    token = csrf(client, "/admin/subscribers/import")
    rows = (f'email,name,topics,language\nxss@example.org,"Name {PAYLOAD}",{TOPIC},en\n'
            f'"{SHORT}@example.org",Bad Row,,en\n')
    checked = client.post("/admin/subscribers/import", content_type="multipart/form-data", data={
        "csrf_token": token, "file": (io.BytesIO(rows.encode()), "list.csv")})
    assert checked.status_code == 200, problems(checked.get_data(as_text=True))
    assert_shown_as_text(checked.get_data(as_text=True), "import check", None)
    imported = client.post("/admin/subscribers/import/confirm", data={"csrf_token": token})
    assert imported.status_code == 302
    with nl.session() as session:
        sid = session.scalar(select(Subscriber.id).where(Subscriber.email == "xss@example.org"))
    assert sid is not None
    listing = client.get("/admin/subscribers?q=xss").get_data(as_text=True)
    assert_shown_as_text(listing, "subscriber search", f"Name {PAYLOAD}")
    assert_shown_as_text(client.get(f"/admin/subscribers/{sid}").get_data(as_text=True),
                         "subscriber record", f"Name {PAYLOAD}")
    suppressed = client.post(f"/admin/subscribers/{sid}/suppress",
                             data={"csrf_token": token, "reason": f"Reason {SHORT}"})
    assert suppressed.status_code == 302, problems(suppressed.get_data(as_text=True))
    assert_shown_as_text(client.get(f"/admin/subscribers/{sid}").get_data(as_text=True),
                         "subscriber record, suppressed", f"Reason {SHORT}")
    assert_shown_as_text(client.get("/admin/audit").get_data(as_text=True), "audit log", None)


# --- the preview's sandbox ---------------------------------------------------------------------

def test_the_preview_iframe_is_sandboxed_and_its_document_has_a_sandbox_csp(
        team: tuple[Newsletter, Seeded], client: FlaskClient) -> None:
    sign_in(client, OWNER)
    page = client.get(f"/admin/editions/{MONTH}/preview")
    frames = lxml.html.fromstring(page.get_data(as_text=True)).xpath('//iframe[@title="Email preview"]')
    assert len(frames) == 1
    sandbox = frames[0].get("sandbox")
    assert sandbox is not None, "the iframe has no sandbox attribute"
    assert not {"allow-scripts", "allow-same-origin", "allow-top-navigation",
                "allow-popups"} & set(sandbox.split()), sandbox
    framed = client.get(frames[0].get("src"))
    assert framed.status_code == 200 and framed.mimetype == "text/html"
    policy = {d.split()[0]: d.split()[1:] for d in
              framed.headers["Content-Security-Policy"].split(";") if d.strip()}
    assert "sandbox" in policy and policy["sandbox"] == []  # no allow-* tokens at all
    assert "script-src" not in policy and policy.get("default-src") == ["'none'"]
    assert framed.headers.get("X-Frame-Options") in ("SAMEORIGIN", None)
    assert "frame-ancestors" in policy and "*" not in policy["frame-ancestors"]


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
def test_script_in_a_summary_never_runs_in_chromium(sqlite_url: str, browser: Any) -> None:  # noqa: F811
    """The payload logs 31337/31338 if it ever runs: in the summary form's live preview, the
    edition page and the framed email. The console's CSP is on (no bypass)."""
    from .conftest import make_config
    from .live_site import Served
    from .test_console_browser import sign_in as browser_sign_in

    served = Served.make()
    nl = Newsletter.open(make_config(sqlite_url, base_url=served.base))
    nl.init()
    secret = make_editor(nl, "ada@example.org", role=Role.OWNER, totp=True) or ""
    make_editor(nl, OWNER, role=Role.OWNER)  # the test client's, so Ada's code is used once
    seed_console(nl, MONTH, editor_email="ada@example.org")
    try:
        with served.serving(nl) as app:
            client = app.test_client()
            sign_in(client, OWNER)
            edition_with_script(client, nl)
            with nl.session() as session:
                sid = session.scalar(select(Summary.id).where(Summary.headline.startswith("headline <")))
            page = browser.new_page()
            ran: list[str] = []
            page.on("console", lambda m: ran.append(m.text) if "3133" in m.text else None)
            page.on("dialog", lambda d: ran.append(f"dialog {d.message}"))
            browser_sign_in(page, served.base, secret)
            for path in (f"/admin/summaries/{sid}", f"/admin/editions/{MONTH}",
                         f"/admin/editions/{MONTH}/preview?as=topics&topic={TOPIC}"):
                page.goto(served.base + path)
                page.wait_for_load_state("networkidle")
                assert "headline <script>" in page.locator("main").inner_text(), path
            frame = page.frame_locator('iframe[title="Email preview"]')
            frame.get_by_text(f"headline {PAYLOAD}").first.wait_for()
            page.goto(f"{served.base}/admin/summaries/{sid}")
            page.get_by_label("Headline", exact=True).fill(f"headline {PAYLOAD} again")
            page.wait_for_timeout(1500)
            assert ran == [], ran
            assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
    finally:
        nl.close()
