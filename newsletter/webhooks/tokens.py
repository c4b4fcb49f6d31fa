"""The Mailgun token store: a token is accepted with one body only, and forgotten once its
timestamp is too old to pass the age check anyway."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from ..context import Newsletter
from ..db import utcnow
from .mailgun import TokenCheck
from .models import WebhookToken

__all__ = ["token_checker"]


def token_checker(nl: Newsletter) -> TokenCheck:
    """A `TokenCheck` over the store: True for a new token or the same token with the same body."""
    keep = timedelta(seconds=2 * nl.config.webhook_max_age_seconds)

    def remember(token: str, body_sha256: str) -> bool:
        now = utcnow()
        with nl.session() as session:
            module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            session.execute(module.insert(WebhookToken)
                            .values(token=token, body_sha256=body_sha256, seen_at=now)
                            .on_conflict_do_nothing(index_elements=["token"]))
            stored = session.scalar(select(WebhookToken.body_sha256).where(WebhookToken.token == token))
            session.execute(delete(WebhookToken).where(WebhookToken.seen_at < now - keep))
            return stored == body_sha256

    return remember
