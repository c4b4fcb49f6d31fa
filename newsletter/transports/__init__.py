"""Ways of handing messages over; `make_transport` builds the one the settings name.

Which providers exist, and how each is built from the settings, is the table in
`newsletter.providers`: this package holds their files but no list of them. Their classes are
still importable from here (`from newsletter.transports import SMTPTransport`), loaded on first use.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import import_module
from typing import Any

from ..config import Config
from ..errors import ConfigError
from ..mail.message import Outcome, OutgoingMessage, SendResult, Transport
from ..providers import PROVIDERS
from .http import HTTPSettings, HTTPTransport

_CLASSES = {path.rpartition(":")[2]: path for provider in PROVIDERS.values()
            for path in (provider.transport, provider.settings) if path}
"""Each class a provider row names, by its own name: the lazy exports of this package."""

__all__ = ["HTTPSettings", "HTTPTransport", "OutgoingMessage", "Outcome", "SendResult", "Transport",
           "make_transport", "transport_for"]
__all__ += sorted(set(_CLASSES) - set(__all__))


def make_transport(config: Config) -> Transport:
    """The transport of the provider `config.transport`, built as its row says."""
    provider = PROVIDERS.get(config.transport)
    if provider is None:  # only a Config that bypassed load_config's check gets here
        raise ConfigError(f"{config.where('transport')}: {config.transport!r} is not one of "
                          f"{', '.join(PROVIDERS)}")
    first = [_load(provider.settings)(**_values(config, provider.fields))] if provider.settings else []
    transport: Transport = _load(provider.transport)(*first, **_values(config, provider.options))
    return transport


@contextmanager
def transport_for(config: Config, given: Transport | None = None) -> Iterator[Transport]:
    """`given` as it is, or the configured transport for the block, closed after it: a caller
    that lends its own transport (a test, the demo) keeps it open."""
    if given is not None:
        yield given
        return
    transport = make_transport(config)
    try:
        yield transport
    finally:
        transport.close()


def _values(config: Config, names: Mapping[str, str]) -> dict[str, Any]:
    return {key: config.value(setting) for key, setting in names.items()}


def _load(path: str) -> Any:
    """The attribute a "module:attribute" path names; the module is imported on first use."""
    module, _, attribute = path.partition(":")
    return getattr(import_module(module), attribute)


def __getattr__(name: str) -> Any:
    """`from newsletter.transports import MailgunTransport` keeps working without a list here."""
    if name not in _CLASSES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = _load(_CLASSES[name])
    globals()[name] = value
    return value
