"""Every message we compose is dot-safe: no line starts with '.', so SMTP's DATA sends it
without dot-stuffing (`OutgoingMessage.dot_safe`). The quoted-printable encoding writes such a
dot as `=2E` instead and stays within 76 columns; received over a real SMTP server (aiosmtpd, on
every wire mode), the messages decode to exactly the text that was rendered."""

from __future__ import annotations

import binascii
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsletter.mail.compose import compose_plain
from newsletter.mail.message import OutgoingMessage
from newsletter.mail.personalise import QP_LINE, _qp, compile_template
from newsletter.mail.render import RenderedVariant, new_markers

from .fault_server import WireServer
from .test_smtp_pipelining import HOSTILE_BODY, MODES, send


def lines_of(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")


@given(st.text(alphabet=st.sampled_from(["a", ".", "=", " ", "\t", "\n", "é", "中", "-", "x"]),
               max_size=600))
def test_quoted_printable_never_starts_a_line_with_a_dot_and_decodes_to_the_text(
        text: str) -> None:
    crlf = text.replace("\n", "\r\n").encode("utf-8")
    encoded = _qp(crlf)
    assert all(not line.startswith(b".") for line in lines_of(encoded))
    assert all(len(line) <= QP_LINE for line in lines_of(encoded))
    assert binascii.a2b_qp(encoded) == crlf


@pytest.mark.parametrize("text", [
    "." * 200, "." + "=" * 100, "a" * 75 + "." * 80, ".\n.\n..\n", "." + "é" * 40,
])
def test_long_dotted_lines_are_broken_again_within_the_limit(text: str) -> None:
    crlf = text.replace("\n", "\r\n").encode("utf-8")
    encoded = _qp(crlf)
    assert all(len(line) <= QP_LINE and not line.startswith(b".") for line in lines_of(encoded))
    assert binascii.a2b_qp(encoded) == crlf


DOTTED_HTML = "<p>\n.start</p>\n" + "<p>" + "." * 120 + "</p>\n.\n<p>{name}</p>\n"
DOTTED_TEXT = HOSTILE_BODY + "Hello {name}, {topics}\n.{email}\n"
VALUES = {"name": ".Dot O'Line", "email": ".leading@example.org", "topics": "." * 90,
          "unsubscribe_url": "https://x.example/u/.tok", "preferences_url": "https://x.example/p"}


def edition_message(delivery_id: int) -> tuple[bytes, str, str]:
    """A composed edition whose bodies and values are full of line-initial dots, and the text
    and HTML a reader must get back."""
    markers = new_markers()
    html, text = DOTTED_HTML, DOTTED_TEXT
    for name, marker in markers.items():
        html, text = html.replace("{" + name + "}", marker), text.replace("{" + name + "}", marker)
    template = compile_template(RenderedVariant("Dots", "", html, text, markers), variant="v",
                                sender="Digest <digest@pprnet.example>", list_id="<d.example>")
    data = template.fill(to="reader@example.org", date="Tue, 01 Dec 2026 08:00:00 +0000",
                         message_id=f"<{delivery_id}@pprnet.example>",
                         unsubscribe=("https://x.example/u/.tok",), values=VALUES)
    expected_html = DOTTED_HTML.replace("{name}", ".Dot O&#x27;Line")
    expected_text = DOTTED_TEXT.format(**VALUES)
    return data, expected_text, expected_html


def test_a_composed_edition_has_no_line_starting_with_a_dot() -> None:
    data, _, _ = edition_message(1)
    assert all(not line.startswith(b".") for line in lines_of(data))
    plain = compose_plain(sender="Digest <digest@pprnet.example>", email="e@example.org",
                          subject="Note", body=HOSTILE_BODY,
                          date=datetime(2026, 12, 1, tzinfo=UTC), message_id_prefix="note",
                          delivery_id=2)
    assert plain.dot_safe
    assert all(not line.startswith(b".") for line in lines_of(plain.data))


@pytest.mark.parametrize("mode", list(MODES))
def test_dot_safe_messages_arrive_whole_on_every_wire_mode(mode: str) -> None:
    pipelining, chunking = MODES[mode]
    data, expected_text, expected_html = edition_message(1)
    batch = [OutgoingMessage(1, "bounces@pprnet.example", "reader@example.org", data,
                             dot_safe=True)]
    with WireServer(pipelining=pipelining, chunking=chunking) as server:
        results, _ = send(server, batch)
    assert [r.outcome.value for r in results] == ["sent"]
    received = server.messages[0].data
    assert received == data
    parsed = message_from_bytes(received, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    text_part = parsed.get_body(("plain",))
    html_part = parsed.get_body(("html",))
    assert text_part is not None and html_part is not None
    assert text_part.get_content().replace("\r\n", "\n") == expected_text
    assert html_part.get_content().replace("\r\n", "\n") == expected_html
