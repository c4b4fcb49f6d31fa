"""Our DATA dot-stuffing must give exactly smtplib's bytes."""

from __future__ import annotations

import re

import pytest

from newsletter.transports.smtp_client import dot_stuff


@pytest.mark.parametrize("data", [
    b"", b".", b"..", b".leading\r\n", b"a\r\n.b\r\n..c\r\n", b"x\r\n.\r\n", b"no dots\r\n",
    b"mid.dle\r\n.\r\n.end", b"\r\n.\r\n.\r\n",
])
def test_dot_stuffing_matches_smtplib(data: bytes) -> None:
    assert dot_stuff(data) == re.sub(rb"(?m)^\.", b"..", data)
