"""DKIM signatures (RFC 6376) with dkimpy, for transports that hand over whole MIME messages.

The key is read and tried once, when the transport is built, so a bad key is a ConfigError before
anything is sent; after that, signing is one call per message.
"""

from __future__ import annotations

from pathlib import Path

import idna

from ..errors import ConfigError

SIGNED_HEADERS: tuple[bytes, ...] = (
    b"From", b"To", b"Subject", b"Date", b"Message-ID", b"List-Unsubscribe",
    b"List-Unsubscribe-Post", b"MIME-Version", b"Content-Type")

_PROBE = b"From: probe@example.org\r\nSubject: probe\r\n\r\nprobe\r\n"


class DKIMSigner:
    """Signs with relaxed/relaxed canonicalisation, which survives the usual header refolding."""

    def __init__(self, selector: str, domain: str, private_key_path: str) -> None:
        try:
            import dkim
        except ImportError as err:
            raise ConfigError("DKIM signing needs the dkimpy package: pip install dkimpy") from err
        self._dkim = dkim
        try:  # IDNA 2008 (UTS 46), as for addresses: `faß` is xn--fa-hia, not fass
            self.domain = domain.encode("ascii") if domain.isascii() else idna.encode(domain, uts46=True)
        except idna.IDNAError as err:
            raise ConfigError(f"dkim_domain {domain!r} is not a valid domain name: {err}") from err
        self.selector = selector.encode("ascii")
        try:
            self._key = Path(private_key_path).read_bytes()
        except OSError as err:
            raise ConfigError(f"DKIM private key {private_key_path}: {err.strerror}") from err
        try:
            self.sign(_PROBE)
        except dkim.DKIMException as err:
            raise ConfigError(f"DKIM private key {private_key_path} cannot sign: {err}") from err

    def sign(self, message: bytes) -> bytes:
        """The message with its DKIM-Signature header in front."""
        signature: bytes = self._dkim.sign(
            message, self.selector, self.domain, self._key,
            canonicalize=(b"relaxed", b"relaxed"), include_headers=list(SIGNED_HEADERS),
            linesep=b"\r\n")
        return signature + message


def make_signer(selector: str | None, domain: str | None,
                private_key_path: str | None) -> DKIMSigner | None:
    """A signer when all three settings are given, None when none is; anything else is an error."""
    given = [v for v in (selector, domain, private_key_path) if v]
    if not given:
        return None
    if len(given) != 3:
        raise ConfigError("DKIM signing needs all of dkim_selector, dkim_domain and "
                          "dkim_private_key_path (or none of them)")
    assert selector and domain and private_key_path
    return DKIMSigner(selector, domain, private_key_path)
