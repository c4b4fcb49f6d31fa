"""Our DATA dot-stuffing must give exactly smtplib's bytes; envelope commands cannot be injected."""

from __future__ import annotations

import re

import pytest

from newsletter.transports.smtp_client import UnsendableAddress, dot_stuff, envelope_command


@pytest.mark.parametrize("data", [
    b"", b".", b"..", b".leading\r\n", b"a\r\n.b\r\n..c\r\n", b"x\r\n.\r\n", b"no dots\r\n",
    b"mid.dle\r\n.\r\n.end", b"\r\n.\r\n.\r\n",
])
def test_dot_stuffing_matches_smtplib(data: bytes) -> None:
    assert dot_stuff(data) == re.sub(rb"(?m)^\.", b"..", data)


def test_envelope_commands_are_exact_bytes() -> None:
    assert envelope_command("MAIL FROM", "bounces+7@pprnet.example", ["SIZE=120", "SMTPUTF8"],
                            True) == b"MAIL FROM:<bounces+7@pprnet.example> SIZE=120 SMTPUTF8\r\n"
    assert envelope_command("MAIL FROM", "", [], False) == b"MAIL FROM:<>\r\n"
    assert envelope_command("RCPT TO", "zoë@exämple.org", [], True) == \
        "RCPT TO:<zoë@exämple.org>\r\n".encode()


@pytest.mark.parametrize("address", ["a@b.example\r\nDATA", "a b@c.example", "a@b.example>",
                                     "<a@b.example", "a@b.example\t", "zoë@example.org"])
def test_envelope_commands_refuse_what_could_inject(address: str) -> None:
    with pytest.raises(UnsendableAddress):
        envelope_command("RCPT TO", address, [], False)
