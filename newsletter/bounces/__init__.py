"""Bounces and complaints that come back to a mailbox: VERP-tagged DSNs (RFC 3464), ARF complaint
reports (RFC 5965) and non-standard bounces, read (`read`), matched to the delivery their signed
tag names (`match`) and recorded as feedback events (`ingest`), from a file, a pipe, a Maildir
(`sources`) or IMAP (`imap`). The tags themselves are `newsletter.verp`."""

from .fields import ReportError
from .ingest import IngestSummary, ingest
from .read import MAX_MESSAGE_BYTES, MailboxReport, ReportKind, read_report
from .sources import MaildirSource, OneMessage

__all__ = ["MAX_MESSAGE_BYTES", "IngestSummary", "MailboxReport", "MaildirSource", "OneMessage",
           "ReportError", "ReportKind", "ingest", "read_report"]
