"""How a recipient is written: the `To` header (RFC 5322, RFC 6532 for a non-ASCII local part,
RFC 2047 for a non-ASCII name), the envelope and the lookup keys, all under IDNA 2008."""

from __future__ import annotations

import shutil
import subprocess
from email import message_from_string, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsletter.catcher import SMTPCatcher
from newsletter.context import Newsletter
from newsletter.errors import ComposeError, DeliveryError
from newsletter.mail.compose import branding_for
from newsletter.mail.message import OutgoingMessage
from newsletter.mail.personalise import envelope_address, format_recipient
from newsletter.text import single_line
from newsletter.transports.http import recipient_address
from subscribers.addresses import address_hash, address_key, normalise_email
from subscribers.mailer import Mail, Mailer, MailKind


def parsed_to(value: str) -> tuple[str, str]:
    """(display name, address) as a reader sees `To: value`, with `policy.default`.

    Python's address parser keeps the whitespace between adjacent encoded-words, which RFC 2047
    (6.2) says to drop, so a name made of several is decoded with `email.header`, which follows
    the RFC.
    """
    message = message_from_string(f"To: {value}\r\nSubject: x\r\n\r\nx\r\n", policy=policy.default)
    assert isinstance(message, EmailMessage)
    (address,) = message["To"].addresses
    display = value.replace("\r\n", "").rpartition("<")[0].strip()
    if display.startswith("=?"):
        return str(make_header(decode_header(display))), address.addr_spec
    return address.display_name, address.addr_spec


def raw_to(message: EmailMessage) -> str:
    """The `To` header as it was written, before any parsing."""
    values = [value for name, value in message.raw_items() if name.lower() == "to"]
    assert len(values) == 1
    return values[0]


@pytest.mark.parametrize(("name", "email", "header_address"), [
    ("Jose", "josé.eai@example.org", "josé.eai@example.org"),
    ("José Ünal", "josé.eai@faß.example", "josé.eai@xn--fa-hia.example"),
    ("", "josé.eai@faß.example", "josé.eai@xn--fa-hia.example"),
    ("Lee, Ann \"the \\ boss\" <x@evil>", "ann@faß.example", "ann@xn--fa-hia.example"),
    ("=?utf-8?q?Admin?=", "ann@example.org", "ann@example.org"),
    ("λόγος", "x@λόγος.example", "x@xn--oxapnm1c.example"),
    ("Zoë Ünal-" * 20, "josé@λόγος.example", "josé@xn--oxapnm1c.example"),
    ("=?utf-8?b?" * 20, "ann@example.org", "ann@example.org"),
])
def test_the_to_header_reads_back_as_the_name_and_address(name: str, email: str,
                                                          header_address: str) -> None:
    value = format_recipient(name, email)
    assert parsed_to(value) == (name, header_address)
    assert value.replace(header_address, "").isascii()
    assert parsed_to(recipient_address(OutgoingMessage(1, "d@example.org", header_address, b"",
                                                       values={"name": name}))) == (name, header_address)


@given(st.text(min_size=1, max_size=200).map(single_line).filter(lambda t: not t.isascii()))
def test_a_non_ascii_name_is_encoded_words_a_reader_decodes_back(name: str) -> None:
    """Every word is B-encoded UTF-8 cut between characters (4-byte ones too), within RFC
    2047's 75 characters, on a line of its own that fits in 78 with `To: ` in front."""
    display = format_recipient(name, "ann@example.org").rpartition("<")[0].rstrip()
    lines = display.split("\r\n ")
    assert all(line.startswith("=?utf-8?b?") and line.endswith("?=") for line in lines)
    assert all(len(line) <= 75 for line in lines)
    assert str(make_header(decode_header(display))) == name


def test_envelope_uses_idna_2008_a_labels() -> None:
    assert envelope_address("x@faß.example") == ("x@xn--fa-hia.example", False)
    assert envelope_address("x@λόγος.example") == ("x@xn--oxapnm1c.example", False)
    assert envelope_address("josé@bücher.example") == ("josé@xn--bcher-kva.example", True)
    assert envelope_address("x@Example.ORG") == ("x@Example.ORG", False)


@pytest.mark.parametrize("email", ["a b@example.org", "a<b>@example.org", "x@☃.example",
                                   "x@" + "é" * 64 + ".example", "no-at-sign.example", "@example.org",
                                   "x@", "a\r\nBcc: v@example.org@example.org", "x@exa mple.org",
                                   "x@a..b.example", 'a"b@example.org'])
def test_an_address_no_header_can_carry_is_a_compose_error(email: str) -> None:
    with pytest.raises(ComposeError):
        format_recipient("Name", email)
    with pytest.raises(ComposeError):
        envelope_address(email)


def test_lookup_keys_follow_idna_2008() -> None:
    """ß and final sigma are letters of their own under IDNA 2008, not ss and σ."""
    assert address_hash("x@FAß.example") == address_hash("x@faß.example") \
        == address_hash("x@xn--fa-hia.example")
    assert address_hash("x@faß.example") != address_hash("x@fass.example")
    assert address_hash("x@λόγος.example") != address_hash("x@λόγοσ.example")
    for raw in ("x@ΛΌΓΟΣ.example", "x@FAß.example", "x@xn--fa-hia.example", "Ann@Bücher.EXAMPLE"):
        assert address_key(raw) == address_key(normalise_email(raw))


def test_dkim_domain_is_an_idna_2008_a_label(tmp_path: Path) -> None:
    pytest.importorskip("dkim")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test key")
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    from newsletter.transports.dkim_signing import DKIMSigner
    assert DKIMSigner("s", "faß.example", str(key)).domain == b"xn--fa-hia.example"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_confirmation_to_a_non_ascii_local_part_is_delivered(newsletter: Newsletter,
                                                             smtp_server: SMTPCatcher) -> None:
    mailer = Mailer(newsletter.config, branding_for(newsletter))
    mailer.send(Mail(MailKind.CONFIRM, "uid1", "josé.eai@faß.example", "Jose", "all topics",
                     {"confirm_url": "https://digest.example.org/confirm/t", "expiry_days": 7}))
    (received,) = smtp_server.messages
    assert received.recipients == ("josé.eai@xn--fa-hia.example",)
    message = message_from_string(received.data.decode("utf-8"), policy=policy.default)
    assert parsed_to(raw_to(message)) == ("Jose", "josé.eai@xn--fa-hia.example")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("email", "name", "reason"), [
    ("x@☃.example", "X", "not a valid IDNA 2008 name.*U[+]2603"),
    ("x@example.org", "lone \ud800 surrogate", "cannot be encoded"),
])
def test_a_transactional_email_that_cannot_be_composed_raises_and_sends_nothing(
        newsletter: Newsletter, smtp_server: SMTPCatcher, email: str, name: str, reason: str) -> None:
    mailer = Mailer(newsletter.config, branding_for(newsletter))
    expected = f"confirm email not sent: cannot compose the message: .*{reason}"
    with pytest.raises(DeliveryError, match=expected):
        mailer.send(Mail(MailKind.CONFIRM, "uid1", email, name, "all topics",
                         {"confirm_url": "https://digest.example.org/confirm/t", "expiry_days": 7}))
    assert smtp_server.messages == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_editor_note_to_a_non_ascii_local_part_keeps_the_address(newsletter: Newsletter) -> None:
    from newsletter.notify.notifier import Notifier
    message = Notifier(newsletter.config).build("sent", "All done.", "josé.editor@faß.example")
    assert (message.recipient, message.smtputf8) == ("josé.editor@xn--fa-hia.example", True)
    parsed = message_from_string(message.data.decode("utf-8"), policy=policy.default)
    assert parsed_to(raw_to(parsed)) == ("", "josé.editor@xn--fa-hia.example")
