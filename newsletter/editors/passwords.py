"""Passwords as argon2id hashes (argon2-cffi's RFC 9106 parameters), rehashed on the next good
login when the parameters change; a dummy verify for unknown accounts, so the time an answer
takes does not tell whether the account exists."""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 1024
"""Argon2 takes any length; the cap keeps one request from costing more than it should."""

HASHER = PasswordHasher()


def password_problem(password: str) -> str | None:
    """Why this password cannot be used, or None."""
    if len(password) < MIN_LENGTH:
        return f"the password must have at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"the password must have at most {MAX_LENGTH} characters"
    if password.strip() != password:
        return "the password must not start or end with spaces"
    return None


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return HASHER.check_needs_rehash(stored)


@cache
def _dummy_hash() -> str:
    return HASHER.hash(secrets.token_urlsafe(16))


def dummy_verify(password: str) -> None:
    """The work of one verify, for an address that has no account."""
    verify_password(_dummy_hash(), password)
