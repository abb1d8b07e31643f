"""A production configuration (``FLASK_APP=wsgi:app``) offers no demo or synthetic-data command.

Runs the real ``flask`` entry point in a subprocess, as an operator would, so a command registered
anywhere on the production path shows up here.
"""

from __future__ import annotations

import os

import pytest

from tests.factories.cli import flask_commands

# The production app's pages are read first, in one interpreter with the demo app's (tests.factories.cli),
# so for them the interpreter has imported nothing but what the production app's own import path brings
# in; the demo app's pages come after (its test only asks that its commands are there).
PRODUCTION_APP = "wsgi:app"
DEMO_APP = "demo.app:create_app"
PAGES: list[tuple[str, tuple[str, ...]]] = [
    (PRODUCTION_APP, ()),
    (PRODUCTION_APP, ("licences",)),
    (PRODUCTION_APP, ("search",)),
    (DEMO_APP, ()),
    (DEMO_APP, ("demo",)),
]


@pytest.fixture(scope="module")
def helps(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, tuple[str, ...]], str]:
    """``flask --app APP [group] --help`` for each of PAGES, by (app, group)."""
    tmp_path = tmp_path_factory.mktemp("production-cli")
    env = {
        **os.environ,
        "INSTANCE_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'help.db'}",
        "SECRET_KEY": "production-cli-test",
        "CITY_REGISTRY_KEY": "production-cli-test-registry-key",
    }
    env.pop("FLASK_APP", None)  # every page names its app with --app
    texts = flask_commands([["--app", app, *group, "--help"] for app, group in PAGES], env)
    return dict(zip(PAGES, texts, strict=True))


def _commands(help_text: str) -> set[str]:
    lines = help_text.split("Commands:", 1)[1].splitlines()
    return {line.split()[0] for line in lines if line.startswith("  ") and line.split()}


def test_flask_help_on_the_production_app_shows_no_demo_or_synthetic_command(helps):
    top, licences, search = (helps[PRODUCTION_APP, group] for group in ((), ("licences",), ("search",)))
    assert {"catalog", "licences", "search"} <= _commands(top)
    assert "demo" not in _commands(top)
    assert "generate" not in _commands(licences)
    assert "generate" not in _commands(search)
    assert "load-aliases" in _commands(search)  # the group's help was read, not an empty page


def test_the_demo_runners_app_has_the_demo_commands(helps):
    top, demo = helps[DEMO_APP, ()], helps[DEMO_APP, ("demo",)]
    assert "demo" in _commands(top)
    assert {"load", "generate-licences"} <= _commands(demo)


def test_a_missing_setting_is_named_in_one_line_without_a_traceback(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    env = {
        **os.environ,
        "INSTANCE_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'missing.db'}",
        "SECRET_KEY": "production-cli-test",
    }
    env.pop("CITY_REGISTRY_KEY", None)
    env.pop("FLASK_APP", None)
    flask = Path(sys.executable).parent / "flask"
    done = subprocess.run(
        [str(flask), "--app", PRODUCTION_APP, "--help"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "settings error: CITY_REGISTRY_KEY is not set" in done.stderr


def test_a_malformed_holiday_notices_file_stops_the_app_with_its_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    notices = tmp_path / "notices.csv"
    notices.write_text("date,kind,name,notice\n2027-01-01,holiday,元旦,通知\n2027-02-30,holiday,春节,通知\n",
                       encoding="utf-8")
    env = {
        **os.environ,
        "INSTANCE_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'notices.db'}",
        "SECRET_KEY": "production-cli-test",
        "CITY_REGISTRY_KEY": "production-cli-test-registry-key",
        "WORKDAY_CALENDAR_FILE": str(notices),
    }
    env.pop("FLASK_APP", None)
    flask = Path(sys.executable).parent / "flask"
    done = subprocess.run(
        [str(flask), "--app", PRODUCTION_APP, "cases", "calendar"], env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"settings error: {notices} 第 3 行：日期应为 YYYY-MM-DD" in done.stderr
