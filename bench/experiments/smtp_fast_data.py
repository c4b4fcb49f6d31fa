"""What-if: smtplib without its per-message regex and address parser.

`smtplib.SMTP.data` dot-stuffs every message with `re.sub(rb'(?m)^\\.', b'..', msg)`, ~150-200 µs
for a 30 KB message, holding the GIL; `mail()` and `rcpt()` run `email.utils.parseaddr` on each
address. Here `_quote_periods` becomes `bytes.replace` (same result) and `quoteaddr` short-cuts
plain addresses. A real fix belongs in newsletter/transports/smtp.py (send MAIL/RCPT/DATA itself,
or dot-stuff once per variant in personalise.compile_template).
"""

from __future__ import annotations

import re
import smtplib

_PLAIN = re.compile(r'[^\s<>"(),;:\\\[\]@]+@[^\s<>"(),;:\\\[\]@]+\Z')
_original_quoteaddr = smtplib.quoteaddr


def quote_periods(data: bytes) -> bytes:
    """Same bytes as smtplib's `re.sub(br'(?m)^\\.', b'..', data)`."""
    if data[:1] == b".":
        data = b"." + data
    return data.replace(b"\n.", b"\n..")


def quoteaddr(address: str) -> str:
    if isinstance(address, str) and _PLAIN.match(address):
        return f"<{address}>"
    return _original_quoteaddr(address)


def apply() -> None:
    smtplib._quote_periods = quote_periods  # type: ignore[attr-defined]
    smtplib.quoteaddr = quoteaddr
