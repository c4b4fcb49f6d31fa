"""SendGrid's signed Event Webhook: a JSON array of events, signed with ECDSA (P-256, SHA-256).

As https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
documents it: the signed bytes are the `X-Twilio-Email-Event-Webhook-Timestamp` header followed by
the raw body; the signature header `X-Twilio-Email-Event-Webhook-Signature` is the base64 DER
signature; the verification key is the base64 DER public key SendGrid shows. The timestamp must
also be within `webhook_max_age_seconds`, so a captured request cannot be replayed later.
Custom args (our `delivery_id`) come back as top-level fields of each event.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from ..errors import ConfigError
from ..feedback.events import EventKind, FeedbackEvent, InvalidEvent, Source
from .base import (
    MAX_EVENTS,
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

__all__ = ["EVENT_TYPES", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "SendGridWebhook"]

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
EVENT_TYPES = {
    "processed": EventKind.IGNORED, "open": EventKind.IGNORED, "click": EventKind.IGNORED,
    "group_resubscribe": EventKind.IGNORED,
    "delivered": EventKind.DELIVERED, "deferred": EventKind.DEFERRED,
    "dropped": EventKind.DROPPED, "spamreport": EventKind.COMPLAINT,
    "unsubscribe": EventKind.UNSUBSCRIBE, "group_unsubscribe": EventKind.UNSUBSCRIBE,
    "bounce": EventKind.BOUNCE_HARD,
}
"""`bounce` with `type: blocked` is a soft bounce (the receiving server refused for now)."""
MAX_SIGNATURE = 200


class SendGridWebhook(Webhook):
    name = "sendgrid"
    setting = "webhook_sendgrid_public_key"

    @cached_property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        raw = self.configured()
        try:
            key = load_der_public_key(base64.b64decode(raw, validate=True))
        except (binascii.Error, ValueError) as err:
            raise ConfigError("webhook_sendgrid_public_key: not a base64 DER public key") from err
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise ConfigError("webhook_sendgrid_public_key: not an ECDSA P-256 key")
        return key

    def verify(self, request: WebhookRequest) -> None:
        key = self.public_key
        timestamp = request.header(TIMESTAMP_HEADER)
        signature = request.header(SIGNATURE_HEADER)
        if not signature or len(signature) > MAX_SIGNATURE:
            raise Unauthorized("the signature header is missing or too long")
        try:
            der = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise Unauthorized("the signature is not base64") from None
        self.check_age(timestamp)
        try:
            key.verify(der, timestamp.encode("ascii") + request.body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            raise Unauthorized("the signature does not match the body and timestamp") from None

    def parse(self, request: WebhookRequest) -> Parsed:
        items = load_json(request.body)
        if not isinstance(items, list):
            raise BadPayload("a SendGrid webhook body is a JSON array of events")
        if len(items) > MAX_EVENTS:
            raise BadPayload(f"more than {MAX_EVENTS} events in one request")
        parsed = Parsed()
        for position, item in enumerate(items):
            try:
                if not isinstance(item, dict):
                    raise InvalidEvent("event", "not an object")
                parsed.events.append(self.event(item))
            except InvalidEvent as err:
                parsed.problems.append(f"event {position}: {err}")
        return parsed

    def event(self, item: Mapping[str, Any]) -> FeedbackEvent:
        name = text_field(item, "event")
        kind = EVENT_TYPES.get(str(name), EventKind.UNKNOWN)
        if name == "bounce" and item.get("type") == "blocked":
            kind = EventKind.BOUNCE_SOFT
        message_id = text_field(item, "sg_message_id", required=False)
        reason = " ".join(str(item.get(k) or "") for k in ("status", "reason", "response")).strip()
        return FeedbackEvent(
            Source.SENDGRID, str(text_field(item, "sg_event_id")), kind,
            parse_time(item.get("timestamp"), "timestamp"), text_field(item, "email"),
            delivery_id_from(item.get("delivery_id")),
            message_id.split(".", 1)[0] if message_id else None, reason, item)
