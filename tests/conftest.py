"""Fixtures: a fresh store on SQLite (always) and PostgreSQL (when NEWSLETTER_TEST_POSTGRES_URL is
set), a real SMTP server on loopback for the tests that ask for one, Newsletters made on the store
(`make_newsletter`, `newsletter`), and the CLI run in-process (`run_cli`).

Markers (pyproject.toml): `process` starts other processes, `browser` drives Chromium, `slow` takes
more than a few seconds on its own, and `postgresql` (set here) is a test's PostgreSQL variant;
everything else is marked `unit` here, so `pytest -m unit` is the fast loop on SQLite and new tests
join it unless marked otherwise."""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from newsletter.catcher import SMTPCatcher
from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.context import Newsletter
from newsletter.editors import passwords
from newsletter.web import create_app

from .fault_server import FaultyHandler, faulty_server

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("NEWSLETTER_TEST_POSTGRES_URL", "")
TEST_SECRET = "test-secret-" + secrets.token_hex(16)  # 44 bytes: keys under 32 are refused
NOT_UNIT = ("process", "browser", "slow", "postgresql")
NO_SMTP = ("127.0.0.1", 1)
"""Where mail goes in a test that did not ask for `smtp_server`: nothing listens there."""


SLOW_SECONDS = 0.3
DURATIONS = Path(__file__).with_name("durations.json")


def measured_slow() -> set[str]:
    """Tests whose measured time (setup + call + teardown, `--durations=0` of a full serial run,
    kept in tests/durations.json as pytest-split keeps its own) passed SLOW_SECONDS."""
    recorded = json.loads(DURATIONS.read_text(encoding="utf-8")) if DURATIONS.exists() else {}
    return {test for test, seconds in recorded.items() if seconds > SLOW_SECONDS}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    slow = measured_slow()
    for item in items:
        callspec = getattr(item, "callspec", None)
        if (callspec is not None and callspec.params.get("database_url") == "postgresql") \
                or "url_with_password" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgresql)
        if item.nodeid in slow:
            item.add_marker(pytest.mark.slow)
        if not any(item.get_closest_marker(name) for name in NOT_UNIT):
            item.add_marker(pytest.mark.unit)


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


def _smtp_of(request: pytest.FixtureRequest) -> tuple[str, int]:
    """The test's `smtp_server` if it asked for one (started now, so it outlives what uses it)."""
    if "smtp_server" not in request.fixturenames:
        return NO_SMTP
    catcher: SMTPCatcher = request.getfixturevalue("smtp_server")
    return catcher.host, catcher.port


def make_config(database_url: str, **overrides: object):  # type: ignore[no-untyped-def]
    values = {"database_url": database_url, "secret_key": TEST_SECRET,
              "base_url": "https://digest.example.org", "transport": "smtp",
              "from": "PPRNet Research Digest <digest@pprnet.example>",
              "smtp_user": "", "smtp_password": "", "smtp_security": "none", "templates_dir": "",
              "list_id": "", "unsubscribe_mailto": "", "reply_to": "", "crossref_url": ""}
    values.update(overrides)
    return load_config(overrides=values, environ={"NEWSLETTER_CONFIG": "/nonexistent.toml"})


MakeNewsletter = Callable[..., Newsletter]


@pytest.fixture(scope="session")
def initialised_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store `init` has made, once. `make_newsletter` makes each new SQLite store a copy
    of it, as initialised as its own `init` would leave it: running every migration takes a tenth
    of a second, a copy a millisecond."""
    path = tmp_path_factory.mktemp("initialised") / "newsletter.db"
    nl = Newsletter.open(make_config(f"sqlite:///{path}"))
    try:
        nl.init()
    finally:
        nl.close()
    return path


def _copied(template: Path, url: str) -> bool:
    """Whether the store at `url` was new and is now a copy of `template`."""
    target = Path(url.removeprefix("sqlite:///"))
    if not url.startswith("sqlite:///") or target.exists():
        return False
    with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
    return True


@pytest.fixture
def make_newsletter(request: pytest.FixtureRequest, database_url: str,
                    initialised_sqlite: Path) -> Iterator[MakeNewsletter]:
    """`make_newsletter(**overrides)`: a Newsletter opened on this test's store and initialised (a
    new SQLite store as a copy of `initialised_sqlite`), closed after the test. Overrides are config
    values (`make_config`); mail goes to `smtp_server` when the test asked for it, else to NO_SMTP."""
    host, port = _smtp_of(request)
    opened: list[Newsletter] = []

    def make(**overrides: object) -> Newsletter:
        config = make_config(database_url, **{"smtp_host": host, "smtp_port": port, **overrides})
        copied = _copied(initialised_sqlite, config.database_url)
        nl = Newsletter.open(config)
        opened.append(nl)
        if not copied:
            nl.init()
        return nl

    yield make
    for nl in reversed(opened):
        nl.close()


@pytest.fixture
def newsletter(make_newsletter: MakeNewsletter) -> Newsletter:
    return make_newsletter()


class RunCli:
    """`run_cli(*args, code=0, **env)`: one `newsletter` command through click's CliRunner, run in
    tmp_path; returns its Result once its exit code is `code` (None: any). `env` is what every call
    gets (change it for the rest of the test); keyword arguments add to it for one call."""

    def __init__(self, env: dict[str, str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.env, self.cwd, self.monkeypatch = env, cwd, monkeypatch

    def __call__(self, *args: str, code: int | None = 0, **env: str) -> Result:
        with self.monkeypatch.context() as patch:
            patch.chdir(self.cwd)
            result = CliRunner().invoke(cli, list(args), env={**self.env, **env}, catch_exceptions=False)
        assert code is None or result.exit_code == code, result.output
        return result


@pytest.fixture
def run_cli(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunCli:
    """The CLI on this test's store (`database_url` if the test uses it, else a SQLite file in
    tmp_path that nothing has initialised), with TEST_SECRET, no config file, and mail to
    `smtp_server` when the test asked for it, else to NO_SMTP."""
    url = (request.getfixturevalue("database_url") if "database_url" in request.fixturenames
           else f"sqlite:///{tmp_path / 'n.db'}")
    host, port = _smtp_of(request)
    return RunCli({"NEWSLETTER_DATABASE_URL": url, "NEWSLETTER_SECRET_KEY": TEST_SECRET,
                   "NEWSLETTER_CONFIG": "/nonexistent.toml",
                   "NEWSLETTER_BASE_URL": "https://digest.example.org",
                   "NEWSLETTER_TRANSPORT": "smtp", "NEWSLETTER_SMTP_HOST": host,
                   "NEWSLETTER_SMTP_PORT": str(port), "NEWSLETTER_SMTP_SECURITY": "none"},
                  tmp_path, monkeypatch)


@pytest.fixture
def app(newsletter: Newsletter) -> Flask:
    """The web app on the test store, in testing mode (mail sent inline, a random key if none)."""
    return create_app(newsletter, testing=True)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def handler() -> FaultyHandler:
    """What the misbehaving SMTP server of `server` should do, per recipient (fault_server.py)."""
    return FaultyHandler()


@pytest.fixture
def server(handler: FaultyHandler) -> Iterator[SMTPCatcher]:
    with faulty_server(handler) as catcher:
        yield catcher


@pytest.fixture
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id at its smallest cost, for tests of sign-ins and pages rather than of hashing, so
    twenty sign-ins take a second on a loaded machine (test_console_auth tests the real
    parameters)."""
    monkeypatch.setattr(passwords, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024,
                                                            parallelism=1))
    passwords._dummy_hash.cache_clear()
