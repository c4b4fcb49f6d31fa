"""`pip install .` into a fresh venv, then the demo from another folder: templates and config must
come from the installed package, not from this checkout."""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

import pytest

from .conftest import REPO

pytestmark = pytest.mark.process


def test_installed_package_runs_the_demo_from_another_folder(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    str(REPO)], check=True, timeout=600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clean_env = {k: v for k, v in os.environ.items()
                 if not k.startswith("NEWSLETTER_") and k != "PYTHONPATH"}
    located = subprocess.run(
        [str(python), "-c", "import newsletter.paths as p; print(p.templates_dir()); "
         "print(p.config_dir())"], cwd=elsewhere, env=clean_env, capture_output=True, text=True,
        check=True)
    for line in located.stdout.splitlines():
        assert str(env_dir) in line and not line.startswith(str(REPO)), line
    demo = subprocess.run(
        [str(env_dir / "bin" / "newsletter"), "demo", "--folder", str(tmp_path / "demo")],
        cwd=elsewhere, env={**clean_env, "COLUMNS": "160"}, capture_output=True, text=True,
        timeout=300)
    assert demo.returncode == 0, demo.stderr
    assert "First send: 4 sent, 1 skipped (no matching topic), 0 failed" in demo.stdout
    assert "Second send: 0 sent" in demo.stdout
    assert len(list((tmp_path / "demo" / "received").glob("*.eml"))) == 4
