"""The public web app: `create_app()` builds it; `newsletter serve` runs it under waitress."""

from __future__ import annotations

from .app import create_app, register_blueprints

__all__ = ["create_app", "register_blueprints"]
