"""The real ``flask`` entry point run in a subprocess, several commands in one interpreter.

What the ``flask`` console script runs (``flask.cli:main``), once per argument list, in one fresh
interpreter: each command loads its app anew (from ``--app`` or FLASK_APP), as separate ``flask`` runs
would, and commits what it writes before the next starts. One interpreter for a series of commands
instead of one each: starting one costs seconds, since it imports the whole platform.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEPARATOR = "----- end of flask command -----"
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


def flask_commands(
    commands: Sequence[Sequence[str]], env: Mapping[str, str], timeout: float = 120
) -> list[str]:
    """Run ``flask <args>`` for each argument list, in order, in one interpreter; the standard output
    of each. The first command that fails stops the run and fails the caller with the whole output."""
    result = subprocess.run(
        [sys.executable, "-c", RUN_FLASK, json.dumps([list(args) for args in commands])],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = result.stdout.split(SEPARATOR + "\n")
    assert len(outputs) == len(commands) + 1, result.stdout
    assert outputs[-1] == "", result.stdout
    return outputs[:-1]
