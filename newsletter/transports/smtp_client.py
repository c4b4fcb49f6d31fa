"""smtplib's client with a cheaper DATA, and one that tells a lost final reply apart.

smtplib runs `re.sub(rb'(?m)^\\.', b'..', message)` on every message, about 150-200 µs for 30 KB
while holding the GIL: the largest Python cost of a send (bench/throughput_smtp.py). Here
dot-stuffing is a `bytes.replace`; the bytes on the wire are identical (RFC 5321 §4.5.2); our
messages always use CRLF line ends.

smtplib raises the same `SMTPServerDisconnected` whether the connection failed before the
message went out or while waiting for the reply to its final dot. Only the second may mean the
server accepted it (RFC 1047), so `data` raises `FinalReplyLost` for it.

`transact` is one message's whole transaction, in as few round trips as the server allows
(Postfix's own client does the same):

    neither extension     smtplib's sendmail: MAIL, RCPT, DATA, message, each its own round trip
    PIPELINING (RFC 2920) MAIL + RCPT + DATA in one write, their replies read together; then the
                          dot-stuffed message and its final reply
    CHUNKING (RFC 3030)   MAIL, RCPT, then `BDAT <size> LAST` and the raw message (no stuffing)
    both                  MAIL + RCPT + BDAT + the message in one write: one round trip

It raises what smtplib's sendmail raises (SMTPSenderRefused, SMTPRecipientsRefused,
SMTPDataError, SMTPServerDisconnected), so the transport maps them once. `FinalReplyLost` means
the whole message went out and a reply that could still have been "accepted" was lost; a
refusal already read settles the message whatever is lost after it. After a refusal the
transaction is RSET so the connection can carry the next message; after a 421 it is closed.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

CRLF = b"\r\n"


class FinalReplyLost(smtplib.SMTPServerDisconnected):
    """The whole message and its final dot went out, but no reply came: it may be accepted."""


def dot_stuff(data: bytes) -> bytes:
    """Double a leading period on every line, as `smtplib._quote_periods` does."""
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\n.", b"\n..")


class UnsendableAddress(smtplib.SMTPNotSupportedError):
    """An envelope address that cannot go into a command: a line break, or non-ASCII without
    SMTPUTF8. Nothing was written."""


_NOT_IN_A_PATH = re.compile(r"[\x00-\x20<>\x7f]")
"""Characters that would end the `<address>` of a command early: controls, space, angle brackets."""


def envelope_command(verb: str, address: str, options: Sequence[str], utf8: bool) -> bytes:
    """`MAIL FROM:<a> OPTS` or `RCPT TO:<a>` as bytes, refusing what could inject a command or
    a parameter. Our addresses are normalised bare addresses, so `<a>` needs no parsing
    (smtplib's `quoteaddr` parses each one: 25 µs a message, two per message)."""
    if "\r" in address or "\n" in address or any("\r" in o or "\n" in o for o in options):
        raise UnsendableAddress(f"{address!r} contains a line break")
    if _NOT_IN_A_PATH.search(address):
        raise UnsendableAddress(f"{address!r} holds a space, control character or angle "
                                f"bracket and cannot go in an SMTP command")
    line = f"{verb}:<{address}>" + "".join(f" {o}" for o in options)
    try:
        return line.encode("utf-8" if utf8 else "ascii") + CRLF
    except UnicodeEncodeError as err:
        raise UnsendableAddress(f"{address!r} is not ASCII and the message is not "
                                f"sent with SMTPUTF8") from err


class QuickSMTP(smtplib.SMTP):
    pipelining = True
    """Use PIPELINING when offered (False: the plain path, for comparison)."""
    chunking = True
    """Use CHUNKING/BDAT when offered."""

    def wire_mode(self) -> tuple[bool, bool]:
        """(pipelining, chunking) as both this client and the server allow."""
        self.ehlo_or_helo_if_needed()
        return (self.pipelining and self.has_extn("pipelining"),
                self.chunking and self.has_extn("chunking"))

    def transact(self, sender: str, recipient: str, data: bytes,
                 options: Sequence[str] = (), *, dot_safe: bool = False) -> None:
        """Hand over one message to one recipient; see the module docstring for what it raises.
        `dot_safe`: no line of `data` starts with '.', so DATA sends it without dot-stuffing."""
        pipelining, chunking = self.wire_mode()
        utf8 = any(o.upper() == "SMTPUTF8" for o in options)
        if utf8 and not self.has_extn("smtputf8"):
            raise smtplib.SMTPNotSupportedError("SMTPUTF8 not supported by server")
        if not data.endswith(CRLF):
            data += CRLF
        size = [f"SIZE={len(data)}"] if self.has_extn("size") else []
        mail = envelope_command("MAIL FROM", sender, [*size, *options], utf8)
        rcpt = envelope_command("RCPT TO", recipient, (), utf8)
        if not (pipelining or chunking):
            self.sendmail(sender, [recipient], data, mail_options=list(options))
            return
        if chunking:
            bdat = b"BDAT %d LAST\r\n" % len(data)
            if pipelining:
                self._bdat_pipelined(b"".join((mail, rcpt, bdat, data)), sender, recipient)
            else:
                self._bdat_stepwise(mail, rcpt, bdat + data, sender, recipient)
        else:
            self._data_pipelined(mail + rcpt + b"DATA\r\n", data if dot_safe else dot_stuff(data),
                                 sender, recipient)

    def _bdat_pipelined(self, wire: bytes, sender: str, recipient: str) -> None:
        self.send(wire)  # the whole message is out once this returns
        replies: list[tuple[int, bytes]] = []
        try:
            for _ in range(3):
                replies.append(self.getreply())
        except smtplib.SMTPServerDisconnected as err:
            self._settle(replies, sender, recipient)  # a refusal read before the loss decides
            raise FinalReplyLost(str(err)) from err
        self._settle(replies, sender, recipient)

    def _bdat_stepwise(self, mail: bytes, rcpt: bytes, body: bytes, sender: str,
                       recipient: str) -> None:
        replies: list[tuple[int, bytes]] = []
        for command in (mail, rcpt):
            self.send(command)
            replies.append(self.getreply())
            self._settle(replies, sender, recipient)
        self.send(body)
        try:
            replies.append(self.getreply())
        except smtplib.SMTPServerDisconnected as err:
            raise FinalReplyLost(str(err)) from err
        self._settle(replies, sender, recipient)

    def _data_pipelined(self, wire: bytes, stuffed: bytes, sender: str, recipient: str) -> None:
        self.send(wire)
        replies: list[tuple[int, bytes]] = []
        try:
            for _ in range(3):
                replies.append(self.getreply())
            (mail_code, _), (rcpt_code, _), (data_code, data_reply) = replies
            if data_code == 354 and (mail_code != 250 or rcpt_code not in (250, 251)):
                self.send(b"." + CRLF)  # DATA went ahead without a recipient: end it empty
                self.getreply()
        except smtplib.SMTPServerDisconnected:
            self._settle(replies, sender, recipient, data_ok=354)  # a refusal read decides
            raise  # nothing of the message went out: temporary
        if data_code != 354:
            self._settle(replies, sender, recipient, data_ok=354)
            raise smtplib.SMTPDataError(data_code, data_reply)  # only if all else was 250
        self._settle(replies[:2], sender, recipient)
        self.send(b"".join((stuffed, b".", CRLF)))  # one copy of the message, not two
        try:
            replies[2] = self.getreply()
        except smtplib.SMTPServerDisconnected as err:
            raise FinalReplyLost(str(err)) from err
        self._settle(replies, sender, recipient)

    def _settle(self, replies: list[tuple[int, bytes]], sender: str, recipient: str, *,
                data_ok: int = 250) -> None:
        """Raise for the first refusal among the replies read so far, as sendmail would, after
        RSET (or closing, on 421); return when every one of them said yes."""
        accepted = {"mail": (250,), "rcpt": (250, 251), "data": (data_ok,)}
        for stage, (code, reply) in zip(accepted, replies, strict=False):
            if code in accepted[stage]:
                continue
            if any(c == 421 for c, _ in replies):
                self.close()
            else:
                self._reset()
            if stage == "mail":
                raise smtplib.SMTPSenderRefused(code, reply, sender)
            if stage == "rcpt":
                raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
            raise smtplib.SMTPDataError(code, reply)

    def _reset(self) -> None:
        """RSET, ignoring a connection that is already gone (as smtplib's own `_rset`)."""
        with contextlib.suppress(smtplib.SMTPServerDisconnected):
            self.rset()

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        if isinstance(msg, str):
            return smtplib.SMTP.data(self, msg)
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        payload = dot_stuff(bytes(msg))
        if not payload.endswith(CRLF):
            payload += CRLF
        self.send(payload + b"." + CRLF)
        try:
            return self.getreply()
        except smtplib.SMTPServerDisconnected as err:
            raise FinalReplyLost(str(err)) from err


class QuickSMTP_SSL(QuickSMTP, smtplib.SMTP_SSL):  # noqa: N801  (mirrors smtplib's name)
    """QuickSMTP over implicit TLS."""
