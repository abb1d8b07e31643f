"""A production configuration (``FLASK_APP=wsgi:app``) offers no demo or synthetic-data command.

Runs the real ``flask`` entry point in a subprocess, as an operator would, so a command registered
anywhere on the production path shows up here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLASK = Path(sys.executable).parent / "flask"


def _help(tmp_path: Path, app: str, *group: str) -> str:
    env = {
        **os.environ,
        "FLASK_APP": app,
        "INSTANCE_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'help.db'}",
        "SECRET_KEY": "production-cli-test",
        "CITY_REGISTRY_KEY": "production-cli-test-registry-key",
    }
    result = subprocess.run(
        [str(FLASK), *group, "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _commands(help_text: str) -> set[str]:
    lines = help_text.split("Commands:", 1)[1].splitlines()
    return {line.split()[0] for line in lines if line.startswith("  ") and line.split()}


def test_flask_help_on_the_production_app_shows_no_demo_or_synthetic_command(tmp_path):
    top = _commands(_help(tmp_path, "wsgi:app"))
    assert {"catalog", "licences", "search"} <= top
    assert "demo" not in top
    assert "generate" not in _commands(_help(tmp_path, "wsgi:app", "licences"))
    assert "generate" not in _commands(_help(tmp_path, "wsgi:app", "search"))


def test_the_demo_runners_app_has_the_demo_commands(tmp_path):
    top = _commands(_help(tmp_path, "demo.app:create_app"))
    assert "demo" in top
    assert {"load", "generate-licences"} <= _commands(_help(tmp_path, "demo.app:create_app", "demo"))
