"""Every way mail can leave, as data: one row per provider, read by two layers.

`newsletter.config` checks the name and the settings a provider needs when settings are loaded;
`newsletter.transports.make_transport`, far above, imports the class a row names and builds it.
Classes are named by "module:attribute" strings so this table imports nothing and sits below both:
adding a provider is one row here plus its file in `newsletter/transports/`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Need:
    """A setting the provider cannot work without; `why` ends "the <name> transport …" when empty."""

    setting: str
    why: str


@dataclass(frozen=True)
class Provider:
    """One provider: `make_transport` calls `transport(settings(**fields), **options)`.

    `transport` and `settings` are "module:attribute" paths (no `settings`: no first argument);
    `fields` and `options` map each field or keyword to the name of the setting that fills it.
    """

    name: str
    transport: str
    settings: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    needs: tuple[Need, ...] = ()
    http: bool = False
    """An HTTP API: `api_base_url`, when set, must be an absolute http(s) URL."""


_API_KEY = Need("api_key", "needs the provider's API key. Set it in the environment")
_HTTP_FIELDS = {"api_key": "api_key", "base_url": "api_base_url", "timeout": "http_timeout"}


def _http(name: str, transport: str, *, options: Mapping[str, str] | None = None,
          needs: tuple[Need, ...] = ()) -> Provider:
    """An HTTP provider: `HTTPSettings` first, an API key always needed, its batch limit its own."""
    return Provider(name, transport, settings="newsletter.transports.http:HTTPSettings",
                    fields=_HTTP_FIELDS, options=options or {}, needs=(_API_KEY, *needs), http=True)


_ROWS = (
    Provider("smtp", "newsletter.transports.smtp:SMTPTransport",
             settings="newsletter.transports.smtp:SMTPSettings",
             fields={"host": "smtp_host", "port": "smtp_port", "security": "smtp_security",
                     "user": "smtp_user", "password": "smtp_password", "timeout": "smtp_timeout"},
             options={"batch_size": "batch_size", "connections": "smtp_connections",
                      "dkim_selector": "dkim_selector", "dkim_domain": "dkim_domain",
                      "dkim_private_key_path": "dkim_private_key_path"}),
    Provider("outbox", "newsletter.transports.outbox:OutboxTransport", options={"folder": "outbox_dir"}),
    _http("postmark", "newsletter.transports.postmark:PostmarkTransport",
          options={"message_stream": "postmark_message_stream"}),
    _http("sendgrid", "newsletter.transports.sendgrid:SendGridTransport"),
    _http("mailgun", "newsletter.transports.mailgun:MailgunTransport", options={"domain": "mailgun_domain"},
          needs=(Need("mailgun_domain", "sends through one of your Mailgun domains (e.g. mg.example.org)"),)),
)

# MemoryTransport is deliberately not a row: chosen by a setting, it would mark a real audience
# "sent" and deliver nothing. Tests construct it directly.
PROVIDERS: Mapping[str, Provider] = MappingProxyType({row.name: row for row in _ROWS})
"""The providers by name, in the order the settings help and error messages list them."""
DEFAULT_PROVIDER = "smtp"


def settings_named(provider: Provider) -> set[str]:
    """Every setting the row reads, so `config` can check each one is declared."""
    return {*provider.fields.values(), *provider.options.values(), *(n.setting for n in provider.needs)}
