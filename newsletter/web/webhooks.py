"""`POST /webhooks/postmark|sendgrid|mailgun`: the providers' event callbacks.

CSRF-exempt (the provider's credentials or signature stand in for it), no cookie, and a body cap
of `MAX_BODY_BYTES` on these routes only (the site's forms keep their smaller one). The answer
is 200 only after the events' transaction committed; a store that fails answers 503, so the
provider retries later; a request that is not the provider's, or not of its shape, 401 or 400.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from ..context import Newsletter
from ..errors import ConfigError, StoreError
from ..webhooks import PROVIDERS, WebhookRejected, WebhookRequest, absorb, make_webhook
from ..webhooks.base import MAX_BODY_BYTES, Webhook
from .security import csrf_exempt

__all__ = ["webhooks_blueprint"]

log = logging.getLogger(__name__)
webhooks_blueprint = Blueprint("webhooks", __name__)


def _webhook(provider: str) -> Webhook:
    """One per provider and app: the SendGrid key is parsed once, not per request."""
    made: dict[str, Webhook] = current_app.extensions.setdefault("newsletter.webhooks", {})
    if provider not in made:
        nl: Newsletter = current_app.extensions["newsletter"]
        made[provider] = make_webhook(provider, nl)
    return made[provider]


def _answer(status: int, **fields: Any) -> tuple[Response, int]:
    return jsonify(fields), status


@webhooks_blueprint.post("/webhooks/<provider>")
@csrf_exempt
def receive(provider: str) -> tuple[Response, int]:
    if provider not in PROVIDERS:
        return _answer(404, error="no such webhook")
    request.max_content_length = MAX_BODY_BYTES
    body = request.get_data(cache=False)  # over the cap: 413, before anything is read
    nl: Newsletter = current_app.extensions["newsletter"]
    try:
        absorbed = absorb(nl, _webhook(provider), WebhookRequest.of(body, request.headers))
    except WebhookRejected as err:
        log.warning("%s webhook refused (%d): %s", provider, err.status, err)
        response, status = _answer(err.status, error=str(err)[:300])
        if err.status == 401 and provider == "postmark":
            response.headers["WWW-Authenticate"] = 'Basic realm="webhooks"'
        return response, status
    except (SQLAlchemyError, StoreError, ConfigError) as err:
        log.error("%s webhook not recorded, the provider will retry: %s", provider, err)
        response, status = _answer(503, error="not recorded; try again later")
        response.headers["Retry-After"] = "60"
        return response, status
    s = absorbed.summary
    return _answer(200, received=s.received, stored=s.stored, duplicates=s.duplicates,
                   unmatched=s.unmatched, unknown_recipient=s.unknown_recipient,
                   refused=absorbed.problems[:20])
