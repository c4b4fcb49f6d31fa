"""Locate the shipped templates and config, from a checkout or from an installed wheel.

In a checkout they sit beside the package (`templates/`, `config/`); the wheel build copies them
into the package as `newsletter/_templates` and `newsletter/_config`.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _first_existing(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"none of {', '.join(map(str, candidates))} exists")


def templates_dir() -> Path:
    return _first_existing(_PACKAGE / "_templates", _PACKAGE.parent / "templates")


def config_dir() -> Path:
    return _first_existing(_PACKAGE / "_config", _PACKAGE.parent / "config")


def migrations_dir() -> Path:
    return _PACKAGE / "db" / "migrations"
