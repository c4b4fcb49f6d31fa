"""One registry of providers (`newsletter.providers`): every row builds its class, config refuses
any other name, and neither config nor `make_transport` keeps a list of its own."""

from __future__ import annotations

import ast
import re
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

import newsletter.transports
from newsletter.config import Config, load_config
from newsletter.errors import ConfigError
from newsletter.providers import PROVIDERS, Provider
from newsletter.transports import make_transport

from .conftest import REPO

NO_FILE = {"NEWSLETTER_CONFIG": "/nonexistent.toml"}


def load(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(import_module(module), attribute)


def minimal(provider: Provider, tmp_path: Path, **overrides: Any) -> Config:
    """Defaults, plus a value for each setting the row says it needs."""
    needed = {need.setting: f"{provider.name}.example.org" for need in provider.needs}
    return load_config(overrides={"transport": provider.name, "outbox_dir": str(tmp_path / "outbox"),
                                  **needed, **overrides}, environ=NO_FILE)


@pytest.mark.parametrize("name", list(PROVIDERS))
def test_every_row_builds_its_class(name: str, tmp_path: Path) -> None:
    provider = PROVIDERS[name]
    cls = load(provider.transport)
    transport = make_transport(minimal(provider, tmp_path))
    try:
        assert type(transport) is cls
        assert transport.name == name
        assert getattr(newsletter.transports, cls.__name__) is cls
    finally:
        transport.close()


@pytest.mark.parametrize(("name", "setting"),
                         [(p.name, n.setting) for p in PROVIDERS.values() for n in p.needs])
def test_a_needed_setting_is_checked_when_settings_load(name: str, setting: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"NEWSLETTER_{setting.upper()} is not set: the {name} "):
        minimal(PROVIDERS[name], tmp_path, **{setting: "  "})


def test_an_unknown_name_is_refused_listing_the_registry() -> None:
    with pytest.raises(ConfigError, match=re.escape(f"'pigeon' is not one of {', '.join(PROVIDERS)}")):
        load_config(overrides={"transport": "pigeon"}, environ=NO_FILE)


CONSUMERS = ("newsletter/config.py", "newsletter/transports/__init__.py")
NOT_A_PROVIDER = {"newsletter/config.py": ["outbox"]}
"""Strings that only look like a provider name: the default folder of `outbox_dir`."""


@pytest.mark.parametrize("path", CONSUMERS)
def test_no_consumer_hard_codes_a_provider(path: str) -> None:
    """No provider name as a string (nor two in one string: a list in prose), no provider import."""
    tree = ast.parse((REPO / path).read_text(encoding="utf-8"))
    words = re.compile(r"\b(" + "|".join(map(re.escape, PROVIDERS)) + r")\b")
    strings = [node.value for node in ast.walk(tree)
               if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    named = [s for s in strings if s in PROVIDERS or len(set(words.findall(s))) > 1]
    assert named == NOT_A_PROVIDER.get(path, [])
    provider_modules = {p.transport.partition(":")[0] for p in PROVIDERS.values()}
    imported = {("newsletter.transports." if node.level else "") + (node.module or "")
                for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported & provider_modules == set()
