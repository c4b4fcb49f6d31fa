"""Email addresses: one normal form for storage and lookups, one hash to suppress after erasure."""

from __future__ import annotations

import functools
import hashlib

import idna
from email_validator import EmailNotValidError, validate_email

from newsletter.text import breaks_line

__all__ = ["MAX_ADDRESS_LENGTH", "InvalidAddress", "address_hash", "address_key",
           "normalise_email", "normalised_hash"]

MAX_ADDRESS_LENGTH = 254  # RFC 5321's limit on a path, less the angle brackets


class InvalidAddress(ValueError):
    """An address that cannot be used; the message is a short reason a person can act on."""


def normalise_email(raw: str, *, check_deliverability: bool = False) -> str:
    """The address as stored: domain lowercased and IDNA-normalised (Unicode form), local part kept.

    CR/LF and other control characters are refused before email-validator sees the text, because
    an address ends up in a header, where a line break would inject another header.
    """
    value = raw.strip()
    if not value:
        raise InvalidAddress("the address is empty")
    if len(value) > MAX_ADDRESS_LENGTH:
        raise InvalidAddress(f"the address is longer than {MAX_ADDRESS_LENGTH} characters")
    if breaks_line(value):
        raise InvalidAddress("the address contains a line break or control character")
    try:
        return validate_email(value, check_deliverability=check_deliverability).normalized
    except EmailNotValidError as err:
        raise InvalidAddress(str(err)) from err


def address_key(normalised: str) -> str:
    """The case-insensitive identity of a normalised address: `Ann@x.org` and `ann@x.org` match.

    Mail servers may treat the local part case-sensitively, so it is kept as given for sending;
    for "is this the same person" questions (duplicates, suppression) case is ignored.
    """
    local, _, domain = normalised.rpartition("@")
    return f"{local.casefold()}@{_domain_key(domain)}"


@functools.lru_cache(maxsize=4096)
def _domain_key(domain: str) -> str:
    """The Unicode form `normalise_email` gives a domain (IDNA 2008, UTS 46), even for one it did
    not normalise: `str.lower()` alone would turn a final `Σ` into `ς` where UTS 46 gives `σ`.
    Cached: a list has few domains, and an import asks for each of them thousands of times."""
    if domain.isascii() and "xn--" not in domain.lower():
        return domain.lower()
    try:
        return idna.decode(idna.encode(domain, uts46=True))
    except UnicodeError:  # idna.IDNAError is one
        return domain.lower()


def address_hash(email: str) -> str:
    """sha256 of the address's key: kept after erasure, so a re-import in any case stays blocked."""
    return normalised_hash(normalise_email(email))


def normalised_hash(normalised: str) -> str:
    """`address_hash` of an address `normalise_email` already gave: a bulk import validates each
    address once, not again for its hash."""
    return hashlib.sha256(address_key(normalised).encode("utf-8")).hexdigest()
