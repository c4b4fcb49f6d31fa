"""SendGrid: `POST /v3/mail/send`, one body per variant and up to 1000 personalizations a call.

SendGrid merges on its side: the body goes once per request with substitution keys where the
markers were, and each personalization carries the recipient's values. Substitutions apply to
every content type alike, but HTML needs escaped values and text raw ones, so each placeholder
gets two keys: `-<marker>-html-` in the HTML part and `-<marker>-text-` in the text part.

202 means every personalization was accepted; `X-Message-Id` is the id SendGrid's event webhooks
report (as the prefix of `sg_message_id`), and `custom_args.delivery_id` comes back with each
event. Any 400 rejects the whole request. SendGrid has no idempotency key.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from email.utils import quote
from typing import Any

import requests

from ..mail.message import Outcome, OutgoingMessage, SendResult
from .http import HTTPTransport, Request, excerpt, fill, recipient_name, split_address


def substitution_keys(markers: Mapping[str, str], part: str) -> dict[str, str]:
    """{placeholder: SendGrid key} for the `html` or `text` part; keys carry the render nonce."""
    return {name: f"-{marker}-{part}-" for name, marker in markers.items()}


def _address(value: str) -> dict[str, str]:
    name, email = split_address(value)
    return {"email": email, "name": name} if name else {"email": email}


class SendGridTransport(HTTPTransport):
    name = "sendgrid"
    default_base_url = "https://api.sendgrid.com"
    max_per_request = 1000
    one_body_per_request = True

    def authenticate(self, session: requests.Session, api_key: str) -> None:
        session.headers["Authorization"] = f"Bearer {api_key}"

    def build_request(self, chunk: Sequence[OutgoingMessage]) -> Request:
        template = chunk[0].template
        assert template is not None
        rendered, markers = template.rendered, template.rendered.markers
        html_keys = {n: k for n, k in substitution_keys(markers, "html").items()
                     if markers[n] in rendered.html}
        text_keys = {n: k for n, k in substitution_keys(markers, "text").items()
                     if markers[n] in rendered.text}
        body: dict[str, Any] = {
            "personalizations": [self._personalization(m, html_keys, text_keys) for m in chunk],
            "from": _address(template.sender), "subject": template.subject,
            "content": [
                {"type": "text/plain", "value": fill(rendered.text, markers, text_keys, escape=False)},
                {"type": "text/html", "value": fill(rendered.html, markers, html_keys, escape=False)}],
            "headers": {"List-Id": template.list_id}}
        if template.reply_to:
            body["reply_to"] = _address(template.reply_to)
        return Request("/v3/mail/send", json=body)

    @staticmethod
    def _personalization(message: OutgoingMessage, html_keys: Mapping[str, str],
                         text_keys: Mapping[str, str]) -> dict[str, Any]:
        to = {"email": message.recipient}
        if name := recipient_name(message):
            # SendGrid mis-splits a personalization's name at "," or ";" unless it is quoted
            # (https://github.com/sendgrid/sendgrid-python/issues/291).
            to["name"] = f'"{quote(name)}"' if any(c in name for c in ",;") else name
        values = message.values
        substitutions = {key: html.escape(values.get(n, "")) for n, key in html_keys.items()}
        substitutions.update((key, values.get(n, "")) for n, key in text_keys.items())
        return {"to": [to], "substitutions": substitutions,
                "headers": {"List-Unsubscribe": message.headers["List-Unsubscribe"],
                            "List-Unsubscribe-Post": message.headers["List-Unsubscribe-Post"],
                            "X-Newsletter-Message-ID": message.headers["Message-ID"]},
                "custom_args": {"delivery_id": str(message.delivery_id)}}

    def parse_response(self, chunk: Sequence[OutgoingMessage],
                       response: requests.Response) -> list[SendResult]:
        return self.all_of(chunk, Outcome.SENT, "", response.headers.get("X-Message-Id"))

    def error_message(self, response: requests.Response) -> str:
        body = self.json_body(response)
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list) and errors:
            return excerpt("; ".join(_error_text(e) for e in errors))
        return super().error_message(response)


def _error_text(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    field = error.get("field")
    return f"{field}: {error.get('message', '')}" if field else str(error.get("message", ""))
