"""One vocabulary, one set of effects: the rules of `record_events`, on SQLite and PostgreSQL,
for events from any source (the webhooks and the mailbox reader both end here)."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from newsletter.context import Newsletter
from newsletter.feedback.effects import Sighting, mask_addresses, soft_bounce_streak, stored_payload
from newsletter.feedback.events import EventKind, FeedbackEvent, InvalidEvent, Source
from newsletter.feedback.models import FeedbackEventRow
from newsletter.feedback.prune import prune_payloads
from newsletter.feedback.record import record_events
from newsletter.tokens import Purpose
from subscribers.flows import Flows
from subscribers.models import Subscriber, SubscriberStatus

from .webhooks_support import (
    SendGridKeys,
    dump,
    live_site,
    sendgrid_event,
    sent_edition,
    show,
    webhook_settings,
)

ANN = "ann@example.org"
NOW = datetime.now(UTC)


def event(kind: EventKind, delivery_id: int | None, *, key: str | None = None,
          address: str | None = ANN, at: datetime | None = None, reason: str = "") -> FeedbackEvent:
    return FeedbackEvent(Source.MAILBOX, key or f"{kind}-{delivery_id}-{address}-{at}", kind,
                         at or NOW, address, delivery_id, None, reason, {"to": address})


def status(nl: Newsletter, email: str = ANN) -> SubscriberStatus:
    with nl.session() as session:
        found = session.scalar(select(Subscriber.status).where(Subscriber.email == email))
        assert found is not None
        return found


def three_editions(nl: Newsletter) -> list[int]:
    """Ann's deliveries of three months, oldest first."""
    return [sent_edition(nl, [ANN], month=m).delivery[ANN] for m in ("2015-01", "2015-02", "2015-03")]


# -- pure rules ----------------------------------------------------------------------------------

def test_the_soft_bounce_streak_counts_deliveries_since_the_last_delivered_one() -> None:
    day = timedelta(days=1)
    soft = [Sighting(EventKind.BOUNCE_SOFT, d, NOW - (10 - d) * day) for d in (1, 2, 3)]
    assert soft_bounce_streak(soft, NOW) == 3
    assert soft_bounce_streak([*soft, Sighting(EventKind.BOUNCE_SOFT, 3, NOW)], NOW) == 3
    between = [soft[0], Sighting(EventKind.DELIVERED, 9, NOW - 8.5 * day), *soft[1:]]
    assert soft_bounce_streak(between, NOW) == 2
    decayed = [Sighting(EventKind.BOUNCE_SOFT, 1, NOW - 200 * day), *soft[1:]]
    assert soft_bounce_streak(decayed, NOW) == 2


def test_stored_payloads_forget_addresses() -> None:
    payload = {"Email": "Ann@Example.org", "Details": "550 <ann@example.org>: no such user",
               "nested": [{"to": "bob@example.org"}], "ServerID": 23, "Inactive": True}
    stored = json.loads(stored_payload(payload))
    assert "example.org" not in json.dumps(stored)
    assert stored["ServerID"] == 23 and stored["Inactive"] is True
    assert stored["Email"] == mask_addresses("ann@example.org")  # case-insensitive, one token
    assert stored["Details"] == f"550 <{mask_addresses('ann@example.org')}>: no such user"
    huge = stored_payload({"x": "a" * 50_000})
    assert len(huge) < 17_000 and json.loads(huge)["truncated"].startswith('{"x":"aaa')


@pytest.mark.parametrize(("field", "changes"), [
    ("address", {"address": "ann@example.org\r\nBcc: x@evil.test"}),
    ("address", {"address": "a" * 300 + "@example.org"}),
    ("event_key", {"event_key": ""}),
    ("event_key", {"event_key": "k" * 201}),
    ("occurred_at", {"occurred_at": datetime(2015, 1, 1)}),
    ("delivery_id", {"delivery_id": -1}),
    ("provider_message_id", {"provider_message_id": "id\nX-Injected: 1"}),
])
def test_an_event_checks_its_own_hostile_fields(field: str, changes: dict[str, Any]) -> None:
    values: dict[str, Any] = {"source": Source.MAILBOX, "event_key": "k", "kind": EventKind.BOUNCE_HARD,
                              "occurred_at": NOW, "address": ANN, "delivery_id": 1}
    with pytest.raises(InvalidEvent) as raised:
        FeedbackEvent(**{**values, **changes})
    assert raised.value.field == field


def test_a_reason_is_one_capped_line() -> None:
    made = event(EventKind.BOUNCE_HARD, 1, reason="550 no\r\nsuch\x1b[31m user" + "x" * 5000)
    assert "\n" not in made.reason and "\x1b" not in made.reason and len(made.reason) == 1000


# -- effects in the store ------------------------------------------------------------------------

def test_soft_bounces_on_three_deliveries_in_a_row_suppress(newsletter: Newsletter, run_cli: Any) -> None:
    first, second, third = three_editions(newsletter)
    record_events(newsletter, [event(EventKind.BOUNCE_SOFT, first), event(EventKind.BOUNCE_SOFT, second),
                               event(EventKind.BOUNCE_SOFT, second, key="again")])
    assert status(newsletter) is SubscriberStatus.ACTIVE  # two deliveries, not three
    summary = record_events(newsletter, [event(EventKind.BOUNCE_SOFT, third)])
    assert summary.effects["suppressed"] == 1
    record = show(run_cli, ANN)
    assert record["subscriber"]["status"] == "bounced"
    assert record["suppression"]["reason"] == "soft-bounce"


def test_a_delivery_between_soft_bounces_starts_the_count_again(newsletter: Newsletter) -> None:
    first, second, third = three_editions(newsletter)
    day = timedelta(days=1)
    record_events(newsletter, [event(EventKind.BOUNCE_SOFT, first, at=NOW - 3 * day),
                               event(EventKind.DELIVERED, second, at=NOW - 2.5 * day),
                               event(EventKind.BOUNCE_SOFT, second, at=NOW - 2 * day),
                               event(EventKind.BOUNCE_SOFT, third, at=NOW - day)])
    assert status(newsletter) is SubscriberStatus.ACTIVE


def test_soft_bounces_older_than_180_days_decay(newsletter: Newsletter) -> None:
    first, second, third = three_editions(newsletter)
    record_events(newsletter, [event(EventKind.BOUNCE_SOFT, first, at=NOW - timedelta(days=181)),
                               event(EventKind.BOUNCE_SOFT, second), event(EventKind.BOUNCE_SOFT, third)])
    assert status(newsletter) is SubscriberStatus.ACTIVE


def test_the_status_never_moves_back(newsletter: Newsletter, run_cli: Any) -> None:
    first, second, _ = three_editions(newsletter)
    record_events(newsletter, [event(EventKind.COMPLAINT, first)])
    record_events(newsletter, [event(EventKind.BOUNCE_HARD, second), event(EventKind.UNSUBSCRIBE, second),
                               event(EventKind.DELIVERED, second)])
    record = show(run_cli, ANN)
    assert record["subscriber"]["status"] == "complained"
    assert record["suppression"]["reason"] == "complaint"
    assert [e["kind"] for e in record["feedback"]] == ["complaint", "bounce_hard", "unsubscribe",
                                                        "delivered"]


def test_a_complaint_is_not_undone_by_a_link_or_a_new_signup(newsletter: Newsletter) -> None:
    (delivery, *_rest) = three_editions(newsletter)
    record_events(newsletter, [event(EventKind.COMPLAINT, delivery)])
    flows = Flows(newsletter)
    with newsletter.session() as session:
        uid = session.scalar(select(Subscriber.uid).where(Subscriber.email == ANN))
    assert uid is not None
    view = flows.resubscribe(flows.sign(Purpose.PREFERENCES, uid), "192.0.2.1")
    assert view.status is SubscriberStatus.COMPLAINED and view.suppressed
    flows.signup(ANN, "Ann", None, "192.0.2.1")
    assert status(newsletter) is SubscriberStatus.COMPLAINED


def test_an_unsubscribe_event_is_the_one_click_unsubscribe(newsletter: Newsletter) -> None:
    (delivery, *_rest) = three_editions(newsletter)
    summary = record_events(newsletter, [event(EventKind.UNSUBSCRIBE, delivery)])
    assert summary.effects["unsubscribed"] == 1
    with newsletter.session() as session:
        ann = session.scalar(select(Subscriber).where(Subscriber.email == ANN))
        assert ann is not None and ann.status is SubscriberStatus.UNSUBSCRIBED
        assert ann.unsubscribed_at is not None


def test_without_a_delivery_an_address_gets_only_the_account_wide_effects(
        newsletter: Newsletter, caplog: pytest.LogCaptureFixture) -> None:
    three_editions(newsletter)
    with caplog.at_level(logging.WARNING, logger="newsletter.feedback.record"):
        summary = record_events(newsletter, [event(EventKind.BOUNCE_SOFT, None, key="s"),
                                             event(EventKind.BOUNCE_HARD, None, key="h",
                                                   address="ANN@example.org")])
    assert (summary.stored, summary.unmatched, summary.unknown_recipient) == (1, 1, 1)
    assert status(newsletter) is SubscriberStatus.BOUNCED
    assert "unmatched mailbox event h (bounce_hard)" in caplog.text


def test_an_event_is_stored_once_however_often_it_comes(newsletter: Newsletter) -> None:
    (delivery, *_rest) = three_editions(newsletter)
    once = event(EventKind.BOUNCE_HARD, delivery, key="dsn-1")
    assert record_events(newsletter, [once, once]).stored == 1
    again = record_events(newsletter, [once])
    assert (again.stored, again.duplicates, sum(again.effects.values())) == (0, 1, 0)


def test_payloads_are_pruned_after_the_configured_days(make_newsletter: Any) -> None:
    nl = make_newsletter(feedback_payload_days=30)
    first, second, third = three_editions(nl)
    record_events(nl, [event(EventKind.DEFERRED, first, key="old"),
                       event(EventKind.DEFERRED, second, key="new")])
    with nl.session() as session:
        session.execute(update(FeedbackEventRow).where(FeedbackEventRow.event_key == "old")
                        .values(received_at=NOW - timedelta(days=31)))
    assert prune_payloads(nl) == 1
    with nl.session() as session:
        session.execute(update(FeedbackEventRow).where(FeedbackEventRow.event_key == "new")
                        .values(received_at=NOW - timedelta(days=31)))
    record_events(nl, [event(EventKind.DEFERRED, third, key="newest")])  # recording prunes too
    with nl.session() as session:
        payloads = dict(session.execute(select(FeedbackEventRow.event_key, FeedbackEventRow.payload)).all())
    assert payloads["old"] is None and payloads["new"] is None
    assert json.loads(payloads["newest"]) == {"to": mask_addresses(ANN)}


@pytest.mark.process
def test_parallel_deliveries_of_the_same_events_have_one_effect(make_newsletter: Any, run_cli: Any) -> None:
    """Four posters send the same signed batch at once (a provider retrying while the first is
    in flight): every event is stored once and every effect happens once."""
    keys = SendGridKeys.generate()
    nl = make_newsletter(**webhook_settings(keys.public_base64))
    emails = [f"p{i}@example.org" for i in range(40)]
    sent = sent_edition(nl, emails)
    kinds = ["bounce", "spamreport", "unsubscribe", "delivered"]
    batch = [sendgrid_event(e, sent.delivery[e], sent.message_id[e], kinds[i % 4])
             for i, e in enumerate(emails)]
    body = dump(batch)
    statuses: list[int] = []
    with live_site(nl) as site:
        start = threading.Barrier(4)

        def post() -> None:
            start.wait()
            statuses.append(site.post("/webhooks/sendgrid", body, keys.headers(body)).status)

        threads = [threading.Thread(target=post) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert statuses == [200] * 4
    with nl.session() as session:
        assert session.scalar(select(FeedbackEventRow.id).order_by(FeedbackEventRow.id.desc())) is not None
        stored = session.execute(select(FeedbackEventRow.event_key)).scalars().all()
    assert sorted(stored) == sorted(item["sg_event_id"] for item in batch)
    expected = {"bounce": "bounced", "spamreport": "complained", "unsubscribe": "unsubscribed",
                "delivered": "active"}
    for i, email in enumerate(emails[:8]):
        record = show(run_cli, email)
        assert record["subscriber"]["status"] == expected[kinds[i % 4]]
        assert len(record["feedback"]) == 1
