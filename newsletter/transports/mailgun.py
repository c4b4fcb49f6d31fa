"""Mailgun: `POST /v3/{domain}/messages`, one body per variant and up to 1000 `to` a call.

Batch sending with `recipient-variables` makes Mailgun send each `to` its own message, merging
`%recipient.KEY%` on its side. Each placeholder has a raw value (`%recipient.name%`, used in
the text part) and an HTML-escaped one (`%recipient.name_html%`, used in the HTML part). The
per-recipient headers and the `v:delivery_id` custom variable (reported back by webhooks as
user-variables) take their values the same way.

200 `{"id": "<…>", "message": "Queued. Thank you."}` covers every recipient of the call; the id,
without its angle brackets, is what Mailgun's events report as `message-id`. Mailgun has no
idempotency key.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import requests

from ..errors import ConfigError
from ..mail.message import Outcome, OutgoingMessage, SendResult
from .http import HTTPSettings, HTTPTransport, Request, excerpt, fill, recipient_address

PER_RECIPIENT_HEADERS = {  # header sent → (recipient variable, source in OutgoingMessage.headers)
    "List-Unsubscribe": ("list_unsubscribe", "List-Unsubscribe"),
    "X-Newsletter-Message-ID": ("message_id", "Message-ID")}


def html_key(name: str) -> str:
    return f"{name}_html"


class MailgunTransport(HTTPTransport):
    name = "mailgun"
    default_base_url = "https://api.mailgun.net"
    max_per_request = 1000
    one_body_per_request = True

    def __init__(self, settings: HTTPSettings, *, domain: str, **options: Any) -> None:
        if not domain.strip() or "/" in domain:
            raise ConfigError(f"mailgun: {domain!r} is not a sending domain "
                              f"(set NEWSLETTER_MAILGUN_DOMAIN, e.g. mg.example.org)")
        super().__init__(settings, **options)
        self.domain = domain.strip()

    def authenticate(self, session: requests.Session, api_key: str) -> None:
        session.auth = ("api", api_key)

    def build_request(self, chunk: Sequence[OutgoingMessage]) -> Request:
        template = chunk[0].template
        assert template is not None
        rendered, markers = template.rendered, template.rendered.markers
        text_vars = {n: f"%recipient.{n}%" for n in markers}
        html_vars = {n: f"%recipient.{html_key(n)}%" for n in markers}
        form: list[tuple[str, str]] = [("from", template.sender)]
        form.extend(("to", recipient_address(m)) for m in chunk)
        form += [("subject", template.subject),
                 ("text", fill(rendered.text, markers, text_vars, escape=False)),
                 ("html", fill(rendered.html, markers, html_vars, escape=False)),
                 ("recipient-variables", json.dumps({m.recipient: self._variables(m) for m in chunk},
                                                    ensure_ascii=False)),
                 ("h:List-Id", template.list_id),
                 ("h:List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                 ("v:delivery_id", "%recipient.delivery_id%")]
        form.extend((f"h:{header}", f"%recipient.{key}%")
                    for header, (key, _) in PER_RECIPIENT_HEADERS.items())
        if template.reply_to:
            form.append(("h:Reply-To", template.reply_to))
        return Request(f"/v3/{quote(self.domain, safe='')}/messages", form=form)

    @staticmethod
    def _variables(message: OutgoingMessage) -> dict[str, str]:
        assert message.template is not None
        variables: dict[str, str] = {}
        for name in message.template.rendered.markers:
            value = message.values.get(name, "")
            variables[name], variables[html_key(name)] = value, html.escape(value)
        variables.update((key, message.headers[source])
                         for key, source in PER_RECIPIENT_HEADERS.values())
        variables["delivery_id"] = str(message.delivery_id)
        return variables

    def parse_response(self, chunk: Sequence[OutgoingMessage],
                       response: requests.Response) -> list[SendResult]:
        if "Mailgun Magnificent API" in response.text:
            raise ConfigError(f"mailgun: {response.url} is not the messages endpoint; check "
                              f"NEWSLETTER_MAILGUN_DOMAIN and NEWSLETTER_API_BASE_URL")
        body = self.json_body(response)
        message_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(message_id, str) or not message_id:
            return []  # a 200 that is not the documented answer: uncertain, never resent
        return self.all_of(chunk, Outcome.SENT, "", message_id.strip("<>"))

    def error_message(self, response: requests.Response) -> str:
        body = self.json_body(response)
        if isinstance(body, dict) and "message" in body:
            return excerpt(str(body["message"]))
        return super().error_message(response)

    def not_found(self, response: requests.Response) -> ConfigError:
        return ConfigError(f"mailgun: domain {self.domain!r} not found at {self.base_url} "
                           f"({self.error_message(response)}); check NEWSLETTER_MAILGUN_DOMAIN and, "
                           f"for the EU region, NEWSLETTER_API_BASE_URL=https://api.eu.mailgun.net")
