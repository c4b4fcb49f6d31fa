"""Provider webhooks, one module per provider as in `transports/`: each verifies a request and
parses it into `newsletter.feedback` events; `absorb` records them and tells the editor of any
alert they raise."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..context import Newsletter
from ..feedback.record import RecordSummary, record_events
from ..notify.notifier import Notifier
from .base import BadPayload, Unauthorized, Webhook, WebhookRejected, WebhookRequest
from .mailgun import MailgunWebhook
from .postmark import PostmarkWebhook
from .sendgrid import SendGridWebhook
from .tokens import token_checker

__all__ = ["PROVIDERS", "Absorbed", "BadPayload", "Unauthorized", "WebhookRejected",
           "WebhookRequest", "absorb", "make_webhook"]

log = logging.getLogger(__name__)
PROVIDERS = ("postmark", "sendgrid", "mailgun")


def make_webhook(provider: str, nl: Newsletter) -> Webhook:
    if provider == "postmark":
        return PostmarkWebhook(nl.config)
    if provider == "sendgrid":
        return SendGridWebhook(nl.config)
    if provider == "mailgun":
        return MailgunWebhook(nl.config, remember=token_checker(nl))
    raise KeyError(provider)


@dataclass(frozen=True)
class Absorbed:
    summary: RecordSummary
    problems: list[str]


def absorb(nl: Newsletter, webhook: Webhook, request: WebhookRequest,
           notifier: Notifier | None = None) -> Absorbed:
    """Verify, parse, record (one transaction), then tell the editor of new alerts.
    WebhookRejected before anything is written; store errors propagate (the caller answers 503)."""
    parsed = webhook.events(request)
    for problem in parsed.problems:
        log.warning("%s webhook: event refused: %s", webhook.name, problem)
    summary = record_events(nl, parsed.events, raise_alerts_for_editor=True)
    if summary.alerts:
        notifier = notifier or Notifier(nl.config, store=nl)
        for alert in summary.alerts:
            notifier.note(alert.subject, alert.body, level=logging.WARNING)
    return Absorbed(summary, parsed.problems)
