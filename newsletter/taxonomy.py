"""The fixed taxonomy (topics, research types): read from config, synchronised into the store."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db.models import ResearchType, Topic
from .errors import ConfigError
from .paths import config_dir


def slugify(text: str) -> str:
    """Lowercase ASCII; every run of other characters becomes one `-`; no `-` at either end."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass(frozen=True)
class TaxonomyEntry:
    slug: str
    name: str
    original: str | None = None


def read_taxonomy(path: Path, table: str) -> list[TaxonomyEntry]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: {err}") from err
    entries = []
    for index, raw in enumerate(data.get(table, [])):
        slug, name = raw.get("slug", ""), raw.get("name", "")
        if not name or slug != slugify(raw.get("original") or name):
            raise ConfigError(f"{path}: {table}[{index}]: slug {slug!r} must be the slug of "
                              f"{raw.get('original') or name!r} ({slugify(raw.get('original') or name)!r})")
        entries.append(TaxonomyEntry(slug, name, raw.get("original")))
    if len({e.slug for e in entries}) != len(entries):
        raise ConfigError(f"{path}: duplicate slugs in {table}")
    return entries


def default_topics() -> list[TaxonomyEntry]:
    return read_taxonomy(config_dir() / "topics.toml", "topic")


def default_research_types() -> list[TaxonomyEntry]:
    return read_taxonomy(config_dir() / "research_types.toml", "research_type")


def sync_taxonomy(session: Session) -> tuple[int, int]:
    """Insert new entries and update names; never delete (stored choices point at slugs)."""
    added = 0
    tables: tuple[tuple[type[Topic] | type[ResearchType], list[TaxonomyEntry]], ...] = (
        (Topic, default_topics()), (ResearchType, default_research_types()))
    for model, entries in tables:
        rows: list[Topic | ResearchType] = list(session.scalars(select(model)))
        existing = {row.slug: row for row in rows}
        for position, entry in enumerate(entries):
            row = existing.get(entry.slug)
            if row is None:
                row = model(slug=entry.slug)
                session.add(row)
                added += 1
            row.name, row.position = entry.name, position
            if isinstance(row, Topic):
                row.original_name = entry.original
    session.flush()
    return added, len(default_topics()) + len(default_research_types())


def topic_slugs(session: Session) -> list[str]:
    return list(session.scalars(select(Topic.slug).order_by(Topic.position)))


def research_type_slugs(session: Session) -> list[str]:
    return list(session.scalars(select(ResearchType.slug).order_by(ResearchType.position)))
