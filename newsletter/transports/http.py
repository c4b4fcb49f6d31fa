"""What every HTTP mail provider shares, written once: session, timeouts, retries, error mapping.

A provider (postmark.py, sendgrid.py, mailgun.py) subclasses `HTTPTransport` and only says how
to turn a chunk of messages into one request (`build_request`) and how to read the provider's
answer into one result per message (`parse_response`). The base runs the pipeline

    chunk the batch → build_request → post (retrying 429/5xx) → parse_response

and translates requests' exceptions at this boundary: none escapes. Whole-request answers map to
outcomes the same way for every provider:

    2xx           → the provider's parse_response
    3xx           → ConfigError (redirects are not followed: the base URL is wrong)
    401, 403      → ConfigError (the key is wrong: stop the send; nothing of the batch is failed)
    404           → ConfigError (wrong endpoint, region or domain)
    429, 5xx      → retried up to MAX_TRIES, honouring Retry-After; then TEMPORARY for the chunk
    other 4xx     → PERMANENT for the chunk, with the provider's message (`request_rejected`)
    no connection → TEMPORARY (refused, connect timeout: nothing was handed over)
    no answer     → UNCERTAIN (read timeout, connection dropped once the request was on its way:
                    the provider may have accepted it; never posted again)

A ConfigError raised once a chunk of the batch has been handed over turns the rest of the batch
TEMPORARY instead, as the Transport interface requires. A 2xx whose answer cannot be read leaves
its messages without a result, so the engine records them as uncertain rather than resend them.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, ClassVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from ..errors import ConfigError
from ..mail.message import Outcome, OutgoingMessage, ResultCallback, SendResult
from ..mail.personalise import format_recipient, parse_sender, single_line

MAX_TRIES = 3
MAX_WAIT_SECONDS = 60.0
CONNECT_TIMEOUT_SECONDS = 10.0
EXCERPT_CHARS = 300


@dataclass(frozen=True)
class HTTPSettings:
    api_key: str
    base_url: str = ""
    timeout: float = 30.0
    pool_size: int = 4

    @property
    def timeouts(self) -> tuple[float, float]:
        """(connect, read) for requests."""
        return min(self.timeout, CONNECT_TIMEOUT_SECONDS), self.timeout


@dataclass(frozen=True)
class Request:
    """One call to the provider: a path under the base URL and a JSON or form body."""

    path: str
    json: Any = None
    form: list[tuple[str, str]] | None = None


@lru_cache(maxsize=64)
def _marker_pattern(markers: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(m) for m in markers))


def fill(text: str, markers: Mapping[str, str], values: Mapping[str, str], escape: bool) -> str:
    """`text` with each placeholder's marker replaced by its value, HTML-escaped if `escape`.

    Providers that render per message pass the recipient's values; providers that merge on their
    side pass their own placeholder syntax as values (with escape=False).
    """
    if not markers:
        return text
    name_of = {marker: name for name, marker in markers.items()}

    def value(match: re.Match[str]) -> str:
        found = values.get(name_of[match.group(0)], "")
        return html.escape(found) if escape else found

    return _marker_pattern(tuple(sorted(name_of, key=len, reverse=True))).sub(value, text)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), capped at 60."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_WAIT_SECONDS)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_WAIT_SECONDS)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """One line of at most `limit` characters, for last_error and reports."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def group_by_variant(batch: Sequence[OutgoingMessage]) -> list[list[OutgoingMessage]]:
    """Messages sharing one body, in the order their variants first appear."""
    groups: dict[str, list[OutgoingMessage]] = {}
    for message in batch:
        assert message.template is not None
        groups.setdefault(message.template.variant, []).append(message)
    return list(groups.values())


def recipient_name(message: OutgoingMessage) -> str:
    """The display name for the provider's `to` field: one line, never able to add a header."""
    return single_line(message.values.get("name", ""))[:200]


def recipient_address(message: OutgoingMessage) -> str:
    """`Name <address>` for providers that take a single string: the `To` header's value, made
    by the same `format_recipient`, unfolded onto one line."""
    return format_recipient(recipient_name(message), message.recipient).replace("\r\n", "")


def split_address(value: str) -> tuple[str, str]:
    """(name, address) from a setting such as `Research Digest <digest@example.org>`."""
    sender = parse_sender(value)
    return sender.display_name, sender.address


def may_have_arrived(err: requests.RequestException) -> bool:
    """True when the provider may have received the whole request: the answer timed out, or the
    connection broke once open. urllib3 reports a connection that never opened as MaxRetryError
    and one that broke later as ProtocolError, without saying whether the body had all gone out;
    a break while sending counts too: at worst a needless `--resend-uncertain`, never two copies."""
    if isinstance(err, requests.ConnectTimeout):
        return False
    if isinstance(err, (requests.ReadTimeout, requests.exceptions.ChunkedEncodingError)):
        return True
    cause = err.args[0] if err.args else None
    return isinstance(err, requests.ConnectionError) and isinstance(
        cause, (ProtocolError, ReadTimeoutError))


def _describe(err: requests.RequestException) -> str:
    if isinstance(err, requests.Timeout):
        kind = "timed out"
    elif isinstance(err, requests.ConnectionError):
        kind = "connection lost" if may_have_arrived(err) else "connection failed"
    else:
        kind = "request failed"
    return f"{kind} ({type(err).__name__}: {excerpt(str(err), 160)})"


class HTTPTransport:
    """Base of every HTTP provider; see the module docstring for the pipeline and the mapping."""

    name: str = "http"
    default_base_url: ClassVar[str] = ""
    max_per_request: ClassVar[int] = 100
    one_body_per_request: ClassVar[bool] = False
    """True when a request carries one body for many recipients: the batch is grouped by variant."""

    def __init__(self, settings: HTTPSettings, *, batch_size: int | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not settings.api_key.strip():
            raise ConfigError(f"{self.name}: no API key (set NEWSLETTER_API_KEY)")
        self.settings = settings
        self.batch_size = batch_size or self.max_per_request
        self.base_url = (settings.base_url or self.default_base_url).rstrip("/")
        self.sleep = sleep
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=settings.pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update({"Accept": "application/json", "User-Agent": "newsletter"})
        self.authenticate(self.session, settings.api_key)

    # --- what a provider implements ---------------------------------------------------------

    def authenticate(self, session: requests.Session, api_key: str) -> None:
        """Put the credentials on the session (a header or HTTP basic auth)."""
        raise NotImplementedError

    def build_request(self, chunk: Sequence[OutgoingMessage]) -> Request:
        raise NotImplementedError

    def parse_response(self, chunk: Sequence[OutgoingMessage],
                       response: requests.Response) -> list[SendResult]:
        """A result per message of `chunk` from a 2xx answer. Leave out a message whose fate
        the answer does not tell: the engine marks it uncertain and never resends it silently."""
        raise NotImplementedError

    def error_message(self, response: requests.Response) -> str:
        """The provider's own words for a failed request (override to read its error format)."""
        return excerpt(response.text) or response.reason or ""

    def request_rejected(self, chunk: Sequence[OutgoingMessage],
                         response: requests.Response) -> list[SendResult]:
        """A 4xx other than 401/403/404/429 for the whole request: nothing was sent."""
        return self.all_of(chunk, Outcome.PERMANENT,
                           f"{self.name}: HTTP {response.status_code}: {self.error_message(response)}")

    def not_found(self, response: requests.Response) -> ConfigError:
        return ConfigError(f"{self.name}: {response.url} does not exist (HTTP 404: "
                           f"{self.error_message(response)}); check NEWSLETTER_API_BASE_URL")

    # --- the pipeline -----------------------------------------------------------------------

    def send(self, batch: Sequence[OutgoingMessage], *,
             on_result: ResultCallback | None = None) -> list[SendResult]:
        """Results in batch order; `on_result` hears each request's results as it is answered."""
        missing = [m.delivery_id for m in batch if m.template is None]
        if missing:
            raise ConfigError(f"{self.name}: messages {missing[:5]} carry no template; HTTP "
                              f"providers need messages made by mail.compose.Composer")
        chunks, results = list(self.chunks(batch)), []
        for index, chunk in enumerate(chunks):
            try:
                answered, stop = self._send_chunk(chunk), False
            except ConfigError as err:
                if index == 0:
                    raise  # nothing of the batch has reached the provider
                rest = [m for later in chunks[index:] for m in later]
                answered, stop = self.all_of(rest, Outcome.TEMPORARY, str(err)), True
            results.extend(answered)
            if on_result is not None:
                for result in answered:
                    on_result(result)
            if stop:
                break
        position = {m.delivery_id: i for i, m in enumerate(batch)}
        return sorted(results, key=lambda r: position[r.delivery_id])

    def chunks(self, batch: Sequence[OutgoingMessage]) -> Iterator[list[OutgoingMessage]]:
        groups = group_by_variant(batch) if self.one_body_per_request else [list(batch)]
        for group in groups:
            for start in range(0, len(group), self.max_per_request):
                yield group[start:start + self.max_per_request]

    def _send_chunk(self, chunk: list[OutgoingMessage]) -> list[SendResult]:
        answer = self._post(self.build_request(chunk), chunk)
        if isinstance(answer, list):
            return answer
        return self.parse_response(chunk, answer)

    def _post(self, request: Request,
              chunk: list[OutgoingMessage]) -> requests.Response | list[SendResult]:
        """The provider's 2xx response, or results for the whole chunk; retries 429 and 5xx."""
        url = self.base_url + request.path
        for attempt in range(1, MAX_TRIES + 1):
            try:
                response = self.session.post(url, json=request.json, data=request.form,
                                             timeout=self.settings.timeouts, allow_redirects=False)
            except requests.RequestException as err:
                outcome = Outcome.UNCERTAIN if may_have_arrived(err) else Outcome.TEMPORARY
                return self.all_of(chunk, outcome, f"{self.name}: {_describe(err)}")
            status = response.status_code
            if 200 <= status < 300:
                return response
            if 300 <= status < 400:
                raise ConfigError(f"{self.name}: {url} redirects to "
                                  f"{response.headers.get('Location', '?')} (HTTP {status}); "
                                  f"set NEWSLETTER_API_BASE_URL to the API's address")
            if status in (401, 403):
                raise ConfigError(f"{self.name} refused the API key (HTTP {status}: "
                                  f"{self.error_message(response)}); check NEWSLETTER_API_KEY")
            if status == 404:
                raise self.not_found(response)
            if status != 429 and status < 500:
                return self.request_rejected(chunk, response)
            if attempt < MAX_TRIES:
                self.sleep(self.wait_before_retry(response, attempt))
        detail = (f"{self.name}: HTTP {status} after {MAX_TRIES} tries: "
                  f"{self.error_message(response)}")
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        return [SendResult(m.delivery_id, Outcome.TEMPORARY, detail=detail, retry_after=retry_after)
                for m in chunk]

    @staticmethod
    def wait_before_retry(response: requests.Response, attempt: int) -> float:
        """Retry-After when given, else 1 s, 2 s, …"""
        told = retry_after_seconds(response.headers.get("Retry-After"))
        return told if told is not None else min(2.0 ** (attempt - 1), MAX_WAIT_SECONDS)

    @staticmethod
    def all_of(chunk: Sequence[OutgoingMessage], outcome: Outcome, detail: str,
               provider_id: str | None = None) -> list[SendResult]:
        return [SendResult(m.delivery_id, outcome, provider_id=provider_id, detail=detail)
                for m in chunk]

    def json_body(self, response: requests.Response) -> Any:
        """The parsed JSON body, or None when there is none or it is not JSON."""
        try:
            return response.json()
        except ValueError:
            return None

    def close(self) -> None:
        self.session.close()
