"""VERP Return-Paths: `bounce+TAG@domain`, where TAG names one delivery and is signed.

A bounce comes back to the envelope sender, so the address it is sent to tells which delivery
failed without trusting anything the bouncing server wrote. Mailbox providers and MTAs lowercase
local parts, so the tag is base32 in lower case and read case-insensitively: the delivery id's
bytes followed by an 80-bit HMAC-SHA256, its key derived from the link-signing keys as
`newsletter.tokens` derives a purpose's (salt `newsletter.<purpose>`, the caller passing
`Purpose.BOUNCE`: this module sits beside tokens, below config). The tag is at most 29
characters.

Pure: keys and addresses in, strings out. A forged, garbled or foreign tag reads as None.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence

from itsdangerous import Signer

__all__ = ["MAX_TAG", "BadBounceAddress", "Verp", "check_bounce_address"]

MAC_BYTES = 10
MAX_ID_BYTES = 8
MAX_TAG = -(-(MAX_ID_BYTES + MAC_BYTES) * 8 // 5)
"""29: base32 characters of an 8-byte id and the MAC, without padding."""
MAX_LOCAL_PART = 64
"""RFC 5321 4.5.3.1.1: octets in a local part."""
_LOCAL = re.compile(r"[a-z0-9!#$%&'*/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*/=?^_`{|}~-]+)*")
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TAG = re.compile(f"[a-z2-7]{{{-(-(1 + MAC_BYTES) * 8 // 5)},{MAX_TAG}}}")


class BadBounceAddress(ValueError):
    """The bounce address cannot carry a VERP tag (the message says why)."""


def check_bounce_address(address: str) -> tuple[str, str]:
    """(local part, domain) of `bounce@domain`, lowercased; BadBounceAddress when it cannot be the
    base of `local+TAG@domain`: not ASCII, no domain, a `+` already, or too long for the tag."""
    local, at, domain = address.strip().lower().rpartition("@")
    if not at or not local or not domain:
        raise BadBounceAddress(f"{address!r} is not an address like bounce@example.org")
    if "+" in local:
        raise BadBounceAddress(f"{address!r}: the part before the @ must not contain '+': the tag "
                               "is added after one")
    if not _LOCAL.fullmatch(local):
        raise BadBounceAddress(f"{address!r}: the part before the @ must be plain ASCII letters, "
                               "digits and dots")
    if not _DOMAIN.fullmatch(domain) or len(domain) > 253:
        raise BadBounceAddress(f"{address!r}: {domain!r} is not an ASCII domain name")
    if len(local) + 1 + MAX_TAG > MAX_LOCAL_PART:
        raise BadBounceAddress(f"{address!r}: the part before the @ may have at most "
                               f"{MAX_LOCAL_PART - 1 - MAX_TAG} characters, so that it and the "
                               f"tag fit the {MAX_LOCAL_PART} octets SMTP allows")
    return local, domain


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


class Verp:
    """Return-Paths for one bounce address and the link-signing keys (newest first: the first
    signs, every key verifies, so a rotated key still reads the bounces of earlier sends)."""

    def __init__(self, bounce_address: str, secret_keys: Sequence[str], purpose: str) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is needed")
        self.local, self.domain = check_bounce_address(bounce_address)
        salt = f"newsletter.{purpose}"
        keys = [Signer(key, salt=salt, digest_method=hashlib.sha256).derive_key()
                for key in secret_keys]
        self._macs = [hmac.new(key, digestmod=hashlib.sha256) for key in keys]
        self._prefix = f"{self.local}+"
        self._suffix = f"@{self.domain}"

    def _mac(self, which: int, data: bytes) -> bytes:
        mac = self._macs[which].copy()
        mac.update(data)
        return mac.digest()[:MAC_BYTES]

    def tag(self, delivery_id: int) -> str:
        """The tag of one delivery: a handful of microseconds, once per recipient."""
        if not 0 < delivery_id < 2 ** (8 * MAX_ID_BYTES - 1):
            raise ValueError(f"a delivery id must be a positive 63-bit integer, not {delivery_id}")
        data = delivery_id.to_bytes((delivery_id.bit_length() + 7) // 8, "big")
        return _b32(data + self._mac(0, data))

    def return_path(self, delivery_id: int) -> str:
        """`bounce+TAG@domain`, the MAIL FROM of one delivery; the bare bounce address for a
        message outside the ledger (a preview's id 0), whose bounce has no delivery to name."""
        if delivery_id <= 0:
            return f"{self.local}{self._suffix}"
        return f"{self._prefix}{self.tag(delivery_id)}{self._suffix}"

    def delivery_of_tag(self, tag: str) -> int | None:
        """The delivery id a tag was made for; None when it is garbled, forged or too long."""
        tag = tag.strip().lower()
        if not _TAG.fullmatch(tag):
            return None
        try:
            data = base64.b32decode(tag.upper() + "=" * (-len(tag) % 8))
        except (binascii.Error, ValueError):
            return None
        if _b32(data) != tag:  # non-canonical trailing bits: not one we wrote
            return None
        body, mac = data[:-MAC_BYTES], data[-MAC_BYTES:]
        if not body or body[0] == 0 or len(body) > MAX_ID_BYTES:
            return None
        if not any(hmac.compare_digest(mac, self._mac(i, body)) for i in range(len(self._macs))):
            return None
        return int.from_bytes(body, "big")

    def _tag_part(self, address: str) -> str | None:
        address = address.strip().strip("<>").strip().lower()
        local, at, domain = address.rpartition("@")
        if not at or domain != self.domain or not local.startswith(self._prefix):
            return None
        return local[len(self._prefix):]

    def is_tagged(self, address: str) -> bool:
        """Whether `address` is `bounce+something@domain`, whether or not the tag verifies."""
        return self._tag_part(address) is not None

    def delivery_of(self, address: str) -> int | None:
        """The delivery id of `bounce+TAG@domain` (any case, with or without <>); None for any
        other address, a foreign domain, or a tag that does not verify."""
        tag = self._tag_part(address)
        return None if tag is None else self.delivery_of_tag(tag)
