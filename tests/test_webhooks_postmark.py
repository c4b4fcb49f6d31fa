"""Postmark's webhooks posted to the running app: every record type maps as docs/feedback.md
says, and each effect is read back with `subscribers show --json`."""

from __future__ import annotations

from typing import Any

import pytest

from .webhooks_support import (
    dump,
    live_site,
    postmark_auth,
    postmark_bounce,
    postmark_delivery,
    postmark_subscription_change,
    sent_edition,
    show,
    webhook_settings,
)

pytestmark = pytest.mark.process

# case: (payload builder arguments, expected status, expected history kinds, suppression reason)
CASES: dict[str, tuple[dict[str, Any], str, list[str], str | None]] = {
    "HardBounce": ({"type_": "HardBounce"}, "bounced", ["bounce_hard"], "hard-bounce"),
    "BadEmailAddress": ({"type_": "BadEmailAddress"}, "bounced", ["bounce_hard"], "hard-bounce"),
    "SoftBounce": ({"type_": "SoftBounce"}, "active", ["bounce_soft"], None),
    "Transient": ({"type_": "Transient"}, "active", ["bounce_soft"], None),
    "DnsError": ({"type_": "DnsError"}, "active", ["bounce_soft"], None),
    "Blocked": ({"type_": "Blocked"}, "active", ["bounce_soft"], None),
    "Unsubscribe": ({"type_": "Unsubscribe"}, "unsubscribed", ["unsubscribe"], None),
    "ManuallyDeactivated": ({"type_": "ManuallyDeactivated"}, "active", ["dropped"], None),
    "AutoResponder": ({"type_": "AutoResponder"}, "active", [], None),
    "SpamNotification": ({"type_": "SpamNotification"}, "active", [], None),
    "SpamComplaint": ({"type_": "SpamComplaint", "record_type": "SpamComplaint"}, "complained",
                      ["complaint"], "complaint"),
}
CHANGES: dict[str, tuple[dict[str, Any], str, list[str], str | None]] = {
    "change-manual": ({"reason": "ManualSuppression"}, "unsubscribed", ["unsubscribe"], None),
    "change-hard": ({"reason": "HardBounce"}, "bounced", ["bounce_hard"], "hard-bounce"),
    "change-spam": ({"reason": "SpamComplaint"}, "complained", ["complaint"], "complaint"),
    "change-reactivated": ({"suppress": False, "reason": None}, "active", [], None),
}


def _observed(run_cli: Any, email: str) -> tuple[str, list[str], str | None]:
    record = show(run_cli, email)
    suppression = record["suppression"]
    return (record["subscriber"]["status"], [e["kind"] for e in record["feedback"]],
            None if suppression is None else suppression["reason"])


def test_every_postmark_record_type_has_its_effect(make_newsletter: Any, run_cli: Any) -> None:
    nl = make_newsletter(**webhook_settings())
    names = [*CASES, *CHANGES, "delivery"]
    emails = {name: f"{name.lower()}@example.org" for name in names}
    sent = sent_edition(nl, list(emails.values()))
    with live_site(nl) as site:
        for name, (arguments, *_rest) in CASES.items():
            email = emails[name]
            body = postmark_bounce(email, sent.delivery[email], sent.message_id[email], **arguments)
            answer = site.post("/webhooks/postmark", dump(body), postmark_auth())
            assert answer.status == 200, (name, answer.body)
            assert "Set-Cookie" not in answer.headers
        for name, (arguments, *_rest) in CHANGES.items():
            email = emails[name]
            body = postmark_subscription_change(email, sent.delivery[email], sent.message_id[email],
                                                **arguments)
            assert site.post("/webhooks/postmark", dump(body), postmark_auth()).status == 200
        email = emails["delivery"]
        body = postmark_delivery(email, sent.delivery[email], sent.message_id[email])
        assert site.post("/webhooks/postmark", dump(body), postmark_auth()).status == 200
    expected = {name: tuple(case[1:]) for name, case in {**CASES, **CHANGES}.items()}
    expected["delivery"] = ("active", ["delivered"], None)
    observed = {name: _observed(run_cli, emails[name]) for name in names}
    assert observed == expected


def test_the_raw_reason_and_edition_are_in_the_history(make_newsletter: Any, run_cli: Any) -> None:
    nl = make_newsletter(**webhook_settings())
    sent = sent_edition(nl, ["ann@example.org"])
    body = postmark_bounce("ann@example.org", sent.delivery["ann@example.org"],
                           sent.message_id["ann@example.org"])
    with live_site(nl) as site:
        assert site.post("/webhooks/postmark", dump(body), postmark_auth()).status == 200
    (event,) = show(run_cli, "ann@example.org")["feedback"]
    assert event["edition"] == "2015-01" and event["source"] == "postmark"
    assert event["matched_by"] == "delivery" and event["effect"] == "suppressed"
    assert "550 5.1.1 The email account that you tried to reach does not exist" in event["reason"]
    assert "ann@example.org" not in event["reason"]  # addresses in stored text are hashed
    text = run_cli("subscribers", "show", "ann@example.org").output
    assert "bounce_hard" in text and "550 5.1.1" in text


def test_a_rotated_credential_pair_is_still_accepted(make_newsletter: Any) -> None:
    nl = make_newsletter(**webhook_settings())
    sent = sent_edition(nl, ["ann@example.org"])
    body = postmark_bounce("ann@example.org", sent.delivery["ann@example.org"],
                           sent.message_id["ann@example.org"], type_="SoftBounce")
    with live_site(nl) as site:
        assert site.post("/webhooks/postmark", dump(body),
                         postmark_auth("old-hook", "retired-pair")).status == 200
