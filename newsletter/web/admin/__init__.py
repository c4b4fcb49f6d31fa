"""The editors' console under /admin: sign-in (password, then TOTP), sessions, 2FA, editors and
the audit log (views.py); summaries, editions, schedule and send, subscribers and topic coverage,
one module each. Every view carries `@requires(...)` or `@public` (auth.py); a test walks the URL
map to prove it. The pages call the same library functions as the CLI."""

from __future__ import annotations

from . import coverage, editions, sending, subscribers, summaries  # noqa: F401  (their routes)
from .views import blueprint

__all__ = ["blueprint"]
