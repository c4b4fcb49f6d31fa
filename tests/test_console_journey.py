"""An editor's whole month in the console, in Debian's Chromium (Playwright), against the real app
on a real threaded WSGI server (SQLite), a real SMTP server (aiosmtpd), a Crossref REST API on
loopback and a running scheduler process:

sign in with TOTP → a summary whose DOI Crossref does not know (nothing changes), then one it
knows (the citation fills) → a second summary → assemble the edition, move an item, save →
preview as a topic set and as a subscriber (the sandboxed iframe holds the email) → test send
(parsed from aiosmtpd: "[TEST]", multipart/alternative, both parts) → schedule a few seconds
ahead, confirm → the scheduler sends at the time, the watch page's counts move without a reload
→ the report agrees with the ledger and with what aiosmtpd received, one copy each.

Screenshots of each step go to test-artifacts/console/; the README's go to docs/img/console-*.png.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pyotp
import pytest
from sqlalchemy import func, select

from newsletter.catcher import SMTPCatcher
from newsletter.content.models import Edition, Summary
from newsletter.context import Newsletter
from newsletter.editors.models import Role
from newsletter.sending.models import Delivery, DeliveryStatus
from newsletter.sending.report import plan_without_sending

from .conftest import REPO, make_config
from .console_journey_support import TOPICS, audience, seed_audience, start_scheduler
from .console_support import PASSWORD, make_editor
from .crossref_support import ARTICLE_DOI, NOT_FOUND, FakeCrossref, fake_crossref
from .live_site import Served
from .test_scheduling import stop, wait_for
from .test_web_browser import CHROMIUM, browser  # noqa: F401  (the fixture)

SHOTS = REPO / "test-artifacts" / "console"
DOCS = REPO / "docs" / "img"
DOCS_HEIGHT = 1600
EDITOR = "ada@pprnet.example"
TESTER = "tester@clinic.example"
RATE = 2  # messages a second: ~20 recipients take ~10 s, so the counts visibly move
ZONE = "America/Toronto"
FIRST = "Repairing Alliance Ruptures in Everyday Practice"
SECOND = "Empathy Predicts Outcome Across Therapies"
SUBJECT = "Research Digest: two new summaries"
FIRST_BODY = "Ruptures are repairable: name them early."
SECOND_BODY = "A moderately strong predictor, in every modality."
"""Bodies, not headlines, say which summaries a copy has: its "also this month" lists the rest."""
FIRST_TOPIC = TOPICS[1]  # Alliance and Therapeutic Relationship
SECOND_TOPIC = TOPICS[13]  # Empathy

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")]


@dataclass
class World:
    base: str
    nl: Newsletter
    secret: str
    smtp: SMTPCatcher
    crossref: FakeCrossref
    log: Path
    month: str


@pytest.fixture
def world(sqlite_url: str, smtp_server: SMTPCatcher, tmp_path: Path) -> Iterator[World]:
    served = Served.make()
    log = tmp_path / "scheduler.log"
    with fake_crossref() as crossref:
        nl = Newsletter.open(make_config(
            sqlite_url, base_url=served.base, smtp_host=smtp_server.host,
            smtp_port=smtp_server.port, crossref_url=crossref.url, timezone=ZONE,
            rate_limit=RATE))
        nl.init()
        secret = make_editor(nl, EDITOR, name="Ada Editor", role=Role.OWNER, totp=True) or ""
        seed_audience(nl, audience(30))
        scheduler = start_scheduler(nl, log, rate_limit=str(RATE), timezone=ZONE)
        try:
            with served.serving(nl):
                yield World(served.base, nl, secret, smtp_server, crossref, log,
                            datetime.now(UTC).strftime("%Y-%m"))
        finally:
            stop(scheduler)
            nl.close()


class Steps:
    """The page and its screenshots: `shot(name)` into test-artifacts, `docs=` also into docs/img."""

    def __init__(self, page: Any, base: str) -> None:
        self.page, self.base, self.n = page, base, 0
        SHOTS.mkdir(parents=True, exist_ok=True)

    def shot(self, name: str, *, docs: str | None = None, page: Any = None,
             focus: Any = None) -> None:
        """The whole page into test-artifacts; with `docs`, the README's copy too: the page's
        top DOCS_HEIGHT px, or with `focus` the viewport scrolled to that element."""
        page = page or self.page
        self.n += 1
        page.screenshot(path=str(SHOTS / f"journey-{self.n:02d}-{name}.png"), full_page=True)
        if not docs:
            return
        DOCS.mkdir(parents=True, exist_ok=True)
        target = str(DOCS / f"console-{docs}.png")
        if focus is not None:
            focus.scroll_into_view_if_needed()
            page.wait_for_timeout(500)  # a frame scrolled into view is painted on the next frames
            page.screenshot(path=target)
            page.evaluate("window.scrollTo(0, 0)")
            return
        width = page.viewport_size["width"]
        height = min(DOCS_HEIGHT, int(page.evaluate("document.documentElement.scrollHeight")))
        page.screenshot(path=target, full_page=True,
                        clip={"x": 0, "y": 0, "width": width, "height": height})

    def run(self, name: str, step: Callable[[], None]) -> None:
        """One step of the journey; a failure leaves a screenshot named after it."""
        try:
            step()
        except Exception:
            self.page.screenshot(path=str(SHOTS / f"journey-failed-{name.replace(' ', '-')}.png"),
                                 full_page=True)
            raise

    def go(self, path: str) -> None:
        self.page.goto(self.base + path)

    def status(self, containing: str) -> Any:
        found = self.page.get_by_role("status").filter(has_text=containing)
        found.first.wait_for(timeout=10_000)
        return found

    def button(self, name: str, within: Any = None) -> Any:
        return (within or self.page).get_by_role("button", name=name, exact=True)


def test_an_editors_month_from_sign_in_to_the_report(world: World, browser: Any) -> None:  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id=ZONE)
    context.set_default_timeout(15_000)
    context.add_init_script(VIOLATIONS)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"{page.url} ({m.location.get('url')}:"
                                               f"{m.location.get('lineNumber')}): {m.text}")
            if m.type == "error" and not expected_noise(m.text, m.location.get("url", ""))
            else None)
    steps = Steps(page, world.base)
    steps.run("sign in", lambda: sign_in(steps, world))
    steps.run("summaries", lambda: write_summaries(steps, world))
    steps.run("edition", lambda: assemble(steps, world))
    steps.run("preview", lambda: preview(steps, world, browser))
    steps.run("test send", lambda: send_a_test(steps, world))
    steps.run("schedule and watch", lambda: schedule_and_watch(steps, world))
    steps.run("report", lambda: report(steps, world))
    steps.run("topics and subscribers", lambda: topics_and_subscribers(steps))
    context.close()
    assert errors == [], "\n".join(errors)  # no CSP complaint, no script error on any page


VIOLATIONS = """document.addEventListener('securitypolicyviolation', e => console.error(
  'CSP violation of ' + e.violatedDirective + ' by ' + (e.target && e.target.outerHTML
    ? e.target.outerHTML.slice(0, 200) : String(e.target)) + ' sample ' + e.sample));"""
"""Names the element behind each CSP violation in the console, so a failure says what to fix."""


def expected_noise(text: str, url: str) -> bool:
    """Console errors that are no fault: no favicon, and the answers a form gives on purpose
    (400: the schedule refused while a retraction is unacknowledged)."""
    return "favicon.ico" in url or "status of 400" in text



def sign_in(steps: Steps, world: World) -> None:
    page = steps.page
    steps.go("/admin/")
    assert page.url.endswith("/admin/login")
    page.get_by_label("Email").fill(EDITOR)
    page.get_by_label("Password").fill(PASSWORD)
    steps.shot("login", docs="login")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/admin/login/code")
    page.get_by_label("Code").fill(pyotp.TOTP(world.secret).now())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/")
    steps.shot("home")


CITATION = ("Title", "Authors", "Year", "Journal", "Volume", "Issue", "Pages")


def citation_fields(page: Any) -> dict[str, str]:
    return {label: page.get_by_label(label, exact=True).input_value() for label in CITATION}


def write_summaries(steps: Steps, world: World) -> None:
    page = steps.page
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Summaries").click()
    page.wait_for_url("**/admin/summaries")
    page.get_by_role("link", name="New summary").click()
    page.wait_for_url("**/admin/summaries/new")
    page.get_by_label("Month", exact=True).fill(world.month)
    page.get_by_label("Headline", exact=True).fill(FIRST)
    page.get_by_label("DOI", exact=True).fill(NOT_FOUND)
    before = citation_fields(page)
    steps.button("Fill from Crossref").click()
    steps.status("Crossref has no record")
    assert citation_fields(page) == before  # nothing changed
    assert page.get_by_label("Headline", exact=True).input_value() == FIRST
    steps.shot("summary-doi-unknown")
    page.get_by_label("DOI", exact=True).fill(ARTICLE_DOI)
    steps.button("Fill from Crossref").click()
    steps.status("Filled from Crossref")
    filled = citation_fields(page)
    assert "Alliance" in filled["Title"] and "Safran" in filled["Authors"], filled
    assert (filled["Year"], filled["Journal"], filled["Volume"], filled["Issue"], filled["Pages"]) \
        == ("2014", "Psychotherapy", "51", "3", "381-387"), filled
    assert [unquote(r["path"]) for r in world.crossref.requests][-2:] == [
        f"/works/{NOT_FOUND}", f"/works/{ARTICLE_DOI}"]
    # the editor puts Crossref's publisher casing into APA's sentence case
    page.get_by_label("Title", exact=True).fill(
        "Alliance ruptures, impasses, and enactments: A relational perspective")
    fill_summary(steps, FIRST, FIRST_TOPIC.name, FIRST_BODY,
                 "Ask about the relationship when sessions stall.")
    preview = page.get_by_role("region", name="Preview")
    preview.get_by_text(FIRST_BODY).first.wait_for()  # the live preview caught up with the form
    preview.get_by_text("Not ready to save").wait_for(state="detached")
    assert "Ask about the relationship" in preview.inner_text()
    steps.shot("summary-form", docs="summary", focus=preview)
    save(steps)

    page.goto(world.base + "/admin/summaries/new")
    page.get_by_label("Month", exact=True).fill(world.month)
    for label, value in (("Title", "Therapist empathy and client outcome: An updated meta-analysis"),
                         ("Authors", "Elliott, R.\nBohart, A. C."), ("Year", "2018"),
                         ("Journal", "Psychotherapy"), ("Volume", "55"), ("Issue", "4"),
                         ("Pages", "399-410")):
        page.get_by_label(label, exact=True).fill(value)
    fill_summary(steps, SECOND, SECOND_TOPIC.name, SECOND_BODY,
                 "Train empathic responding.")
    save(steps)
    steps.go("/admin/summaries")
    for headline in (FIRST, SECOND):
        assert page.get_by_text(headline).count() >= 1, headline
    steps.shot("summaries")


def fill_summary(steps: Steps, headline: str, topic: str, body: str, implications: str) -> None:
    page = steps.page
    page.get_by_label("Headline", exact=True).fill(headline)
    page.get_by_label("Byline", exact=True).fill("Ada Editor")
    page.get_by_role("group", name="Topics").get_by_label(topic, exact=True).check()
    research = page.get_by_label("Research type", exact=True)
    options = [o for o in research.locator("option").all() if o.get_attribute("value")]
    research.select_option(value=options[0].get_attribute("value"))
    page.get_by_label("Summary", exact=True).fill(body)
    page.get_by_label("Practice implications", exact=True).fill(implications)
    page.get_by_role("radio", name="Ready", exact=True).check()


def save(steps: Steps) -> None:
    steps.button("Save").click()
    steps.status("Saved")


def item_order(page: Any) -> list[str]:
    """The headlines as the edition page lists them, top to bottom."""
    text = page.locator("main").inner_text()
    return sorted((h for h in (FIRST, SECOND) if h in text), key=text.index)


def assemble(steps: Steps, world: World) -> None:
    page = steps.page
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Editions").click()
    page.wait_for_url("**/admin/editions")
    page.locator(f'main a[href$="/admin/editions/{world.month}"]').first.click()
    page.wait_for_url(f"**/admin/editions/{world.month}")
    steps.button("Assemble the edition").click()
    steps.button("Save edition").wait_for()
    first = item_order(page)
    assert len(first) == 2, first
    page.get_by_role("listitem").filter(has_text=first[0]).get_by_role(
        "button", name="Move down").click()
    page.wait_for_load_state()
    wait_for(lambda: item_order(page) == first[::-1], 10)
    assert item_order(page) == first[::-1]
    page.get_by_label("Subject", exact=True).fill(SUBJECT)
    page.get_by_label("Preheader", exact=True).fill("Two summaries this month")
    page.get_by_label("Introduction", exact=True).fill("Welcome to this month's digest.")
    steps.button("Save edition").click()
    steps.status("Saved")
    page.reload()
    assert item_order(page) == first[::-1]
    assert page.get_by_role("heading", name="Checks").count() == 1
    steps.shot("edition")
    with world.nl.session() as session:
        edition = session.scalar(select(Edition).where(Edition.month == world.month))
        assert edition is not None and edition.subject == SUBJECT


def email_frame(page: Any) -> Any:
    frame = page.locator('iframe[title="Email preview"]')
    sandbox = frame.get_attribute("sandbox")
    assert sandbox is not None and "allow-scripts" not in sandbox, sandbox
    return page.frame_locator('iframe[title="Email preview"]')


def preview(steps: Steps, world: World, chromium: Any) -> None:
    page = steps.page
    steps.go(f"/admin/editions/{world.month}/preview")
    chooser = page.get_by_role("group", name="Preview as")
    chooser.get_by_role("radio", name="Topics", exact=True).check()
    chooser.get_by_label(FIRST_TOPIC.name, exact=True).check()
    steps.button("Show preview").click()
    email_frame(page).get_by_text(FIRST).first.wait_for()
    assert email_frame(page).get_by_text(FIRST_BODY).count() == 1
    assert email_frame(page).get_by_text(SECOND_BODY).count() == 0  # that topic set: one summary
    text_part = page.locator("pre").filter(has_text=FIRST)
    assert text_part.count() == 1
    assert page.get_by_role("heading", name="Text part").count() == 1
    assert page.get_by_role("heading", name="Who gets what").count() == 1
    who = page.get_by_role("region", name="Who gets what").get_by_role("table")
    counts = [int(c) for c in who.locator("tbody tr td:last-child").all_inner_texts()]
    plan = plan_without_sending(world.nl, world.month)
    assert sum(counts) == plan.recipients + plan.no_match, counts  # "nothing this month" too
    assert plan.no_match in counts and plan.recipients > 0
    steps.shot("preview-topics", docs="preview-desktop",
               focus=page.locator('iframe[title="Email preview"]'))

    follower = next(email for _, email, topics in audience(30)
                    if topics and SECOND_TOPIC.slug in topics and FIRST_TOPIC.slug not in topics)
    chooser.get_by_role("radio", name="Subscriber", exact=True).check()
    page.get_by_label("Subscriber email", exact=True).fill(follower)
    steps.button("Show preview").click()
    email_frame(page).get_by_text(SECOND_BODY).first.wait_for()
    assert email_frame(page).get_by_text(FIRST_BODY).count() == 0
    steps.shot("preview-subscriber")

    phone = chromium.new_context(viewport={"width": 375, "height": 800}, is_mobile=True,
                                device_scale_factor=1, timezone_id=ZONE)
    phone.add_cookies(page.context.cookies())
    mobile = phone.new_page()
    mobile.goto(f"{world.base}/admin/editions/{world.month}/preview")
    mobile.get_by_role("button", name="Phone").or_(mobile.get_by_role("link", name="Phone")) \
        .first.click()
    mobile.frame_locator('iframe[title="Email preview"]').get_by_text(SECOND).first.wait_for()
    steps.shot("preview-phone", docs="preview-phone", page=mobile,
               focus=mobile.locator('iframe[title="Email preview"]'))
    phone.close()


def send_a_test(steps: Steps, world: World) -> None:
    page = steps.page
    steps.go(f"/admin/editions/{world.month}")
    to = page.get_by_label("Send a test to", exact=True)
    assert to.input_value() == EDITOR  # the editor's own address by default
    to.fill(TESTER)
    steps.button("Send test").click()
    steps.status("Test sent")
    assert wait_for(lambda: any(TESTER in m.recipients for m in world.smtp.messages), 15)
    message = next(m for m in world.smtp.messages if TESTER in m.recipients).parse()
    check_test_message(message)
    steps.shot("test-sent")
    with world.nl.session() as session:  # outside the ledger
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0


def check_test_message(message: EmailMessage) -> None:
    assert str(message["Subject"]).startswith("[TEST]"), message["Subject"]
    assert message.get_content_type() == "multipart/alternative" or any(
        p.get_content_type() == "multipart/alternative" for p in message.walk())
    html = message.get_body(preferencelist=("html",))
    text = message.get_body(preferencelist=("plain",))
    assert html is not None and text is not None
    for part in (str(html.get_content()), str(text.get_content())):  # a sample reader: all topics
        assert FIRST in part and SECOND in part, part[:500]


def ask_to_schedule(steps: Steps, world: World) -> datetime:
    """The schedule form, a time 20 s ahead on the editor's wall clock (with seconds): Schedule."""
    steps.go(f"/admin/editions/{world.month}/schedule")
    assert ZONE in steps.page.locator("main").inner_text()  # the zone printed beside the picker
    at = (datetime.now(UTC) + timedelta(seconds=20)).replace(microsecond=0)
    local = at.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M:%S")
    steps.page.get_by_label("Send at", exact=True).fill(local)
    steps.button("Schedule").click()
    return at


def schedule_and_watch(steps: Steps, world: World) -> None:
    page = steps.page
    expected = plan_without_sending(world.nl, world.month).recipients
    main = page.locator("main")
    ask_to_schedule(steps, world)  # Crossref has a retraction notice for the first DOI
    blocked = page.get_by_role("heading", name="It cannot be scheduled yet")
    blocked.wait_for()
    assert "retraction" in main.inner_text() and steps.button("Confirm schedule").count() == 0
    steps.shot("schedule-blocked-by-retraction")
    with world.nl.session() as session:
        first_id = session.scalar(select(Summary.id).where(Summary.headline == FIRST))
    steps.go(f"/admin/summaries/{first_id}")
    page.get_by_role("button", name=re.compile("^Acknowledge")).first.click()
    steps.status("Acknowledged")
    at = ask_to_schedule(steps, world)
    confirm = steps.button("Confirm schedule")
    confirm.wait_for()
    assert re.search(rf"\b{expected}\b", main.inner_text()), (expected, main.inner_text())
    steps.shot("schedule-confirm")
    confirm.click()
    steps.status("Scheduled")
    assert steps.button("Cancel schedule").count() == 1
    with world.nl.session() as session:
        stored = session.scalar(select(Edition.scheduled_at).where(Edition.month == world.month))
    assert stored is not None and stored.replace(tzinfo=UTC) == at
    steps.shot("scheduled")

    steps.go(f"/admin/editions/{world.month}/send")
    page.evaluate("window.journeyMarker = 'set before the counts moved'")
    seen = watch_counts(steps, expected, until=at + timedelta(seconds=60))
    assert datetime.now(UTC) >= at
    assert page.evaluate("window.journeyMarker") == "set before the counts moved"  # no reload
    moving = [n for n in seen if 0 < n < expected]
    assert len(set(seen)) >= 2 and moving, seen  # read mid-send, and it moved
    steps.shot("watch-done")


def watch_counts(steps: Steps, expected: int, until: datetime) -> list[int]:
    """#count-sent, read every 0.2 s until it reaches `expected`: each value it showed, in order."""
    page, seen = steps.page, list[int]()
    while datetime.now(UTC) < until:
        text = page.locator("#count-sent").inner_text().strip()
        value = int(text) if text.isdigit() else -1
        if not seen or seen[-1] != value:
            seen.append(value)
            if 0 < value < expected and len([n for n in seen if 0 < n < expected]) == 1:
                steps.shot("watch-moving", docs="watch")  # the README's: counts mid-send
        if value == expected:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"#count-sent never reached {expected}: {seen}")


def ledger_counts(nl: Newsletter, month: str) -> Counter[str]:
    with nl.session() as session:
        rows = session.execute(select(Delivery.status, func.count()).join(
            Edition, Edition.id == Delivery.edition_id).where(Edition.month == month)
            .group_by(Delivery.status)).all()
    return Counter({status.value: n for status, n in rows})


def report(steps: Steps, world: World) -> None:
    page = steps.page
    steps.go(f"/admin/editions/{world.month}/report")
    assert page.get_by_role("heading", name="Report").count() >= 1
    counts = ledger_counts(world.nl, world.month)
    sent = counts[DeliveryStatus.SENT.value]
    readers = {email for _, email, _ in audience(30)}
    delivered = Counter(r for m in world.smtp.messages for r in m.recipients if r in readers)
    assert sum(delivered.values()) == sent == plan_without_sending(world.nl, world.month).recipients
    assert set(delivered.values()) == {1}  # one copy each, no duplicates
    shown = read_report_counts(page)
    assert set(shown) >= {s.value for s in DeliveryStatus}, shown
    assert shown == {name: counts[name] for name in shown}, (shown, counts)  # the ledger's
    steps.shot("report", docs="report")


def read_report_counts(page: Any) -> dict[str, int]:
    """The report's counts table: each `#report-<status>` cell, by ledger status."""
    shown: dict[str, int] = {}
    for cell in page.locator('main [id^="report-"]').all():
        name = (cell.get_attribute("id") or "").removeprefix("report-").replace("-", "_")
        shown[name] = int(cell.inner_text().strip())
    return shown


def topics_and_subscribers(steps: Steps) -> None:
    page = steps.page
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Topics").click()
    page.wait_for_url("**/admin/topics")
    assert page.get_by_role("table", name="Topic coverage").count() == 1
    steps.shot("topics", docs="topics")
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Subscribers").click()
    page.wait_for_url("**/admin/subscribers")
    page.get_by_label("Search", exact=True).fill("reader0")
    steps.button("Search").click()
    page.get_by_text("reader01@clinic.example").first.wait_for()
    steps.shot("subscribers", docs="subscribers")

