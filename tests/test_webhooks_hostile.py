"""Hostile webhook requests against the running app: each is answered 401, 400 or 413 and writes
nothing (no event, suppression, status change, Mailgun token or editor note). Exact replays are
answered 200 and have one effect; unknown or foreign delivery ids change nobody."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from newsletter.context import Newsletter
from newsletter.feedback.models import FeedbackEventRow
from newsletter.notify.outbox import EditorNote
from newsletter.webhooks.models import WebhookToken
from subscribers.models import Subscriber, Suppression

from .webhooks_support import (
    MAILGUN_KEY,
    SendGridKeys,
    Sent,
    dump,
    live_site,
    mailgun_body,
    postmark_auth,
    postmark_bounce,
    sendgrid_event,
    sent_edition,
    show,
    webhook_settings,
)

pytestmark = [pytest.mark.process, pytest.mark.slow]

ANN = "ann@example.org"
OTHER_KEY = SendGridKeys.generate()
NESTED = b'{"a":' * 50 + b"1" + b"}" * 50
OVER_CAP = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'

# A case builds (path, body, headers) from the sent edition and the SendGrid key pair.
Case = Callable[[Sent, SendGridKeys], tuple[str, bytes, dict[str, str]]]


def _pm(record: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
        body: bytes | None = None) -> tuple[str, bytes, dict[str, str]]:
    return ("/webhooks/postmark", body if body is not None else dump(record),
            headers if headers is not None else postmark_auth())


def _bounce(s: Sent, **changes: Any) -> dict[str, Any]:
    return {**postmark_bounce(ANN, s.delivery[ANN], s.message_id[ANN]), **changes}


def _sg_signed(keys: SendGridKeys, body: bytes,
               timestamp: str | None = None) -> tuple[str, bytes, dict[str, str]]:
    return "/webhooks/sendgrid", body, keys.headers(body, timestamp)


def _sg_events(s: Sent, **changes: Any) -> bytes:
    return dump([{**sendgrid_event(ANN, s.delivery[ANN], s.message_id[ANN], "bounce"), **changes}])


def _sg_tampered(s: Sent, keys: SendGridKeys) -> tuple[str, bytes, dict[str, str]]:
    body = _sg_events(s)
    headers = keys.headers(body)
    changed = bytearray(body)
    changed[body.index(b"bounce")] = ord("B")
    return "/webhooks/sendgrid", bytes(changed), headers


def _sg_header(s: Sent, keys: SendGridKeys, **replace: str | None) -> tuple[str, bytes, dict[str, str]]:
    body = _sg_events(s)
    headers = keys.headers(body)
    for name, value in replace.items():
        header = {"signature": "X-Twilio-Email-Event-Webhook-Signature",
                  "timestamp": "X-Twilio-Email-Event-Webhook-Timestamp"}[name]
        if value is None:
            del headers[header]
        else:
            headers[header] = value
    return "/webhooks/sendgrid", body, headers


def _mg(s: Sent, event: str = "failed", **changes: Any) -> tuple[str, bytes, dict[str, str]]:
    signature_changes = {k: changes.pop(k) for k in ("token", "timestamp", "key") if k in changes}
    body = mailgun_body(ANN, s.delivery[ANN], s.message_id[ANN], event, **signature_changes)
    body["event-data"].update(changes)
    return "/webhooks/mailgun", dump(body), {}


def _mg_edit(s: Sent, edit: Callable[[dict[str, Any]], None]) -> tuple[str, bytes, dict[str, str]]:
    body = mailgun_body(ANN, s.delivery[ANN], s.message_id[ANN], "failed")
    edit(body)
    return "/webhooks/mailgun", dump(body), {}


def _basic(raw: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


STALE, FUTURE = str(int(time.time()) - 3600), str(int(time.time()) + 3600)
RECENT = str(int(time.time()) - 2)


def _set_signature(field: str, value: str) -> Callable[[dict[str, Any]], None]:
    return lambda body: body["signature"].update({field: value})

CASES: dict[str, tuple[int, Case]] = {
    # Postmark: credentials
    "pm-no-credentials": (401, lambda s, k: _pm(_bounce(s), headers={})),
    "pm-empty-authorization": (401, lambda s, k: _pm(_bounce(s), headers={"Authorization": ""})),
    "pm-basic-without-value": (401, lambda s, k: _pm(_bounce(s), headers={"Authorization": "Basic "})),
    "pm-wrong-password": (401, lambda s, k: _pm(_bounce(s), postmark_auth(password="guess"))),
    "pm-wrong-user": (401, lambda s, k: _pm(_bounce(s), postmark_auth(user="admin"))),
    "pm-pair-prefix-only": (401, lambda s, k: _pm(_bounce(s), _basic(b"postmark-hook:s3cret"))),
    "pm-not-base64": (401, lambda s, k: _pm(_bounce(s), headers={"Authorization": "Basic %%%%"})),
    "pm-no-colon": (401, lambda s, k: _pm(_bounce(s), _basic(b"postmark-hooks3cret-Pair-1"))),
    "pm-bearer-scheme": (401, lambda s, k: _pm(_bounce(s), headers={"Authorization": "Bearer x"})),
    "pm-huge-authorization": (401, lambda s, k: _pm(_bounce(s), _basic(b"a:" + b"b" * 5000))),
    # Postmark: bodies
    "pm-not-json": (400, lambda s, k: _pm(body=b"RecordType=Bounce&Email=ann@example.org")),
    "pm-not-utf8": (400, lambda s, k: _pm(body=b'{"RecordType": "Bounce", "Email": "\xff"}')),
    "pm-array-not-object": (400, lambda s, k: _pm(body=dump([_bounce(s)]))),
    "pm-deeply-nested": (400, lambda s, k: _pm(body=NESTED)),
    "pm-nan": (400, lambda s, k: _pm(body=dump(_bounce(s)).replace(b'"ServerID": 23', b'"ServerID": NaN'))),
    "pm-unknown-record-type": (400, lambda s, k: _pm(_bounce(s, RecordType="Inbound"))),
    "pm-unknown-bounce-type": (400, lambda s, k: _pm(_bounce(s, Type="Unknown"))),
    "pm-crlf-in-email": (400, lambda s, k: _pm(_bounce(s, Email="ann@example.org\r\nBcc: x@evil.test"))),
    "pm-delivery-id-injection": (400, lambda s, k: _pm(_bounce(s, Metadata={"delivery_id": "1 OR 1=1"}))),
    "pm-delivery-id-negative": (400, lambda s, k: _pm(_bounce(s, Metadata={"delivery_id": "-4"}))),
    "pm-metadata-not-object": (400, lambda s, k: _pm(_bounce(s, Metadata="delivery_id=1"))),
    "pm-bounced-at-not-a-time": (400, lambda s, k: _pm(_bounce(s, BouncedAt="yesterday"))),
    "pm-email-not-a-string": (400, lambda s, k: _pm(_bounce(s, Email={"$ne": None}))),
    "pm-over-the-cap": (413, lambda s, k: _pm(body=OVER_CAP)),
    # SendGrid: signatures and timestamps
    "sg-no-signature": (401, lambda s, k: _sg_header(s, k, signature=None)),
    "sg-empty-signature": (401, lambda s, k: _sg_header(s, k, signature="")),
    "sg-signature-not-base64": (401, lambda s, k: _sg_header(s, k, signature="not*base64")),
    "sg-signature-garbage-der": (401, lambda s, k: _sg_header(s, k, signature="AAAA")),
    "sg-signed-by-another-key": (401, lambda s, k: _sg_signed(OTHER_KEY, _sg_events(s))),
    "sg-body-changed-by-one-byte": (401, _sg_tampered),
    "sg-no-timestamp": (401, lambda s, k: _sg_header(s, k, timestamp=None)),
    "sg-timestamp-changed-after-signing": (401, lambda s, k: _sg_header(s, k, timestamp=RECENT)),
    "sg-stale-timestamp": (401, lambda s, k: _sg_signed(k, _sg_events(s), STALE)),
    "sg-future-timestamp": (401, lambda s, k: _sg_signed(k, _sg_events(s), FUTURE)),
    "sg-timestamp-not-a-number": (401, lambda s, k: _sg_signed(k, _sg_events(s), "soon")),
    "sg-timestamp-negative": (401, lambda s, k: _sg_signed(k, _sg_events(s), "-1")),
    # SendGrid: signed, but not of the documented shape
    "sg-object-not-array": (400, lambda s, k: _sg_signed(k, dump({"event": "bounce"}))),
    "sg-deeply-nested": (400, lambda s, k: _sg_signed(k, NESTED)),
    "sg-unknown-event": (400, lambda s, k: _sg_signed(k, _sg_events(s, event="teleported"))),
    "sg-crlf-in-email": (400, lambda s, k: _sg_signed(k, _sg_events(s, email="ann@example.org\nX: y"))),
    "sg-no-event-id": (400, lambda s, k: _sg_signed(k, _sg_events(s, sg_event_id=None))),
    "sg-delivery-id-not-ours": (400, lambda s, k: _sg_signed(k, _sg_events(s, delivery_id="abc"))),
    "sg-events-not-objects": (400, lambda s, k: _sg_signed(k, dump(["bounce", 1, None]))),
    "sg-empty-array": (400, lambda s, k: _sg_signed(k, b"[]")),
    "sg-over-the-cap": (413, lambda s, k: _sg_signed(k, OVER_CAP)),
    # Mailgun
    "mg-no-signature-object": (401, lambda s, k: _mg_edit(s, lambda b: b.pop("signature"))),
    "mg-empty-signature": (401, lambda s, k: _mg_edit(s, _set_signature("signature", ""))),
    "mg-wrong-signature": (401, lambda s, k: _mg_edit(s, _set_signature("signature", "0" * 64))),
    "mg-signed-with-another-key": (401, lambda s, k: _mg(s, key="key-" + "1" * 32)),
    "mg-token-changed-after-signing": (401, lambda s, k: _mg_edit(s, _set_signature("token", "f" * 50))),
    "mg-stale-timestamp": (401, lambda s, k: _mg(s, timestamp=STALE)),
    "mg-future-timestamp": (401, lambda s, k: _mg(s, timestamp=FUTURE)),
    "mg-timestamp-not-a-number": (401, lambda s, k: _mg(s, timestamp="12ab")),
    "mg-token-not-alphanumeric": (401, lambda s, k: _mg(s, token="abc' OR '1'='1")),
    "mg-signature-not-an-object": (401, lambda s, k: _mg_edit(s, lambda b: b.update(signature="x"))),
    "mg-not-json": (400, lambda s, k: ("/webhooks/mailgun", b"signature=abc", {})),
    "mg-no-event-data": (400, lambda s, k: _mg_edit(s, lambda b: b.pop("event-data"))),
    "mg-unknown-event": (400, lambda s, k: _mg(s, "teleported")),
    "mg-crlf-in-recipient": (400, lambda s, k: _mg(s, recipient="ann@example.org\r\nBcc: x@evil.test")),
    "mg-delivery-id-not-ours": (400, lambda s, k: _mg(s, **{"user-variables": {"delivery_id": "1e9"}})),
    "mg-over-the-cap": (413, lambda s, k: ("/webhooks/mailgun", OVER_CAP, {})),
}


def _snapshot(nl: Newsletter) -> tuple[Any, ...]:
    """Everything a webhook may write."""
    with nl.session() as session:
        counts = tuple(session.scalar(select(func.count()).select_from(model))
                       for model in (FeedbackEventRow, Suppression, WebhookToken, EditorNote))
        statuses = tuple(session.execute(select(Subscriber.email, Subscriber.status)
                                         .order_by(Subscriber.email)).all())
        return counts + statuses


@pytest.fixture
def keys() -> SendGridKeys:
    return SendGridKeys.generate()


@pytest.fixture
def store(make_newsletter: Any, keys: SendGridKeys) -> Newsletter:
    return make_newsletter(**webhook_settings(keys.public_base64))


def test_there_are_at_least_forty_hostile_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_hostile_request_is_refused_and_writes_nothing(name: str, store: Newsletter,
                                                        keys: SendGridKeys) -> None:
    status, build = CASES[name]
    sent = sent_edition(store, [ANN])
    path, body, headers = build(sent, keys)
    before = _snapshot(store)
    with live_site(store) as site:
        answer = site.post(path, body, headers)
    assert answer.status == status, answer.body[:300]
    assert "Set-Cookie" not in answer.headers
    assert _snapshot(store) == before


def test_a_mailgun_token_reused_with_another_body_is_refused(store: Newsletter, run_cli: Any) -> None:
    sent = sent_edition(store, [ANN, "bob@example.org"])
    first = mailgun_body(ANN, sent.delivery[ANN], sent.message_id[ANN], "delivered", token="a" * 50)
    second = json.loads(json.dumps(first))
    second["event-data"].update(event="complained", recipient="bob@example.org",
                                **{"user-variables": {"delivery_id": str(sent.delivery["bob@example.org"])}})
    with live_site(store) as site:
        assert site.post("/webhooks/mailgun", dump(first)).status == 200
        before = _snapshot(store)
        assert site.post("/webhooks/mailgun", dump(second)).status == 401
    assert _snapshot(store) == before
    assert show(run_cli, "bob@example.org")["subscriber"]["status"] == "active"


def _replays(sent: Sent, keys: SendGridKeys) -> dict[str, tuple[str, bytes, dict[str, str]]]:
    pm = dump(postmark_bounce(ANN, sent.delivery[ANN], sent.message_id[ANN], type_="SoftBounce"))
    sg = dump([sendgrid_event(ANN, sent.delivery[ANN], sent.message_id[ANN], "bounce",
                              type="blocked")])
    mg = dump(mailgun_body(ANN, sent.delivery[ANN], sent.message_id[ANN], "failed", reason="old"))
    return {"postmark": ("/webhooks/postmark", pm, postmark_auth()),
            "sendgrid": ("/webhooks/sendgrid", sg, keys.headers(sg)),
            "mailgun": ("/webhooks/mailgun", mg, {})}


def test_exact_replays_are_answered_200_with_one_effect(store: Newsletter, keys: SendGridKeys,
                                                         run_cli: Any) -> None:
    """Three soft bounces would suppress; each sent three times is still one per provider, on
    one delivery, so they count as one delivery bouncing: nobody is suppressed."""
    sent = sent_edition(store, [ANN])
    with live_site(store) as site:
        for path, body, headers in _replays(sent, keys).values():
            answers = [site.post(path, body, headers) for _ in range(3)]
            assert [a.status for a in answers] == [200, 200, 200]
            assert [a.json()["duplicates"] for a in answers] == [0, 1, 1]
    record = show(run_cli, ANN)
    assert [e["kind"] for e in record["feedback"]] == ["bounce_soft"] * 3
    assert record["subscriber"]["status"] == "active" and record["suppression"] is None


def test_unknown_and_foreign_delivery_ids_change_nobody(store: Newsletter, keys: SendGridKeys,
                                                        run_cli: Any) -> None:
    """A well-formed delivery id we never made, or one of Ann's naming someone else: the event
    is authentic, so it is answered 200 (a refusal would make the provider retry for days), but
    it names nobody we hold and nothing is written."""
    sent = sent_edition(store, [ANN])
    foreign = postmark_bounce("stranger@example.net", sent.delivery[ANN], sent.message_id[ANN])
    unknown = postmark_bounce("nobody@example.net", 987654321, "pm-unknown")
    before = _snapshot(store)
    with live_site(store) as site:
        for record in (foreign, unknown):
            answer = site.post("/webhooks/postmark", dump(record), postmark_auth())
            assert answer.status == 200
            assert answer.json()["stored"] == 0 and answer.json()["unknown_recipient"] == 1
    assert _snapshot(store) == before
    assert show(run_cli, ANN)["subscriber"]["status"] == "active"


def test_a_delivery_id_whose_message_id_disagrees_applies_by_address_only(
        store: Newsletter, run_cli: Any) -> None:
    """Ann's delivery id with another message id: not trusted as her delivery; the hard bounce
    still applies to her address (logged as unmatched), and names no edition."""
    sent = sent_edition(store, [ANN])
    record = postmark_bounce(ANN, sent.delivery[ANN], "some-other-message")
    with live_site(store) as site:
        answer = site.post("/webhooks/postmark", dump(record), postmark_auth())
    assert answer.status == 200 and answer.json()["unmatched"] == 1
    (event,) = show(run_cli, ANN)["feedback"]
    assert event["matched_by"] == "address" and event["edition"] is None
    assert show(run_cli, ANN)["subscriber"]["status"] == "bounced"


def test_an_unconfigured_webhook_refuses_everything(make_newsletter: Any) -> None:
    nl = make_newsletter()
    sent = sent_edition(nl, [ANN])
    body = dump(postmark_bounce(ANN, sent.delivery[ANN], sent.message_id[ANN]))
    with live_site(nl) as site:
        assert site.post("/webhooks/postmark", body, postmark_auth()).status == 401
        assert site.post("/webhooks/sendgrid", b"[]", {}).status == 401
        assert site.post("/webhooks/mailgun", dump(mailgun_body(ANN, None, "m", "failed",
                                                                key=MAILGUN_KEY)), {}).status == 401
