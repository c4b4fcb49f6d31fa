"""Per-recipient fill-in of a message rendered once per variant.

`compile_template` does the expensive work once per variant: header folding and encoding, and
quoted-printable encoding of every static stretch of both bodies. `MessageTemplate.fill` then only
encodes the recipient's few short values and joins bytes. Each value sits between QP soft line
breaks (`=\\r\\n`), so the result is exactly the QP encoding of the filled-in text and no line
exceeds 76 characters.
"""

from __future__ import annotations

import binascii
import html
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from email import policy
from email.header import Header
from email.utils import formataddr

from ..render import RenderedVariant

CRLF = b"\r\n"
SOFT_BREAK = b"=\r\n"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_SMTP_POLICY = policy.SMTP.clone(max_line_length=78)


def single_line(value: str) -> str:
    """Remove anything that could end a header line or smuggle one in."""
    return _CONTROL.sub(" ", value).strip()


def _qp(data: bytes) -> bytes:
    return binascii.b2a_qp(data, istext=True).replace(b"=\n", SOFT_BREAK)


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def fold_header(name: str, value: str) -> bytes:
    """`Name: value\\r\\n`, folded and RFC 2047-encoded where needed."""
    return _SMTP_POLICY.fold_binary(name, single_line(value))


def format_recipient(name: str, email: str) -> str:
    """`To` value: the display name quoted or encoded, never able to break the header."""
    name = single_line(name)[:200]
    domain_ascii = _ascii_domain(email)
    if not name:
        return domain_ascii
    if name.isascii():
        return formataddr((name, domain_ascii))
    encoded = Header(name, "utf-8", header_name="To").encode(linesep="\r\n")
    return f"{encoded}\r\n <{domain_ascii}>"


def _ascii_domain(email: str) -> str:
    """The address with an IDNA domain, so that only a non-ASCII local part needs SMTPUTF8."""
    local, _, domain = email.rpartition("@")
    if domain.isascii():
        return email
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def envelope_address(email: str) -> tuple[str, bool]:
    """The address for RCPT TO and whether the transaction needs SMTPUTF8."""
    address = _ascii_domain(email)
    return address, not address.isascii()


@dataclass(frozen=True)
class _Body:
    """A body as alternating static QP bytes and placeholder names."""

    pieces: tuple[bytes | str, ...]
    escape_html: bool

    @classmethod
    def compile(cls, text: str, markers: Mapping[str, str], escape_html: bool) -> _Body:
        by_marker = {marker: name for name, marker in markers.items()}
        if not by_marker:
            return cls((_qp(_crlf(text).encode("utf-8")),), escape_html)
        pattern = re.compile("|".join(re.escape(m) for m in by_marker))
        pieces: list[bytes | str] = []
        position = 0
        for match in pattern.finditer(text):
            pieces.append(_qp(_crlf(text[position:match.start()]).encode("utf-8")))
            pieces.append(by_marker[match.group(0)])
            position = match.end()
        pieces.append(_qp(_crlf(text[position:]).encode("utf-8")))
        return cls(tuple(pieces), escape_html)

    def fill(self, values: Mapping[str, str]) -> bytes:
        out = []
        for piece in self.pieces:
            if isinstance(piece, bytes):
                out.append(piece)
            else:
                value = values.get(piece, "")
                out.append(_qp((html.escape(value) if self.escape_html else value).encode()))
        return SOFT_BREAK.join(out)


@dataclass(frozen=True)
class MessageTemplate:
    """One variant, ready to be filled in for any number of recipients."""

    variant: str
    subject: str
    rendered: RenderedVariant
    sender: str
    reply_to: str
    list_id: str
    static_headers: bytes
    boundary: bytes
    text: _Body
    html: _Body
    message_id_domain: str

    def fill(self, *, to: str, date: str, message_id: str, unsubscribe: tuple[str, ...],
             values: Mapping[str, str]) -> bytes:
        """`to` comes from `format_recipient`; the other values are ASCII made by us."""
        head = b"".join((
            b"To: ", to.encode("utf-8"), CRLF, b"Date: ", date.encode("ascii"), CRLF,
            b"Message-ID: ", message_id.encode("ascii"), CRLF,
            b"List-Unsubscribe: ", ",\r\n ".join(f"<{u}>" for u in unsubscribe).encode("ascii"),
            CRLF, self.static_headers))
        b = self.boundary
        return b"".join((
            head, CRLF,
            b"--", b, CRLF, b'Content-Type: text/plain; charset="utf-8"', CRLF,
            b"Content-Transfer-Encoding: quoted-printable", CRLF, CRLF,
            self.text.fill(values), CRLF,
            b"--", b, CRLF, b'Content-Type: text/html; charset="utf-8"', CRLF,
            b"Content-Transfer-Encoding: quoted-printable", CRLF, CRLF,
            self.html.fill(values), CRLF,
            b"--", b, b"--", CRLF))


def compile_template(rendered: RenderedVariant, *, variant: str, sender: str, list_id: str,
                     reply_to: str = "", extra_headers: Mapping[str, str] | None = None
                     ) -> MessageTemplate:
    """Encode everything that is the same for every recipient of this variant, once."""
    boundary = ("=_nl_" + secrets.token_hex(12)).encode("ascii")
    headers = [("From", sender), ("Subject", rendered.subject), ("MIME-Version", "1.0"),
               ("List-Id", list_id), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")]
    if reply_to:
        headers.append(("Reply-To", reply_to))
    headers.extend((extra_headers or {}).items())
    static = b"".join(fold_header(name, value) for name, value in headers)
    static += b'Content-Type: multipart/alternative; boundary="' + boundary + b'"' + CRLF
    domain = sender.rpartition("@")[2].rstrip(">").strip() or "localhost"
    return MessageTemplate(
        variant=variant, subject=rendered.subject, rendered=rendered, sender=sender,
        reply_to=reply_to, list_id=list_id, static_headers=static, boundary=boundary,
        text=_Body.compile(rendered.text, rendered.markers, escape_html=False),
        html=_Body.compile(rendered.html, rendered.markers, escape_html=True),
        message_id_domain=domain)
