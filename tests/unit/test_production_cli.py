"""A production configuration (``FLASK_APP=wsgi:app``) offers no demo or synthetic-data command.

Runs the real ``flask`` entry point in a subprocess, as an operator would, so a command registered
anywhere on the production path shows up here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEPARATOR = "----- next help -----"
# What the `flask` console script runs (flask.cli:main), once per argument list, in one fresh
# interpreter: each invocation loads the app anew from FLASK_APP, as separate `flask` runs would, and
# the interpreter has imported nothing but what the app's own import path brings in. One interpreter
# per app instead of one per help page: starting one costs seconds (it imports the whole platform).
RUN_FLASK = f"""
import json, sys
from flask.cli import cli
for args in json.loads(sys.argv[1]):
    try:
        cli.main(args=args, prog_name="flask")
    except SystemExit as exit:
        if exit.code not in (0, None):
            raise
    print({SEPARATOR!r}, flush=True)
"""


def _helps(tmp_path: Path, app: str, *groups: tuple[str, ...]) -> list[str]:
    """``flask [group] --help`` for each group on the app ``app``; one help text per group."""
    env = {
        **os.environ,
        "FLASK_APP": app,
        "INSTANCE_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'help.db'}",
        "SECRET_KEY": "production-cli-test",
        "CITY_REGISTRY_KEY": "production-cli-test-registry-key",
    }
    result = subprocess.run(
        [sys.executable, "-c", RUN_FLASK, json.dumps([[*group, "--help"] for group in groups])],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    texts = result.stdout.split(SEPARATOR + "\n")
    assert len(texts) == len(groups) + 1, result.stdout
    assert texts[-1] == "", result.stdout
    return texts[:-1]


def _commands(help_text: str) -> set[str]:
    lines = help_text.split("Commands:", 1)[1].splitlines()
    return {line.split()[0] for line in lines if line.startswith("  ") and line.split()}


def test_flask_help_on_the_production_app_shows_no_demo_or_synthetic_command(tmp_path):
    top, licences, search = _helps(tmp_path, "wsgi:app", (), ("licences",), ("search",))
    assert {"catalog", "licences", "search"} <= _commands(top)
    assert "demo" not in _commands(top)
    assert "generate" not in _commands(licences)
    assert "generate" not in _commands(search)
    assert "load-aliases" in _commands(search)  # the group's help was read, not an empty page


def test_the_demo_runners_app_has_the_demo_commands(tmp_path):
    top, demo = _helps(tmp_path, "demo.app:create_app", (), ("demo",))
    assert "demo" in _commands(top)
    assert {"load", "generate-licences"} <= _commands(demo)
