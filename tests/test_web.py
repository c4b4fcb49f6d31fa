"""The subscriber pages through Flask's test client, on SQLite and PostgreSQL, with real SMTP:
every route, and every bad input a crafted request can bring."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner
from sqlalchemy import inspect, select, text
from werkzeug.test import TestResponse

from newsletter import privacy
from newsletter.catcher import SMTPCatcher
from newsletter.content.models import Edition, EditionStatus
from newsletter.context import Newsletter
from newsletter.db.migrate import alembic_config, upgrade
from newsletter.errors import ConfigError, ContentErrors
from newsletter.tokens import Purpose, TokenSigner
from newsletter.web import create_app
from subscribers.csv_io import SubscriberRow
from subscribers.flows import Flows
from subscribers.models import ConsentMethod, Subscriber, SubscriberStatus, Suppression
from subscribers.store import add_subscriber, find, import_rows, iter_audience, suppress

from .builders import MONTH, SUMMARIES, load_month
from .conftest import RunCli, make_config
from .test_send_smtp import by_recipient, headlines
from .test_send_smtp import send as send_month

BASE = "https://digest.example.org"
SECURITY_HEADERS = {"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy",
                    "X-Content-Type-Options"}


def csrf(client: FlaskClient, path: str = "/subscribe") -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def subscribe(client: FlaskClient, email: str, *, token: str | None = None, **fields: Any):  # type: ignore[no-untyped-def]
    data = {"csrf_token": token or csrf(client), "email": email, "name": "", "topics_mode": "all",
            **fields}
    return client.post("/subscribe", data=data)


def mails(server: SMTPCatcher) -> list[EmailMessage]:
    return [item.parse() for item in server.messages]


def link(message: EmailMessage, route: str) -> str:
    """The path of the first `route` link in the text part (the HTML part must have it too)."""
    text, html = (message.get_body((kind,)) for kind in ("plain", "html"))
    assert text is not None and html is not None
    match = re.search(rf"{BASE}(/{route}/[A-Za-z0-9_.\-]+)", text.get_content())
    assert match, text.get_content()
    assert match.group(1) in html.get_content()
    return match.group(1)


def confirm(client: FlaskClient, path: str) -> TestResponse:
    """Open a confirmation link and press its button, as a person does (GET alone changes nothing)."""
    page = client.get(path)
    assert "Confirm my subscription" in page.get_data(as_text=True), page.get_data(as_text=True)
    return client.post(path, data={"csrf_token": csrf(client, path)})


def status_of(nl: Newsletter, email: str) -> SubscriberStatus | None:
    with nl.session() as session:
        subscriber = find(session, email)
        return None if subscriber is None else subscriber.status


def add(nl: Newsletter, email: str, topics: frozenset[str] | None = None,
        status: SubscriberStatus = SubscriberStatus.ACTIVE) -> str:
    with nl.session() as session:
        subscriber = add_subscriber(session, email, name="Existing", topics=topics,
                                    method=ConsentMethod.ADMIN, status=status)
        return subscriber.uid


def sign(purpose: Purpose, uid: str, nl: Newsletter) -> str:
    return TokenSigner(nl.config.secret_keys).sign(purpose, uid)


# -- pages and headers -------------------------------------------------------------------------

def test_signup_page_is_accessible_with_all_topics_as_the_default(client: FlaskClient) -> None:
    response = client.get("/subscribe")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="en">' in page
    assert len(re.findall(r'type="checkbox" id="topic-', page)) == 36
    assert re.search(r'id="topics-all" name="topics_mode" value="all" checked', page)
    for field in re.findall(r'<input[^>]+id="([^"]+)"', page):
        assert f'for="{field}"' in page, f"input {field} has no label"
    assert "<script" not in page and "style=" not in page
    assert page.index("Adherence") < page.index("Alliance and Therapeutic") < page.index("Training")
    picker = re.search(r'<details class="topic-picker"( open)?>(.*?)</details>', page, re.DOTALL)
    assert picker and picker.group(1) is None  # closed: out of the tab order, opens without JS
    assert len(re.findall(r'type="checkbox"', picker.group(2))) == 36


@pytest.mark.parametrize("path", ["/subscribe", "/static/site.css", "/nope", "/healthz"])
def test_every_response_carries_the_security_headers(client: FlaskClient, path: str) -> None:
    with client.get(path) as response:  # closed: a static file is streamed from disk
        headers = response.headers
    assert set(headers.keys()) >= SECURITY_HEADERS
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "script-src" not in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json) == (200, {"status": "ok"})


def test_error_pages(app: Flask, client: FlaskClient) -> None:
    def broken() -> str:
        raise RuntimeError("boom")

    app.add_url_rule("/broken", "broken", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    not_found, not_allowed = client.get("/nope"), client.delete("/subscribe")
    assert not_found.status_code == 404 and "Page not found" in not_found.get_data(as_text=True)
    assert not_allowed.status_code == 405
    assert set(not_allowed.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}
    failed = client.get("/broken")
    assert failed.status_code == 500
    assert "Something went wrong on our side" in failed.get_data(as_text=True)
    assert "boom" not in failed.get_data(as_text=True)


def test_the_app_refuses_to_start_without_a_secret_key(database_url: str) -> None:
    nl = Newsletter.open(make_config(database_url, secret_key=""))
    try:
        with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY"):
            create_app(nl)
        assert create_app(nl, testing=True).secret_key
    finally:
        nl.close()


# -- signup and confirmation -------------------------------------------------------------------

def test_signup_confirm_welcome(newsletter: Newsletter, client: FlaskClient,
                                smtp_server: SMTPCatcher) -> None:
    response = subscribe(client, "Ada@Example.org", name="Zoë Ünal", topics_mode="chosen",
                         topic=["empathy", "training"])
    assert (response.status_code, response.headers["Location"]) == (303, "/subscribe/check-your-inbox")
    assert "Check your inbox" in client.get(response.headers["Location"]).get_data(as_text=True)
    with newsletter.session() as session:
        row = find(session, "ada@example.org")
        assert row is not None and row.status is SubscriberStatus.UNCONFIRMED
        assert row.topic_slugs == {"empathy", "training"}
        assert row.consent_method is ConsentMethod.WEB_FORM and row.consent_ip_hash
        assert "127.0.0.1" not in row.consent_ip_hash and len(row.consent_ip_hash) == 64

    [confirmation] = mails(smtp_server)
    assert confirmation["Subject"] == "Please confirm your subscription to Research Digest"
    assert confirmation["To"].addresses[0].display_name == "Zoë Ünal"
    assert confirmation["To"].addresses[0].addr_spec == "Ada@example.org"
    assert confirmation["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [p.get_content_type() for p in confirmation.iter_parts()] == ["text/plain", "text/html"]
    assert "Empathy, Training" in confirmation.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    page = confirm(client, link(confirmation, "confirm"))
    assert page.status_code == 200 and "You are subscribed" in page.get_data(as_text=True)
    assert status_of(newsletter, "ada@example.org") is SubscriberStatus.ACTIVE
    welcome = mails(smtp_server)[1]
    assert welcome["Subject"] == "Welcome to Research Digest"
    assert "Empathy, Training" in welcome.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link(welcome, "preferences")

    again = client.get(link(confirmation, "confirm"))
    assert "You are already subscribed" in again.get_data(as_text=True)
    assert len(smtp_server.messages) == 2


def test_welcome_links_the_latest_edition_and_a_suppressed_address_is_not_confirmed(
        newsletter: Newsletter, client: FlaskClient, smtp_server: SMTPCatcher) -> None:
    load_month(newsletter, audience=())
    with newsletter.session() as session:
        edition = session.scalar(select(Edition).where(Edition.month == MONTH))
        assert edition is not None
        edition.status = EditionStatus.SENT
    uid = add(newsletter, "new@example.org", status=SubscriberStatus.UNCONFIRMED)
    assert confirm(client, f"/confirm/{sign(Purpose.CONFIRM, uid, newsletter)}").status_code == 200
    [welcome] = mails(smtp_server)
    assert f"{BASE}/archive/{MONTH}" in welcome.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    blocked = add(newsletter, "blocked@example.org", status=SubscriberStatus.UNCONFIRMED)
    Flows(newsletter).suppress("blocked@example.org", "complaint")
    page = client.get(f"/confirm/{sign(Purpose.CONFIRM, blocked, newsletter)}")
    assert "cannot be subscribed" in page.get_data(as_text=True)
    assert status_of(newsletter, "blocked@example.org") is SubscriberStatus.UNCONFIRMED
    preferences = client.get(f"/preferences/{sign(Purpose.PREFERENCES, blocked, newsletter)}")
    assert "We no longer send email to this address" in preferences.get_data(as_text=True)
    assert len(smtp_server.messages) == 1


def test_unicode_local_part_and_idn_domain(newsletter: Newsletter, client: FlaskClient,
                                           smtp_server: SMTPCatcher) -> None:
    assert subscribe(client, "josé@exämple.org").status_code == 303
    assert smtp_server.messages[0].recipients == ("josé@xn--exmple-cua.org",)
    assert status_of(newsletter, "josé@EXÄMPLE.org") is SubscriberStatus.UNCONFIRMED


def test_signup_answers_the_same_for_new_pending_active_and_suppressed(
        newsletter: Newsletter, client: FlaskClient, smtp_server: SMTPCatcher) -> None:
    add(newsletter, "pending@example.org", status=SubscriberStatus.UNCONFIRMED)
    add(newsletter, "active@example.org", frozenset({"empathy"}))
    with newsletter.session() as session:
        suppress(session, "blocked@example.org", "hard-bounce")
    token = csrf(client)
    answers = []
    for email in ("new@example.org", "pending@example.org", "active@example.org",
                  "blocked@example.org"):
        response = subscribe(client, email, token=token, name="Mallory", topics_mode="chosen",
                             topic=["training"])
        answers.append((response.status_code, response.get_data(),
                        sorted((k, v) for k, v in response.headers.items() if k != "Date")))
    assert all(answer == answers[0] for answer in answers)
    subjects = {m["To"].addresses[0].addr_spec: m["Subject"] for m in mails(smtp_server)}
    assert subjects == {"new@example.org": "Please confirm your subscription to Research Digest",
                        "pending@example.org": "Please confirm your subscription to Research Digest",
                        "active@example.org": "Your subscription to Research Digest"}
    manage = next(m for m in mails(smtp_server) if m["To"].addresses[0].addr_spec.startswith("act"))
    assert client.get(link(manage, "preferences")).status_code == 200
    with newsletter.session() as session:  # the signup changed nothing of the active subscription
        active = find(session, "active@example.org")
        assert active is not None and (active.name, active.topic_slugs) == ("Existing", {"empathy"})


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"email": "not-an-address"}, "email", "An email address must have an @-sign."),
    ({"email": ""}, "email", "The address is empty"),
    ({"email": "a" * 400 + "@example.org"}, "email", "The address is too long"),
    ({"name": "Ann\r\nBcc: victim@example.org"}, "name", "line breaks or control characters"),
    ({"name": "Ann\nSubject: win"}, "name", "line breaks or control characters"),
    ({"name": "x" * 101}, "name", "longer than 100 characters"),
    ({"name": "Cheap pills at https://spam.example"}, "name", "cannot contain a web address"),
    ({"topics_mode": "chosen", "topic": ["empathy", "astrology"]}, "topics", "Unknown topic(s): astrology"),
    ({"topics_mode": "chosen", "topic": ["x" * 500]}, "topics", "Unknown topic"),
    ({"topics_mode": "chosen"}, "topics", "Choose at least one topic"),
    ({"language": "xx"}, "language", "Choose one of the languages offered"),
    ({"topics_mode": "everything"}, "topics", "Choose “All topics”"),
])
def test_bad_signup_input_is_sent_back_and_changes_nothing(
        newsletter: Newsletter, client: FlaskClient, smtp_server: SMTPCatcher,
        fields: dict[str, Any], field: str, message: str) -> None:
    fields = {"email": "ann@example.org", **fields}
    response = subscribe(client, fields.pop("email"), **fields)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in page and 'class="error-summary"' in page
    assert f'id="{field}-error"' in page
    assert "Bcc" not in response.headers.get("Location", "")
    assert smtp_server.messages == []
    with newsletter.session() as session:
        assert session.scalars(select(Subscriber)).all() == []


def test_header_injection_is_refused_by_the_library_too(newsletter: Newsletter) -> None:
    with pytest.raises(ContentErrors) as caught:
        Flows(newsletter).signup("ann@example.org", "Ann\r\nBcc: x@example.org", None, "127.0.0.1")
    assert [e.field for e in caught.value.errors] == ["name"]


def test_oversize_request_is_413(client: FlaskClient, smtp_server: SMTPCatcher) -> None:
    response = subscribe(client, "ann@example.org", name="x" * 20_000)
    assert response.status_code == 413 and "Too much data" in response.get_data(as_text=True)
    assert smtp_server.messages == []


def test_posts_without_a_matching_csrf_token_are_refused(newsletter: Newsletter,
                                                         client: FlaskClient) -> None:
    uid = add(newsletter, "bob@example.org")
    preferences = f"/preferences/{sign(Purpose.PREFERENCES, uid, newsletter)}"
    unsubscribe = f"/u/{sign(Purpose.UNSUBSCRIBE, uid, newsletter)}"
    csrf(client)  # the session now has a token; the forms below do not carry it
    for path, data in ((("/subscribe", {"email": "eve@example.org"})),
                       (preferences, {"action": "save", "topics_mode": "all"}),
                       (preferences, {"action": "unsubscribe", "csrf_token": "forged"}),
                       (unsubscribe, {}), (unsubscribe, {"List-Unsubscribe": "Yes"})):
        response = client.post(path, data=data)
        assert response.status_code == 400, path
        assert "did not come from this site" in response.get_data(as_text=True)
    assert status_of(newsletter, "bob@example.org") is SubscriberStatus.ACTIVE
    assert status_of(newsletter, "eve@example.org") is None


def test_rate_limits_per_client_and_per_address(newsletter: Newsletter, client: FlaskClient,
                                                smtp_server: SMTPCatcher) -> None:
    token = csrf(client)
    for _ in range(3):
        assert subscribe(client, "ann@example.org", token=token).status_code == 303
    assert subscribe(client, "ann@example.org", token=token).status_code == 303  # same answer…
    assert len(smtp_server.messages) == 3  # …but no fourth email to that mailbox
    for n in range(6):
        assert subscribe(client, f"p{n}@example.org", token=token).status_code == 303
    limited = subscribe(client, "late@example.org", token=token)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert status_of(newsletter, "late@example.org") is None


# -- tokens ------------------------------------------------------------------------------------

def test_bad_links_get_a_400_page_and_touch_nobody(newsletter: Newsletter, client: FlaskClient) -> None:
    uid = add(newsletter, "bob@example.org")
    good = {p: sign(p, uid, newsletter) for p in Purpose}
    foreign = TokenSigner(["someone-elses-key"]).sign(Purpose.UNSUBSCRIBE, uid)
    tampered = good[Purpose.UNSUBSCRIBE][:-3] + ("aaa" if not good[Purpose.UNSUBSCRIBE].endswith(
        "aaa") else "bbb")
    cases = [("/u/", tampered), ("/u/", foreign), ("/u/", good[Purpose.PREFERENCES]),
             ("/u/", good[Purpose.CONFIRM]), ("/u/", "x" * 600), ("/u/", "nonsense"),
             ("/preferences/", good[Purpose.UNSUBSCRIBE]), ("/confirm/", good[Purpose.UNSUBSCRIBE]),
             ("/confirm/", good[Purpose.PREFERENCES])]
    for prefix, token in cases:
        for method in ("get", "post"):
            data = {"List-Unsubscribe": "One-Click"} if prefix == "/u/" else {"action": "pause"}
            response = client.get(prefix + token) if method == "get" else \
                client.post(prefix + token, data={**data, "csrf_token": csrf(client)})
            assert response.status_code == 400, (prefix, token, method)
            assert "This link is not valid" in response.get_data(as_text=True)
    with newsletter.session() as session:
        bob = find(session, "bob@example.org")
        assert bob is not None and bob.status is SubscriberStatus.ACTIVE and bob.all_topics


def test_confirmation_links_expire(newsletter: Newsletter, client: FlaskClient,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    uid = add(newsletter, "late@example.org", status=SubscriberStatus.UNCONFIRMED)
    with monkeypatch.context() as m:
        m.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 8 * 86400)
        old_confirm = sign(Purpose.CONFIRM, uid, newsletter)
        old_unsubscribe = sign(Purpose.UNSUBSCRIBE, uid, newsletter)
    response = client.get(f"/confirm/{old_confirm}")
    assert response.status_code == 400
    assert "This link has expired" in response.get_data(as_text=True)
    assert status_of(newsletter, "late@example.org") is SubscriberStatus.UNCONFIRMED
    # unsubscribe links never expire
    assert client.post(f"/u/{old_unsubscribe}", data="List-Unsubscribe=One-Click",
                       content_type="application/x-www-form-urlencoded").status_code == 200
    assert status_of(newsletter, "late@example.org") is SubscriberStatus.UNSUBSCRIBED


def test_rotated_keys_still_verify(newsletter: Newsletter, database_url: str,
                                   smtp_server: SMTPCatcher) -> None:
    uid = add(newsletter, "bob@example.org")
    old_token = sign(Purpose.UNSUBSCRIBE, uid, newsletter)
    new_key = "new-key-" + "k" * 32  # long enough for the key check
    rotated = Newsletter.open(make_config(database_url,
                                          secret_key=f"{new_key},{newsletter.config.secret_key}"))
    try:
        client = create_app(rotated, testing=True).test_client()
        assert "Unsubscribe?" in client.get(f"/u/{old_token}").get_data(as_text=True)
    finally:
        rotated.close()


# -- preferences -------------------------------------------------------------------------------

def test_preference_centre_shows_and_changes_choices(newsletter: Newsletter,
                                                     client: FlaskClient) -> None:
    uid = add(newsletter, "bob@example.org", frozenset({"empathy"}))
    path = f"/preferences/{sign(Purpose.PREFERENCES, uid, newsletter)}"
    page = client.get(path).get_data(as_text=True)
    assert re.search(r'id="topic-empathy" name="topic" value="empathy" checked', page)
    assert re.search(r'id="topics-chosen" name="topics_mode" value="chosen" checked', page)
    assert "bob@example.org" in page and 'value="Existing"' in page

    saved = client.post(path, data={"csrf_token": csrf(client, path), "action": "save",
                                    "name": "Bob B", "topics_mode": "chosen",
                                    "topic": ["training", "attachment"],
                                    "next": "https://evil.example/"})
    assert saved.status_code == 303 and saved.headers["Location"] == path + "?done=saved"
    assert "Your preferences are saved." in client.get(saved.headers["Location"]).get_data(as_text=True)
    with newsletter.session() as session:
        bob = find(session, "bob@example.org")
        assert bob is not None and (bob.name, bob.topic_slugs) == ("Bob B", {"training", "attachment"})

    bad = client.post(path, data={"csrf_token": csrf(client, path), "action": "save",
                                  "name": "Bob\r\nBcc: x@y.z", "topics_mode": "all"})
    assert bad.status_code == 400 and "line breaks" in bad.get_data(as_text=True)

    client.post(path, data={"csrf_token": csrf(client, path), "action": "save", "name": "",
                            "topics_mode": "all"})
    with newsletter.session() as session:
        bob = find(session, "bob@example.org")
        assert bob is not None and bob.topic_slugs is None


def press(client: FlaskClient, path: str, action: str, **fields: Any):  # type: ignore[no-untyped-def]
    """A preference-centre button, with the page's CSRF token."""
    return client.post(path, data={"csrf_token": csrf(client, path), "action": action, **fields})


def pause_state(nl: Newsletter, email: str) -> tuple[datetime | None, frozenset[str] | None]:
    """(paused_at, topics) as stored."""
    with nl.session() as session:
        subscriber = find(session, email)
        assert subscriber is not None
        return subscriber.paused_at, subscriber.topic_slugs


def preferences_path(nl: Newsletter, uid: str) -> str:
    return f"/preferences/{sign(Purpose.PREFERENCES, uid, nl)}"


@pytest.mark.parametrize("topics", [None, frozenset({"empathy", "training"})],
                         ids=["all-topics", "chosen-topics"])
def test_pause_keeps_the_topics_and_resume_brings_them_back(
        newsletter: Newsletter, client: FlaskClient, topics: frozenset[str] | None) -> None:
    path = preferences_path(newsletter, add(newsletter, "bob@example.org", topics))
    assert 'value="resume"' not in client.get(path).get_data(as_text=True)

    paused = press(client, path, "pause")
    assert (paused.status_code, paused.headers["Location"]) == (303, path + "?done=paused")
    paused_at, kept = pause_state(newsletter, "bob@example.org")
    assert paused_at is not None and kept == topics
    page = client.get(paused.headers["Location"]).get_data(as_text=True)
    assert "Emails are paused. Your topics are kept" in page
    assert f"paused since {paused_at.day} {paused_at:%B %Y}" in page
    assert 'value="resume"' in page and 'value="pause"' not in page
    assert '· <a href="#break-title">Resume emails</a>' in page

    press(client, path, "pause")
    assert pause_state(newsletter, "bob@example.org") == (paused_at, topics)

    resumed = press(client, path, "resume")
    assert resumed.headers["Location"] == path + "?done=resumed"
    assert pause_state(newsletter, "bob@example.org") == (None, topics)
    page = client.get(resumed.headers["Location"]).get_data(as_text=True)
    assert "Emails are on again, with your topics as they were." in page
    assert "<dd>subscribed</dd>" in page and 'value="pause"' in page


def test_saving_preferences_while_paused_keeps_the_pause_and_says_so(
        newsletter: Newsletter, client: FlaskClient) -> None:
    path = preferences_path(newsletter, add(newsletter, "bob@example.org", frozenset({"empathy"})))
    press(client, path, "pause")
    assert "Saving keeps emails paused" in client.get(path).get_data(as_text=True)

    saved = press(client, path, "save", name="Bob", topics_mode="chosen", topic=["attachment"])
    assert saved.headers["Location"] == path + "?done=saved"
    page = client.get(saved.headers["Location"]).get_data(as_text=True)
    assert "Emails stay paused until you resume them." in page
    paused_at, topics = pause_state(newsletter, "bob@example.org")
    assert paused_at is not None and topics == {"attachment"}

    press(client, path, "resume")
    assert pause_state(newsletter, "bob@example.org") == (None, {"attachment"})
    saved_page = client.get(press(client, path, "save", name="Bob", topics_mode="all")
                            .headers["Location"]).get_data(as_text=True)
    assert "Your preferences are saved." in saved_page and "stay paused" not in saved_page


def test_someone_paused_the_old_way_is_asked_to_choose_topics(newsletter: Newsletter,
                                                              client: FlaskClient) -> None:
    path = preferences_path(newsletter, add(newsletter, "old@example.org", frozenset()))
    page = client.get(path).get_data(as_text=True)
    assert "<dd>subscribed</dd>" in page and "paused since" not in page
    assert "nothing: no topics are chosen. Choose some below and save." in page
    assert re.search(r'id="topics-chosen" name="topics_mode" value="chosen" checked', page)
    refused = press(client, path, "save", name="", topics_mode="chosen")
    assert refused.status_code == 400 and "Choose at least one topic" in refused.get_data(as_text=True)
    press(client, path, "save", name="", topics_mode="chosen", topic=["empathy"])
    assert pause_state(newsletter, "old@example.org") == (None, {"empathy"})


def test_a_paused_subscriber_is_left_out_of_a_real_send_and_resumes_with_their_topics(
        newsletter: Newsletter, client: FlaskClient, smtp_server: SMTPCatcher) -> None:
    load_month(newsletter)
    with newsletter.session() as session:
        cy = find(session, "cy@example.org")
        assert cy is not None
        path, cy_id = preferences_path(newsletter, cy.uid), cy.id
    press(client, path, "pause")
    with newsletter.session() as session:
        audience = [r.id for chunk in iter_audience(session, chunk_size=2) for r in chunk]
    assert len(audience) == 3 and cy_id not in audience

    report = send_month(newsletter)
    assert sorted(by_recipient(smtp_server)) == ["ada@example.org", "bob@example.org"]
    assert (report.sent, report.planned.no_match) == (2, 1)

    press(client, path, "resume")
    before = len(smtp_server.messages)
    assert send_month(newsletter).sent == 1
    [resumed] = [item.parse() for item in smtp_server.messages[before:]]
    assert resumed["To"].addresses[0].addr_spec == "cy@example.org"
    assert headlines(resumed) == [SUMMARIES[0].headline, SUMMARIES[2].headline]


def test_coming_back_after_leaving_ends_an_old_pause(newsletter: Newsletter, client: FlaskClient,
                                                     smtp_server: SMTPCatcher) -> None:
    path = preferences_path(newsletter, add(newsletter, "bob@example.org", frozenset({"empathy"})))
    press(client, path, "pause")
    gone = press(client, path, "unsubscribe")
    assert gone.status_code == 200 and "You are unsubscribed" in gone.get_data(as_text=True)
    assert status_of(newsletter, "bob@example.org") is SubscriberStatus.UNSUBSCRIBED
    assert "Subscribe again" in client.get(path).get_data(as_text=True)
    assert press(client, path, "resubscribe").status_code == 303
    assert status_of(newsletter, "bob@example.org") is SubscriberStatus.ACTIVE
    assert pause_state(newsletter, "bob@example.org") == (None, {"empathy"})

    press(client, path, "pause")
    press(client, path, "unsubscribe")
    subscribe(client, "bob@example.org", topics_mode="chosen", topic=["training"])
    confirm(client, link(mails(smtp_server)[-1], "confirm"))
    assert status_of(newsletter, "bob@example.org") is SubscriberStatus.ACTIVE
    assert pause_state(newsletter, "bob@example.org") == (None, {"training"})


# -- unsubscribe -------------------------------------------------------------------------------

def test_get_never_unsubscribes_and_the_button_does(newsletter: Newsletter,
                                                    client: FlaskClient) -> None:
    uid = add(newsletter, "bob@example.org")
    path = f"/u/{sign(Purpose.UNSUBSCRIBE, uid, newsletter)}"
    for _ in range(3):
        assert client.get(path).status_code == 200
        assert client.head(path).status_code == 200
    assert status_of(newsletter, "bob@example.org") is SubscriberStatus.ACTIVE
    page = client.get(path).get_data(as_text=True)
    assert "Unsubscribe?" in page and "bob@example.org" in page
    done = client.post(path, data={"csrf_token": csrf(client, path)})
    assert done.status_code == 200 and "You are unsubscribed" in done.get_data(as_text=True)
    assert status_of(newsletter, "bob@example.org") is SubscriberStatus.UNSUBSCRIBED
    assert "already unsubscribed" in client.get(path).get_data(as_text=True)


def test_one_click_unsubscribe_needs_no_csrf_and_is_idempotent(
        newsletter: Newsletter, app: Flask) -> None:
    uid = add(newsletter, "bob@example.org")
    other = add(newsletter, "carol@example.org")
    path = f"/u/{sign(Purpose.UNSUBSCRIBE, uid, newsletter)}"
    client = app.test_client(use_cookies=False)  # a mail client: no cookies, no page first
    for _ in range(2):
        response = client.post(path, data="List-Unsubscribe=One-Click",
                               content_type="application/x-www-form-urlencoded")
        assert response.status_code == 200
    multipart = client.post(path, data={"List-Unsubscribe": "One-Click"},
                            content_type="multipart/form-data")
    assert multipart.status_code == 200
    assert status_of(newsletter, "bob@example.org") is SubscriberStatus.UNSUBSCRIBED
    assert status_of(newsletter, "carol@example.org") is SubscriberStatus.ACTIVE
    assert other


def test_a_genuine_link_for_an_erased_person_answers_calmly(newsletter: Newsletter,
                                                            client: FlaskClient) -> None:
    uid = add(newsletter, "bob@example.org")
    privacy.erase(newsletter, "bob@example.org")
    response = client.post(f"/u/{sign(Purpose.UNSUBSCRIBE, uid, newsletter)}",
                           data="List-Unsubscribe=One-Click",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200 and "not on our list" in response.get_data(as_text=True)
    assert client.get(f"/preferences/{sign(Purpose.PREFERENCES, uid, newsletter)}").status_code == 400


def test_no_open_redirects(client: FlaskClient) -> None:
    for path in ("/subscribe?next=https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = client.get(path)
        assert "evil" not in response.headers.get("Location", "")


def test_mail_goes_out_in_the_background_in_production_mode(
        newsletter: Newsletter, smtp_server: SMTPCatcher) -> None:
    import threading
    client = create_app(newsletter).test_client()
    response = client.post("/subscribe", data={"csrf_token": csrf(client),
                                               "email": "ann@example.org", "topics_mode": "all"})
    assert response.status_code == 303
    for job in threading.enumerate():  # started before the response; mails when it is done
        if job.name == "newsletter-subscriber-job":
            job.join(10)
    assert [m.recipients for m in smtp_server.messages] == [("ann@example.org",)]


# -- administration (library and CLI) ----------------------------------------------------------

def test_purge_erase_suppress_and_describe(newsletter: Newsletter) -> None:
    flows = Flows(newsletter)
    add(newsletter, "stale@example.org", status=SubscriberStatus.UNCONFIRMED)
    add(newsletter, "bob@example.org", frozenset({"empathy"}))
    assert flows.purge_unconfirmed() == 0
    assert flows.purge_unconfirmed(older_than=timedelta(0)) == 1
    assert status_of(newsletter, "stale@example.org") is None

    record = privacy.describe(newsletter, "BOB@example.org")
    assert record is not None and record["subscriber"]["topics"] == ["empathy"]
    assert record["suppression"] is None

    flows.suppress("bob@example.org", "asked by phone")
    assert privacy.describe(newsletter, "bob@example.org")["suppression"]["reason"] == "asked by phone"  # type: ignore[index]
    assert flows.unsuppress("bob@example.org") == "asked by phone"
    assert flows.unsuppress("bob@example.org") is None

    assert privacy.erase(newsletter, "bob@example.org") is True
    with newsletter.session() as session:
        assert find(session, "bob@example.org") is None
        [kept] = session.scalars(select(Suppression)).all()
        assert (kept.email, kept.reason) == (None, "erased")
        report = import_rows(session, [SubscriberRow(2, "bob@example.org", "Bob", None)], "test")
        assert report.skipped == {"suppressed": [2]} and report.added == 0
    assert privacy.describe(newsletter, "bob@example.org")["subscriber"] is None  # type: ignore[index]


def test_import_brings_nobody_back_unless_forced(newsletter: Newsletter) -> None:
    add(newsletter, "left@example.org", status=SubscriberStatus.UNSUBSCRIBED)
    privacy.erase(newsletter, "erased@example.org")
    rows = [SubscriberRow(2, "left@example.org", "Left", None),
            SubscriberRow(3, "erased@example.org", "Erased", frozenset({"empathy"}))]
    with newsletter.session() as session:
        report = import_rows(session, rows, "test")
        assert report.skipped == {"already unsubscribed": [2], "suppressed": [3]}
        forced = import_rows(session, rows, "test: forced", force_resubscribe=True)
        assert (forced.resubscribed, forced.skipped, forced.added) == (2, {}, 0)
    assert status_of(newsletter, "left@example.org") is SubscriberStatus.ACTIVE
    assert status_of(newsletter, "erased@example.org") is SubscriberStatus.ACTIVE


def test_cli_show_erase_suppress_purge(newsletter: Newsletter, run_cli: RunCli) -> None:
    add(newsletter, "bob@example.org", frozenset({"empathy"}))
    shown = json.loads(run_cli("subscribers", "show", "bob@example.org", "--json").output)
    assert shown["subscriber"]["status"] == "active" and shown["subscriber"]["topics"] == ["empathy"]
    assert "status: active" in run_cli("subscribers", "show", "bob@example.org").output
    assert run_cli("subscribers", "suppress", "bob@example.org", "--reason", "phone").output == \
        "bob@example.org: suppressed (phone).\n"
    assert run_cli("subscribers", "unsuppress", "bob@example.org").output == \
        "bob@example.org: no longer suppressed (was: phone).\n"
    assert "not suppressed" in run_cli("subscribers", "unsuppress", "bob@example.org", code=1).output
    assert run_cli("subscribers", "erase", "bob@example.org", "--yes").output == \
        "bob@example.org: erased; suppressed by hash.\n"
    assert "nothing is held" not in run_cli("subscribers", "show", "bob@example.org").output
    assert "nothing is held" in run_cli("subscribers", "show", "nobody@example.org", code=1).output
    assert run_cli("subscribers", "purge-unconfirmed").output == \
        "Deleted 0 unconfirmed signup(s) older than 7 days.\n"


def test_cli_lists_exports_and_shows_a_pause(newsletter: Newsletter, client: FlaskClient,
                                             run_cli: RunCli, tmp_path: Path) -> None:
    press(client, preferences_path(newsletter, add(newsletter, "bob@example.org",
                                                   frozenset({"empathy"}))), "pause")
    add(newsletter, "ann@example.org")
    paused_at, _ = pause_state(newsletter, "bob@example.org")
    shown = json.loads(run_cli("subscribers", "show", "bob@example.org", "--json").output)
    assert shown["subscriber"]["status"] == "active"
    assert shown["subscriber"]["paused_at"] == str(paused_at)
    listed = run_cli("subscribers", "list").output.splitlines()
    assert [line.split()[:2] for line in listed] == [["paused", "bob@example.org"],
                                                     ["active", "ann@example.org"]]

    exported = tmp_path / "export.csv"
    run_cli("subscribers", "export", "--out", str(exported))
    assert exported.read_text(encoding="utf-8").splitlines()[1:] == [
        "bob@example.org,Existing,empathy,paused", "ann@example.org,Existing,all,active"]
    assert "0 added, 0 updated, 2 unchanged" in run_cli("subscribers", "import",
                                                        str(exported)).output
    assert pause_state(newsletter, "bob@example.org") == (paused_at, {"empathy"})


def test_downgrading_below_0003_keeps_paused_people_unmailed_and_other_choices_intact(
        newsletter: Newsletter, client: FlaskClient) -> None:
    press(client, preferences_path(newsletter, add(newsletter, "bob@example.org",
                                                   frozenset({"empathy"}))), "pause")
    add(newsletter, "ann@example.org", frozenset({"training", "empathy"}))
    command.downgrade(alembic_config(newsletter.engine), "0002")
    with newsletter.engine.connect() as connection:
        columns = {column["name"] for column in inspect(connection).get_columns("subscribers")}
        chosen = connection.execute(text(
            "SELECT s.email, s.all_topics, count(t.topic_id) FROM subscribers s "
            "LEFT JOIN subscriber_topics t ON t.subscriber_id = s.id "
            "GROUP BY s.id, s.email, s.all_topics ORDER BY s.id")).all()
    assert "paused_at" not in columns
    assert [(email, bool(everything), count) for email, everything, count in chosen] == [
        ("bob@example.org", False, 0), ("ann@example.org", False, 2)]
    upgrade(newsletter.engine)
    assert pause_state(newsletter, "bob@example.org") == (None, frozenset())
    assert pause_state(newsletter, "ann@example.org") == (None, {"training", "empathy"})
