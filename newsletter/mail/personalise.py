"""The header path of every kind of mail, and the per-recipient fill-in of a rendered variant.

`compile_template` does the expensive work once per variant: header folding and encoding, and
quoted-printable encoding of every static stretch of both bodies. `MessageTemplate.fill` then only
encodes the recipient's few short values and joins bytes. Each value sits between QP soft line
breaks (`=\\r\\n`), so the result is exactly the QP encoding of the filled-in text and no line
exceeds 76 characters.

Every message takes its headers from `standard_headers`, folded and encoded by `fold_header`, and
its recipient lines from `format_recipient`: multipart editions and transactional mails through
`compile_template`, plain-text editor notes through `plain_message`.
"""

from __future__ import annotations

import binascii
import html
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email import policy
from typing import NamedTuple

import idna

from ..errors import ComposeError
from ..markdown import WIDTH, wrap_text
from ..text import single_line
from .render import RenderedVariant

CRLF = b"\r\n"
SOFT_BREAK = b"=\r\n"
_QP = b'; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n'
_QP_TEXT = b"Content-Type: text/plain" + _QP
_QP_HTML = b"Content-Type: text/html" + _QP
_SMTP_POLICY = policy.SMTP.clone(max_line_length=78)
_ENCODING_POLICY = _SMTP_POLICY.clone(refold_source="all")
_FOLD = "\r\n "
_ATEXT = r"A-Za-z0-9!#$%&'*+\-/=?^_`{|}~"
_ATOMS = re.compile(rf"[{_ATEXT}]+(?: [{_ATEXT}]+)*")
_LOCAL_PART = re.compile(rf"[{_ATEXT}\x80-\U0010ffff]+(?:\.[{_ATEXT}\x80-\U0010ffff]+)*")
_DOMAIN = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*|\[[\x21-\x5a\x5e-\x7e]*\]")


class Sender(NamedTuple):
    """A From setting, read once by `parse_sender`."""

    display_name: str
    address: str
    domain: str

    @property
    def message_id_domain(self) -> str:
        """The right-hand side of every Message-ID this sender's mail carries."""
        return self.domain or "localhost"


def parse_sender(sender: str) -> Sender:
    """The one reading of a From setting, `Name <addr@domain>` or a bare `addr@domain`: the
    envelope sender, the default unsubscribe mailbox and every Message-ID's domain come from it."""
    name, bracket, rest = sender.rpartition("<")
    address = rest.strip().removesuffix(">").strip()
    name = name.strip() if bracket else ""
    if len(name) > 1 and name[0] == name[-1] == '"':
        name = re.sub(r"\\(.)", r"\1", name[1:-1])
    return Sender(name, address, address.rpartition("@")[2])


def standard_headers(sender: str, subject: str, *, list_id: str | None = None,
                     reply_to: str = "") -> list[tuple[str, str]]:
    """The headers every kind of mail carries besides its recipient lines: editions, test copies
    and transactional mails (`compile_template`) and editor notes (`plain_message`) all take
    theirs from here, so a header added here is in every one. A `list_id` makes it list mail,
    with one-click unsubscribe (RFC 8058)."""
    headers = [("From", sender), ("Subject", subject), ("MIME-Version", "1.0")]
    if list_id is not None:
        headers += [("List-Id", list_id), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")]
    if reply_to:
        headers.append(("Reply-To", reply_to))
    return headers


QP_LINE = 76
"""RFC 2045's limit on an encoded line, soft-break `=` included."""
_DOT_LINE = re.compile(rb"(?m)^\.[^\r\n]*")


def _qp(data: bytes) -> bytes:
    """Quoted-printable with no line starting with '.' (see `_no_leading_dot`)."""
    return _no_leading_dot(binascii.b2a_qp(data, istext=True).replace(b"=\n", SOFT_BREAK))


def _no_leading_dot(encoded: bytes) -> bytes:
    """QP whose lines never start with '.': that dot is written `=2E` (the same text once
    decoded), and the line broken again where that passes 76 columns. SMTP's DATA then needs no
    dot-stuffing, which cost a scan and a copy of every message (`OutgoingMessage.dot_safe`)."""
    if not encoded.startswith(b".") and b"\n." not in encoded:
        return encoded
    return _DOT_LINE.sub(lambda match: _rebroken(match.group(0)), encoded)


def _rebroken(line: bytes) -> bytes:
    pieces = []
    while line.startswith(b"."):
        line = b"=2E" + line[1:]
        if len(line) <= QP_LINE:
            break
        cut = QP_LINE - 1  # room for the soft break's `=`
        if line[cut - 1:cut] == b"=":  # never inside an =XX escape
            cut -= 1
        elif line[cut - 2:cut - 1] == b"=":
            cut -= 2
        pieces.append(line[:cut])
        line = line[cut:]
    return SOFT_BREAK.join([*pieces, line])


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def fold_header(name: str, value: str) -> bytes:
    """`Name: value\\r\\n`, folded and RFC 2047-encoded where needed (policy.SMTP would leave a
    short non-ASCII value raw, which ASCII cannot carry, so that one is always refolded)."""
    value = single_line(value)
    return (_SMTP_POLICY if value.isascii() else _ENCODING_POLICY).fold_binary(name, value)


def _header_block(headers: Sequence[tuple[str, str]]) -> bytes:
    return b"".join(fold_header(name, value) for name, value in headers)


def _recipient_lines(to: str, date: str, message_id: str) -> bytes:
    """The lines every message writes per recipient; see `MessageTemplate.fill`."""
    return b"".join((b"To: ", to.encode("utf-8"), CRLF, b"Date: ", date.encode("ascii"), CRLF,
                     b"Message-ID: ", message_id.encode("ascii"), CRLF))


def format_recipient(name: str, email: str) -> str:
    """The `To` value, never able to break the header or be read as another name or address.

    The address is as `header_address` writes it (RFC 6532: a non-ASCII local part goes raw in
    UTF-8). The name is RFC 2047-encoded when it is non-ASCII or contains `=?` (a reader decodes
    an encoded-word even inside quotes), a quoted-string when it has specials (RFC 5322), else
    as it is. ComposeError when the address cannot be written.
    """
    address = header_address(email)
    name = single_line(name)[:200]
    value = address
    if name:
        display = _display_name(name)
        fits = len("To: ") + len(display.rpartition("\n")[2]) + len(address) + 3 <= 78
        value = f"{display}{' ' if fits else _FOLD}<{address}>"
    if any(len(line.encode("utf-8")) > 998 - len("To: ") for line in value.split("\r\n")):
        raise ComposeError("the address is too long for a header line")
    return value


def _display_name(name: str) -> str:
    if not name.isascii() or "=?" in name:
        return _encoded_words(name)
    if _ATOMS.fullmatch(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


_WORD_BYTES = 45
"""UTF-8 bytes per encoded-word: `=?utf-8?b?`, 60 base64 characters and `?=` make 72, within
RFC 2047's 75; `To: ` and one word, within a 78-character line."""


def _encoded_words(text: str) -> str:
    """`text` as RFC 2047 B encoded-words, one a line, each cut between two characters. The
    encoding `email.header.Header` would choose for most names, without its 50 µs of choosing
    (a name a message); UnicodeEncodeError for a lone surrogate, as there."""
    data = text.encode("utf-8")
    words = []
    start = 0
    while start < len(data):
        end = min(start + _WORD_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a continuation byte
            end -= 1
        encoded = binascii.b2a_base64(data[start:end], newline=False).decode("ascii")
        words.append(f"=?utf-8?b?{encoded}?=")
        start = end
    return _FOLD.join(words)


def header_address(email: str) -> str:
    """The address for the envelope and the `To` header, with the domain in IDNA 2008 A-labels so
    that only a non-ASCII local part needs SMTPUTF8. ComposeError when neither could carry it."""
    local, at, domain = email.rpartition("@")
    if not at:
        raise ComposeError("the address has no @domain")
    if not _LOCAL_PART.fullmatch(local) or not local.isprintable():
        raise ComposeError("the part before the @ is not one a header can carry unquoted")
    if not domain.isascii():
        try:  # UTS 46 non-transitional, as email-validator: `faß` stays `faß`, never `fass`
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except UnicodeError as err:  # idna.IDNAError is one
            raise ComposeError(f"the domain is not a valid IDNA 2008 name: {err}") from err
    if not _DOMAIN.fullmatch(domain):
        raise ComposeError("the domain is not a domain name")
    return f"{local}@{domain}"


def envelope_address(email: str) -> tuple[str, bool]:
    """The address for RCPT TO and whether the transaction needs SMTPUTF8."""
    address = header_address(email)
    return address, not address.isascii()


_WRAPPABLE = re.compile(r"[\t\n\x0b\x0c\r ]")
"""The whitespace textwrap breaks at: a value without any (a link) comes back from it unchanged."""


def _fit(value: str) -> str:
    """A recipient's value in a text part, wrapped when it alone would pass the line width (a
    long choice of topics); templates give such values a line of their own. Most values are
    short or a link, so most recipients cost a comparison and a scan, not textwrap."""
    if len(value) <= WIDTH or not _WRAPPABLE.search(value):
        return value
    return wrap_text(value)


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

    def fill(self, values: Mapping[str, str], encoded: dict[str, bytes]) -> bytes:
        """`encoded` holds the QP of each value text already written for this message: a link
        reads the same escaped for HTML as in the text part, and is encoded once for both."""
        out = []
        for piece in self.pieces:
            if isinstance(piece, bytes):
                out.append(piece)
                continue
            value = values.get(piece, "")
            text = html.escape(value) if self.escape_html else _fit(value)
            qp = encoded.get(text)
            if qp is None:
                qp = encoded[text] = _qp(text.encode())
            out.append(qp)
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
        b = self.boundary
        encoded: dict[str, bytes] = {}
        return b"".join((
            _recipient_lines(to, date, message_id),
            b"List-Unsubscribe: ", ",\r\n ".join(f"<{u}>" for u in unsubscribe).encode("ascii"),
            CRLF, self.static_headers, CRLF,
            b"--", b, CRLF, _QP_TEXT, CRLF, self.text.fill(values, encoded), CRLF,
            b"--", b, CRLF, _QP_HTML, CRLF, self.html.fill(values, encoded), CRLF,
            b"--", b, b"--", CRLF))


def compile_template(rendered: RenderedVariant, *, variant: str, sender: str, list_id: str,
                     reply_to: str = "", extra_headers: Mapping[str, str] | None = None
                     ) -> MessageTemplate:
    """Encode everything that is the same for every recipient of this variant, once."""
    boundary = ("=_nl_" + secrets.token_hex(12)).encode("ascii")
    headers = standard_headers(sender, rendered.subject, list_id=list_id, reply_to=reply_to)
    headers.extend((extra_headers or {}).items())
    static = _header_block(headers)
    static += b'Content-Type: multipart/alternative; boundary="' + boundary + b'"' + CRLF
    return MessageTemplate(
        variant=variant, subject=rendered.subject, rendered=rendered, sender=sender,
        reply_to=reply_to, list_id=list_id, static_headers=static, boundary=boundary,
        text=_Body.compile(rendered.text, rendered.markers, escape_html=False),
        html=_Body.compile(rendered.html, rendered.markers, escape_html=True),
        message_id_domain=parse_sender(sender).message_id_domain)


def plain_message(*, sender: str, subject: str, to: str, date: str, message_id: str, body: str,
                  extra_headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """A one-part text/plain message (an editor's note): the recipient lines and standard headers
    of every other mail, its body quoted-printable like theirs, and no list headers."""
    headers = standard_headers(sender, subject)
    headers.extend(extra_headers)
    return b"".join((_recipient_lines(to, date, message_id), _header_block(headers), _QP_TEXT,
                     CRLF, _qp(_crlf(body).encode("utf-8"))))
