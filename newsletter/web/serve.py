"""How waitress serves the app: the one place its settings are chosen, for `serve` and `run`."""

from __future__ import annotations

from typing import Any

from flask import Flask

from ..context import Newsletter
from .app import create_app

__all__ = ["waitress_app"]


def waitress_app(nl: Newsletter) -> tuple[Flask, dict[str, Any]]:
    """The app and the waitress settings to serve it with, for every command that runs waitress.

    Waitress 3 deletes every X-Forwarded-* header unless it is told which peer is the proxy, so
    ProxyFix never saw them and every visitor had the proxy's address (one signup limit for the
    whole site, consent hashing the proxy, no HSTS). With `proxy_hops` set, waitress itself reads
    X-Forwarded-For/-Proto, only from `trusted_proxy`'s address, and ProxyFix stays out so they
    are not applied twice. Without it, forged headers from clients are still deleted.
    """
    settings: dict[str, Any] = {"ident": "newsletter", "max_request_body_size": 64 * 1024,
                                "clear_untrusted_proxy_headers": True}
    hops = nl.config.proxy_hops
    if hops > 0:
        settings.update(
            trusted_proxy=nl.config.trusted_proxy,
            trusted_proxy_count=hops,
            trusted_proxy_headers={"x-forwarded-for", "x-forwarded-proto"})
    return create_app(nl, proxy_fix=False), settings
