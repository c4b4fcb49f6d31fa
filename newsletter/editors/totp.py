"""TOTP (RFC 6238, pyotp) with a window of one step either side, and no replay: the step of the
last accepted code is stored, and a code for that step or an earlier one is refused. The secret
is kept encrypted (Fernet, keyed from NEWSLETTER_SECRET_KEY; every key of a rotation decrypts).
Recovery codes are one-time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pyotp
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

STEP_SECONDS = 30
WINDOW = 1
RECOVERY_CODES = 10
ISSUER = "Newsletter console"


class SecretBox:
    """Encrypts TOTP secrets at rest with keys derived from the site's secret keys."""

    def __init__(self, secret_keys: Sequence[str]) -> None:
        self._fernet = MultiFernet([Fernet(_derive(key)) for key in secret_keys])

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode("ascii")).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("ascii")
        except InvalidToken as err:
            raise ValueError("the second-factor secret cannot be decrypted with the current "
                             "secret keys; reset it with `newsletter editors reset-2fa`") from err


def _derive(key: str) -> bytes:
    digest = hmac.new(key.encode("utf-8"), b"newsletter.editors.totp", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest)


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str, issuer: str = ISSUER) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def current_code(secret: str, now: float | None = None) -> str:
    return pyotp.TOTP(secret).at(time.time() if now is None else now)


def accepted_step(secret: str, code: str, last_step: int | None,
                  now: float | None = None) -> int | None:
    """The step `code` belongs to, if it is within the window and newer than `last_step`."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    here = int((time.time() if now is None else now) // STEP_SECONDS)
    for step in range(here - WINDOW, here + WINDOW + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


@dataclass(frozen=True)
class RecoveryCodes:
    shown: tuple[str, ...]
    """Shown once to the editor, never stored."""
    hashes: tuple[str, ...]


def new_recovery_codes(count: int = RECOVERY_CODES) -> RecoveryCodes:
    shown = tuple("-".join(secrets.token_hex(2) for _ in range(3)) for _ in range(count))
    return RecoveryCodes(shown, tuple(recovery_hash(code) for code in shown))


def recovery_hash(code: str) -> str:
    normal = code.strip().lower().replace(" ", "")
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()
