"""newsletter: publish a monthly research-summary email to topic-filtered subscribers.

The public API is `__all__`; everything else is reached through its module. The heavier names
load on first use, so `import newsletter.errors` stays cheap and import order cannot cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import load_config
from .errors import (
    ConfigError,
    ContentError,
    ContentErrors,
    DeliveryError,
    NewsletterError,
    PermanentDeliveryError,
    RenderError,
    SendInProgress,
    StateError,
    StoreError,
    TemporaryDeliveryError,
)

if TYPE_CHECKING:
    from .context import Newsletter
    from .sending.run import send_edition
    from .transports import make_transport

__version__ = "0.1.0"
__all__ = ["ConfigError", "ContentError", "ContentErrors", "DeliveryError", "Newsletter",
           "NewsletterError", "PermanentDeliveryError", "RenderError", "SendInProgress",
           "StateError", "StoreError", "TemporaryDeliveryError", "__version__", "load_config",
           "make_transport", "send_edition"]

_LAZY = {"Newsletter": ("newsletter.context", "Newsletter"),
         "send_edition": ("newsletter.sending.run", "send_edition"),
         "make_transport": ("newsletter.transports", "make_transport")}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'newsletter' has no attribute {name!r}")
    from importlib import import_module

    module, attribute = _LAZY[name]
    value = getattr(import_module(module), attribute)
    globals()[name] = value
    return value
