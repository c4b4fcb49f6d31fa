"""Postmark: one JSON record per request, authenticated by HTTP Basic auth.

Postmark has no signature; the webhook URL carries `https://user:password@…/webhooks/postmark`,
and `webhook_postmark_credentials` lists the pairs accepted (comma-separated, so a new pair can
be added before the old one is removed). Every pair is compared, in constant time.
Record types (https://postmarkapp.com/developer/webhooks/webhooks-overview): Bounce,
SpamComplaint, SubscriptionChange, Delivery, Open, Click. Bounce `Type`s are those of
https://postmarkapp.com/developer/api/bounce-api#bounce-types.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from typing import Any

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

__all__ = ["BOUNCE_TYPES", "PostmarkWebhook"]

BOUNCE_TYPES = {
    "HardBounce": EventKind.BOUNCE_HARD, "BadEmailAddress": EventKind.BOUNCE_HARD,
    "SoftBounce": EventKind.BOUNCE_SOFT, "Transient": EventKind.BOUNCE_SOFT,
    "DnsError": EventKind.BOUNCE_SOFT, "Blocked": EventKind.BOUNCE_SOFT,
    "DMARCPolicy": EventKind.BOUNCE_SOFT,
    "SpamComplaint": EventKind.COMPLAINT, "Unsubscribe": EventKind.UNSUBSCRIBE,
    "ManuallyDeactivated": EventKind.DROPPED,
    "AutoResponder": EventKind.IGNORED, "AddressChange": EventKind.IGNORED,
    "Subscribe": EventKind.IGNORED, "SpamNotification": EventKind.IGNORED,
    "OpenRelayTest": EventKind.IGNORED, "VirusNotification": EventKind.IGNORED,
    "ChallengeVerification": EventKind.IGNORED, "Unconfirmed": EventKind.IGNORED,
    "SMTPApiError": EventKind.IGNORED, "InboundError": EventKind.IGNORED,
    "TemplateRenderingFailed": EventKind.IGNORED, "Unknown": EventKind.UNKNOWN,
}
SUPPRESSION_REASONS = {"HardBounce": EventKind.BOUNCE_HARD, "SpamComplaint": EventKind.COMPLAINT,
                       "ManualSuppression": EventKind.UNSUBSCRIBE}
MAX_CREDENTIAL = 500


class PostmarkWebhook(Webhook):
    name = "postmark"
    setting = "webhook_postmark_credentials"

    def verify(self, request: WebhookRequest) -> None:
        pairs = [p.strip().encode("utf-8") for p in self.configured().split(",") if p.strip()]
        given = _basic_credentials(request.header("Authorization"))
        # Compare with every pair, whatever the first result: the time says nothing about which.
        matched = False
        for pair in pairs:
            matched |= hmac.compare_digest(pair, given)
        if not matched:
            raise Unauthorized("wrong Basic credentials")

    def parse(self, request: WebhookRequest) -> Parsed:
        record = load_json(request.body)
        if not isinstance(record, dict):
            raise BadPayload("a Postmark webhook body is one JSON object")
        parsed = Parsed()
        try:
            parsed.events.append(self.event(record))
        except InvalidEvent as err:
            parsed.problems.append(f"record: {err}")
        return parsed

    def event(self, record: Mapping[str, Any]) -> FeedbackEvent:
        record_type = record.get("RecordType")
        metadata = record.get("Metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidEvent("Metadata", "not an object")
        delivery_id = delivery_id_from((metadata or {}).get("delivery_id"))
        message_id = text_field(record, "MessageID", required=False)
        if record_type in ("Bounce", "SpamComplaint"):
            kind = BOUNCE_TYPES.get(str(record.get("Type")), EventKind.UNKNOWN)
            if record_type == "SpamComplaint":
                kind = EventKind.COMPLAINT
            key = f"bounce:{text_field(record, 'ID')}"
            address = text_field(record, "Email")
            when = parse_time(record.get("BouncedAt"), "BouncedAt")
            reason = " ".join(str(record.get(k) or "") for k in ("Type", "Description", "Details"))
        elif record_type == "SubscriptionChange":
            address = text_field(record, "Recipient")
            when = parse_time(record.get("ChangedAt"), "ChangedAt")
            suppress = record.get("SuppressSending")
            if not isinstance(suppress, bool):
                raise InvalidEvent("SuppressSending", "not true or false")
            why = str(record.get("SuppressionReason") or "")
            kind = SUPPRESSION_REASONS.get(why, EventKind.UNKNOWN) if suppress else EventKind.IGNORED
            key = f"subscription:{message_id}:{address}:{record.get('ChangedAt')}:{suppress}"
            reason = f"SubscriptionChange {why or 'reactivated'} ({record.get('Origin') or '?'})"
        elif record_type == "Delivery":
            address = text_field(record, "Recipient")
            when = parse_time(record.get("DeliveredAt"), "DeliveredAt")
            kind, key = EventKind.DELIVERED, f"delivery:{message_id}:{address}"
            reason = str(record.get("Details") or "")
        elif record_type in ("Open", "Click"):
            address = text_field(record, "Recipient", required=False)
            kind, key, reason = EventKind.IGNORED, f"{record_type}:{message_id}", ""
            when = self.clock()
        else:
            raise InvalidEvent("RecordType", f"unknown record type {str(record_type)[:40]!r}")
        return FeedbackEvent(Source.POSTMARK, key[:200], kind, when, address, delivery_id,
                             message_id, reason, record)


def _basic_credentials(header: str) -> bytes:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded or len(encoded) > MAX_CREDENTIAL:
        raise Unauthorized("Basic credentials are missing")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("the Basic credentials are not base64") from None
    if b":" not in decoded:
        raise Unauthorized("the Basic credentials are not user:password")
    return decoded
