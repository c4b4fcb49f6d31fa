"""Mailgun's webhooks posted to the running app, signed with the webhook signing key as Mailgun
documents (HMAC-SHA256 of timestamp + token); every event maps as docs/feedback.md says."""

from __future__ import annotations

from typing import Any

import pytest

from .webhooks_support import dump, live_site, mailgun_body, sent_edition, show, webhook_settings

pytestmark = pytest.mark.process

# case: (event, extra event-data, expected status, expected history kinds, suppression reason)
CASES: dict[str, tuple[str, dict[str, Any], str, list[str], str | None]] = {
    "accepted": ("accepted", {}, "active", [], None),
    "delivered": ("delivered", {"delivery-status": {"code": 250, "message": "OK"}}, "active",
                  ["delivered"], None),
    "failed-permanent": ("failed", {}, "bounced", ["bounce_hard"], "hard-bounce"),
    "failed-temporary": ("failed", {"severity": "temporary", "reason": "generic"}, "active",
                         ["deferred"], None),
    "failed-old": ("failed", {"reason": "old"}, "active", ["bounce_soft"], None),
    "failed-suppressed": ("failed", {"reason": "suppress-bounce"}, "active", ["dropped"], None),
    "opened": ("opened", {}, "active", [], None),
    "clicked": ("clicked", {"url": "https://digest.example.org/"}, "active", [], None),
    "complained": ("complained", {}, "complained", ["complaint"], "complaint"),
    "unsubscribed": ("unsubscribed", {}, "unsubscribed", ["unsubscribe"], None),
}


def test_every_mailgun_event_has_its_effect(make_newsletter: Any, run_cli: Any) -> None:
    nl = make_newsletter(**webhook_settings())
    emails = {name: f"{name}@example.org" for name in CASES}
    sent = sent_edition(nl, list(emails.values()))
    with live_site(nl) as site:
        for name, (event, extra, *_rest) in CASES.items():
            email = emails[name]
            body = mailgun_body(email, sent.delivery[email], sent.message_id[email], event, **extra)
            answer = site.post("/webhooks/mailgun", dump(body))
            assert answer.status == 200, (name, answer.body)
            assert "Set-Cookie" not in answer.headers
    observed = {}
    for name in CASES:
        record = show(run_cli, emails[name])
        suppression = record["suppression"]
        observed[name] = (record["subscriber"]["status"], [e["kind"] for e in record["feedback"]],
                          None if suppression is None else suppression["reason"])
    assert observed == {name: tuple(case[2:]) for name, case in CASES.items()}
