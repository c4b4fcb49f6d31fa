"""Settings: one resolver, one order (flag → environment → config file → default)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsletter.config import load_config
from newsletter.errors import ConfigError

from .conftest import REPO


def write(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "newsletter.toml"
    path.write_text(text, encoding="utf-8")
    return {"NEWSLETTER_CONFIG": str(path)}


def test_order_is_flag_then_environment_then_file_then_default(tmp_path: Path) -> None:
    env = write(tmp_path, '[newsletter]\nsmtp_host = "file.example"\nsmtp_port = 2525\n'
                          'organisation = "From file"\n')
    env["NEWSLETTER_SMTP_HOST"] = "env.example"
    env["NEWSLETTER_SMTP_PORT"] = "587"
    config = load_config(overrides={"smtp_port": 465, "base_url": None}, environ=env)
    assert (config.smtp_host, config.smtp_port) == ("env.example", 465)
    assert config.organisation == "From file"
    assert config.base_url == "http://localhost:8000"


def test_a_configuration_passed_on_as_environment_loads_back_the_same(tmp_path: Path) -> None:
    """How a send's workers get its configuration: a file they may not read the same way (here
    a different one), options they were not given, odd floats and an empty string."""
    env = write(tmp_path, '[newsletter]\nsmtp_host = "file.example"\nretry_jitter = "none"\n')
    config = load_config(overrides={"smtp_port": 2526, "rate_limit": 0.1 + 0.2, "reply_to": "",
                                    "secret_key": "k" * 40, "workers": 3}, environ=env)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = write(elsewhere, '[newsletter]\nsmtp_host = "other.example"\nworkers = 9\n')
    passed = load_config(environ={**other, **config.as_environment()})
    assert passed == config
    assert (passed.smtp_host, passed.rate_limit, passed.workers) == ("file.example", 0.1 + 0.2, 3)


def test_the_shipped_example_file_is_valid() -> None:
    config = load_config(environ={"NEWSLETTER_CONFIG": str(REPO / "config" /
                                                           "newsletter.example.toml")})
    assert config.base_url == "https://digest.example.org"


@pytest.mark.parametrize(("text", "message"), [
    ('smtp_hots = "x"\n', "unknown setting(s) smtp_hots"),
    ('smtp_port = "many"\n', "smtp_port"),
    ('transport = "pigeon"\n', "transport"),
    ('base_url = "/relative"\n', "base_url"),
    ('smtp_port = \n', "newsletter.toml"),
])
def test_bad_settings_are_refused_with_the_setting_named(tmp_path: Path, text: str,
                                                         message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(environ=write(tmp_path, text))


def test_a_missing_secret_is_reported_only_when_needed(tmp_path: Path) -> None:
    config = load_config(environ=write(tmp_path, ""))
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY is not set"):
        _ = config.secret_keys
    new, old = "n" * 32, "o" * 40
    rotated = load_config(environ={**write(tmp_path, ""), "NEWSLETTER_SECRET_KEY": f"{new}, {old}"})
    assert rotated.secret_keys == [new, old]
