"""SMTP: a pool of connections, each reused for many messages, reconnecting when one is dropped.

Each message is one `QuickSMTP.transact`: with PIPELINING and CHUNKING where the server offers
them, so a message costs one round trip instead of four (smtp_client.py).

A batch is cut into one contiguous slice per connection; each slice goes out on its own worker
thread and connection, and the results are joined back in batch order. The socket timeout
(`SMTPSettings.timeout`) bounds every single SMTP command, so a stalled server costs one timeout
per message, never a hung send. smtplib's exceptions are translated here into results (per
message) or ConfigError (setup). A connection lost before the final dot of DATA is TEMPORARY
(the server cannot have the message); lost while waiting for the reply to that dot, UNCERTAIN
(it may have queued it); with BDAT, lost after `BDAT … LAST` and the message went out. Either
way the connection is dropped and the next message of the slice goes out on a fresh one.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from ..errors import ConfigError
from ..mail.message import Outcome, OutgoingMessage, ResultCallback, SendResult
from .dkim_signing import DKIMSigner, make_signer
from .smtp_client import FinalReplyLost, QuickSMTP, QuickSMTP_SSL, UnsendableAddress

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


def connect(s: SMTPSettings, *, pipelining: bool = True, chunking: bool = True) -> QuickSMTP:
    """An open, authenticated connection; setup problems become ConfigError."""
    try:
        if s.security == "ssl":
            connection: QuickSMTP = QuickSMTP_SSL(
                s.host, s.port, timeout=s.timeout, local_hostname=s.local_hostname,
                context=ssl.create_default_context())
        else:
            connection = QuickSMTP(s.host, s.port, timeout=s.timeout,
                                      local_hostname=s.local_hostname)
            if s.security == "starttls":
                connection.starttls(context=ssl.create_default_context())
        if s.user:
            connection.login(s.user, s.password)
        connection.pipelining, connection.chunking = pipelining, chunking
    except smtplib.SMTPAuthenticationError as err:
        raise ConfigError(f"SMTP {s.host}:{s.port} refused the login for {s.user!r}: "
                          f"{err.smtp_code} {_text(err.smtp_error)}") from err
    except smtplib.SMTPNotSupportedError as err:
        raise ConfigError(f"SMTP {s.host}:{s.port}: {err}") from err
    except ssl.SSLError as err:
        raise ConfigError(f"SMTP {s.host}:{s.port}: TLS failed: {err}") from err
    return connection


class Lane:
    """One connection, used by one worker thread at a time, for a slice of each batch."""

    def __init__(self, settings: SMTPSettings, sign: Callable[[bytes], bytes] | None, *,
                 pipelining: bool = True, chunking: bool = True) -> None:
        self.settings, self.sign = settings, sign
        self.pipelining, self.chunking = pipelining, chunking
        self.connection: QuickSMTP | None = None

    def send(self, chunk: Sequence[OutgoingMessage],
             tell: ResultCallback = lambda result: None) -> list[SendResult]:
        """A result per message, each `tell`ed as soon as it is known; ConfigError only if it
        came before the first message.

        After a connection that timed out, the rest of the slice is not tried: a server that
        never answers would otherwise cost one full timeout per message.
        """
        self._check_idle_connection()
        results: list[SendResult] = []
        for message in chunk:
            try:
                result = self._send_one(message)
            except ConfigError as err:
                if not results:
                    raise
                rest = [SendResult(m.delivery_id, Outcome.TEMPORARY, detail=str(err))
                        for m in chunk[len(results):]]
            else:
                results.append(result)
                tell(result)
                if not result.unreachable:
                    continue
                rest = [replace(result, delivery_id=m.delivery_id) for m in chunk[len(results):]]
            for result in rest:
                results.append(result)
                tell(result)
            break
        return results

    def _check_idle_connection(self) -> None:
        """A connection kept from the last batch may have been closed by the server meanwhile."""
        if self.connection is None:
            return
        try:
            code, _ = self.connection.noop()
        except (smtplib.SMTPException, OSError):
            code = 0
        if code != 250:
            self.drop()

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        data = self.sign(message.data) if self.sign else message.data
        if self.connection is not None and self.connection.sock is None:
            self.connection = None  # closed after a 421 or a lost reply of the last message
        if self.connection is None:
            try:
                self.connection = connect(self.settings, pipelining=self.pipelining,
                                          chunking=self.chunking)
            except (smtplib.SMTPException, OSError) as err:
                return self._not_connected(message, err)
        try:
            options = ["SMTPUTF8"] if message.smtputf8 else []
            self.connection.transact(message.envelope_from, message.recipient, data, options,
                                     dot_safe=message.dot_safe)
        except UnsendableAddress as err:
            return SendResult(message.delivery_id, Outcome.PERMANENT, detail=f"smtp: {err}")
        except smtplib.SMTPRecipientsRefused as err:
            code, reply = err.recipients.get(message.recipient, (550, b"recipient refused"))
            return self._failed(message, code, reply)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as err:
            return self._failed(message, err.smtp_code, err.smtp_error)
        except smtplib.SMTPNotSupportedError as err:
            return SendResult(message.delivery_id, Outcome.PERMANENT, detail=f"smtp: {err}")
        except FinalReplyLost as err:
            self.drop()
            return SendResult(message.delivery_id, Outcome.UNCERTAIN,
                              detail=f"smtp: no reply after the whole message was sent: {err}")
        except (smtplib.SMTPException, OSError) as err:
            self.drop()
            return SendResult(message.delivery_id, Outcome.TEMPORARY,
                              detail=f"smtp: connection problem: {err or type(err).__name__}")
        return SendResult(message.delivery_id, Outcome.SENT)

    def _not_connected(self, message: OutgoingMessage, err: Exception) -> SendResult:
        """Refused or timed out before any command: temporary; a timeout also `unreachable`."""
        s = self.settings
        if isinstance(err, TimeoutError) or isinstance(err.__context__, TimeoutError):
            return SendResult(message.delivery_id, Outcome.TEMPORARY, unreachable=True,
                              detail=f"smtp: {s.host}:{s.port} did not answer within "
                              f"{s.timeout:g} s")
        return SendResult(message.delivery_id, Outcome.TEMPORARY,
                          detail=f"smtp: connection problem: {err or type(err).__name__}")

    def _failed(self, message: OutgoingMessage, code: int, reply: bytes | str) -> SendResult:
        outcome, gone = classify(code)
        if code == 421:
            self.drop()
        return SendResult(message.delivery_id, outcome, detail=f"smtp {code} {_text(reply)}",
                          mailbox_gone=gone)

    def drop(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            finally:
                self.connection = None

    def quit(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (smtplib.SMTPException, OSError):
                pass
            finally:
                self.connection = None


def slices(batch: Sequence[OutgoingMessage], count: int) -> list[Sequence[OutgoingMessage]]:
    """`count` contiguous, nearly equal slices (fewer if the batch is smaller), in order."""
    count = max(1, min(count, len(batch)))
    size = len(batch)
    return [batch[i * size // count:(i + 1) * size // count] for i in range(count)]


class SMTPTransport:
    name = "smtp"

    def __init__(self, settings: SMTPSettings, batch_size: int = 200, *, connections: int = 4,
                 dkim_selector: str | None = None, dkim_domain: str | None = None,
                 dkim_private_key_path: str | None = None, pipelining: bool = True,
                 chunking: bool = True) -> None:
        """`pipelining`/`chunking` False keeps to the plain path even where the server offers
        the extension (for comparisons, and for a relay that offers one and mishandles it)."""
        if connections < 1:
            raise ConfigError("SMTP connections: must be at least 1")
        self.settings, self.batch_size = settings, batch_size
        self.signer: DKIMSigner | None = make_signer(dkim_selector, dkim_domain,
                                                     dkim_private_key_path)
        sign = self.signer.sign if self.signer else None
        self.lanes = [Lane(settings, sign, pipelining=pipelining, chunking=chunking)
                      for _ in range(connections)]
        self._pool: ThreadPoolExecutor | None = None

    def send(self, batch: Sequence[OutgoingMessage], *,
             on_result: ResultCallback | None = None) -> list[SendResult]:
        tell = _serialised(on_result)
        parts = slices(batch, len(self.lanes))
        if len(parts) == 1:
            return self.lanes[0].send(parts[0], tell)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(len(self.lanes), thread_name_prefix="smtp")
        futures = [self._pool.submit(lane.send, part, tell)
                   for lane, part in zip(self.lanes, parts, strict=False)]
        outcomes: list[list[SendResult] | ConfigError] = []
        for future in futures:
            try:
                outcomes.append(future.result())
            except ConfigError as err:
                outcomes.append(err)
        return _join(parts, outcomes, tell)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for lane in self.lanes:
            lane.quit()


def _serialised(on_result: ResultCallback | None) -> ResultCallback:
    """`on_result` behind a lock, as the lanes' threads call it; a no-op when there is none."""
    if on_result is None:
        return lambda result: None
    lock = threading.Lock()

    def tell(result: SendResult) -> None:
        with lock:
            on_result(result)

    return tell


def _join(parts: list[Sequence[OutgoingMessage]],
          outcomes: list[list[SendResult] | ConfigError], tell: ResultCallback) -> list[SendResult]:
    """Results in batch order. A ConfigError is raised only if no slice handed anything over;
    otherwise the slices it stopped are temporary, and told so here."""
    errors = [o for o in outcomes if isinstance(o, ConfigError)]
    if len(errors) == len(outcomes):
        raise errors[0]
    results: list[SendResult] = []
    for part, outcome in zip(parts, outcomes, strict=True):
        if isinstance(outcome, ConfigError):
            stopped = [SendResult(m.delivery_id, Outcome.TEMPORARY, detail=str(outcome))
                       for m in part]
            for result in stopped:
                tell(result)
            results.extend(stopped)
        else:
            results.extend(outcome)
    return results
