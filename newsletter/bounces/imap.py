"""Polling an IMAP mailbox (imapclient): the unseen, unflagged messages of one folder.

A message read is flagged `\\Seen` (and moved to `move_to` when given); one refused (over the
cap, unreadable) is flagged `\\Flagged` and left unseen for a person. Sizes are asked first, so a
huge message is never downloaded. The connection is TLS (`ssl`, port 993, or `starttls`) with the
system's certificate checks; `none` is allowed only to a loopback address, because the password
would otherwise cross the network in clear.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

from imapclient import FLAGGED, SEEN, IMAPClient
from imapclient.exceptions import IMAPClientError

from ..errors import ConfigError
from .fields import ReportError
from .read import MAX_MESSAGE_BYTES
from .sources import Incoming

SECURITY = ("ssl", "starttls", "none")


@dataclass(frozen=True)
class ImapSettings:
    host: str
    user: str
    password: str
    port: int | None = None
    security: str = "ssl"
    folder: str = "INBOX"
    move_to: str | None = None
    ca_file: str | None = None
    timeout: float = 30.0


def _is_loopback(host: str) -> bool:
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback
                   for info in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return False


def connect(settings: ImapSettings) -> IMAPClient:
    """A logged-in client with `folder` selected; ConfigError for settings that cannot work,
    ReportError when the server refuses."""
    if settings.security not in SECURITY:
        raise ConfigError(f"--imap-security: {settings.security!r} is not one of "
                          f"{', '.join(SECURITY)}")
    if settings.security == "none" and not _is_loopback(settings.host):
        raise ConfigError(f"--imap-security none: {settings.host} is not a loopback address; the "
                          "password would travel in clear (use ssl or starttls)")
    context = ssl.create_default_context(cafile=settings.ca_file)
    port = settings.port or (993 if settings.security == "ssl" else 143)
    try:
        client = IMAPClient(settings.host, port=port, ssl=settings.security == "ssl",
                            ssl_context=context, timeout=settings.timeout)
    except (IMAPClientError, OSError) as err:  # ssl.SSLError is an OSError
        raise ReportError(f"imap {settings.host}:{port}: {err}") from err
    try:
        if settings.security == "starttls":
            client.starttls(context)
        client.login(settings.user, settings.password)
        client.select_folder(settings.folder)
        if settings.move_to and not client.folder_exists(settings.move_to):
            raise ReportError(f"--move-to {settings.move_to!r}: no such folder on the server")
    except (IMAPClientError, OSError, ReportError) as err:
        with contextlib.suppress(IMAPClientError, OSError):
            client.shutdown()
        if isinstance(err, ReportError):
            raise
        raise ReportError(f"imap {settings.host}:{port}: {err}") from err
    return client


class ImapSource:
    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self.client = connect(settings)
        self.where = f"imap {settings.host} {settings.folder}"
        try:
            self.uids = sorted(self.client.search(["UNSEEN", "UNFLAGGED"]))
            sizes = self.client.fetch(self.uids, ["RFC822.SIZE"]) if self.uids else {}
        except IMAPClientError as err:
            raise ReportError(f"{self.where}: {err}") from err
        self.sizes = {uid: int(data.get(b"RFC822.SIZE", 0)) for uid, data in sizes.items()}

    def __len__(self) -> int:
        return len(self.uids)

    def __iter__(self) -> Iterator[Incoming]:
        for uid in self.uids:
            where = f"{self.where} uid {uid}"
            size = self.sizes.get(uid, 0)
            if size > MAX_MESSAGE_BYTES:
                yield Incoming(where, None, f"{size:,} bytes, over the {MAX_MESSAGE_BYTES:,}-byte "
                                            "cap: not downloaded", str(uid))
                continue
            try:
                fetched = self.client.fetch([uid], ["BODY.PEEK[]"]).get(uid, {})
            except IMAPClientError as err:
                yield Incoming(where, None, f"cannot be fetched: {err}", str(uid))
                continue
            data = fetched.get(b"BODY[]")
            if not isinstance(data, bytes) or len(data) > MAX_MESSAGE_BYTES:
                yield Incoming(where, None, "the server sent no message, or one over the cap",
                               str(uid))
                continue
            yield Incoming(where, data, key=str(uid))

    def finish(self, item: Incoming, *, ok: bool) -> None:
        uid = int(item.key)
        try:
            if not ok:
                self.client.add_flags([uid], [FLAGGED])
                return
            self.client.add_flags([uid], [SEEN])
            if self.settings.move_to:
                self._move(uid, self.settings.move_to)
        except IMAPClientError as err:
            raise ReportError(f"{item.where}: recorded, but the server refused to mark it: "
                              f"{err}") from err

    def _move(self, uid: int, folder: str) -> None:
        if self.client.has_capability("MOVE"):
            self.client.move([uid], folder)
            return
        self.client.copy([uid], folder)
        self.client.delete_messages([uid])
        self.client.expunge([uid]) if self.client.has_capability("UIDPLUS") else self.client.expunge()

    def close(self) -> None:
        with contextlib.suppress(IMAPClientError, OSError):
            self.client.logout()
