"""Column helpers: closed vocabularies stored as checked strings, portable across databases."""

from __future__ import annotations

import enum
import uuid
from typing import Any

from sqlalchemy import Enum


def closed_enum(enum_class: type[enum.Enum], name: str) -> Any:
    """A VARCHAR with a CHECK constraint listing the enum's values (no native enum to migrate)."""
    return Enum(enum_class, name=name, native_enum=False, create_constraint=True, length=20,
                values_callable=lambda members: [m.value for m in members],
                validate_strings=True)


def new_uid() -> str:
    """Public, unguessable identifier: links and tokens carry this, never a row id."""
    return uuid.uuid4().hex
