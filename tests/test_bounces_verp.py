"""VERP Return-Paths: the tag names one delivery, reads back in any case, and nothing else reads
as a delivery; end to end, a real SMTP send carries it in MAIL FROM and a DSN sent back to that
address bounces exactly that delivery's subscriber."""

from __future__ import annotations

import base64
import re

import pytest

from newsletter.catcher import SMTPCatcher
from newsletter.config import load_config
from newsletter.errors import ConfigError
from newsletter.tokens import Purpose
from newsletter.verp import MAX_TAG, Verp

from .bounces_support import BOUNCE_ADDRESS, ingest, postfix_dsn, send_month, status_of
from .conftest import TEST_SECRET, MakeNewsletter, RunCli

KEY = "k" * 40
OLD_KEY = "o" * 40
NO_FILE = {"NEWSLETTER_CONFIG": "/nonexistent.toml"}


def verp(*keys: str, purpose: str = Purpose.BOUNCE) -> Verp:
    return Verp(BOUNCE_ADDRESS, list(keys or (KEY,)), purpose)


@pytest.mark.parametrize("delivery_id", [1, 255, 256, 4242, 10**9, 2**63 - 1])
def test_a_tag_reads_back_in_any_case_and_fits_a_local_part(delivery_id: int) -> None:
    address = verp().return_path(delivery_id)
    local, _, domain = address.partition("@")
    tag = local.removeprefix("bounce+")
    assert domain == "pprnet.example" and re.fullmatch(r"[a-z2-7]+", tag)
    assert len(tag) <= MAX_TAG == 29 and len(local) <= 64
    assert verp().delivery_of(address) == delivery_id
    assert verp().delivery_of(address.upper()) == delivery_id
    assert verp().delivery_of(f"<{address.title()}>") == delivery_id


def test_a_message_outside_the_ledger_gets_the_bare_bounce_address() -> None:
    assert verp().return_path(0) == BOUNCE_ADDRESS
    assert verp().delivery_of(BOUNCE_ADDRESS) is None


def _flip(tag: str) -> str:
    return ("b" if tag[3] == "a" else "a").join((tag[:3], tag[4:]))


def _non_canonical(tag: str) -> str:
    """The same bytes with the unused low bits of the last character set: base32 decoders
    accept it; a tag we wrote never has them."""
    last = "abcdefghijklmnopqrstuvwxyz234567".index(tag[-1])
    return tag[:-1] + "abcdefghijklmnopqrstuvwxyz234567"[last | 1]


def _zero_padded(delivery_id: int) -> str:
    good = verp().tag(delivery_id)
    raw = base64.b32decode(good.upper() + "=" * (-len(good) % 8))
    return base64.b32encode(b"\0" + raw).decode().rstrip("=").lower()


@pytest.mark.parametrize(("case", "make"), [
    ("one character changed", lambda t: _flip(t)),
    ("truncated", lambda t: t[:-1]),
    ("one character more", lambda t: t + "a"),
    ("not base32", lambda t: t[:-2] + "01"),
    ("empty", lambda t: ""),
    ("huge", lambda t: t * 40),
    ("non-canonical last character", _non_canonical),
    ("a leading zero byte", lambda t: _zero_padded(4242)),
    ("CRLF inside", lambda t: t[:5] + "\r\n" + t[5:]),
])
def test_a_forged_or_garbled_tag_reads_as_no_delivery(case: str, make) -> None:  # type: ignore[no-untyped-def]
    tag = verp().tag(4242)
    forged = make(tag)
    assert verp().delivery_of_tag(forged) is None, case
    assert verp().delivery_of(f"bounce+{forged}@pprnet.example") is None, case


def test_a_tag_made_with_another_key_purpose_or_domain_is_not_ours() -> None:
    address = verp().return_path(4242)
    assert verp("x" * 40).delivery_of(address) is None
    assert verp(purpose=Purpose.CLICK).delivery_of(address) is None
    assert verp().delivery_of(address.replace("pprnet.example", "evil.example")) is None
    assert verp().delivery_of(address.replace("bounce+", "bounces+")) is None


def test_after_a_key_rotation_the_old_key_still_reads_earlier_tags() -> None:
    before = verp(OLD_KEY).return_path(77)
    rotated = verp(KEY, OLD_KEY)
    assert rotated.delivery_of(before) == 77
    assert rotated.return_path(77) != before
    assert verp(OLD_KEY).delivery_of(rotated.return_path(77)) is None


@pytest.mark.parametrize(("value", "message"), [
    ("bounce", "is not an address like bounce@example.org"),
    ("bounce+x@pprnet.example", "must not contain '+'"),
    ("bounce@", "is not an address like"),
    ("bøunce@pprnet.example", "plain ASCII"),
    ("bounce@ex ample.org", "is not an ASCII domain name"),
    ("b" * 35 + "@pprnet.example", "may have at most 34 characters"),
])
def test_the_bounce_address_setting_is_checked_when_settings_load(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        load_config(environ={**NO_FILE, "NEWSLETTER_BOUNCE_ADDRESS": value,
                             "NEWSLETTER_SECRET_KEY": TEST_SECRET})
    assert str(caught.value).startswith("NEWSLETTER_BOUNCE_ADDRESS: bounce_address: ")


def test_the_setting_turns_verp_on_and_its_absence_off() -> None:
    on = load_config(environ={**NO_FILE, "NEWSLETTER_BOUNCE_ADDRESS": "Bounce@PPRNet.example",
                              "NEWSLETTER_SECRET_KEY": TEST_SECRET})
    assert on.verp is not None and on.verp.return_path(5).startswith("bounce+")
    assert on.verp.return_path(5).endswith("@pprnet.example")
    assert load_config(environ={**NO_FILE, "NEWSLETTER_SECRET_KEY": TEST_SECRET}).verp is None


def test_without_a_bounce_address_the_envelope_sender_is_the_from_address(
        make_newsletter: MakeNewsletter, smtp_server: SMTPCatcher) -> None:
    sent = send_month(make_newsletter(), smtp_server)
    assert {s.mail_from for s in sent.values()} == {"digest@pprnet.example"}


def test_an_smtp_send_carries_each_delivery_tag_and_a_dsn_to_it_bounces_that_delivery(
        make_newsletter: MakeNewsletter, smtp_server: SMTPCatcher, run_cli: RunCli) -> None:
    nl = make_newsletter(bounce_address=BOUNCE_ADDRESS)
    sent = send_month(nl, smtp_server)
    assert len(sent) == 3
    reader = nl.config.verp
    assert reader is not None
    for item in sent.values():
        assert re.fullmatch(r"bounce\+[a-z2-7]{18,29}@pprnet\.example", item.mail_from)
        assert reader.delivery_of(item.mail_from) == item.delivery_id
    assert len({s.mail_from for s in sent.values()}) == 3
    received = smtp_server.messages[0].parse()
    assert received["From"] == "PPRNet Research Digest <digest@pprnet.example>"
    assert "Return-Path" not in received  # the receiving MTA writes it, from MAIL FROM

    bob = sent["bob@example.org"]
    summary, _ = ingest(run_cli, "-", data=postfix_dsn(bob))
    assert (summary["processed"], summary["hard"], summary["unmatched"]) == (1, 1, 0)
    assert status_of(run_cli, "bob@example.org") == ("bounced", "hard-bounce")
    assert status_of(run_cli, "ada@example.org") == ("active", None)
    assert status_of(run_cli, "cy@example.org") == ("active", None)
