"""Signed, opaque tokens for links: they carry a subscriber's public uid, never a row id.

Each purpose has its own salt, so an unsubscribe token cannot be replayed as a confirmation.
Keys rotate: the first key signs, every key verifies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from enum import StrEnum

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from newsletter.errors import NewsletterError


class Purpose(StrEnum):
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    CONFIRM = "confirm"
    CLICK = "click"
    """A link in an edition that counts a click: the same for every reader of a variant."""
    BOUNCE = "bounce"
    """The VERP tag of a delivery's Return-Path: a bounce names the delivery it is about."""


class InvalidToken(NewsletterError):
    """The link is damaged, forged, meant for something else, or expired."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        self.expired = expired
        super().__init__(message)


class TokenSigner:
    def __init__(self, secret_keys: Sequence[str]) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is needed")
        signing_order = list(reversed(secret_keys))
        self._serializers = {
            purpose: URLSafeTimedSerializer(signing_order, salt=f"newsletter.{purpose.value}",
                                            signer_kwargs={"digest_method": hashlib.sha256})
            for purpose in Purpose
        }
        # `dumps` builds a new Signer per call; a send signs two links per recipient, so build
        # each purpose's signer once. Same bytes as `dumps` (tested), verified by `loads`.
        self._signers = {purpose: s.make_signer() for purpose, s in self._serializers.items()}

    def sign(self, purpose: Purpose, uid: str) -> str:
        payload = self._serializers[purpose].dump_payload(uid)
        return self._signers[purpose].sign(payload).decode("ascii")

    def verify(self, purpose: Purpose, token: str, max_age_seconds: int | None = None) -> str:
        """The uid the token was made for; InvalidToken otherwise."""
        if len(token) > 500:
            raise InvalidToken("this link is too long to be one of ours")
        try:
            uid = self._serializers[purpose].loads(token, max_age=max_age_seconds)
        except SignatureExpired as err:
            raise InvalidToken("this link has expired", expired=True) from err
        except BadData as err:
            raise InvalidToken("this link is not valid") from err
        if not isinstance(uid, str):
            raise InvalidToken("this link is not valid")
        return uid
