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
    fast = None if check_deliverability else _by_parts(value)
    if fast is not None:
        return fast
    try:
        return validate_email(value, check_deliverability=check_deliverability).normalized
    except EmailNotValidError as err:
        raise InvalidAddress(str(err)) from err


PROBE_DOMAIN = "[127.0.0.1]"
"""A domain every email-validator accepts, to check a local part on its own: an address literal,
whose check costs a third of a domain name's (IDNA and all) and so a third of the call."""
FAST_PATH_BYTES = 200
"""Below this, neither whole-address length limit (254) can be reached by parts that pass."""


def _by_parts(value: str) -> str | None:
    """What `validate_email(value).normalized` gives, checked as a local part (on a probe
    domain) and a domain (cached: a list has few domains, and its check is most of the cost);
    None when either part fails or the address is long, so the whole-address call gives the
    exact message. A test compares both paths on generated and hostile addresses."""
    local, at, domain = value.rpartition("@")
    if not at:
        return None
    checked = _checked_domain(domain)
    if checked is None:
        return None
    try:
        probe = validate_email(local + "@" + PROBE_DOMAIN, check_deliverability=False,
                               allow_domain_literal=True)
    except EmailNotValidError:
        return None
    unicode_domain, ascii_domain = checked
    ascii_local = probe.ascii_local_part or probe.local_part
    if max(len(probe.local_part.encode()) + 1 + len(unicode_domain.encode()),
           len(ascii_local.encode()) + 1 + len(ascii_domain)) > FAST_PATH_BYTES:
        return None
    return f"{probe.local_part}@{unicode_domain}"


@functools.lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> tuple[str, str] | None:
    """(Unicode form, ASCII form) of a domain email-validator accepts, or None."""
    try:
        checked = validate_email("x@" + domain, check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.domain, checked.ascii_domain


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
