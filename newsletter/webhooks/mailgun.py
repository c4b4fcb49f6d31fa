"""Mailgun: one JSON event per request, `{"signature": {...}, "event-data": {...}}`.

As https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/#securing-webhooks
documents it, the signature is HMAC-SHA256 of `timestamp + token` under the webhook signing key.
It does not cover the event data, so a token is accepted once: `remember` stores it with a hash
of the body, and the same token with another body is refused (the same body again is an exact
replay, answered like the first), once the body is known to be usable, so a refused request
writes nothing. Only the `signature` object is read before it is verified.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ..config import Config
from ..db import utcnow
from ..feedback.events import EventKind, FeedbackEvent, InvalidEvent, Source
from .base import (
    BadPayload,
    Parsed,
    Unauthorized,
    Webhook,
    WebhookRequest,
    delivery_id_from,
    load_json,
    parse_time,
    text_field,
)

__all__ = ["EVENT_TYPES", "MailgunWebhook", "TokenCheck"]

TokenCheck = Callable[[str, str], bool]
"""(token, sha256 of the body) → False if the token was used before with another body."""
EVENT_TYPES = {"accepted": EventKind.IGNORED, "opened": EventKind.IGNORED,
               "clicked": EventKind.IGNORED, "stored": EventKind.IGNORED,
               "delivered": EventKind.DELIVERED, "complained": EventKind.COMPLAINT,
               "unsubscribed": EventKind.UNSUBSCRIBE, "failed": EventKind.BOUNCE_HARD}
"""`failed` is refined by severity and reason in `failure_kind`."""
MAX_TOKEN = 100


def failure_kind(data: Mapping[str, Any]) -> EventKind:
    """temporary → deferred (Mailgun retries); permanent `old` (gave up retrying) → soft bounce;
    permanent `suppress-*` → dropped (Mailgun's own list); other permanent → hard bounce."""
    severity, reason = data.get("severity"), str(data.get("reason") or "")
    if severity == "temporary":
        return EventKind.DEFERRED
    if severity != "permanent":
        return EventKind.UNKNOWN
    if reason.startswith("suppress-"):
        return EventKind.DROPPED
    return EventKind.BOUNCE_SOFT if reason == "old" else EventKind.BOUNCE_HARD


class MailgunWebhook(Webhook):
    name = "mailgun"
    setting = "webhook_mailgun_signing_key"

    def __init__(self, config: Config, *, remember: TokenCheck,
                 clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(config, clock=clock)
        self.remember = remember

    def verify(self, request: WebhookRequest) -> None:
        key = self.configured().encode("utf-8")
        body = load_json(request.body)
        signature = body.get("signature") if isinstance(body, dict) else None
        if not isinstance(signature, dict):
            raise Unauthorized("the signature object is missing")
        timestamp, token, digest = (signature.get(k) for k in ("timestamp", "token", "signature"))
        if not all(isinstance(v, str) and v for v in (timestamp, token, digest)):
            raise Unauthorized("the signature's timestamp, token or signature is missing")
        assert isinstance(timestamp, str) and isinstance(token, str) and isinstance(digest, str)
        if len(token) > MAX_TOKEN or not token.isascii() or not token.isalnum():
            raise Unauthorized("the token is not one Mailgun makes")
        self.check_age(timestamp)
        expected = hmac.new(key, (timestamp + token).encode("ascii"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, digest.lower().encode("ascii", "replace").decode()):
            raise Unauthorized("the signature does not match the timestamp and token")

    def admit(self, request: WebhookRequest) -> None:
        token = load_json(request.body)["signature"]["token"]
        if not self.remember(token, hashlib.sha256(request.body).hexdigest()):
            raise Unauthorized("this token was used before with another body: refused as a replay")

    def parse(self, request: WebhookRequest) -> Parsed:
        body = load_json(request.body)
        data = body.get("event-data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise BadPayload("a Mailgun webhook body has an `event-data` object")
        parsed = Parsed()
        try:
            parsed.events.append(self.event(body["signature"]["token"], data))
        except InvalidEvent as err:
            parsed.problems.append(f"event-data: {err}")
        return parsed

    def event(self, token: str, data: Mapping[str, Any]) -> FeedbackEvent:
        name = str(text_field(data, "event"))
        kind = failure_kind(data) if name == "failed" else EVENT_TYPES.get(name, EventKind.UNKNOWN)
        variables = data.get("user-variables") or {}
        if not isinstance(variables, dict):
            raise InvalidEvent("user-variables", "not an object")
        message = data.get("message") or {}
        headers = message.get("headers") if isinstance(message, dict) else None
        message_id = headers.get("message-id") if isinstance(headers, dict) else None
        if message_id is not None and not isinstance(message_id, str):
            raise InvalidEvent("message-id", "not a string")
        status = data.get("delivery-status")
        status = status if isinstance(status, dict) else {}
        reason = " ".join(str(v) for v in (data.get("reason"), status.get("code"),
                                           status.get("message"), status.get("description")) if v)
        return FeedbackEvent(
            Source.MAILGUN, token, kind, parse_time(data.get("timestamp"), "timestamp"),
            text_field(data, "recipient"), delivery_id_from(variables.get("delivery_id")),
            message_id.strip("<>") if message_id else None, reason, data)
