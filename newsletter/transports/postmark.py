"""Postmark: `POST /email/batch`, up to 500 complete messages a call, one result per message.

Postmark takes finished bodies, so each message is filled in here (`fill`) and no grouping by
variant is needed. The batch endpoint answers 200 even when some messages fail; each entry of the
answer (in request order) carries an `ErrorCode` (0 = accepted) documented at
https://postmarkapp.com/developer/api/overview#error-codes.

Postmark sets its own Message-ID (its `MessageID` is what bounce webhooks report, so that is the
provider id kept in the ledger); ours travels as `X-Newsletter-Message-ID`, and the delivery id
as `Metadata`. Postmark has no idempotency key: a message is never re-posted after a 2xx.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import requests

from ..errors import ConfigError
from ..mail.message import Outcome, OutgoingMessage, SendResult
from ..mail.render import RenderedVariant
from .http import HTTPSettings, HTTPTransport, Request, excerpt, fill, recipient_address

INACTIVE_RECIPIENT = 406
TRANSIENT_CODES = frozenset({100, 429})  # maintenance, rate limit exceeded
ACCOUNT_CODES = frozenset({10, 400, 401, 405, 412, 413})
"""Bad token, sender signature missing or unconfirmed, not allowed to send, account pending or
barred: a setup problem, not the recipient's. Messages stay due for after it is fixed."""


def classify(code: int, message: str) -> tuple[Outcome, bool]:
    """(outcome, mailbox gone) for one entry's ErrorCode."""
    if code == 0:
        if "inactive addresses" in message:
            return Outcome.PERMANENT, True
        return Outcome.SENT, False
    if code == INACTIVE_RECIPIENT:
        return Outcome.PERMANENT, True
    if code in TRANSIENT_CODES or code in ACCOUNT_CODES:
        return Outcome.TEMPORARY, False
    return Outcome.PERMANENT, False  # 300 invalid email request, 402/403/409 bad JSON, 411, …


class PostmarkTransport(HTTPTransport):
    name = "postmark"
    default_base_url = "https://api.postmarkapp.com"
    max_per_request = 500
    max_request_bytes = 40 * 1024 * 1024
    """Postmark takes up to 50 MB a batch call; 500 full newsletters can weigh more than that."""

    def __init__(self, settings: HTTPSettings, *, message_stream: str = "broadcast",
                 **options: Any) -> None:
        super().__init__(settings, **options)
        self.message_stream = message_stream

    def authenticate(self, session: requests.Session, api_key: str) -> None:
        session.headers["X-Postmark-Server-Token"] = api_key

    def chunks(self, batch: Sequence[OutgoingMessage]) -> Iterator[list[OutgoingMessage]]:
        """At most 500 messages, and few enough that the JSON stays under the size limit."""
        size_of: dict[str, int] = {}
        for chunk in super().chunks(batch):
            part: list[OutgoingMessage] = []
            weight = 0
            for message in chunk:
                assert message.template is not None
                variant = message.template.variant
                if variant not in size_of:
                    size_of[variant] = _json_size(message.template.rendered)
                if part and weight + size_of[variant] > self.max_request_bytes:
                    yield part
                    part, weight = [], 0
                part.append(message)
                weight += size_of[variant]
            if part:
                yield part

    def build_request(self, chunk: Sequence[OutgoingMessage]) -> Request:
        return Request("/email/batch", json=[self.payload(m) for m in chunk])

    def payload(self, message: OutgoingMessage) -> dict[str, Any]:
        template = message.template
        assert template is not None
        rendered = template.rendered
        headers = {"List-Unsubscribe": message.headers["List-Unsubscribe"],
                   "List-Unsubscribe-Post": message.headers["List-Unsubscribe-Post"],
                   "List-Id": template.list_id,
                   "X-Newsletter-Message-ID": message.headers["Message-ID"]}
        payload: dict[str, Any] = {
            "From": template.sender, "To": recipient_address(message), "Subject": template.subject,
            "HtmlBody": fill(rendered.html, rendered.markers, message.values, escape=True),
            "TextBody": fill(rendered.text, rendered.markers, message.values, escape=False),
            "Headers": [{"Name": k, "Value": v} for k, v in headers.items()],
            "MessageStream": self.message_stream,
            "Metadata": {"delivery_id": str(message.delivery_id)}}
        if template.reply_to:
            payload["ReplyTo"] = template.reply_to
        return payload

    def parse_response(self, chunk: Sequence[OutgoingMessage],
                       response: requests.Response) -> list[SendResult]:
        entries = self.json_body(response)
        if not isinstance(entries, list) or len(entries) != len(chunk):
            return []  # accepted, but which message is which is unknown: uncertain, never resent
        codes = [_code(e) for e in entries]
        if all(code in ACCOUNT_CODES for code in codes):
            raise ConfigError(f"postmark refused every message: {_entry_text(entries[0])}")
        return [self._result(m, e) for m, e in zip(chunk, entries, strict=True)]

    @staticmethod
    def _result(message: OutgoingMessage, entry: Any) -> SendResult:
        code, text = _code(entry), _entry_text(entry)
        outcome, gone = classify(code, text)
        if outcome is Outcome.SENT:
            provider_id = str(entry.get("MessageID") or "") or None
            return SendResult(message.delivery_id, outcome, provider_id=provider_id)
        return SendResult(message.delivery_id, outcome, detail=f"postmark {code}: {text}",
                          mailbox_gone=gone)

    def error_message(self, response: requests.Response) -> str:
        body = self.json_body(response)
        if isinstance(body, dict) and "Message" in body:
            return f"{body.get('ErrorCode', '?')} {excerpt(str(body['Message']))}"
        return super().error_message(response)

    def request_rejected(self, chunk: Sequence[OutgoingMessage],
                         response: requests.Response) -> list[SendResult]:
        """422 for the whole batch: its ErrorCode says whose problem it is."""
        body = self.json_body(response)
        code = _code(body) if isinstance(body, dict) else -1
        detail = f"postmark: HTTP {response.status_code}: {self.error_message(response)}"
        if code in ACCOUNT_CODES:
            raise ConfigError(detail)
        if code in TRANSIENT_CODES:
            return self.all_of(chunk, Outcome.TEMPORARY, detail)
        return self.all_of(chunk, Outcome.PERMANENT, detail)


def _json_size(rendered: RenderedVariant) -> int:
    """A generous estimate of one message's JSON: both bodies, with room for escaping."""
    return (len(rendered.html.encode()) + len(rendered.text.encode())) * 3 // 2 + 4096


def _code(entry: Any) -> int:
    try:
        return int(entry.get("ErrorCode", 0))
    except (AttributeError, TypeError, ValueError):
        return -1


def _entry_text(entry: Any) -> str:
    return excerpt(str(entry.get("Message", ""))) if isinstance(entry, dict) else excerpt(str(entry))
