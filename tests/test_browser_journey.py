"""A clinician's whole journey in headless Chromium, against the app on a real WSGI server.

Sign up → confirmation email (real SMTP on loopback) → the link's page, then its button →
change topics → pause: the edition goes out without them → resume: sent again, it reaches them
with exactly those topics → one-click unsubscribe (a raw RFC 8058 POST) → the next edition skips
them. Screenshots of every page go to test-artifacts/browser/ (git-ignored).
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests

from newsletter.catcher import SMTPCatcher
from newsletter.content.store import assemble_edition, upsert_summary
from newsletter.context import Newsletter
from newsletter.sending.engine import Sender
from newsletter.transports import make_transport
from subscribers.models import SubscriberStatus
from subscribers.store import find

from .builders import MONTH, SUMMARIES, load_month
from .conftest import REPO, make_config
from .live_site import Served
from .test_send_smtp import headlines

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = REPO / "test-artifacts" / "browser"
CLINICIAN = "ana.quiroga@clinic.example"
EMPATHY = SUMMARIES[2].headline
NEXT_MONTH = "2015-02"

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                 reason=f"no Chromium at {CHROMIUM} (apt-get install chromium, "
                                        f"or set CHROMIUM to its path)")]


@pytest.fixture
def site(sqlite_url: str, smtp_server: SMTPCatcher) -> Iterator[tuple[str, Newsletter]]:
    """The app under werkzeug's threaded server on 127.0.0.1; base_url is the server's own."""
    served = Served.make()
    nl = Newsletter.open(make_config(sqlite_url, base_url=served.base, smtp_host=smtp_server.host,
                                     smtp_port=smtp_server.port))
    nl.init()
    try:
        with served.serving(nl, testing=False):  # production mode: mail goes out after each response
            yield served.base, nl
    finally:
        nl.close()


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def mail_to(server: SMTPCatcher, address: str, subject_part: str) -> EmailMessage:
    def find_one() -> EmailMessage | None:
        for item in server.messages:
            message = item.parse()
            if address in item.recipients and subject_part in str(message["Subject"]):
                return message
        return None
    try:
        message: EmailMessage = wait_for(find_one, f"an email '{subject_part}' to {address}")
    except AssertionError as err:
        arrived = [(i.recipients, str(i.parse()["Subject"])) for i in server.messages]
        raise AssertionError(f"{err}; the server received: {arrived}") from None
    return message


def text_link(message: EmailMessage, route: str) -> str:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    match = re.search(rf"http://127\.0\.0\.1:\d+/{route}/[A-Za-z0-9_.\-]+", text.get_content())
    assert match, text.get_content()
    assert match.group(0) in html.get_content()
    return match.group(0)


def send(nl: Newsletter, month: str) -> None:
    transport = make_transport(nl.config)
    try:
        Sender(nl, transport).send(month)
    finally:
        transport.close()


def add_next_month(nl: Newsletter) -> None:
    with nl.session() as session:
        for draft in SUMMARIES:
            upsert_summary(session, dataclasses.replace(
                draft, month=NEXT_MONTH, source=f"next-{draft.source}",
                headline=draft.headline + " (follow-up)"))
        assemble_edition(session, NEXT_MONTH)


def test_signup_confirm_choose_topics_receive_and_leave(site: tuple[str, Newsletter],
                                                        smtp_server: SMTPCatcher) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    base, nl = site
    load_month(nl, audience=(("Ada All", "ada@example.org", None),))
    SHOTS.mkdir(parents=True, exist_ok=True)

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1024, "height": 800})

        def shot(name: str) -> None:
            page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

        page.goto(f"{base}/subscribe")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip-link"
        page.keyboard.press("Tab")  # the masthead: the archive, then the other language
        assert page.evaluate("document.activeElement.className") == "brand"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.hreflang") == "fr"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "email"
        assert page.is_checked("#topics-all")
        page.fill("#email", "ana.quiroga@")
        page.fill("#name", "Dr. Ana Quiroga")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Please check the form")
        assert page.get_attribute("#email", "aria-invalid") == "true"
        shot("01-subscribe-error")
        page.fill("#email", CLINICIAN)
        shot("02-subscribe")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Check your inbox")
        shot("03-check-your-inbox")

        confirmation = mail_to(smtp_server, CLINICIAN, "confirm")
        assert confirmation["To"].addresses[0].display_name == "Dr. Ana Quiroga"
        page.goto(text_link(confirmation, "confirm"))
        page.wait_for_selector("text=Confirm your subscription")
        assert _status(nl) is SubscriberStatus.UNCONFIRMED  # opening the link alone changes nothing
        shot("04-confirm")
        page.click("text=Confirm my subscription")
        page.wait_for_selector("text=You are subscribed")
        shot("04-confirmed")
        welcome = mail_to(smtp_server, CLINICIAN, "Welcome")
        assert "all topics" in welcome.get_body(("plain",)).get_content()  # type: ignore[union-attr]

        page.click("text=Change your topics")
        page.wait_for_selector("h1:has-text('Your preferences')")
        shot("05-preferences")
        page.check("#topics-chosen")
        page.click("details.topic-picker > summary")  # closed while all topics were on
        page.check("#topic-empathy")
        page.click("button[value=save]")
        page.wait_for_selector("text=Your preferences are saved.")
        assert page.is_checked("#topic-empathy") and not page.is_checked("#topic-training")
        shot("06-preferences-saved")
        page.emulate_media(color_scheme="dark")
        shot("07-preferences-dark")
        page.emulate_media(color_scheme="light")

        page.click("button[value=pause]")
        page.wait_for_selector("text=Emails are paused. Your topics are kept")
        assert page.is_visible("dd:has-text('paused since')")
        assert page.is_checked("#topic-empathy") and not page.is_checked("#topic-training")
        shot("08-preferences-paused")
        send(nl, MONTH)
        mail_to(smtp_server, "ada@example.org", "January 2015")
        assert [m.recipients for m in smtp_server.messages if "January" in
                str(m.parse()["Subject"])] == [("ada@example.org",)]

        page.click("dd >> text=Resume emails")
        assert page.evaluate("location.hash") == "#break-title"
        page.click("button[value=resume]")
        page.wait_for_selector("text=Emails are on again, with your topics as they were.")
        assert page.is_checked("#topic-empathy") and not page.is_checked("#topic-training")
        shot("09-preferences-resumed")
        send(nl, MONTH)  # the edition goes again to whoever has not had it yet
        edition = mail_to(smtp_server, CLINICIAN, "January 2015")
        assert headlines(edition) == [EMPATHY]
        assert re.search(r"Your topics:\s+Empathy\s",  # the footer, as the email writes it now
                         edition.get_body(("plain",)).get_content())  # type: ignore[union-attr]

        unsubscribe_url = re.search(r"<(http[^>]+)>", str(edition["List-Unsubscribe"])).group(1)  # type: ignore[union-attr]
        assert edition["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        page.goto(unsubscribe_url)
        page.wait_for_selector("text=Unsubscribe?")
        shot("10-unsubscribe-page")
        assert _status(nl) is SubscriberStatus.ACTIVE  # the page alone changes nothing

        response = requests.post(unsubscribe_url, data="List-Unsubscribe=One-Click", timeout=10,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code == 200
        assert _status(nl) is SubscriberStatus.UNSUBSCRIBED
        page.goto(unsubscribe_url)
        shot("11-unsubscribed")

        page.goto(f"{base}/preferences/not-a-real-token")
        shot("12-bad-link")
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{base}/subscribe")
        shot("13-subscribe-mobile")
        for name, message in (("14-confirmation-email", confirmation), ("15-welcome-email", welcome)):
            page = browser.new_page(viewport={"width": 700, "height": 800})  # not under our CSP
            page.set_content(message.get_body(("html",)).get_content())  # type: ignore[union-attr]
            shot(name)
        browser.close()

    before = len(smtp_server.messages)
    add_next_month(nl)
    send(nl, NEXT_MONTH)
    wait_for(lambda: len(smtp_server.messages) > before, "the next edition")
    assert [m.recipients for m in smtp_server.messages[before:]] == [("ada@example.org",)]


def _status(nl: Newsletter) -> SubscriberStatus | None:
    with nl.session() as session:
        subscriber = find(session, CLINICIAN)
        return None if subscriber is None else subscriber.status
