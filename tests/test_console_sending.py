"""The console's schedule, send-now, watch and report pages through the real Flask app on SQLite
and PostgreSQL: a schedule typed in the editor's zone is stored in UTC as the CLI stores it, past
and non-existent times get the CLI's messages, the confirmation counts the audience, retractions
block; "send now" needs the password and can be undone; a real send to aiosmtpd on loopback is
watched through the htmx fragment; pause, resume and cancel; the report lists a failed recipient
with its reason, resends the uncertain ones and shows the feedback figures."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import html as lxml_html
from sqlalchemy import select, update

import newsletter.cli.schedule  # noqa: F401  (registers the commands)
from newsletter.catcher import SMTPCatcher
from newsletter.content.history_models import EditorialUpdate
from newsletter.content.models import Edition, EditionStatus, Summary
from newsletter.context import Newsletter
from newsletter.editors.models import AuditEntry
from newsletter.feedback.events import EventKind, FeedbackEvent, Source
from newsletter.feedback.record import record_events
from newsletter.schedule.editions import ScheduleError, check_time, local_to_utc
from newsletter.sending import ledger, report
from newsletter.sending.models import Delivery, DeliveryStatus
from newsletter.sending.run import send_edition
from newsletter.web import create_app
from newsletter.web.admin import sending
from subscribers.models import Subscriber

from .builders import MONTH, load_month
from .conftest import MakeNewsletter, RunCli
from .console_support import PASSWORD, TOKEN, make_editor, sign_in
from .fault_server import FaultyHandler

EDITOR = "eddie@example.org"
ZONE = "America/Toronto"
PAGE = f"/admin/editions/{MONTH}"
COUNT_IDS = ("count-pending", "count-in-flight", "count-sent", "count-failed", "count-rejected",
             "count-uncertain")

pytestmark = pytest.mark.usefixtures("cheap_hashing")


@pytest.fixture
def loaded(newsletter: Newsletter) -> Newsletter:
    load_month(newsletter)
    make_editor(newsletter, EDITOR, name="Eddie Editor")
    return newsletter


@pytest.fixture
def editor(loaded: Newsletter, client: FlaskClient) -> FlaskClient:
    sign_in(client, EDITOR)
    return client


def tree(answer: Any) -> Any:
    return lxml_html.fromstring(answer.get_data(as_text=True))


def token(client: FlaskClient, path: str = f"{PAGE}/schedule") -> str:
    found = TOKEN.search(client.get(path).get_data(as_text=True))
    assert found
    return found.group(1)


def post(client: FlaskClient, path: str, data: dict[str, str] | None = None, **kw: Any) -> Any:
    return client.post(path, data={"csrf_token": token(client), **(data or {})}, **kw)


def edition_row(nl: Newsletter) -> tuple[EditionStatus, datetime | None]:
    with nl.session() as session:
        edition = session.scalars(select(Edition).where(Edition.month == MONTH)).one()
        return edition.status, edition.scheduled_at


def actions(nl: Newsletter) -> list[str]:
    with nl.session() as session:
        return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def field_error(page: Any) -> str:
    return " ".join(page.xpath("string(//p[@class='field-error'][@id='at-error'])").split())


def later(days: int = 400) -> str:
    """A local time well in the future, as the picker sends it."""
    return f"{(datetime.now(UTC) + timedelta(days=days)):%Y-%m-%d}T09:30:15"


@pytest.mark.slow
def test_schedule_through_the_form_is_stored_in_utc_as_the_cli_stores_it(
        loaded: Newsletter, editor: FlaskClient, run_cli: RunCli) -> None:
    form = tree(editor.get(f"{PAGE}/schedule"))
    [picker] = form.xpath("//input[@id='at']")
    assert (picker.get("type"), picker.get("step")) == ("datetime-local", "1")
    assert form.xpath("string(//label[@for='at'])") == "Send at"
    assert form.xpath(f"string(//*[@id='{picker.get('aria-describedby').split()[0]}'])") \
        == f"{ZONE} time"

    typed = later()
    confirm = post(editor, f"{PAGE}/schedule", {"at": typed})
    assert confirm.status_code == 200
    page = tree(confirm)
    assert page.xpath("string(//*[@id='recipient-count'])") == "3"  # di matches no topic
    assert edition_row(loaded) == (EditionStatus.DRAFT, None)  # nothing yet: it only asked
    [hidden] = page.xpath("//form[.//button[normalize-space()='Confirm schedule']]//input[@name='at']")
    expected = local_to_utc(typed.replace("T", " "), ZONE)
    assert f"{expected:%Y-%m-%d %H:%M:%S} UTC" in page.text_content()

    done = post(editor, f"{PAGE}/schedule/confirm", {"at": hidden.get("value")})
    assert done.status_code == 302
    status, at = edition_row(loaded)
    assert (status, at) == (EditionStatus.SCHEDULED, expected)
    after = tree(editor.get(done.headers["Location"]))
    assert "Scheduled for" in after.xpath("string(//*[@role='status'])")
    assert after.xpath("//button[normalize-space()='Cancel schedule']")
    assert "schedule.set" in actions(loaded)

    # The CLI, given the same wall-clock minute, stores the same instant (it has no seconds).
    minute = typed[:16]
    post(editor, f"{PAGE}/schedule/confirm", {"at": minute})
    console_at = edition_row(loaded)[1]
    run_cli("schedule", "cancel", MONTH)
    run_cli("schedule", MONTH, "--at", minute.replace("T", " "), "--tz", ZONE,
            NEWSLETTER_CROSSREF_URL="")
    assert edition_row(loaded) == (EditionStatus.SCHEDULED, console_at)


def test_past_and_dst_gap_times_are_refused_with_the_clis_messages(
        loaded: Newsletter, editor: FlaskClient, run_cli: RunCli) -> None:
    now = datetime.now(UTC)
    for typed in ("2020-03-03T09:00", "2031-03-09T02:30", "2031-11-02T01:30", "tomorrow"):
        answer = post(editor, f"{PAGE}/schedule", {"at": typed})
        assert answer.status_code == 400
        with pytest.raises(ScheduleError) as refused:
            check_time(typed.replace("T", " "), ZONE, now)
        shown = field_error(tree(answer))
        # The clock may pass a minute between the page's check and ours, so "it is now" is
        # compared as present, not as the same minute.
        reason, clock_shown = refused.value.reason, "; it is now"
        assert reason.split(clock_shown)[0][1:] in shown, shown
        assert (clock_shown in reason) == (clock_shown in shown), shown
        printed = run_cli("schedule", MONTH, "--at", typed.replace("T", " "), code=1).output
        assert reason.split(clock_shown)[0] in printed
        assert tree(answer).xpath("string(//input[@id='at']/@value)") == typed  # nothing lost
    assert edition_row(loaded) == (EditionStatus.DRAFT, None)
    assert "does not exist in America/Toronto" in field_error(
        tree(post(editor, f"{PAGE}/schedule", {"at": "2031-03-09T02:30"})))


@pytest.mark.slow
def test_cancel_and_reschedule(loaded: Newsletter, editor: FlaskClient) -> None:
    first, second = later(300), later(301)
    post(editor, f"{PAGE}/schedule/confirm", {"at": first})
    post(editor, f"{PAGE}/schedule/confirm", {"at": second})
    assert edition_row(loaded) == (EditionStatus.SCHEDULED,
                                   local_to_utc(second.replace("T", " "), ZONE))
    listing = tree(editor.get("/admin/schedule"))
    assert listing.xpath(f"//table//a[@href='{PAGE}/schedule'][text()='{MONTH}']")
    answer = post(editor, f"{PAGE}/schedule/cancel", {"from": "list"})
    assert answer.headers["Location"] == "/admin/schedule"
    assert edition_row(loaded) == (EditionStatus.DRAFT, None)
    assert actions(loaded)[-3:] == ["schedule.set", "schedule.set", "schedule.cancel"]


@pytest.mark.slow
def test_a_retraction_blocks_the_schedule(loaded: Newsletter, editor: FlaskClient) -> None:
    with loaded.session() as session:
        summary = session.scalars(select(Summary).where(Summary.month == MONTH)).first()
        assert summary is not None
        session.add(EditorialUpdate(summary_id=summary.id, doi="10.1037/a0037815",
                                    notice_doi="10.1037/retracted.1", kind="retraction",
                                    label="Retraction"))
    confirm = post(editor, f"{PAGE}/schedule", {"at": later()})
    assert confirm.status_code == 400
    page = tree(confirm)
    assert "retraction" in page.xpath("string(//*[@role='alert'])")
    assert not page.xpath("//button[normalize-space()='Confirm schedule']")
    refused = post(editor, f"{PAGE}/schedule/confirm", {"at": later()})
    assert refused.status_code == 400
    assert edition_row(loaded) == (EditionStatus.DRAFT, None)


def test_send_now_needs_the_password_and_can_be_undone(loaded: Newsletter,
                                                       editor: FlaskClient) -> None:
    asked = tree(editor.get(f"{PAGE}/send-now"))
    assert asked.xpath("string(//label[@for='current'])") == "Your password"
    wrong = post(editor, f"{PAGE}/send-now", {"current": "not my password"})
    assert wrong.status_code == 400
    assert edition_row(loaded) == (EditionStatus.DRAFT, None)

    before = datetime.now(UTC)
    answer = post(editor, f"{PAGE}/send-now", {"current": PASSWORD})
    assert answer.headers["Location"] == f"{PAGE}/send-now/undo"
    status, at = edition_row(loaded)
    assert status is EditionStatus.SCHEDULED and at is not None
    assert timedelta(seconds=sending.UNDO_SECONDS - 2) < at - before \
        <= timedelta(seconds=sending.UNDO_SECONDS + 2)
    page = tree(editor.get(f"{PAGE}/send-now/undo"))
    left = int(page.xpath("string(//*[@id='undo-seconds'])"))
    assert 0 < left <= sending.UNDO_SECONDS
    assert page.xpath("//button[normalize-space()='Undo']")
    assert "No scheduler has picked this send up yet" in page.text_content()
    fragment = editor.get(f"{PAGE}/send-now/undo", headers={"HX-Request": "true"})
    polled = lxml_html.fragment_fromstring(fragment.get_data(as_text=True))
    assert polled.get("hx-trigger") == "every 1s"

    undone = post(editor, f"{PAGE}/send-now/undo")
    assert undone.headers["Location"] == f"{PAGE}/schedule"
    assert edition_row(loaded) == (EditionStatus.DRAFT, None)
    assert actions(loaded)[-2:] == ["send.now", "send.undo"]
    over = lxml_html.fragment_fromstring(editor.get(
        f"{PAGE}/send-now/undo", headers={"HX-Request": "true"}).get_data(as_text=True))
    assert over.get("hx-trigger") is None and over.xpath(f"//a[@href='{PAGE}/send']")


def counts_of(fragment: Any) -> dict[str, int]:
    return {name: int(fragment.xpath(f"string(//*[@id='{name}'])")) for name in COUNT_IDS}


@pytest.mark.slow
def test_a_real_send_is_watched_until_its_counts_equal_the_ledger(
        make_newsletter: MakeNewsletter, handler: FaultyHandler, server: SMTPCatcher) -> None:
    nl = make_newsletter(smtp_host=server.host, smtp_port=server.port, batch_size=2,
                         retry_max_attempts=2, retry_initial=0.05, retry_cap=0.1)
    emails = [f"r{i:02d}@example.org" for i in range(24)]
    load_month(nl, [(f"Reader {i}", e, None) for i, e in enumerate(emails)])
    make_editor(nl, EDITOR)
    handler.delay = 0.03
    handler.faults["r05@example.org"] = ["rcpt:550"]
    client = create_app(nl, testing=True).test_client()
    sign_in(client, EDITOR)
    watch = tree(client.get(f"{PAGE}/send"))
    [live] = watch.xpath("//*[@id='live-counts']")
    assert live.get("hx-get") == f"{PAGE}/send/counts" and live.get("hx-trigger") == "every 2s"
    assert {b.text_content().strip() for b in watch.xpath("//button")} == {
        "Cancel send", "Sign out"}  # a draft can be cancelled, not paused or resumed

    sender = threading.Thread(target=send_edition, args=(nl, MONTH))
    sender.start()
    seen = []
    while sender.is_alive():
        seen.append(counts_of(lxml_html.fragment_fromstring(client.get(
            f"{PAGE}/send/counts", headers={"HX-Request": "true"}).get_data(as_text=True))))
        time.sleep(0.02)
    sender.join()
    final = lxml_html.fragment_fromstring(client.get(f"{PAGE}/send/counts").get_data(as_text=True))
    sent_seen = [c["count-sent"] for c in seen]
    assert sent_seen == sorted(sent_seen) and len(set(sent_seen)) > 2  # it moved, never back
    with nl.session() as session:
        edition_id = session.scalars(select(Edition.id).where(Edition.month == MONTH)).one()
        truth = ledger.status_counts(session, edition_id)
    assert counts_of(final) == {f"count-{k.replace('_', '-')}": v for k, v in truth.items()}
    assert truth["sent"] == 23 and truth["rejected"] == 1
    assert final.get("hx-trigger") is None  # finished: it stops polling

    report = tree(client.get(f"{PAGE}/report"))
    assert report.xpath("string(//h1)") == "Report"
    [row] = report.xpath("//table[.//th[text()='Reason']]/tbody/tr")
    cells = [c.text_content() for c in row.xpath("./th|./td")]
    assert cells[0] == "r05@example.org" and cells[1] == "rejected" and "550" in cells[3]


def buttons(client: FlaskClient) -> set[str]:
    return {b.text_content().strip() for b in tree(client.get(f"{PAGE}/send")).xpath(
        "//div[contains(@class, 'send-controls')]//button")}


def test_pause_resume_and_cancel_reach_the_edition(loaded: Newsletter, editor: FlaskClient) -> None:
    with loaded.session() as session:
        session.execute(update(Edition).where(Edition.month == MONTH)
                        .values(status=EditionStatus.SENDING))
    assert buttons(editor) == {"Pause", "Cancel send"}
    assert post(editor, f"{PAGE}/send/pause").status_code == 302
    assert edition_row(loaded)[0] is EditionStatus.PAUSED
    assert buttons(editor) == {"Resume", "Cancel send"}  # each state offers what it allows
    post(editor, f"{PAGE}/send/resume")
    assert edition_row(loaded)[0] is EditionStatus.SENDING
    question = tree(editor.get(f"{PAGE}/send/cancel"))
    assert question.xpath("//form[@method='post']//button[normalize-space()='Cancel send']")
    assert edition_row(loaded)[0] is EditionStatus.SENDING  # asking changes nothing
    post(editor, f"{PAGE}/send/cancel")
    assert edition_row(loaded)[0] is EditionStatus.CANCELLED
    assert actions(loaded)[-3:] == ["send.pause", "send.resume", "send.cancel"]
    refused = post(editor, f"{PAGE}/send/resume")
    assert "Not resumed" in tree(editor.get(refused.headers["Location"])).xpath(
        "string(//*[@role='status'])")


def sent_month(nl: Newsletter, server: SMTPCatcher) -> dict[str, int]:
    """The sample month sent to the catcher; delivery id by address."""
    send_edition(nl, MONTH)
    with nl.session() as session:
        return dict(session.execute(select(Subscriber.email, Delivery.id).join(Delivery)).all())


@pytest.mark.slow
def test_resend_to_uncertain_recipients_runs_the_clis_send(loaded: Newsletter, app: Flask,
                                                           smtp_server: SMTPCatcher) -> None:
    client = app.test_client()
    sign_in(client, EDITOR)
    delivery = sent_month(loaded, smtp_server)
    assert len(smtp_server.messages) == 3
    with loaded.session() as session:
        session.execute(update(Delivery).where(Delivery.id == delivery["bob@example.org"])
                        .values(status=DeliveryStatus.UNCERTAIN, last_error="lost answer"))
    report = tree(client.get(f"{PAGE}/report"))
    assert "second copy" in report.xpath("string(//p[@class='notice'])")
    [row] = report.xpath("//table[.//th[text()='Reason']]/tbody/tr")
    assert row.xpath("string(./th)") == "bob@example.org"
    answer = post(client, f"{PAGE}/report/resend-uncertain")
    assert answer.headers["Location"] == f"{PAGE}/send"
    app.extensions[sending._RESENDS][MONTH].join(30)
    assert [list(m.recipients) for m in smtp_server.messages[3:]] == [["bob@example.org"]]
    with loaded.session() as session:
        row = session.get(Delivery, delivery["bob@example.org"])
        assert row is not None and row.status is DeliveryStatus.SENT
    assert "send.resend_uncertain" in actions(loaded)


@pytest.mark.slow
def test_feedback_figures_appear_in_the_report(loaded: Newsletter, editor: FlaskClient,
                                               smtp_server: SMTPCatcher, run_cli: RunCli) -> None:
    delivery = sent_month(loaded, smtp_server)
    now = datetime.now(UTC)
    record_events(loaded, [
        FeedbackEvent(Source.MAILBOX, "dsn-1", EventKind.BOUNCE_HARD, now, "bob@example.org",
                      delivery["bob@example.org"], reason="550 no such user"),
        FeedbackEvent(Source.MAILBOX, "arf-1", EventKind.COMPLAINT, now, "cy@example.org",
                      delivery["cy@example.org"])])
    report = tree(editor.get(f"{PAGE}/report"))
    figures = {key: report.xpath(f"string(//*[@id='feedback-{key}'])")
               for key in ("hard-bounces", "soft-bounces", "complaints", "unsubscribes")}
    assert figures == {"hard-bounces": "1", "soft-bounces": "0", "complaints": "1",
                       "unsubscribes": "0"}
    assert "33.33 %" in report.xpath("string(//tr[th='Hard bounces'])")
    assert "approximate" in report.xpath("string(//h2[@id='clicks-title']/following::p[1])")
    assert report.xpath("string(//*[@id='report-sent'])") == "3"


@pytest.mark.slow
def test_anonymous_refused_and_every_post_needs_csrf(loaded: Newsletter, app: Flask) -> None:
    anonymous = app.test_client()
    for path in ("/admin/schedule", f"{PAGE}/schedule", f"{PAGE}/send", f"{PAGE}/report",
                 f"{PAGE}/send/counts", f"{PAGE}/send-now"):
        answer = anonymous.get(path)
        assert answer.status_code == 302 and answer.headers["Location"] == "/admin/login"
    client = app.test_client()
    sign_in(client, EDITOR)  # an editor, not an owner: may schedule and send
    posts = [(f"{PAGE}/schedule", {"at": later()}), (f"{PAGE}/schedule/confirm", {"at": later()}),
             (f"{PAGE}/schedule/cancel", {}), (f"{PAGE}/send-now", {"current": PASSWORD}),
             (f"{PAGE}/send-now/undo", {}), (f"{PAGE}/send/pause", {}), (f"{PAGE}/send/resume", {}),
             (f"{PAGE}/send/cancel", {}), (f"{PAGE}/report/resend-uncertain", {})]
    for path, data in posts:
        assert client.post(path, data=data).status_code == 400, path
        assert client.post(path, data={**data, "csrf_token": "forged"}).status_code == 400, path
    assert edition_row(loaded) == (EditionStatus.DRAFT, None)
    assert post(client, f"{PAGE}/schedule/confirm", {"at": later()}).status_code == 302
    assert client.get("/admin/editions/2099-01/schedule").status_code == 404
    assert client.get("/admin/editions/junk/report").status_code == 404


@pytest.mark.slow
def test_script_in_a_reason_shows_as_text_in_the_report(loaded: Newsletter, editor: FlaskClient,
                                                          smtp_server: SMTPCatcher) -> None:
    sent_month(loaded, smtp_server)
    with loaded.session() as session:
        session.execute(update(Delivery).values(status=DeliveryStatus.UNCERTAIN,
                                                last_error="<script>alert(1)</script>"))
    body = editor.get(f"{PAGE}/report").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)" in body


@pytest.mark.slow
def test_the_report_shows_what_status_json_prints(loaded: Newsletter, editor: FlaskClient,
                                                  smtp_server: SMTPCatcher, run_cli: RunCli) -> None:
    delivery = sent_month(loaded, smtp_server)
    with loaded.session() as session:
        session.execute(update(Delivery).where(Delivery.id == delivery["cy@example.org"])
                        .values(status=DeliveryStatus.UNCERTAIN, last_error="answer lost"))
    document = json.loads(run_cli("status", MONTH, "--json").output)
    report = tree(editor.get(f"{PAGE}/report"))
    shown = {name: int(report.xpath(f"string(//*[@id='report-{name.replace('_', '-')}'])"))
             for name in document["counts"]}
    assert shown == document["counts"]
    rows = report.xpath("//table[.//th[text()='Reason']]/tbody/tr")
    assert [(r.xpath("string(./th)"), r.xpath("string(./td[3])")) for r in rows] == [
        (row["email"], row["last_error"]) for row in document["attention"]]


def test_the_schedule_page_shows_the_monthly_rule(make_newsletter: MakeNewsletter) -> None:
    nl = make_newsletter(recurring_rule="first tuesday 09:00")
    load_month(nl)
    make_editor(nl, EDITOR)
    client = create_app(nl, testing=True).test_client()
    sign_in(client, EDITOR)
    page = tree(client.get("/admin/schedule"))
    text = " ".join(page.text_content().split())
    assert "first tuesday 09:00 (America/Toronto)" in text
    assert page.xpath("//h3[@id='next-title']/following-sibling::ul[1]/li[contains(., 'send for')]")
    assert "No scheduler runs in this web server's process" in text


def test_the_rate_of_a_send_younger_than_a_minute_is_over_its_own_age(
        make_newsletter: MakeNewsletter, server: SMTPCatcher) -> None:
    """Ten seconds into a send, N messages sent is N/10 a second, not N/60 (the watch page said
    0.1 a second for a send running at 2); a minute after its last message the rate is 0."""
    loaded = make_newsletter(smtp_host=server.host, smtp_port=server.port)
    load_month(loaded)
    send_edition(loaded, MONTH)
    first, last = report.first_and_last_sent(loaded, MONTH)
    assert first is not None and last is not None and last - first < timedelta(seconds=5)
    sent = report.live_counts(loaded, MONTH, now=first + timedelta(seconds=10))
    assert sent["counts"]["sent"] > 0
    assert sent["per_second"] == pytest.approx(sent["counts"]["sent"] / 10)
    assert report.live_counts(loaded, MONTH, now=last + timedelta(seconds=61))["per_second"] == 0
