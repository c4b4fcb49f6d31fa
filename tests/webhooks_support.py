"""For the webhook tests: the app under a real threaded HTTP server on loopback, an edition whose
deliveries went out through a provider, and the three providers' documented payloads, signed
exactly as each provider signs them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from newsletter.content.models import Edition
from newsletter.context import Newsletter
from newsletter.sending.models import Delivery, DeliveryStatus
from subscribers.models import ConsentMethod, Subscriber, SubscriberStatus
from subscribers.store import add_subscriber

from .builders import load_month
from .live_site import Answer, LiveSite, live_site  # noqa: F401  (the webhook tests import them from here)

POSTMARK_USER, POSTMARK_PASSWORD = "postmark-hook", "s3cret-Pair-1"
POSTMARK_CREDENTIALS = f"old-hook:retired-pair,{POSTMARK_USER}:{POSTMARK_PASSWORD}"
MAILGUN_KEY = "key-" + "9" * 32


def webhook_settings(sendgrid_key: str = "") -> dict[str, object]:
    return {"webhook_postmark_credentials": POSTMARK_CREDENTIALS,
            "webhook_sendgrid_public_key": sendgrid_key,
            "webhook_mailgun_signing_key": MAILGUN_KEY}


@dataclass(frozen=True)
class Sent:
    """An edition sent through a provider: who got which delivery, under which message id."""

    edition_id: int
    month: str
    delivery: dict[str, int]
    message_id: dict[str, str]


def sent_edition(nl: Newsletter, emails: list[str], *, month: str = "2015-01") -> Sent:
    """The sample month, `emails` subscribed and each with a sent delivery (as a provider
    transport leaves it: status sent, the provider's message id kept)."""
    load_month(nl, audience=(), month=month)
    with nl.session() as session:
        edition_id = session.scalar(select(Edition.id).where(Edition.month == month))
        assert edition_id is not None
        delivery, message_id = {}, {}
        for email in emails:
            subscriber = session.scalar(select(Subscriber).where(Subscriber.email == email))
            if subscriber is None:
                add_subscriber(session, email, name="", topics=None, method=ConsentMethod.ADMIN,
                               source="test")
                subscriber = session.scalar(select(Subscriber).where(Subscriber.email == email))
                assert subscriber is not None
                subscriber.status = SubscriberStatus.ACTIVE
            row = Delivery(edition_id=edition_id, subscriber_id=subscriber.id, variant="1,2,3",
                           status=DeliveryStatus.SENT, attempts=1,
                           provider_message_id=secrets.token_hex(8),
                           sent_at=datetime.now(UTC))
            session.add(row)
            session.flush()
            delivery[email], message_id[email] = row.id, str(row.provider_message_id)
    return Sent(edition_id, month, delivery, message_id)


def show(run_cli: Any, email: str) -> dict[str, Any]:
    """`newsletter subscribers show EMAIL --json`, parsed."""
    document: dict[str, Any] = json.loads(run_cli("subscribers", "show", email, "--json").output)
    return document


def status_of(run_cli: Any, email: str) -> str:
    return str(show(run_cli, email)["subscriber"]["status"])


def feedback_kinds(run_cli: Any, email: str) -> list[str]:
    return [e["kind"] for e in show(run_cli, email)["feedback"]]


# -- Postmark: https://postmarkapp.com/developer/webhooks/bounce-webhook and its siblings --------

def postmark_auth(user: str = POSTMARK_USER, password: str = POSTMARK_PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def postmark_bounce(email: str, delivery_id: int | str | None, message_id: str, *,
                    type_: str = "HardBounce", record_type: str = "Bounce",
                    bounce_id: int | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "RecordType": record_type, "MessageStream": "broadcast",
        "ID": bounce_id if bounce_id is not None else secrets.randbelow(10**10),
        "Type": type_, "TypeCode": 1, "Name": "Hard bounce", "Tag": "",
        "MessageID": message_id, "ServerID": 23, "Description": "The server was unable to "
        "deliver your message (ex: unknown user, mailbox not found).",
        "Details": f"smtp;550 5.1.1 The email account that you tried to reach does not exist: {email}",
        "Email": email, "From": "digest@pprnet.example", "BouncedAt": "2019-11-05T16:33:54.9070259Z",
        "DumpAvailable": True, "Inactive": True, "CanActivate": True, "Subject": "January 2015",
        "Content": "", "Metadata": {}}
    if delivery_id is not None:
        record["Metadata"] = {"delivery_id": str(delivery_id)}
    return record


def postmark_subscription_change(email: str, delivery_id: int, message_id: str, *,
                                 suppress: bool = True, reason: str | None = "ManualSuppression",
                                 origin: str = "Recipient") -> dict[str, Any]:
    return {"RecordType": "SubscriptionChange", "MessageID": message_id, "ServerID": 23,
            "MessageStream": "broadcast", "ChangedAt": "2020-02-01T10:53:34.416071Z",
            "Recipient": email, "Origin": origin, "SuppressSending": suppress,
            "SuppressionReason": reason, "Tag": "", "Metadata": {"delivery_id": str(delivery_id)}}


def postmark_delivery(email: str, delivery_id: int, message_id: str,
                      at: str = "2014-08-01T13:28:10.2735393-04:00") -> dict[str, Any]:
    return {"RecordType": "Delivery", "ServerID": 23, "MessageStream": "broadcast",
            "MessageID": message_id, "Recipient": email, "Tag": "", "DeliveredAt": at,
            "Details": "Test delivery webhook details", "Metadata": {"delivery_id": str(delivery_id)}}


def dump(document: Any) -> bytes:
    return json.dumps(document).encode()


# -- SendGrid: the signed Event Webhook ----------------------------------------------------------

@dataclass(frozen=True)
class SendGridKeys:
    private: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> SendGridKeys:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_base64(self) -> str:
        """The verification key as SendGrid's settings page shows it: base64 of the DER key."""
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: str | None = None) -> dict[str, str]:
        """Signed as SendGrid documents: ECDSA P-256 / SHA-256 over timestamp + raw body."""
        timestamp = timestamp if timestamp is not None else str(int(time.time()))
        signature = self.private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": timestamp}


def sendgrid_event(email: str, delivery_id: int | str | None, message_id: str, event: str,
                   **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "email": email, "timestamp": int(time.time()) - 60, "event": event,
        "sg_event_id": secrets.token_urlsafe(16),
        "sg_message_id": f"{message_id}.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
        "smtp-id": f"<{message_id}@ismtpd0001p1lon1.sendgrid.net>", "category": ["newsletter"]}
    if delivery_id is not None:
        item["delivery_id"] = str(delivery_id)
    if event == "bounce":
        item.update({"reason": "550 5.1.1 The email account that you tried to reach does not "
                     "exist", "status": "5.1.1", "type": "bounce",
                     "bounce_classification": "Invalid Address"})
    if event == "dropped":
        item.update({"reason": "Bounced Address", "status": "5.0.0"})
    if event == "deferred":
        item.update({"response": "400 try again later", "attempt": "5"})
    item.update(extra)
    return item


# -- Mailgun: webhooks with the signature object -------------------------------------------------

def mailgun_body(email: str, delivery_id: int | str | None, message_id: str, event: str, *,
                 token: str | None = None, timestamp: str | None = None, key: str = MAILGUN_KEY,
                 **extra: Any) -> dict[str, Any]:
    timestamp = timestamp if timestamp is not None else str(int(time.time()))
    token = token if token is not None else secrets.token_hex(25)
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    data: dict[str, Any] = {
        "event": event, "id": secrets.token_urlsafe(16), "timestamp": time.time() - 30,
        "recipient": email, "recipient-domain": email.rpartition("@")[2], "tags": [],
        "log-level": "info", "envelope": {"sender": "bounce@mg.pprnet.example"},
        "message": {"headers": {"message-id": message_id, "to": email, "subject": "January"}},
        "user-variables": {} if delivery_id is None else {"delivery_id": str(delivery_id)}}
    if event == "failed":
        data.update({"severity": "permanent", "reason": "bounce", "log-level": "error",
                     "delivery-status": {"code": 550, "message": "5.1.1 No such user here",
                                         "description": "", "attempt-no": 1}})
    data.update(extra)
    return {"signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": data}
