"""The editors' console under /admin: sign-in (password, then TOTP), sessions, 2FA, editors and
the audit log. Every view carries `@requires(...)` or `@public` (auth.py); a test walks the URL map
to prove it. The pages call newsletter.editors, as the `newsletter editors` commands do."""

from __future__ import annotations

from .views import blueprint

__all__ = ["blueprint"]
