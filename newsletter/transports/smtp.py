"""SMTP: one connection reused for many messages, reconnecting when the server drops it.

smtplib's exceptions are translated here into results (per message) or ConfigError (setup).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError
from .base import Outcome, OutgoingMessage, SendResult

MAILBOX_GONE_CODES = frozenset({550, 551, 553})


@dataclass(frozen=True)
class SMTPSettings:
    host: str
    port: int
    security: str = "none"
    user: str = ""
    password: str = ""
    timeout: float = 30.0
    local_hostname: str | None = None


def classify(code: int) -> tuple[Outcome, bool]:
    """(outcome, mailbox gone): temporary for 4xx and 552 (RFC 5321 §4.5.3.1.10), else permanent."""
    if 400 <= code < 500 or code == 552:
        return Outcome.TEMPORARY, False
    return Outcome.PERMANENT, code in MAILBOX_GONE_CODES


def _text(message: bytes | str) -> str:
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else message


class SMTPTransport:
    name = "smtp"

    def __init__(self, settings: SMTPSettings, batch_size: int = 200) -> None:
        self.settings = settings
        self.batch_size = batch_size
        self._connection: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        try:
            if s.security == "ssl":
                connection: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, local_hostname=s.local_hostname,
                    context=ssl.create_default_context())
            else:
                connection = smtplib.SMTP(s.host, s.port, timeout=s.timeout,
                                          local_hostname=s.local_hostname)
                if s.security == "starttls":
                    connection.starttls(context=ssl.create_default_context())
            if s.user:
                connection.login(s.user, s.password)
        except smtplib.SMTPAuthenticationError as err:
            raise ConfigError(f"SMTP {s.host}:{s.port} refused the login for {s.user!r}: "
                              f"{err.smtp_code} {_text(err.smtp_error)}") from err
        except smtplib.SMTPNotSupportedError as err:
            raise ConfigError(f"SMTP {s.host}:{s.port}: {err}") from err
        except ssl.SSLError as err:
            raise ConfigError(f"SMTP {s.host}:{s.port}: TLS failed: {err}") from err
        return connection

    def _ensure_connection(self) -> smtplib.SMTP:
        if self._connection is None:
            self._connection = self._connect()
        return self._connection

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None

    def send(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        for message in batch:
            try:
                results.append(self._send_one(message))
            except ConfigError as err:
                if not results:
                    raise
                results.extend(SendResult(m.delivery_id, Outcome.TEMPORARY, detail=str(err))
                               for m in batch[len(results):])
                break
        return results

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        try:
            connection = self._ensure_connection()
            options = ["SMTPUTF8"] if message.smtputf8 else []
            refused = connection.sendmail(message.envelope_from, [message.recipient],
                                          message.data, mail_options=options)
        except smtplib.SMTPRecipientsRefused as err:
            code, reply = err.recipients.get(message.recipient, (550, b"recipient refused"))
            return self._failed(message, code, reply)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as err:
            return self._failed(message, err.smtp_code, err.smtp_error)
        except smtplib.SMTPNotSupportedError as err:
            return SendResult(message.delivery_id, Outcome.PERMANENT, detail=f"smtp: {err}")
        except ConfigError:
            raise
        except (smtplib.SMTPException, OSError) as err:
            self._drop()
            return SendResult(message.delivery_id, Outcome.TEMPORARY,
                              detail=f"smtp: connection problem: {err or type(err).__name__}")
        if refused:
            code, reply = refused[message.recipient]
            return self._failed(message, code, reply)
        return SendResult(message.delivery_id, Outcome.SENT)

    def _failed(self, message: OutgoingMessage, code: int, reply: bytes | str) -> SendResult:
        outcome, gone = classify(code)
        if code == 421:
            self._drop()
        return SendResult(message.delivery_id, outcome, detail=f"smtp {code} {_text(reply)}",
                          mailbox_gone=gone)

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.quit()
            except (smtplib.SMTPException, OSError):
                pass
            finally:
                self._connection = None
