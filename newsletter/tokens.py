"""Signed, opaque tokens for links: they carry a subscriber's public uid, never a row id.

Each purpose has its own salt, so an unsubscribe token cannot be replayed as a confirmation.
Keys rotate: the first key signs, every key verifies.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from itsdangerous import BadData, Serializer, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, int_to_bytes

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


class _KeyedTimestampSigner(TimestampSigner):
    """itsdangerous's timestamp signer, deriving its signing key once instead of on every
    signature (an HMAC of its own): a send signs two links per recipient. Verifying with an
    older key derives that one as before.

    `sign` makes the same bytes as the library's (tested), in one HMAC call and with the
    timestamp (still from `get_timestamp`, the library's hook) encoded once a second rather
    than once a link."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._signing_key = super().derive_key()
        self._sep = self.sep.encode("ascii") if isinstance(self.sep, str) else self.sep
        self._stamp: tuple[int, bytes] = (-1, b"")

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        if secret_key is not None:
            return super().derive_key(secret_key)
        return self._signing_key

    def sign(self, value: str | bytes) -> bytes:
        if isinstance(value, str):
            value = value.encode("utf-8")
        second, stamp = self._stamp
        if second != (now := self.get_timestamp()):
            stamp = self._sep + base64_encode(int_to_bytes(now))
            self._stamp = (now, stamp)
        value += stamp
        signature = hmac.digest(self._signing_key, value, self.digest_method)
        return value + self._sep + base64_encode(signature)


class TokenSigner:
    def __init__(self, secret_keys: Sequence[str]) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is needed")
        signing_order = list(reversed(secret_keys))
        self._serializers = {
            purpose: URLSafeTimedSerializer(signing_order, salt=f"newsletter.{purpose.value}",
                                            signer=_KeyedTimestampSigner,
                                            signer_kwargs={"digest_method": hashlib.sha256})
            for purpose in Purpose
        }
        # `dumps` builds a new Signer per call; a send signs two links per recipient, so build
        # each purpose's signer once. Same bytes as `dumps` (tested), verified by `loads`.
        self._signers = {purpose: s.make_signer() for purpose, s in self._serializers.items()}
        self._last_payload: tuple[str | None, bytes] = (None, b"")

    def sign(self, purpose: Purpose, uid: str) -> str:
        return self._signers[purpose].sign(self._payload(uid)).decode("ascii")

    def _payload(self, uid: str) -> bytes:
        """The serialized uid, the same for every purpose: a recipient's links are signed one
        after the other, so the last one is kept (one tuple, safe across threads).

        The URL-safe payload, without the library's attempt to zlib it first (a compressor set
        up per link, for a random uid that never shrinks): the bytes `dumps` makes for any uid
        that does not compress, and `loads` reads both forms."""
        last_uid, payload = self._last_payload
        if last_uid != uid:
            serializer = self._serializers[Purpose.UNSUBSCRIBE]
            payload = base64_encode(Serializer.dump_payload(serializer, uid))
            self._last_payload = (uid, payload)
        return payload

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
