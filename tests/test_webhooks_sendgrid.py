"""SendGrid's signed Event Webhook posted to the running app: a real ECDSA P-256 key pair, the
signature made as SendGrid documents it, one batch holding every event type."""

from __future__ import annotations

from typing import Any

import pytest

from .webhooks_support import (
    SendGridKeys,
    dump,
    live_site,
    sendgrid_event,
    sent_edition,
    show,
    webhook_settings,
)

pytestmark = pytest.mark.process

# case: (event, extra fields, expected status, expected history kinds, suppression reason)
CASES: dict[str, tuple[str, dict[str, Any], str, list[str], str | None]] = {
    "processed": ("processed", {}, "active", [], None),
    "dropped": ("dropped", {}, "active", ["dropped"], None),
    "delivered": ("delivered", {"response": "250 OK"}, "active", ["delivered"], None),
    "deferred": ("deferred", {}, "active", ["deferred"], None),
    "bounce": ("bounce", {}, "bounced", ["bounce_hard"], "hard-bounce"),
    "blocked": ("bounce", {"type": "blocked", "reason": "421 rate limited"}, "active",
                ["bounce_soft"], None),
    "open": ("open", {"useragent": "Mozilla/5.0"}, "active", [], None),
    "click": ("click", {"url": "https://digest.example.org/archive"}, "active", [], None),
    "spamreport": ("spamreport", {}, "complained", ["complaint"], "complaint"),
    "unsubscribe": ("unsubscribe", {}, "unsubscribed", ["unsubscribe"], None),
    "group_unsubscribe": ("group_unsubscribe", {"asm_group_id": 10}, "unsubscribed",
                          ["unsubscribe"], None),
    "group_resubscribe": ("group_resubscribe", {"asm_group_id": 10}, "active", [], None),
}


def test_every_sendgrid_event_type_has_its_effect(make_newsletter: Any, run_cli: Any) -> None:
    keys = SendGridKeys.generate()
    nl = make_newsletter(**webhook_settings(keys.public_base64))
    emails = {name: f"{name}@example.org" for name in CASES}
    sent = sent_edition(nl, list(emails.values()))
    batch = [sendgrid_event(emails[name], sent.delivery[emails[name]],
                            sent.message_id[emails[name]], event, **extra)
             for name, (event, extra, *_rest) in CASES.items()]
    body = dump(batch)
    with live_site(nl) as site:
        answer = site.post("/webhooks/sendgrid", body, keys.headers(body))
    assert answer.status == 200, answer.body
    assert answer.json()["received"] == len(CASES)
    assert "Set-Cookie" not in answer.headers
    observed = {}
    for name in CASES:
        record = show(run_cli, emails[name])
        suppression = record["suppression"]
        observed[name] = (record["subscriber"]["status"], [e["kind"] for e in record["feedback"]],
                          None if suppression is None else suppression["reason"])
    assert observed == {name: tuple(case[2:]) for name, case in CASES.items()}


def test_a_resubscribe_or_delivery_after_a_bounce_changes_nothing(make_newsletter: Any,
                                                                   run_cli: Any) -> None:
    keys = SendGridKeys.generate()
    nl = make_newsletter(**webhook_settings(keys.public_base64))
    sent = sent_edition(nl, ["ann@example.org"])
    args = ("ann@example.org", sent.delivery["ann@example.org"], sent.message_id["ann@example.org"])
    with live_site(nl) as site:
        for event in ("bounce", "delivered", "group_resubscribe"):
            body = dump([sendgrid_event(*args, event)])
            assert site.post("/webhooks/sendgrid", body, keys.headers(body)).status == 200
    record = show(run_cli, "ann@example.org")
    assert record["subscriber"]["status"] == "bounced"
    assert record["suppression"]["reason"] == "hard-bounce"
