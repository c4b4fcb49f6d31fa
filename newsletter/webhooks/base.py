"""The small interface every provider webhook implements, and the parts they share.

    Webhook.events(request) = verify(body, headers)   401 if the request is not the provider's
                              → load (bounded JSON)   400 if it is not JSON of a sane shape
                              → parse → FeedbackEvents (each checked; a bad one is named, not kept)

Nothing from the body is interpreted before `verify` (Mailgun, whose signature lives inside the
JSON, reads only its `signature` object first). The body cap is the web route's job.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from ..config import Config
from ..db import utcnow
from ..errors import NewsletterError
from ..feedback.events import EventKind, FeedbackEvent, InvalidEvent

__all__ = ["MAX_BODY_BYTES", "MAX_DEPTH", "MAX_EVENTS", "BadPayload", "Parsed", "Unauthorized",
           "Webhook", "WebhookRejected", "WebhookRequest", "delivery_id_from", "load_json",
           "parse_time", "text_field"]

MAX_BODY_BYTES = 1024 * 1024
MAX_DEPTH = 8
"""Deeper than any provider's documented payload: a deeper body is an attack, not an event."""
MAX_EVENTS = 5000


class WebhookRejected(NewsletterError):
    """The request is refused; `status` is what the provider is answered."""

    status: ClassVar[int] = 400


class Unauthorized(WebhookRejected):
    """Missing, wrong or stale credentials or signature."""

    status = 401


class BadPayload(WebhookRejected):
    """Authentic, but not a payload of the documented shape."""

    status = 400


@dataclass(frozen=True)
class WebhookRequest:
    body: bytes
    headers: Mapping[str, str]
    """Names lower-cased."""

    @classmethod
    def of(cls, body: bytes, headers: Mapping[str, str] | Any) -> WebhookRequest:
        return cls(body, {str(k).lower(): str(v) for k, v in dict(headers).items()})

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass
class Parsed:
    events: list[FeedbackEvent] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """One line per event refused, naming its position and field."""


class Webhook(ABC):
    """One provider's webhook: verify, then parse into the one event vocabulary."""

    name: ClassVar[str]
    setting: ClassVar[str]
    """The setting holding the secret; empty means every request is refused."""

    def __init__(self, config: Config, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.config, self.clock = config, clock
        self.max_age = config.webhook_max_age_seconds

    @abstractmethod
    def verify(self, request: WebhookRequest) -> None:
        """Return if the request is the provider's; raise Unauthorized otherwise."""

    @abstractmethod
    def parse(self, request: WebhookRequest) -> Parsed:
        """The events of a verified request; BadPayload if its shape is not the documented one."""

    def events(self, request: WebhookRequest) -> Parsed:
        """The verified request's events; `unknown` ones are refused like malformed ones, and a
        request left with none is BadPayload (the provider sent something we cannot read)."""
        self.verify(request)
        parsed = self.parse(request)
        unknown = [e for e in parsed.events if e.kind is EventKind.UNKNOWN]
        parsed.problems += [f"{e.event_key}: an event type this webhook does not know"
                            for e in unknown]
        parsed.events = [e for e in parsed.events if e.kind is not EventKind.UNKNOWN]
        if not parsed.events:
            raise BadPayload("no event to record: " + ("; ".join(parsed.problems[:5])
                                                        or "the body holds no event"))
        self.admit(request)
        return parsed

    def admit(self, request: WebhookRequest) -> None:
        """A last check once the request is known to be usable (Mailgun: the token is unused),
        so a refused request writes nothing. Nothing to check by default."""
        return None

    def configured(self) -> str:
        secret = str(self.config.value(self.setting)).strip()
        if not secret:
            raise Unauthorized(f"{self.name} webhooks are not configured "
                               f"(NEWSLETTER_{self.setting.upper()} is empty)")
        return secret

    def check_age(self, raw: str) -> None:
        """A signed timestamp: a whole number of seconds, within the window either side of now."""
        if not raw or len(raw) > 12 or not raw.isascii() or not raw.isdigit():
            raise Unauthorized("the timestamp is missing or not a number")
        skew = abs(self.clock().timestamp() - int(raw))
        if skew > self.max_age:
            raise Unauthorized(f"the timestamp is {skew:.0f} s away from now "
                               f"(at most {self.max_age} s): stale or replayed")


def load_json(body: bytes) -> Any:
    """Strict UTF-8 JSON, at most MAX_DEPTH deep; BadPayload naming what is wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadPayload(f"the body is not UTF-8 (byte {err.start})") from None
    if _bracket_depth(text) > MAX_DEPTH:
        raise BadPayload(f"the JSON is nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as err:
        raise BadPayload(f"the body is not JSON: {str(err)[:120]}") from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _bracket_depth(text: str) -> int:
    """The deepest nesting of [ and {, outside strings: checked before the parser recurses."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def text_field(item: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = item.get(key)
    if value is None or value == "":
        if required:
            raise InvalidEvent(key, "missing")
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidEvent(key, "not a string")
    return str(value)


def delivery_id_from(raw: Any) -> int | None:
    """The delivery id our transports put in the provider's metadata, or None when absent."""
    if raw is None or raw == "":
        return None
    text = str(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
    if not text.isascii() or not text.isdigit() or len(text) > 18 or int(text) == 0:
        raise InvalidEvent("delivery_id", f"not one of our delivery ids: {text[:40]!r}")
    return int(text)


def parse_time(raw: Any, key: str) -> datetime:
    """An ISO 8601 time with an offset, or Unix seconds: aware UTC."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        try:
            return datetime.fromtimestamp(float(raw), UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidEvent(key, "not a time") from None
    if isinstance(raw, str) and 0 < len(raw) <= 40:
        try:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidEvent(key, f"not a time: {raw[:40]!r}") from None
        if value.tzinfo is None:
            raise InvalidEvent(key, "a time without a time zone")
        return value.astimezone(UTC)
    raise InvalidEvent(key, "missing or not a time")
