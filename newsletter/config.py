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

from .errors import ConfigError


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
    Setting("transport", "smtp", "How mail leaves: smtp | outbox"),
    Setting("smtp_host", "localhost", "SMTP server host"),
    Setting("smtp_port", 25, "SMTP server port"),
    Setting("smtp_user", "", "SMTP AUTH user (empty: no AUTH)"),
    Setting("smtp_password", "", "SMTP AUTH password", secret=True),
    Setting("smtp_security", "none", "none | starttls | ssl"),
    Setting("smtp_timeout", 30.0, "Seconds before an SMTP command is abandoned"),
    Setting("outbox_dir", "outbox", "Folder for .eml files when transport = outbox"),
    Setting("batch_size", 200, "Recipients handed to the transport per ledger transaction"),
    Setting("organisation", "Psychotherapy Practice Research Network",
            "Who publishes the newsletter (footer, List-Id)"),
    Setting("postal_address", "Ottawa, Ontario, Canada", "Postal address shown in every footer"),
    Setting("list_id", "", "List-Id header value; default derived from base_url's host"),
    Setting("unsubscribe_mailto", "", "mailto: address for List-Unsubscribe; default derived from From"),
    Setting("timezone", "America/Toronto", "The editor's time zone"),
    Setting("templates_dir", "", "Folder whose templates override the shipped ones"),
)

_BY_NAME = {s.name: s for s in SETTINGS}


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
    organisation: str
    postal_address: str
    list_id: str
    unsubscribe_mailto: str
    timezone: str
    templates_dir: str

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
    if config.transport not in ("smtp", "outbox"):
        raise ConfigError(f"transport: {config.transport!r} is not one of smtp, outbox")
    if config.smtp_security not in ("none", "starttls", "ssl"):
        raise ConfigError(f"smtp_security: {config.smtp_security!r} is not one of none, starttls, ssl")
    parts = urlsplit(config.base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"base_url: {config.base_url!r} must be an absolute http(s) URL")
    if config.batch_size < 1:
        raise ConfigError("batch_size: must be at least 1")


def describe_settings() -> list[dict[str, Any]]:
    """The settings table, for `newsletter settings` and the docs."""
    return [{"name": s.name, "env": s.env, "default": s.default, "help": s.help,
             "secret": s.secret} for s in SETTINGS]


assert {_field_name(s.name) for s in SETTINGS} == {f.name for f in fields(Config)}
