"""Fixtures: a fresh store on SQLite (always) and PostgreSQL (when NEWSLETTER_TEST_POSTGRES_URL is
set), a real SMTP server on loopback, and a configured Newsletter tying them together."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from newsletter.catcher import SMTPCatcher
from newsletter.config import load_config
from newsletter.context import Newsletter

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("NEWSLETTER_TEST_POSTGRES_URL", "")
TEST_SECRET = "test-secret-" + secrets.token_hex(16)  # 44 bytes: keys under 32 are refused


def _postgres_schema_url() -> Iterator[str]:
    """A throwaway schema per test, so tests never see each other's rows."""
    base = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'newsletter.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need NEWSLETTER_TEST_POSTGRES_URL "
                    "(e.g. postgresql://postgres@127.0.0.1:5432/test); .ci/run sets it")
    yield from _postgres_schema_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'newsletter.db'}"


@pytest.fixture
def smtp_server() -> Iterator[SMTPCatcher]:
    with SMTPCatcher() as catcher:
        yield catcher


def make_config(database_url: str, **overrides: object):  # type: ignore[no-untyped-def]
    values = {"database_url": database_url, "secret_key": TEST_SECRET,
              "base_url": "https://digest.example.org", "transport": "smtp",
              "from": "PPRNet Research Digest <digest@pprnet.example>",
              "smtp_user": "", "smtp_password": "", "smtp_security": "none", "templates_dir": "",
              "list_id": "", "unsubscribe_mailto": "", "reply_to": ""}
    values.update(overrides)
    return load_config(overrides=values, environ={"NEWSLETTER_CONFIG": "/nonexistent.toml"})


@pytest.fixture
def newsletter(database_url: str, smtp_server: SMTPCatcher) -> Iterator[Newsletter]:
    nl = Newsletter.open(make_config(database_url, smtp_host=smtp_server.host,
                                     smtp_port=smtp_server.port))
    nl.init()
    yield nl
    nl.close()
