"""What the console keeps: editors, their one-time recovery codes, their sessions, the audit log.

Secrets are never stored as given: passwords as argon2id hashes, the TOTP secret encrypted with a
key derived from NEWSLETTER_SECRET_KEY, recovery codes and session ids as SHA-256 hashes (they
are long random values, so a fast hash is enough; a stolen table reveals no usable one).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime
from ..db.types import closed_enum


class Role(enum.Enum):
    OWNER = "owner"
    """Manages editors, exports subscribers, changes settings."""
    EDITOR = "editor"
    """Content, editions, schedule, send."""


class Editor(Base):
    __tablename__ = "editors"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(closed_enum(Role, "editor_role"))
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret: Mapped[str | None] = mapped_column(String(300))
    """Encrypted (totp.SecretBox); set once the editor has proved a first code."""
    totp_last_step: Mapped[int | None]
    """The 30-second step of the last accepted code: that code, and older ones, are refused."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def has_second_factor(self) -> bool:
        return self.totp_secret is not None


class RecoveryCode(Base):
    __tablename__ = "editor_recovery_codes"
    __table_args__ = (Index("ix_editor_recovery_codes_editor_id", "editor_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    editor_id: Mapped[int] = mapped_column(ForeignKey("editors.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EditorSession(Base):
    """A signed-in browser. The cookie carries a random id; only its hash is stored here."""

    __tablename__ = "editor_sessions"
    __table_args__ = (Index("ix_editor_sessions_editor_id", "editor_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    editor_id: Mapped[int] = mapped_column(ForeignKey("editors.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    client: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(300))
    setup_only: Mapped[bool]
    """2FA is required and this editor has none yet: the session may only set it up."""
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """Who did what, when, from where. The actor is kept by address, so removing an editor keeps
    their history readable."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(60))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    client: Mapped[str] = mapped_column(String(64))
