"""The console's editions through the real Flask app on SQLite and PostgreSQL: assemble, reorder
with buttons, subject/preheader/intro saved and escaped, the checks, the preview as a reader (equal
to what a real send composes), its sandboxed frame and headers, who gets what (equal to the
planner's rows), and test sends to an SMTP server on loopback outside the ledger."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from lxml import html as lxml_html
from sqlalchemy import func, select, update
from werkzeug.test import TestResponse

from newsletter.catcher import SMTPCatcher
from newsletter.content.history_models import EditorialUpdate
from newsletter.content.models import Edition, EditionStatus, Summary
from newsletter.content.store import edition_content, get_edition
from newsletter.context import Newsletter
from newsletter.db import utcnow
from newsletter.editors.models import AuditEntry
from newsletter.preview import preview_message
from newsletter.sending.models import Delivery
from newsletter.sending.planner import plan_deliveries
from newsletter.sending.run import send_edition
from newsletter.transports.memory import MemoryTransport
from subscribers.models import ConsentMethod, Subscriber, SubscriberStatus
from subscribers.ratelimit import SlidingWindowLimiter
from subscribers.store import add_subscriber, suppress

from .builders import MONTH, SUMMARIES, load_month
from .console_journey_support import serious, sideways
from .console_support import csrf, make_editor, sign_in
from .test_console_browser import console  # noqa: F401  (the fixture: the app on a real server)
from .test_console_browser import sign_in as sign_in_browser
from .test_web_browser import browser  # noqa: F401  (the fixture)

# slow: each test renders the edition (premailer) a few times, about 1 s
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("cheap_hashing")]
EDITOR = "ed@example.org"
PAGE = f"/admin/editions/{MONTH}"
SCRIPT = '<script>alert("x")</script>'
SIGNED = re.compile(r"(/[a-z]+/[A-Za-z0-9_-]{8,})\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@pytest.fixture
def signed_in(newsletter: Newsletter, client: FlaskClient) -> FlaskClient:
    make_editor(newsletter, EDITOR, name="Eddie Editor")
    sign_in(client, EDITOR)
    return client


def tree(answer: TestResponse) -> lxml_html.HtmlElement:
    return lxml_html.fromstring(answer.get_data(as_text=True))


def audited(nl: Newsletter, action: str) -> list[AuditEntry]:
    with nl.session() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def order_of(nl: Newsletter) -> list[str]:
    with nl.session() as session:
        return [i.summary.headline for i in get_edition(session, MONTH).items]


def ids_by_headline(nl: Newsletter) -> dict[str, int]:
    with nl.session() as session:
        return {s.headline: s.id for s in session.scalars(select(Summary))}


def save(client: FlaskClient, items: list[int], **fields: str) -> TestResponse:
    data = {"csrf_token": csrf(client, PAGE), "subject": "", "preheader": "", "intro": "",
            "item": [str(i) for i in items]} | fields
    return client.post(PAGE, data=data)


def html_headlines(html: str) -> list[str]:
    return [" ".join(h.text_content().split()) for h in lxml_html.fromstring(html).iter("h2")]


def unsigned(text: str) -> str:
    """Signed link tokens keep their payload (whose links they are) but not their time and
    signature, which differ by the second the preview and the send were made."""
    return SIGNED.sub(r"\1.<signed>", text)


def part(message: EmailMessage, kind: str) -> str:
    body = message.get_body((kind,))
    assert body is not None
    return str(body.get_content())


def test_list_then_assemble_the_month(newsletter: Newsletter, signed_in: FlaskClient) -> None:
    load_month(newsletter, assemble=False)
    listed = tree(signed_in.get("/admin/editions"))
    row = listed.xpath("//tbody/tr")[0]
    assert row.xpath("th/a/@href") == [PAGE]
    assert "not assembled" in row.text_content() and "3 (3 ready)" in row.text_content()
    page = tree(signed_in.get(PAGE))
    assert [b.text_content() for b in page.xpath("//main//form//button")] == ["Assemble the edition"]
    answer = signed_in.post(PAGE + "/assemble", data={"csrf_token": csrf(signed_in, PAGE)})
    assert answer.status_code == 302
    assert order_of(newsletter) == [s.headline for s in SUMMARIES]
    assert audited(newsletter, "edition.assemble")[0].actor == EDITOR
    page = tree(signed_in.get(PAGE))
    assert page.xpath("//label[@for='subject']/text()") == ["Subject"]
    assert len(page.xpath("//button[starts-with(normalize-space(.), 'Move up')]")) == 3
    assert page.xpath("//button[normalize-space(.)='Save edition']")
    assert "draft" in tree(signed_in.get("/admin/editions")).xpath("//tbody/tr")[0].text_content()


def test_move_buttons_reorder_and_the_email_follows(newsletter: Newsletter,
                                                    signed_in: FlaskClient) -> None:
    load_month(newsletter)
    ids = list(ids_by_headline(newsletter).values())
    first, second, third = (ids_by_headline(newsletter)[s.headline] for s in SUMMARIES)
    answer = save(signed_in, [first, second, third], move=f"down:{first}")
    assert answer.status_code == 302
    expected = [SUMMARIES[1].headline, SUMMARIES[0].headline, SUMMARIES[2].headline]
    assert order_of(newsletter) == expected
    save(signed_in, [second, first, third], move=f"up:{third}")
    expected = [SUMMARIES[1].headline, SUMMARIES[2].headline, SUMMARIES[0].headline]
    assert order_of(newsletter) == expected
    page = tree(signed_in.get(PAGE))
    assert [" ".join(p.text_content().split()) for p in page.xpath(
        "//li[@class='edition-item']/p[@class='edition-item-headline']")] == expected
    with newsletter.session() as session:
        content = edition_content(get_edition(session, MONTH))
    message = preview_message(newsletter, content, None)
    assert message is not None and html_headlines(part(message, "html")) == expected
    assert len(audited(newsletter, "edition.edit")) == 2 and len(ids) == 3


def test_remove_and_add_a_summary(newsletter: Newsletter, signed_in: FlaskClient) -> None:
    load_month(newsletter)
    first, second, third = (ids_by_headline(newsletter)[s.headline] for s in SUMMARIES)
    save(signed_in, [first, second, third], remove=str(second))
    assert order_of(newsletter) == [SUMMARIES[0].headline, SUMMARIES[2].headline]
    page = tree(signed_in.get(PAGE))
    assert page.xpath("//button[@name='add']/@value") == [str(second)]
    save(signed_in, [first, third], add=str(second))
    assert order_of(newsletter) == [SUMMARIES[0].headline, SUMMARIES[2].headline,
                                    SUMMARIES[1].headline]


def test_subject_preheader_intro_saved_and_shown_as_text(newsletter: Newsletter,
                                                         signed_in: FlaskClient) -> None:
    load_month(newsletter)
    ids = [ids_by_headline(newsletter)[s.headline] for s in SUMMARIES]
    answer = save(signed_in, ids, subject="Subject " + SCRIPT, preheader="Pre " + SCRIPT,
                  intro="Intro " + SCRIPT)
    assert answer.status_code == 302
    with newsletter.session() as session:
        edition = get_edition(session, MONTH)
        assert (edition.subject, edition.preheader, edition.intro_md) == (
            "Subject " + SCRIPT, "Pre " + SCRIPT, "Intro " + SCRIPT)
        content = edition_content(edition)
    page = tree(signed_in.get(PAGE))
    assert page.xpath("//input[@id='subject']/@value") == ["Subject " + SCRIPT]
    assert page.xpath("//textarea[@id='intro']/text()") == ["Intro " + SCRIPT]
    assert all(s.get("src") for s in page.iter("script"))  # only the site's own files
    assert "Saved." in page.xpath("string(//*[@role='status'])")
    message = preview_message(newsletter, content, None)
    assert message is not None and message["Subject"] == "Subject " + SCRIPT
    email = lxml_html.fromstring(part(message, "html"))
    assert not list(email.iter("script"))
    shown = email.text_content()  # Markdown makes the quotes typographic, nothing else
    assert 'Intro <script>alert(“x”)</script>' in shown and "Pre " + SCRIPT in shown
    preview = tree(signed_in.get(PAGE + "/preview"))
    assert preview.xpath("string(//dl[@class='preview-headers']/div[1]/dd)") == "Subject " + SCRIPT
    assert all(s.get("src") for s in preview.iter("script"))


def test_bad_fields_are_refused_next_to_the_field_and_keep_the_rest(
        newsletter: Newsletter, signed_in: FlaskClient) -> None:
    load_month(newsletter)
    ids = [ids_by_headline(newsletter)[s.headline] for s in SUMMARIES]
    answer = save(signed_in, ids, subject="Two\r\nBcc: x@example.org", preheader="p" * 141,
                  intro="Kept intro")
    assert answer.status_code == 400
    page = tree(answer)
    assert "one line" in page.xpath("string(//p[@id='subject-error'])")
    assert "At most 140" in page.xpath("string(//p[@id='preheader-error'])")
    assert page.xpath("//textarea[@id='intro']/text()") == ["Kept intro"]
    with newsletter.session() as session:
        assert get_edition(session, MONTH).intro_md is None
    answer = save(signed_in, [*ids, 999_999])
    assert answer.status_code == 400 and tree(answer).xpath("//p[@id='order-error']")


def test_checks_pass_then_fail_for_a_retraction(newsletter: Newsletter,
                                                signed_in: FlaskClient) -> None:
    load_month(newsletter)
    page = tree(signed_in.get(PAGE))
    section = page.xpath("//section[h2='Checks']")[0]
    results = [li.xpath("string(strong)") for li in section.xpath("ul[1]/li")]
    assert results == ["Passed:"] * 5
    with newsletter.session() as session:
        summary_id = ids_by_headline(newsletter)[SUMMARIES[2].headline]
        session.add(EditorialUpdate(summary_id=summary_id, doi="10.1037/pst0000175",
                                    notice_doi="10.1037/retraction.1", kind="retraction",
                                    label="Retraction", notice_date="2025-01-02", title="R"))
    section = tree(signed_in.get(PAGE)).xpath("//section[h2='Checks']")[0]
    failed = section.xpath("ul[1]/li[strong='Failed:']")
    assert len(failed) == 1 and "retraction" in failed[0].text_content()
    update_row = section.xpath("ul[contains(@class, 'edition-updates')]/li")[0]
    assert update_row.xpath("a/@href") == [f"/admin/summaries/{summary_id}"]
    assert "blocks scheduling" in update_row.text_content()


def test_a_one_item_edition_fails_the_count_check(newsletter: Newsletter,
                                                  signed_in: FlaskClient) -> None:
    load_month(newsletter)
    save(signed_in, [ids_by_headline(newsletter)[SUMMARIES[0].headline]])
    section = tree(signed_in.get(PAGE)).xpath("//section[h2='Checks']")[0]
    failed = section.xpath("ul[1]/li[strong='Failed:']")
    assert len(failed) == 1 and "1 summaries; it needs 2 or 3" in failed[0].text_content()


def test_a_sending_edition_is_read_only(newsletter: Newsletter, signed_in: FlaskClient) -> None:
    load_month(newsletter)
    ids = [ids_by_headline(newsletter)[s.headline] for s in SUMMARIES]
    token = csrf(signed_in, PAGE)
    with newsletter.session() as session:
        session.execute(update(Edition).values(status=EditionStatus.SENDING))
    page = tree(signed_in.get(PAGE))
    assert "read-only" in page.xpath("string(//*[@role='status'])")
    assert not page.xpath("//input[@id='subject'] | //button[@name='move']")
    answer = signed_in.post(PAGE, data={"csrf_token": token, "subject": "Changed",
                                        "item": [str(ids[1])]})
    assert answer.status_code == 302
    assert order_of(newsletter) == [s.headline for s in SUMMARIES]


def test_preview_as_a_subscriber_is_exactly_what_the_send_delivers(
        newsletter: Newsletter, signed_in: FlaskClient) -> None:
    load_month(newsletter)
    query = {"as": "subscriber", "email": "cy@example.org"}
    page = tree(signed_in.get(PAGE + "/preview", query_string=query))
    frame = page.xpath("//iframe[@title='Email preview']")[0]
    framed = signed_in.get(frame.get("src"))
    transport = MemoryTransport()
    send_edition(newsletter, MONTH, transport=transport)
    sent = next(m for m in transport.messages if m.recipient == "cy@example.org")
    message = message_from_bytes(sent.data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert unsigned(framed.get_data(as_text=True)) == unsigned(part(message, "html"))
    assert "/u/" in part(message, "html")  # her real unsubscribe link, not a sample reader's
    assert unsigned(page.xpath("string(//pre)")) == unsigned(
        part(message, "plain").replace("\r\n", "\n"))
    headers = page.xpath("//dl[@class='preview-headers']/div/dd")
    assert headers[0].text_content() == message["Subject"]
    assert headers[2].text_content() == message["To"]
    assert html_headlines(framed.get_data(as_text=True)) == [SUMMARIES[0].headline,
                                                             SUMMARIES[2].headline]


def test_preview_as_topics_is_that_variant(newsletter: Newsletter, signed_in: FlaskClient) -> None:
    load_month(newsletter)
    query = {"as": "topics", "topic": ["empathy", "training"], "width": "phone"}
    page = tree(signed_in.get(PAGE + "/preview", query_string=query))
    frame = page.xpath("//iframe[@title='Email preview']")[0]
    assert "preview-frame-phone" in frame.get("class")
    framed = signed_in.get(frame.get("src")).get_data(as_text=True)
    with newsletter.session() as session:
        content = edition_content(get_edition(session, MONTH))
    expected = preview_message(newsletter, content, frozenset({"empathy", "training"}))
    assert expected is not None
    assert html_headlines(framed) == html_headlines(part(expected, "html")) == [
        SUMMARIES[0].headline, SUMMARIES[2].headline]
    assert page.xpath("string(//dl[@class='preview-headers']/div[1]/dd)") == expected["Subject"]
    checked = page.xpath("//input[@name='topic'][@checked]/@value")
    assert sorted(checked) == ["empathy", "training"]
    links = {a.text_content(): a.get("href") for a in page.xpath("//p[@class='preview-widths']/a")}
    assert set(links) == {"Desktop", "Phone"}
    assert "width=desktop" in urlsplit(links["Desktop"]).query


def test_the_frame_is_sandboxed_and_served_with_its_own_policy(
        newsletter: Newsletter, signed_in: FlaskClient) -> None:
    load_month(newsletter)
    page = tree(signed_in.get(PAGE + "/preview"))
    frame = page.xpath("//iframe[@title='Email preview']")[0]
    assert frame.get("sandbox") is not None
    assert "allow-scripts" not in frame.get("sandbox") and "allow-same-origin" not in frame.get(
        "sandbox")
    framed = signed_in.get(frame.get("src"))
    assert framed.status_code == 200 and framed.mimetype == "text/html"
    assert framed.headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; sandbox; "
        "frame-ancestors 'self'")
    assert framed.headers["X-Frame-Options"] == "SAMEORIGIN"
    outer = signed_in.get(PAGE + "/preview")
    assert "frame-src 'self'" in outer.headers["Content-Security-Policy"]
    assert outer.headers["X-Frame-Options"] == "DENY"


def test_someone_who_gets_nothing_is_told_so(newsletter: Newsletter,
                                             signed_in: FlaskClient) -> None:
    load_month(newsletter)
    with newsletter.session() as session:
        add_subscriber(session, "gone@example.org", name="Gone",
                       status=SubscriberStatus.UNSUBSCRIBED)
    for query in ({"as": "subscriber", "email": "di@example.org"},
                  {"as": "topics", "topic": "neuroscience-and-brain"}):
        page = tree(signed_in.get(PAGE + "/preview", query_string=query))
        assert not page.xpath("//iframe")
        assert "gets nothing this month" in page.xpath("string(//*[@role='status'])")
        assert signed_in.get(PAGE + "/preview.html", query_string=query).status_code == 404
    for email, why in (("nobody@example.org", "No subscriber has that address"),
                       ("gone@example.org", "no mail at all (unsubscribed)"),
                       ("not an address", "not an email address")):
        answer = signed_in.get(PAGE + "/preview", query_string={"as": "subscriber", "email": email})
        assert answer.status_code == 400
        assert why in tree(answer).xpath("string(//p[@id='email-error'])")


def test_who_gets_what_counts_what_the_planner_writes(newsletter: Newsletter,
                                                      signed_in: FlaskClient) -> None:
    load_month(newsletter)
    with newsletter.session() as session:
        for name, email, status in (("Un Confirmed", "un@example.org", SubscriberStatus.UNCONFIRMED),
                                    ("Pau Sed", "pau@example.org", SubscriberStatus.ACTIVE),
                                    ("Sup Pressed", "sup@example.org", SubscriberStatus.ACTIVE),
                                    ("Fr Ench", "fr@example.org", SubscriberStatus.ACTIVE)):
            add_subscriber(session, email, name=name, status=status, method=ConsentMethod.ADMIN,
                           topics=frozenset({"empathy"}))
        session.execute(update(Subscriber).where(Subscriber.email == "pau@example.org")
                        .values(paused_at=utcnow()))
        session.execute(update(Subscriber).where(Subscriber.email == "fr@example.org")
                        .values(language="fr"))
        suppress(session, "sup@example.org", "complaint")
    page = tree(signed_in.get(PAGE + "/preview"))
    table = page.xpath("//section[h2='Who gets what']//table")[0]
    shown = {(r.xpath("string(th)"), r.xpath("string(td[1])")): int(r.xpath("string(td[2])"))
             for r in table.xpath("tbody/tr")}
    with newsletter.sessions() as session:
        content = edition_content(get_edition(session, MONTH))
        plan_deliveries(session, content, utcnow)
        planned = dict(session.execute(select(Delivery.variant, func.count())
                                       .group_by(Delivery.variant)).all())
        receiving = session.scalar(select(func.count()).select_from(Subscriber).where(
            Subscriber.status == SubscriberStatus.ACTIVE, Subscriber.paused_at.is_(None),
            Subscriber.email != "sup@example.org"))
    headline = {item.id: item.headline for item in content.items}
    expected = {}
    for key, count in planned.items():
        language, _, ids = key.rpartition(":")
        expected[(" · ".join(headline[int(i)] for i in ids.split(",")), language or "en")] = count
    nothing = shown.pop(("Nothing this month", "—"))
    assert shown == expected
    assert ("Does Therapist Empathy Predict Outcome?", "fr") in shown
    assert nothing == receiving - sum(planned.values()) == 1  # Di
    with newsletter.session() as session:  # the kept count sees a new subscriber at once
        add_subscriber(session, "new@example.org", name="New", method=ConsentMethod.ADMIN)
    everything = (" · ".join(s.headline for s in SUMMARIES), "en")
    table = tree(signed_in.get(PAGE + "/preview")).xpath("//section[h2='Who gets what']//table")[0]
    again = {(r.xpath("string(th)"), r.xpath("string(td[1])")): int(r.xpath("string(td[2])"))
             for r in table.xpath("tbody/tr")}
    assert again[everything] == expected[everything] + 1


def test_a_test_send_arrives_outside_the_ledger(newsletter: Newsletter, signed_in: FlaskClient,
                                                smtp_server: SMTPCatcher) -> None:
    load_month(newsletter)
    page = tree(signed_in.get(PAGE))
    assert page.xpath("//input[@id='to']/@value") == [EDITOR]
    assert page.xpath("//label[@for='to']/text()") == ["Send a test to"]
    answer = signed_in.post(PAGE + "/test", data={"csrf_token": csrf(signed_in, PAGE),
                                                  "to": EDITOR, "as": "sample",
                                                  "topic": ["alliance-and-therapeutic-relationship"]})
    assert answer.status_code == 302
    status = tree(signed_in.get(answer.headers["Location"])).xpath("string(//*[@role='status'])")
    assert f"Test sent to {EDITOR}" in status
    assert [list(m.recipients) for m in smtp_server.messages] == [[EDITOR]]
    message = smtp_server.messages[0].parse()
    assert str(message["Subject"]).startswith("[TEST] ")
    assert html_headlines(part(message, "html")) == [SUMMARIES[0].headline]
    signed_in.post(PAGE + "/test", data={"csrf_token": csrf(signed_in, PAGE), "to": EDITOR,
                                         "as": "subscriber", "subscriber": "cy@example.org"})
    second = smtp_server.messages[1].parse()
    assert html_headlines(part(second, "html")) == [SUMMARIES[0].headline, SUMMARIES[2].headline]
    assert str(second["Subject"]).startswith("[TEST] ")
    with newsletter.session() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0
    assert [e.detail["to"] for e in audited(newsletter, "edition.test_send")] == [EDITOR, EDITOR]


def test_a_test_send_refuses_bad_addresses_and_is_rate_limited(
        newsletter: Newsletter, signed_in: FlaskClient, smtp_server: SMTPCatcher) -> None:
    load_month(newsletter)
    signed_in.application.extensions["console_test_sends"] = SlidingWindowLimiter(1, 600)
    for bad in ("x@example.org\r\nBcc: victim@example.org", "not an address", "a" * 400):
        answer = signed_in.post(PAGE + "/test", data={"csrf_token": csrf(signed_in, PAGE),
                                                      "to": bad, "as": "sample"})
        assert answer.status_code == 400
        assert "cannot be used" in tree(answer).xpath("string(//p[@id='to-error'])")
    assert smtp_server.messages == []
    data = {"to": "other@example.org", "as": "sample"}
    assert signed_in.post(PAGE + "/test", data=data | {"csrf_token": csrf(signed_in, PAGE)}
                          ).status_code == 302
    answer = signed_in.post(PAGE + "/test", data=data | {"csrf_token": csrf(signed_in, PAGE)})
    assert answer.status_code == 400
    assert "Too many test sends" in tree(answer).xpath("string(//p[@id='to-error'])")
    assert len(smtp_server.messages) == 1


def test_anonymous_and_forged_requests_are_refused(newsletter: Newsletter,
                                                   client: FlaskClient) -> None:
    load_month(newsletter)
    for path in ("/admin/editions", PAGE, PAGE + "/preview", PAGE + "/preview.html"):
        answer = client.get(path)
        assert answer.status_code == 302 and answer.headers["Location"] == "/admin/login"
    token = csrf(client)
    for path in (PAGE, PAGE + "/assemble", PAGE + "/test"):
        assert client.post(path, data={"csrf_token": token}).status_code == 403
    make_editor(newsletter, EDITOR)
    sign_in(client, EDITOR)
    before = order_of(newsletter)
    for path in (PAGE, PAGE + "/assemble", PAGE + "/test"):
        assert client.post(path, data={"subject": "Forged", "to": EDITOR}).status_code == 400
        assert client.post(path, data={"csrf_token": "forged", "subject": "Forged"}
                           ).status_code == 400
    assert order_of(newsletter) == before
    with newsletter.session() as session:
        assert get_edition(session, MONTH).subject != "Forged"
    assert client.get("/admin/editions/2015-13").status_code == 404


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_in_chromium_axe_phone_width_and_drag_to_reorder(
        console: tuple[str, Newsletter, str], browser: Any, scheme: str) -> None:  # noqa: F811
    """The edition pages under the console's real CSP (no bypass for the drag): axe-core finds
    nothing serious, nothing scrolls sideways at 375 px, and a drag reorders and is saved."""
    base, nl, secret = console
    load_month(nl, assemble=False)
    context = browser.new_context(color_scheme=scheme, viewport={"width": 375, "height": 800})
    page = context.new_page()
    sign_in_browser(page, base, secret)
    page.goto(base + PAGE)
    page.get_by_role("button", name="Assemble the edition").click()
    page.wait_for_url(f"**{PAGE}")
    first, second = page.locator("li.edition-item").nth(0), page.locator("li.edition-item").nth(1)
    assert first.get_attribute("draggable") == "true"  # edition.js ran under script-src 'self'
    with page.expect_navigation():
        second.drag_to(first, target_position={"x": 5, "y": 5})
    assert order_of(nl)[0] == SUMMARIES[1].headline
    found: dict[str, object] = {}
    pages = ("/admin/editions", PAGE, PAGE + "/preview",
             PAGE + "/preview?as=subscriber&email=cy%40example.org&width=phone",
             PAGE + "/preview?as=subscriber&email=nobody%40example.org")
    strict = context  # axe needs its script injected: a second context that bypasses the CSP
    axe_context = browser.new_context(color_scheme=scheme, bypass_csp=True,
                                      viewport={"width": 375, "height": 800},
                                      storage_state=strict.storage_state())
    checker = axe_context.new_page()
    for path in pages:
        checker.goto(base + path)
        problems, wide = serious(checker), sideways(checker)
        if problems or wide:
            found[path] = (problems, wide)
    axe_context.close()
    context.close()
    assert found == {}
