"""Settings are data: one table, one resolver, one documented order.

Order: explicit overrides (CLI flags) → `NEWSLETTER_*` environment → the config file → default.
The config file is `$NEWSLETTER_CONFIG`, else `config/newsletter.toml` in the working folder; keep it
out of git when it holds secrets (the shipped `.gitignore` does).
"""

from __future__ import annotations

import ipaddress
import math
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from difflib import get_close_matches
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError
from .monthly_rule import parse_rule
from .providers import DEFAULT_PROVIDER, PROVIDERS, settings_named
from .tokens import Purpose
from .verp import BadBounceAddress, Verp, check_bounce_address


@dataclass(frozen=True)
class Setting:
    """One setting; numbers carry their allowed range so a typo is refused, not obeyed."""

    name: str
    default: Any
    help: str
    secret: bool = False
    at_least: float | None = None
    more_than: float | None = None
    at_most: float | None = None
    zero: str = ""
    """What 0 means, when it is allowed and special (e.g. "no limit")."""

    @property
    def env(self) -> str:
        return "NEWSLETTER_" + self.name.upper()

    @property
    def bounds(self) -> str:
        """The allowed range in words ("1 to 65535"), empty for a setting without one."""
        low = (f"more than {self.more_than:g}" if self.more_than is not None
               else f"at least {self.at_least:g}" if self.at_least is not None else "")
        if self.at_most is not None:
            low = f"{self.at_least:g} to {self.at_most:g}" if self.at_least is not None else \
                f"{low + ' and ' if low else ''}at most {self.at_most:g}"
        return low + (f" (0: {self.zero})" if self.zero else "")

    def in_bounds(self, value: float) -> bool:
        return not ((self.more_than is not None and value <= self.more_than)
                    or (self.at_least is not None and value < self.at_least)
                    or (self.at_most is not None and value > self.at_most))


SETTINGS: tuple[Setting, ...] = (
    Setting("database_url", "sqlite:///newsletter.db", "SQLAlchemy URL of the store"),
    Setting("base_url", "http://localhost:8000", "Public URL of the web app; every link starts here"),
    Setting("from", "Research Digest <digest@localhost>", "From header of every message"),
    Setting("reply_to", "", "Optional Reply-To address"),
    Setting("bounce_address", "", "Bounces come back here, to bounce+TAG@domain (VERP: TAG names the "
            "delivery, signed); empty: the From address is the envelope sender"),
    Setting("secret_key", "", "Signs links; each key at least 32 bytes (comma-separated: newest first, "
            "older keys still verify)", secret=True),
    Setting("transport", DEFAULT_PROVIDER, "How mail leaves: " + " | ".join(PROVIDERS)),
    Setting("smtp_host", "localhost", "SMTP server host"),
    Setting("smtp_port", 25, "SMTP server port", at_least=1, at_most=65535),
    Setting("smtp_user", "", "SMTP AUTH user (empty: no AUTH)"),
    Setting("smtp_password", "", "SMTP AUTH password", secret=True),
    Setting("smtp_security", "none", "none | starttls | ssl"),
    Setting("smtp_timeout", 30.0, "Seconds before an SMTP command is abandoned", more_than=0),
    Setting("outbox_dir", "outbox", "Folder for .eml files when transport = outbox"),
    Setting("batch_size", 200, "Recipients handed to the SMTP or outbox transport per ledger transaction "
            "(HTTP providers take their own batch limit)", at_least=1),
    Setting("api_key", "", "API key of the HTTP provider (Postmark server token, SendGrid API key, "
            "Mailgun private key)", secret=True),
    Setting("api_base_url", "", "Base URL of the HTTP provider's API; empty: its public endpoint "
            "(e.g. https://api.eu.mailgun.net for Mailgun's EU region)"),
    Setting("mailgun_domain", "", "Mailgun sending domain (transport = mailgun)"),
    Setting("postmark_message_stream", "broadcast", "Postmark message stream (transport = postmark)"),
    Setting("http_timeout", 30.0, "Seconds to wait for an HTTP provider's answer (connecting: at most 10)",
            more_than=0),
    Setting("organisation", "Psychotherapy Practice Research Network",
            "Who publishes the newsletter (footer, List-Id)"),
    Setting("postal_address", "Ottawa, Ontario, Canada", "Postal address shown in every footer"),
    Setting("logo_url", "", "https:// URL of a logo for the emails' masthead, beside the network's name "
            "(empty: no logo; never needed to read the email)"),
    Setting("logo_alt", "", "The logo's alt text (empty: the organisation's name)"),
    Setting("list_id", "", "List-Id header value; default derived from base_url's host"),
    Setting("unsubscribe_mailto", "", "mailto: address for List-Unsubscribe; default derived from From"),
    Setting("timezone", "America/Toronto", "The editor's time zone"),
    Setting("templates_dir", "", "Folder whose templates override the shipped ones"),
    Setting("smtp_connections", 4, "SMTP connections used in parallel, each reused for many messages",
            at_least=1),
    Setting("workers", 1, "Worker processes `newsletter send` and the scheduler's sends run on "
            "this host, each with its own connections, claiming its own batches",
            at_least=1, at_most=64),
    Setting("journal_dir", "", "Folder for each worker's result journal, on local disk: it narrows "
            "what a killed worker leaves uncertain (empty: newsletter-journal-UID in the temp folder)"),
    Setting("dkim_selector", "", "DKIM selector (set selector, domain and key path, or none of them)"),
    Setting("dkim_domain", "", "DKIM signing domain (d=)"),
    Setting("dkim_private_key_path", "", "PEM file of the DKIM private key (keep it outside git)"),
    Setting("retry_max_attempts", 5, "Attempts per message within one send before it waits for a later run",
            at_least=1, at_most=100),
    Setting("retry_initial", 1.0, "Seconds before the first retry of a temporary failure", more_than=0),
    Setting("retry_factor", 2.0, "Each retry waits this many times longer than the previous one",
            at_least=1),
    Setting("retry_cap", 60.0, "Longest wait between two retries, in seconds", more_than=0),
    Setting("retry_jitter", "full", "Randomise retry waits: full | equal | none"),
    Setting("retry_later", 3600.0,
            "Seconds until a later send may retry a message that used up its attempts", more_than=0),
    Setting("rate_limit", 0.0, "Messages per second at most", at_least=0, zero="no limit"),
    Setting("confirm_expiry_days", 7, "Days a signup confirmation link stays valid", at_least=1),
    Setting("rate_limit_per_client", 10, "Signups one client address may make per window", at_least=1),
    Setting("rate_limit_per_address", 3, "Confirmation emails one address may receive per window",
            at_least=1),
    Setting("rate_limit_window_seconds", 3600, "The signup rate-limit window", at_least=1),
    Setting("proxy_hops", 0, "Reverse proxies in front of the web app (trusted X-Forwarded-For hops)",
            at_least=0),
    Setting("trusted_proxy", "127.0.0.1",
            "IP address the reverse proxy connects from; its X-Forwarded-For/-Proto are believed when "
            "proxy_hops > 0 (* for any)"),
    Setting("editor_email", "", "Where send reports and scheduler alerts go (empty: logged only)"),
    Setting("schedule_grace_hours", 6.0,
            "A scheduled send still goes out this many hours late (scheduler down); later: missed",
            at_least=0),
    Setting("recurring_rule", "", "Send each month automatically, e.g. \"first tuesday 09:00\" "
            "(in `timezone`; empty: off)"),
    Setting("reminder_days_before", 5,
            "Days before a recurring send to remind the editor when fewer than two summaries are ready",
            at_least=0, at_most=27, zero="no reminder"),
    Setting("click_tracking", 0, "1: an edition's summary links go through /r/ and count clicks "
            "(per edition, summary and link, never per reader); 0: off", at_least=0, at_most=1),
    Setting("webhook_postmark_credentials", "", "Basic-auth user:password pairs Postmark's webhooks "
            "must present (comma-separated, to rotate; empty: the route refuses every request)",
            secret=True),
    Setting("webhook_sendgrid_public_key", "", "SendGrid's Event Webhook verification key, the "
            "base64 key SendGrid shows (empty: the route refuses every request)"),
    Setting("webhook_mailgun_signing_key", "", "Mailgun's HTTP webhook signing key (empty: the "
            "route refuses every request)", secret=True),
    Setting("webhook_max_age_seconds", 600, "A signed webhook older (or further in the future) than "
            "this is refused as stale", at_least=10, at_most=86400),
    Setting("feedback_payload_days", 90, "Days a stored bounce or complaint keeps its payload "
            "(addresses hashed); each recording of new events drops older ones", at_least=1),
    Setting("console_idle_minutes", 30, "Minutes without a request after which a console session "
            "ends (sign in again)", at_least=1, at_most=1440),
    Setting("console_require_2fa", 0, "1: every editor must set up TOTP before using the console; "
            "0: each editor chooses", at_least=0, at_most=1),
    Setting("crossref_url", "https://api.crossref.org", "Crossref's REST API: DOI autofill and the "
            "retraction check before scheduling (empty: do not ask; stored notices still count)"),
    Setting("crossref_mailto", "", "Contact address sent to Crossref (its \"polite pool\": mailto "
            "parameter and User-Agent)"),
    Setting("crossref_timeout", 5.0, "Seconds to wait for one Crossref answer", more_than=0,
            at_most=60),
)

_BY_NAME = {s.name: s for s in SETTINGS}
NOT_SETTINGS = ("NEWSLETTER_CONFIG", "NEWSLETTER_TEST_POSTGRES_URL")
"""NEWSLETTER_* variables that are read but are not settings: no "unknown variable" warning."""
MIN_SECRET_BYTES = 32
MAKE_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


@dataclass(frozen=True)
class Config:
    database_url: str
    base_url: str
    from_: str
    reply_to: str
    bounce_address: str
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
    logo_url: str
    logo_alt: str
    list_id: str
    unsubscribe_mailto: str
    timezone: str
    templates_dir: str
    smtp_connections: int
    workers: int
    journal_dir: str
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
    trusted_proxy: str
    editor_email: str
    schedule_grace_hours: float
    recurring_rule: str
    reminder_days_before: int
    click_tracking: int
    webhook_postmark_credentials: str
    webhook_sendgrid_public_key: str
    webhook_mailgun_signing_key: str
    webhook_max_age_seconds: int
    feedback_payload_days: int
    console_idle_minutes: int
    console_require_2fa: int
    crossref_url: str
    crossref_mailto: str
    crossref_timeout: float
    warnings: tuple[str, ...] = field(default=(), compare=False)
    """Problems worth telling (an unknown NEWSLETTER_* variable…) that do not stop anything."""
    origins: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    """Where each setting's value came from: "option", an environment variable, a file, "default"."""

    @property
    def secret_keys(self) -> list[str]:
        keys = _split_keys(self.secret_key)
        if not keys:
            raise ConfigError("NEWSLETTER_SECRET_KEY is not set: links cannot be signed. "
                              "Set it in the environment (e.g. `export NEWSLETTER_SECRET_KEY="
                              f"$({MAKE_KEY})`).")
        return keys

    def value(self, name: str) -> Any:
        """The value of setting `name` as SETTINGS spells it ("from", not the field's "from_")."""
        return getattr(self, _field_name(name))

    def where(self, name: str) -> str:
        """The prefix error messages about setting `name` start with: origin and name."""
        origin = self.origins.get(name)
        return f"{origin}: {name}" if origin else name

    @cached_property
    def verp(self) -> Verp | None:
        """Per-delivery Return-Paths when bounce_address is set; None: the From address is the
        envelope sender. Built once per Config: a send asks for it once per recipient."""
        if not self.bounce_address.strip():
            return None
        return Verp(self.bounce_address, self.secret_keys, Purpose.BOUNCE)

    @property
    def effective_list_id(self) -> str:
        if self.list_id:
            return self.list_id
        host = urlsplit(self.base_url).hostname or "localhost"
        return f"Research digest <digest.{host}>"

    def with_overrides(self, **overrides: Any) -> Config:
        return load_config(overrides=overrides, base=self)

    def as_environment(self) -> dict[str, str]:
        """Every setting as its NEWSLETTER_* variable, which outranks the file: a process this
        one starts (a worker) loads exactly this configuration, whether it came from a file,
        variables or options, and no secret goes on a command line."""
        return {setting.env: str(self.value(setting.name)) for setting in SETTINGS}


def _field_name(setting_name: str) -> str:
    return "from_" if setting_name == "from" else setting_name


def _split_keys(value: str) -> list[str]:
    return [k.strip() for k in value.split(",") if k.strip()]


def _coerce(setting: Setting, value: Any, origin: str) -> Any:
    """The value as the setting's type, in its range; a float for an int is refused, not truncated."""
    where = f"{origin}: {setting.name}"
    kind = type(setting.default)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {type(value).__name__}")
        return value
    shown = "a secret" if setting.secret else repr(value)
    number: int | float
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{where}: expected a number, not {shown}")
    if kind is int:
        if isinstance(value, float):
            raise ConfigError(f"{where}: expected a whole number, not {shown}")
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a whole number, not {shown}") from None
    else:
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, not {shown}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{where}: expected a finite number, not {shown}")
    if not setting.in_bounds(number):
        raise ConfigError(f"{where}: must be {setting.bounds}, not {shown}")
    return number


def _check_secret_key(value: str, origin: str) -> None:
    """Every token in every email is signed with these keys: a short one falls to an offline guess."""
    keys = _split_keys(value)
    short = [n for n, key in enumerate(keys, 1) if len(key.encode("utf-8")) < MIN_SECRET_BYTES]
    if not short:
        return
    if len(keys) == 1:
        which = "the key is"
    else:
        which = f"key{'s' if len(short) > 1 else ''} {', '.join(map(str, short))} of {len(keys)} " \
            f"{'are' if len(short) > 1 else 'is'}"
    raise ConfigError(f"{origin}: secret_key: {which} shorter than {MIN_SECRET_BYTES} bytes, so signed "
                      f"links could be forged; make a key with: {MAKE_KEY}")


def config_file_path(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("NEWSLETTER_CONFIG", "config/newsletter.toml"))


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """ "did you mean X?" naming the closest candidate, or nothing."""
    match = get_close_matches(name, list(candidates), n=1)
    return f"did you mean {match[0]}?" if match else ""


def _read_file(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The [newsletter] table (or the whole file, if it has none) and warnings about the rest."""
    if not path.is_file():
        return {}, []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: {err}") from err
    if "newsletter" not in data:
        section, outside = data, {}
    elif isinstance(data["newsletter"], dict):
        section, outside = data["newsletter"], {k: v for k, v in data.items() if k != "newsletter"}
    else:
        raise ConfigError(f"{path}: newsletter must be the [newsletter] table of settings")
    unknown = sorted(set(section) - set(_BY_NAME))
    if unknown:
        hints = {k: _did_you_mean(k, _BY_NAME) for k in unknown}
        named = ", ".join(f"{k} ({hints[k]})" if hints[k] else k for k in unknown)
        raise ConfigError(f"{path}: unknown setting(s) {named}; known: {', '.join(_BY_NAME)}")
    warnings = []
    for key, value in outside.items():
        if isinstance(value, dict):
            warnings.append(f"{path}: [{key}] is ignored: settings belong under [newsletter]")
        elif key in _BY_NAME:
            warnings.append(f"{path}: {key} is outside [newsletter] and is ignored; move it under "
                            "[newsletter]")
        else:
            hint = _did_you_mean(key, _BY_NAME)
            warnings.append(f"{path}: {key} is outside [newsletter] and is ignored"
                            + (f"; {hint}" if hint else ""))
    return dict(section), warnings


def _environment_warnings(environ: Mapping[str, str]) -> list[str]:
    """A misspelt NEWSLETTER_* variable would otherwise be ignored without a word."""
    known = [s.env for s in SETTINGS] + list(NOT_SETTINGS)
    return [f"{name} is not a setting and is ignored; "
            + (_did_you_mean(name.upper(), known) or "`newsletter settings` lists them")
            for name in sorted(environ)
            if name.upper().startswith("NEWSLETTER_") and name not in known]


def load_config(overrides: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None, base: Config | None = None) -> Config:
    """Resolve every setting; `overrides` are CLI flags (None means "not given")."""
    environ = os.environ if environ is None else environ
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(overrides) - set(_BY_NAME)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    path = config_file_path(environ)
    if base is None:
        from_file, warnings = _read_file(path)
        warnings = _environment_warnings(environ) + warnings
    else:
        from_file, warnings = {}, list(base.warnings)
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for setting in SETTINGS:
        if setting.name in overrides:
            value, origin = overrides[setting.name], "option"
        elif base is not None:
            value = base.value(setting.name)
            origin = base.origins.get(setting.name, "config")
        elif setting.env in environ:
            value, origin = environ[setting.env], setting.env
        elif setting.name in from_file:
            value, origin = from_file[setting.name], str(path)
        else:
            value, origin = setting.default, "default"
        values[_field_name(setting.name)] = _coerce(setting, value, origin)
        origins[setting.name] = origin
    _check_secret_key(values["secret_key"], origins["secret_key"])
    config = Config(**values, warnings=tuple(warnings), origins=origins)
    _validate(config)
    return config


def _validate(config: Config) -> None:
    if config.transport not in PROVIDERS:
        raise ConfigError(f"{config.where('transport')}: {config.transport!r} is not one of "
                          f"{', '.join(PROVIDERS)}")
    _validate_provider(config)
    if config.smtp_security not in ("none", "starttls", "ssl"):
        raise ConfigError(f"{config.where('smtp_security')}: {config.smtp_security!r} is not one of "
                          "none, starttls, ssl")
    parts = urlsplit(config.base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{config.where('base_url')}: {config.base_url!r} must be an absolute http(s) URL")
    if config.trusted_proxy != "*":
        try:
            ipaddress.ip_address(config.trusted_proxy)
        except ValueError:
            raise ConfigError(f"{config.where('trusted_proxy')}: {config.trusted_proxy!r} is not an "
                              "IP address (waitress compares it exactly: 127.0.0.1, ::1, or * for any)"
                              ) from None
    if config.retry_jitter not in ("full", "equal", "none"):
        raise ConfigError(f"{config.where('retry_jitter')}: {config.retry_jitter!r} is not one of "
                          "full, equal, none")
    _validate_schedule(config)
    if config.bounce_address.strip():
        try:
            check_bounce_address(config.bounce_address)
        except BadBounceAddress as err:
            raise ConfigError(f"{config.where('bounce_address')}: {err}") from None


def _validate_schedule(config: Config) -> None:
    try:
        ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{config.where('timezone')}: {config.timezone!r} is not a time zone; "
                          "use an Area/City name such as America/Toronto") from None
    if config.recurring_rule.strip():
        parse_rule(config.recurring_rule)


def _validate_provider(config: Config) -> None:
    """What the chosen provider's row needs, checked now so a missing one fails before a send starts."""
    provider = PROVIDERS[config.transport]
    for need in provider.needs:
        if not str(config.value(need.setting)).strip():
            raise ConfigError(f"{_BY_NAME[need.setting].env} is not set: the {provider.name} transport "
                              f"{need.why}.")
    if provider.http and config.api_base_url:
        parts = urlsplit(config.api_base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{config.where('api_base_url')}: {config.api_base_url!r} must be an "
                              "absolute http(s) URL")


def describe_settings() -> list[dict[str, Any]]:
    """The settings table, for `newsletter settings` and the docs."""
    return [{"name": s.name, "env": s.env, "default": s.default, "help": s.help,
             "secret": s.secret, "allowed": s.bounds or None} for s in SETTINGS]


assert {_field_name(s.name) for s in SETTINGS} == {f.name for f in fields(Config)} - {"warnings", "origins"}
assert all(settings_named(p) <= set(_BY_NAME) for p in PROVIDERS.values()), \
    "a provider row reads an undeclared setting"
