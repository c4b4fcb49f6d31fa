"""Settings are data: one table, one resolver, one documented order.

Order: explicit overrides (CLI flags) → `NEWSLETTER_*` environment → the config file → default.
The config file is `$NEWSLETTER_CONFIG`, else `config/newsletter.toml` in the working folder; keep it
out of git when it holds secrets (the shipped `.gitignore` does).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError
from .recurring.rule import parse_rule


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    secret: bool = False

    @property
    def env(self) -> str:
        return "NEWSLETTER_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("database_url", "sqlite:///newsletter.db", "SQLAlchemy URL of the store"),
    Setting("base_url", "http://localhost:8000", "Public URL of the web app; every link starts here"),
    Setting("from", "Research Digest <digest@localhost>", "From header of every message"),
    Setting("reply_to", "", "Optional Reply-To address"),
    Setting("secret_key", "", "Signs links (comma-separated: newest first, older keys still verify)",
            secret=True),
    Setting("transport", "smtp", "How mail leaves: smtp | outbox | postmark | sendgrid | mailgun"),
    Setting("smtp_host", "localhost", "SMTP server host"),
    Setting("smtp_port", 25, "SMTP server port"),
    Setting("smtp_user", "", "SMTP AUTH user (empty: no AUTH)"),
    Setting("smtp_password", "", "SMTP AUTH password", secret=True),
    Setting("smtp_security", "none", "none | starttls | ssl"),
    Setting("smtp_timeout", 30.0, "Seconds before an SMTP command is abandoned"),
    Setting("outbox_dir", "outbox", "Folder for .eml files when transport = outbox"),
    Setting("batch_size", 200, "Recipients handed to the SMTP or outbox transport per ledger transaction "
            "(HTTP providers take their own batch limit)"),
    Setting("api_key", "", "API key of the HTTP provider (Postmark server token, SendGrid API key, "
            "Mailgun private key)", secret=True),
    Setting("api_base_url", "", "Base URL of the HTTP provider's API; empty: its public endpoint "
            "(e.g. https://api.eu.mailgun.net for Mailgun's EU region)"),
    Setting("mailgun_domain", "", "Mailgun sending domain (transport = mailgun)"),
    Setting("postmark_message_stream", "broadcast", "Postmark message stream (transport = postmark)"),
    Setting("http_timeout", 30.0, "Seconds to wait for an HTTP provider's answer (connecting: at most 10)"),
    Setting("organisation", "Psychotherapy Practice Research Network",
            "Who publishes the newsletter (footer, List-Id)"),
    Setting("postal_address", "Ottawa, Ontario, Canada", "Postal address shown in every footer"),
    Setting("list_id", "", "List-Id header value; default derived from base_url's host"),
    Setting("unsubscribe_mailto", "", "mailto: address for List-Unsubscribe; default derived from From"),
    Setting("timezone", "America/Toronto", "The editor's time zone"),
    Setting("templates_dir", "", "Folder whose templates override the shipped ones"),
    Setting("smtp_connections", 4, "SMTP connections used in parallel, each reused for many messages"),
    Setting("dkim_selector", "", "DKIM selector (set selector, domain and key path, or none of them)"),
    Setting("dkim_domain", "", "DKIM signing domain (d=)"),
    Setting("dkim_private_key_path", "", "PEM file of the DKIM private key (keep it outside git)"),
    Setting("retry_max_attempts", 5, "Attempts per message within one send before it waits for a later run"),
    Setting("retry_initial", 1.0, "Seconds before the first retry of a temporary failure"),
    Setting("retry_factor", 2.0, "Each retry waits this many times longer than the previous one"),
    Setting("retry_cap", 60.0, "Longest wait between two retries, in seconds"),
    Setting("retry_jitter", "full", "Randomise retry waits: full | equal | none"),
    Setting("retry_later", 3600.0,
            "Seconds until a later send may retry a message that used up its attempts"),
    Setting("rate_limit", 0.0, "Messages per second at most (0: no limit)"),
    Setting("confirm_expiry_days", 7, "Days a signup confirmation link stays valid"),
    Setting("rate_limit_per_client", 10, "Signups one client address may make per window"),
    Setting("rate_limit_per_address", 3, "Confirmation emails one address may receive per window"),
    Setting("rate_limit_window_seconds", 3600, "The signup rate-limit window"),
    Setting("proxy_hops", 0, "Reverse proxies in front of the web app (trusted X-Forwarded-For hops)"),
    Setting("editor_email", "", "Where send reports and scheduler alerts go (empty: logged only)"),
    Setting("schedule_grace_hours", 6.0,
            "A scheduled send still goes out this many hours late (scheduler down); later: missed"),
    Setting("recurring_rule", "", "Send each month automatically, e.g. \"first tuesday 09:00\" "
            "(in `timezone`; empty: off)"),
    Setting("reminder_days_before", 5,
            "Days before a recurring send to remind the editor when fewer than two summaries are ready "
            "(0: no reminder)"),
)

_BY_NAME = {s.name: s for s in SETTINGS}
HTTP_TRANSPORTS = ("postmark", "sendgrid", "mailgun")
TRANSPORTS = ("smtp", "outbox", *HTTP_TRANSPORTS)


@dataclass(frozen=True)
class Config:
    database_url: str
    base_url: str
    from_: str
    reply_to: str
    secret_key: str
    transport: str
    smtp_host: str
    smtp_port: int
    smtp_user: str
    smtp_password: str
    smtp_security: str
    smtp_timeout: float
    outbox_dir: str
    batch_size: int
    api_key: str
    api_base_url: str
    mailgun_domain: str
    postmark_message_stream: str
    http_timeout: float
    organisation: str
    postal_address: str
    list_id: str
    unsubscribe_mailto: str
    timezone: str
    templates_dir: str
    smtp_connections: int
    dkim_selector: str
    dkim_domain: str
    dkim_private_key_path: str
    retry_max_attempts: int
    retry_initial: float
    retry_factor: float
    retry_cap: float
    retry_jitter: str
    retry_later: float
    rate_limit: float
    confirm_expiry_days: int
    rate_limit_per_client: int
    rate_limit_per_address: int
    rate_limit_window_seconds: int
    proxy_hops: int
    editor_email: str
    schedule_grace_hours: float
    recurring_rule: str
    reminder_days_before: int

    @property
    def secret_keys(self) -> list[str]:
        keys = [k.strip() for k in self.secret_key.split(",") if k.strip()]
        if not keys:
            raise ConfigError("NEWSLETTER_SECRET_KEY is not set: links cannot be signed. "
                              "Set it in the environment (e.g. `export NEWSLETTER_SECRET_KEY="
                              "$(python -c 'import secrets; print(secrets.token_urlsafe(32))')`).")
        return keys

    @property
    def effective_list_id(self) -> str:
        if self.list_id:
            return self.list_id
        host = urlsplit(self.base_url).hostname or "localhost"
        return f"Research digest <digest.{host}>"

    def with_overrides(self, **overrides: Any) -> Config:
        return load_config(overrides=overrides, base=self)


def _field_name(setting_name: str) -> str:
    return "from_" if setting_name == "from" else setting_name


def _coerce(setting: Setting, value: Any, origin: str) -> Any:
    kind = type(setting.default)
    try:
        if kind is int and not isinstance(value, bool):
            return int(value)
        if kind is float:
            return float(value)
        if kind is str:
            if not isinstance(value, str):
                raise TypeError(f"expected a string, got {type(value).__name__}")
            return value
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{origin}: {setting.name}: {err}") from err
    raise ConfigError(f"{origin}: {setting.name}: unsupported value {value!r}")


def config_file_path(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("NEWSLETTER_CONFIG", "config/newsletter.toml"))


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: {err}") from err
    section = data.get("newsletter", data)
    unknown = sorted(set(section) - set(_BY_NAME))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; "
                          f"known: {', '.join(_BY_NAME)}")
    return dict(section)


def load_config(overrides: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None, base: Config | None = None) -> Config:
    """Resolve every setting; `overrides` are CLI flags (None means "not given")."""
    environ = os.environ if environ is None else environ
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(overrides) - set(_BY_NAME)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    path = config_file_path(environ)
    from_file = _read_file(path) if base is None else {}
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.name in overrides:
            value, origin = overrides[setting.name], "option"
        elif base is not None:
            value, origin = getattr(base, _field_name(setting.name)), "config"
        elif setting.env in environ:
            value, origin = environ[setting.env], setting.env
        elif setting.name in from_file:
            value, origin = from_file[setting.name], str(path)
        else:
            value, origin = setting.default, "default"
        values[_field_name(setting.name)] = _coerce(setting, value, origin)
    config = Config(**values)
    _validate(config)
    return config


def _validate(config: Config) -> None:
    if config.transport not in TRANSPORTS:
        raise ConfigError(f"transport: {config.transport!r} is not one of {', '.join(TRANSPORTS)}")
    if config.transport in HTTP_TRANSPORTS:
        _validate_http(config)
    if config.smtp_security not in ("none", "starttls", "ssl"):
        raise ConfigError(f"smtp_security: {config.smtp_security!r} is not one of none, starttls, ssl")
    parts = urlsplit(config.base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"base_url: {config.base_url!r} must be an absolute http(s) URL")
    if config.batch_size < 1:
        raise ConfigError("batch_size: must be at least 1")
    if config.retry_jitter not in ("full", "equal", "none"):
        raise ConfigError(f"retry_jitter: {config.retry_jitter!r} is not one of full, equal, none")
    _validate_schedule(config)


def _validate_schedule(config: Config) -> None:
    try:
        ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"timezone: {config.timezone!r} is not a time zone; use an Area/City "
                          "name such as America/Toronto") from None
    if config.recurring_rule.strip():
        parse_rule(config.recurring_rule)
    if not 0 <= config.reminder_days_before <= 27:
        raise ConfigError("reminder_days_before: must be 0 (no reminder) to 27")
    if config.schedule_grace_hours < 0:
        raise ConfigError("schedule_grace_hours: must not be negative")


def _validate_http(config: Config) -> None:
    if not config.api_key.strip():
        raise ConfigError(f"{_BY_NAME['api_key'].env} is not set: the {config.transport} transport needs the "
                          f"provider's API key. Set it in the environment.")
    if config.transport == "mailgun" and not config.mailgun_domain.strip():
        raise ConfigError(f"{_BY_NAME['mailgun_domain'].env} is not set: the mailgun transport sends "
                          f"through one of your Mailgun domains (e.g. mg.example.org).")
    if config.api_base_url:
        parts = urlsplit(config.api_base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"api_base_url: {config.api_base_url!r} must be an absolute http(s) URL")
    if config.http_timeout <= 0:
        raise ConfigError("http_timeout: must be more than 0 seconds")


def describe_settings() -> list[dict[str, Any]]:
    """The settings table, for `newsletter settings` and the docs."""
    return [{"name": s.name, "env": s.env, "default": s.default, "help": s.help,
             "secret": s.secret} for s in SETTINGS]


assert {_field_name(s.name) for s in SETTINGS} == {f.name for f in fields(Config)}
