"""What the editor sees: per-edition figures in `newsletter status`, and one alert note per
edition and measure when complaints pass 0.1 % or hard bounces pass 2 %."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from newsletter.catcher import SMTPCatcher
from newsletter.feedback.events import EventKind, FeedbackEvent, Source
from newsletter.feedback.record import record_events

from .webhooks_support import dump, live_site, postmark_auth, postmark_bounce, sent_edition, webhook_settings

pytestmark = pytest.mark.process

EDITOR = "editor@pprnet.example"


def _post(site: Any, email: str, sent: Any, type_: str) -> None:
    record_type = "SpamComplaint" if type_ == "SpamComplaint" else "Bounce"
    body = postmark_bounce(email, sent.delivery[email], sent.message_id[email], type_=type_,
                           record_type=record_type)
    assert site.post("/webhooks/postmark", dump(body), postmark_auth()).status == 200


def test_complaints_and_hard_bounces_over_the_limits_alert_the_editor_once(
        make_newsletter: Any, smtp_server: SMTPCatcher) -> None:
    nl = make_newsletter(editor_email=EDITOR, **webhook_settings())
    emails = [f"r{i:03d}@example.org" for i in range(100)]
    sent = sent_edition(nl, emails)
    with live_site(nl) as site:
        _post(site, emails[0], sent, "SpamComplaint")        # 1 % > 0.1 %: alert
        _post(site, emails[1], sent, "SpamComplaint")        # already told
        _post(site, emails[2], sent, "HardBounce")           # 1 %, under 2 %
        _post(site, emails[3], sent, "HardBounce")           # 2 %, not over
        _post(site, emails[4], sent, "HardBounce")           # 3 %: alert
        _post(site, emails[5], sent, "HardBounce")
    notes = [m.parse() for m in smtp_server.messages]
    assert [n["Subject"] for n in notes] == [
        "[Psychotherapy Practice Research Network] ALERT 2015-01: spam complaints at 1.00%",
        "[Psychotherapy Practice Research Network] ALERT 2015-01: hard bounces at 3.00%"]
    for note in notes:
        assert note["To"] == EDITOR and note["Auto-Submitted"] == "auto-generated"
        assert note.get_content_type() == "text/plain"
    body = " ".join(notes[1].get_content().split())  # compose_plain wraps long lines
    assert "3 hard bounces for 100 messages sent (3.00%, above 2.0%)" in body
    assert "newsletter status 2015-01" in body


def test_status_shows_the_feedback_figures_with_rates(make_newsletter: Any, run_cli: Any) -> None:
    nl = make_newsletter(**webhook_settings())
    emails = [f"r{i:02d}@example.org" for i in range(50)]
    sent = sent_edition(nl, emails)
    with live_site(nl) as site:
        _post(site, emails[0], sent, "HardBounce")
        _post(site, emails[1], sent, "SoftBounce")
        _post(site, emails[2], sent, "SoftBounce")
        _post(site, emails[3], sent, "SpamComplaint")
        _post(site, emails[4], sent, "Unsubscribe")
    document = json.loads(run_cli("status", "2015-01", "--json").output)
    assert document["feedback"] == {
        "sent": 50, "hard_bounces": 1, "hard_bounces_rate": 0.02, "soft_bounces": 2,
        "soft_bounces_rate": 0.04, "complaints": 1, "complaints_rate": 0.02,
        "unsubscribes": 1, "unsubscribes_rate": 0.02}
    text = run_cli("status", "2015-01").output
    assert ("feedback: hard bounces 1 (2.00%), soft bounces 2 (4.00%), complaints 1 (2.00%), "
            "unsubscribes 1 (2.00%)") in text


def test_events_recorded_without_a_notifier_are_alerted_by_the_next_that_has_one(
        make_newsletter: Any, smtp_server: SMTPCatcher) -> None:
    """The mailbox reader records without telling; its complaints still count, and the next
    webhook's recording raises the alert (nothing was marked as told before anyone was)."""
    nl = make_newsletter(editor_email=EDITOR, **webhook_settings())
    emails = [f"r{i:03d}@example.org" for i in range(100)]
    sent = sent_edition(nl, emails)
    quiet = record_events(nl, [FeedbackEvent(Source.MAILBOX, f"arf-{e}", EventKind.COMPLAINT,
                                             datetime.now(UTC), e, sent.delivery[e])
                               for e in emails[:2]])
    assert quiet.alerts == [] and smtp_server.messages == []
    with live_site(nl) as site:
        _post(site, emails[2], sent, "SpamComplaint")
    (note,) = [m.parse() for m in smtp_server.messages]
    assert note["Subject"].endswith("ALERT 2015-01: spam complaints at 3.00%")
