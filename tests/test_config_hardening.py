"""Settings refuse what would hurt later: weak keys, out-of-range numbers, silent typos, bad store URLs."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import describe_settings, load_config
from newsletter.errors import ConfigError

from .conftest import TEST_SECRET, make_config

MAKE_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def environ(tmp_path: Path, toml: str | None = None, **variables: str) -> dict[str, str]:
    path = tmp_path / "newsletter.toml"
    if toml is not None:
        path.write_text(toml, encoding="utf-8")
    return {"NEWSLETTER_CONFIG": str(path), **variables}


# Item 6: a weak secret key.

@pytest.mark.parametrize("key", ["x", "k" * 31, "é" * 15])
def test_a_secret_key_under_32_bytes_is_refused_with_how_to_make_one(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ=environ(tmp_path, NEWSLETTER_SECRET_KEY=key))
    message = str(caught.value)
    assert message.startswith("NEWSLETTER_SECRET_KEY: secret_key: the key is shorter than 32 bytes")
    assert message.endswith(MAKE_KEY)
    assert key not in message


def test_32_bytes_is_enough_counted_in_bytes_not_characters(tmp_path: Path) -> None:
    for key in ("k" * 32, "é" * 16):
        assert load_config(environ=environ(tmp_path, NEWSLETTER_SECRET_KEY=key)).secret_keys == [key]


def test_every_rotated_key_must_be_long_enough(tmp_path: Path) -> None:
    good = "g" * 32
    with pytest.raises(ConfigError, match="secret_key: key 2 of 3 is shorter than 32 bytes"):
        load_config(environ=environ(tmp_path, NEWSLETTER_SECRET_KEY=f"{good},old,{good}"))
    with pytest.raises(ConfigError, match="secret_key: keys 1, 2 of 2 are shorter"):
        make_config("sqlite://", secret_key="new, old")
    with pytest.raises(ConfigError, match="option: secret_key: key 1 of 2"):
        make_config("sqlite://").with_overrides(secret_key=f"new-key,{TEST_SECRET}")


def test_the_cli_refuses_a_short_key_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init"], env={
        **environ(tmp_path), "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'n.db'}",
        "NEWSLETTER_SECRET_KEY": "short"})
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "Configuration error: NEWSLETTER_SECRET_KEY: secret_key: the key is shorter than 32 bytes, so "
        f"signed links could be forged; make a key with: {MAKE_KEY}"]


# Items 7 and 9d: types and ranges, with the setting and its origin named.

@pytest.mark.parametrize(("variable", "value", "message"), [
    ("NEWSLETTER_RETRY_LATER", "0", "retry_later: must be more than 0, not '0'"),
    ("NEWSLETTER_RETRY_LATER", "-5", "retry_later: must be more than 0"),
    ("NEWSLETTER_RETRY_INITIAL", "0", "retry_initial: must be more than 0"),
    ("NEWSLETTER_RETRY_CAP", "0", "retry_cap: must be more than 0"),
    ("NEWSLETTER_RETRY_FACTOR", "0.5", "retry_factor: must be at least 1"),
    ("NEWSLETTER_RETRY_MAX_ATTEMPTS", "0", "retry_max_attempts: must be 1 to 100"),
    ("NEWSLETTER_RETRY_MAX_ATTEMPTS", "1000", "retry_max_attempts: must be 1 to 100"),
    ("NEWSLETTER_SMTP_PORT", "70000", "smtp_port: must be 1 to 65535, not '70000'"),
    ("NEWSLETTER_SMTP_PORT", "0", "smtp_port: must be 1 to 65535"),
    ("NEWSLETTER_SMTP_PORT", "25.9", "smtp_port: expected a whole number, not '25.9'"),
    ("NEWSLETTER_SMTP_TIMEOUT", "0", "smtp_timeout: must be more than 0"),
    ("NEWSLETTER_HTTP_TIMEOUT", "0", "http_timeout: must be more than 0"),
    ("NEWSLETTER_CONFIRM_EXPIRY_DAYS", "-1", "confirm_expiry_days: must be at least 1"),
    ("NEWSLETTER_CONFIRM_EXPIRY_DAYS", "0", "confirm_expiry_days: must be at least 1"),
    ("NEWSLETTER_RATE_LIMIT", "-1", "rate_limit: must be at least 0 (0: no limit)"),
    ("NEWSLETTER_RATE_LIMIT", "inf", "rate_limit: expected a finite number"),
    ("NEWSLETTER_RETRY_LATER", "nan", "retry_later: expected a finite number"),
    ("NEWSLETTER_RATE_LIMIT_PER_CLIENT", "0", "rate_limit_per_client: must be at least 1"),
    ("NEWSLETTER_RATE_LIMIT_PER_ADDRESS", "0", "rate_limit_per_address: must be at least 1"),
    ("NEWSLETTER_RATE_LIMIT_WINDOW_SECONDS", "0", "rate_limit_window_seconds: must be at least 1"),
    ("NEWSLETTER_SMTP_CONNECTIONS", "0", "smtp_connections: must be at least 1"),
    ("NEWSLETTER_PROXY_HOPS", "-1", "proxy_hops: must be at least 0"),
    ("NEWSLETTER_TRUSTED_PROXY", "localhost", "trusted_proxy: 'localhost' is not an IP address"),
])
def test_out_of_range_environment_values_are_refused(tmp_path: Path, variable: str, value: str,
                                                     message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(variable)}: {re.escape(message)}"):
        load_config(environ=environ(tmp_path, **{variable: value}))


@pytest.mark.parametrize(("line", "message"), [
    ("smtp_port = 25.9", "smtp_port: expected a whole number, not 25.9"),
    ("smtp_port = 25.0", "smtp_port: expected a whole number, not 25.0"),
    ("smtp_port = true", "smtp_port: expected a number, not True"),
    ("smtp_port = 70000", "smtp_port: must be 1 to 65535, not 70000"),
    ("smtp_timeout = 0", "smtp_timeout: must be more than 0, not 0"),
    ("confirm_expiry_days = -1", "confirm_expiry_days: must be at least 1, not -1"),
    ("retry_later = 0", "retry_later: must be more than 0, not 0"),
    ("rate_limit_per_client = 0", "rate_limit_per_client: must be at least 1, not 0"),
])
def test_out_of_range_file_values_name_the_file_and_key(tmp_path: Path, line: str, message: str) -> None:
    env = environ(tmp_path, f"[newsletter]\n{line}\n")
    with pytest.raises(ConfigError, match=f"^{re.escape(env['NEWSLETTER_CONFIG'])}: {re.escape(message)}$"):
        load_config(environ=env)


def test_flags_are_checked_too() -> None:
    with pytest.raises(ConfigError, match=r"^option: smtp_port: expected a whole number, not 25\.9$"):
        make_config("sqlite://", smtp_port=25.9)
    with pytest.raises(ConfigError, match="^option: batch_size: must be at least 1, not 0$"):
        make_config("sqlite://").with_overrides(batch_size=0)


def test_a_rate_limit_of_0_means_no_limit_and_the_ranges_are_listed(tmp_path: Path) -> None:
    assert load_config(environ=environ(tmp_path, NEWSLETTER_RATE_LIMIT="0")).rate_limit == 0.0
    allowed = {s["name"]: s["allowed"] for s in describe_settings()}
    assert allowed["rate_limit"] == "at least 0 (0: no limit)"
    assert allowed["smtp_port"] == "1 to 65535"
    assert allowed["retry_later"] == "more than 0"
    assert allowed["base_url"] is None


# Item 9e: unknown variables and keys are told, with the nearest setting.

def test_an_unknown_variable_is_a_warning_naming_the_nearest_setting(tmp_path: Path) -> None:
    config = load_config(environ=environ(tmp_path, NEWSLETTER_SMTP_HOTS="x", NEWSLETTER_ZZZZZZZZZZZZ="1",
                                         NEWSLETTER_TEST_POSTGRES_URL="", OTHER="1"))
    assert config.warnings == (
        "NEWSLETTER_SMTP_HOTS is not a setting and is ignored; did you mean NEWSLETTER_SMTP_HOST?",
        "NEWSLETTER_ZZZZZZZZZZZZ is not a setting and is ignored; `newsletter settings` lists them")
    assert config.with_overrides(smtp_port=587).warnings == config.warnings


def test_keys_outside_the_newsletter_table_are_warnings(tmp_path: Path) -> None:
    env = environ(tmp_path, 'smtp_port = 2525\nsmtp_prot = 2525\n[newsletter]\nsmtp_host = "x"\n'
                            '[smtp]\nport = 2525\n')
    config = load_config(environ=env)
    path = env["NEWSLETTER_CONFIG"]
    assert config.smtp_port == 25
    assert config.warnings == (
        f"{path}: smtp_port is outside [newsletter] and is ignored; move it under [newsletter]",
        f"{path}: smtp_prot is outside [newsletter] and is ignored; did you mean smtp_port?",
        f"{path}: [smtp] is ignored: settings belong under [newsletter]")


def test_an_unknown_key_inside_the_table_names_the_nearest_setting(tmp_path: Path) -> None:
    expected = "unknown setting(s) smtp_hots (did you mean smtp_host?)"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_config(environ=environ(tmp_path, '[newsletter]\nsmtp_hots = "x"\n'))


def test_the_cli_prints_the_warnings_on_stderr(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init"], env={
        **environ(tmp_path), "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'n.db'}",
        "NEWSLETTER_SECRET_KEY": TEST_SECRET, "NEWSLETTER_SMTP_HOTS": "x"})
    assert result.exit_code == 0, result.output
    assert result.stderr == ("Warning: NEWSLETTER_SMTP_HOTS is not a setting and is ignored; "
                             "did you mean NEWSLETTER_SMTP_HOST?\n")


# Item 9f: a wrong database URL is one line saying what is wrong.

def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(("url", "message"), [
    ("sqlite:///{tmp}/missing/folder/n.db", "the folder {tmp}/missing/folder of sqlite:///{tmp}/missing/"
                                            "folder/n.db does not exist; create it or fix the URL"),
    ("garbage", "not a database URL; expected e.g. sqlite:///newsletter.db or "
                "postgresql://user@host/dbname"),
    ("nosuch://host/db", "unknown database type or driver 'nosuch'; use e.g. sqlite:///newsletter.db"),
    ("postgresql+nodriver://host/db", "unknown database type or driver 'postgresql+nodriver'"),
    ("postgresql://editor:hunter2@127.0.0.1:{port}/db",
     "cannot open postgresql+psycopg://editor:***@127.0.0.1:{port}/db: connection failed: "),
])
@pytest.mark.parametrize("command", [["init"], ["summary", "list"]])
def test_a_bad_database_url_is_one_line_without_a_traceback(tmp_path: Path, url: str, message: str,
                                                            command: list[str]) -> None:
    port = _closed_port()
    url, message = (s.format(tmp=tmp_path, port=port) for s in (url, message))
    result = CliRunner().invoke(cli, command, env={
        **environ(tmp_path), "NEWSLETTER_DATABASE_URL": url, "NEWSLETTER_SECRET_KEY": TEST_SECRET})
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Configuration error: NEWSLETTER_DATABASE_URL: database_url: {message}")
    assert "hunter2" not in result.output + result.stderr


def test_the_flag_is_named_when_it_gave_the_url(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--database-url", "garbage", "init"], env={
        **environ(tmp_path), "NEWSLETTER_SECRET_KEY": TEST_SECRET})
    assert (result.exit_code, result.stderr.splitlines()) == (2, [
        "Configuration error: option: database_url: not a database URL; expected e.g. "
        "sqlite:///newsletter.db or postgresql://user@host/dbname"])


@pytest.mark.process
def test_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "newsletter", "init"], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path, env={
                             **environ(tmp_path), "NEWSLETTER_SECRET_KEY": TEST_SECRET,
                             "NEWSLETTER_DATABASE_URL": "mysql://user@127.0.0.1/db",
                             "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr.splitlines() == [
        "Configuration error: NEWSLETTER_DATABASE_URL: database_url: the driver for mysql (MySQLdb) is "
        "not installed; the newsletter runs on sqlite:///newsletter.db or postgresql://user@host/dbname"]
