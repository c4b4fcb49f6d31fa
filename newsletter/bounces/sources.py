"""Where reports come from: one file, standard input (an MTA's pipe), or a Maildir.

A source yields `Incoming` messages and is told, after each one is recorded, whether it was read
(`finish(item, ok=True)`) or refused (`ok=False`), so that it can put the message where it will
not be read again. Every message is read through the size cap, before any parsing.
"""

from __future__ import annotations

import contextlib
import mailbox
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from .fields import ReportError
from .read import MAX_MESSAGE_BYTES

_FOLDER = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")


@dataclass(frozen=True)
class Incoming:
    where: str
    """Names the message in every error: the file, or the Maildir and its key, or the IMAP UID."""
    data: bytes | None
    error: str = ""
    """Why `data` is None (over the cap, unreadable)."""
    key: str = ""


class Source(Protocol):
    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Incoming]: ...

    def finish(self, item: Incoming, *, ok: bool) -> None: ...


def read_capped(stream: BinaryIO, where: str, declared: int | None = None) -> Incoming:
    """Read at most the cap and one byte more: a huge message is refused, never loaded."""
    if declared is not None and declared > MAX_MESSAGE_BYTES:
        return Incoming(where, None, f"{declared:,} bytes, over the {MAX_MESSAGE_BYTES:,}-byte "
                                     "cap: not read")
    data = stream.read(MAX_MESSAGE_BYTES + 1)
    if len(data) > MAX_MESSAGE_BYTES:
        return Incoming(where, None, f"over the {MAX_MESSAGE_BYTES:,}-byte cap: not read")
    return Incoming(where, data)


class OneMessage:
    """A file, or standard input (`-`) as `pipe(8)` or a .forward hands it over."""

    def __init__(self, path: str, stream: BinaryIO | None = None) -> None:
        self.path, self.stream = path, stream

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[Incoming]:
        if self.stream is not None:
            yield read_capped(self.stream, "standard input")
            return
        try:
            with open(self.path, "rb") as stream:
                yield read_capped(stream, self.path, os.fstat(stream.fileno()).st_size)
        except OSError as err:
            raise ReportError(f"{self.path}: cannot be read: {err.strerror or err}") from err

    def finish(self, item: Incoming, *, ok: bool) -> None:
        """A file or a pipe stays as it is: the MTA keeps or drops it by the exit code."""


class MaildirSource:
    """The messages in a Maildir's `new`, read through `mailbox.Maildir`. Each one read is moved
    to `cur` flagged seen (`:2,S`), or with `done_folder` to that Maildir++ subfolder's `cur`;
    one refused (unreadable, over the cap) moves to `cur` flagged (`:2,F`), unseen, for a person
    to look at. Neither is read again: a move is one rename, as the Maildir convention has it."""

    def __init__(self, path: Path, done_folder: str | None = None) -> None:
        if not (path / "new").is_dir() or not (path / "cur").is_dir():
            raise ReportError(f"{path}: not a Maildir (it needs new/ and cur/)")
        self.path = path
        self.box = mailbox.Maildir(path, factory=None, create=False)
        self.done: Path | None = None
        if done_folder is not None and not _FOLDER.fullmatch(done_folder):
            raise ReportError(f"--done-folder {done_folder!r}: a Maildir++ folder name is letters, "
                              "digits, '-' and '_' (dots between them), nothing that leaves "
                              f"{path}")
        if done_folder:
            self.box.add_folder(done_folder)
            self.done = path / f".{done_folder}"
        self.files = {name.split(self.box.colon)[0]: name
                      for name in sorted(os.listdir(path / "new")) if not name.startswith(".")}

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[Incoming]:
        for key, name in self.files.items():
            where = f"{self.path} key {key}"
            try:
                size = os.path.getsize(self.path / "new" / name)
                with self.box.get_file(key) as file:
                    item = read_capped(file, where, size)  # type: ignore[arg-type]
            except (KeyError, OSError) as err:  # gone meanwhile: another reader took it
                yield Incoming(where, None, f"cannot be read: {err}", key)
                continue
            yield Incoming(item.where, item.data, item.error, key)

    def finish(self, item: Incoming, *, ok: bool) -> None:
        target = (self.done if ok and self.done is not None else self.path) / "cur"
        flags = "S" if ok else "F"
        with contextlib.suppress(FileNotFoundError):  # another reader moved it first
            os.rename(self.path / "new" / self.files[item.key],
                      target / f"{item.key}{self.box.colon}2,{flags}")
