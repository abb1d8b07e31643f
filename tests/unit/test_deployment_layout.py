"""The Procfile that `make run` starts on real services: one beat whatever the number of workers."""

import re
from pathlib import Path

import pytest

from demo.run import procfile_programs

ROOT = Path(__file__).resolve().parents[2]


def test_procfile_starts_n_workers_without_beat_and_exactly_one_beat() -> None:
    programs = dict(procfile_programs(ROOT / "Procfile", workers=3))
    assert sorted(programs) == ["beat", "registry", "web", "worker.1", "worker.2", "worker.3"]
    for name in ("worker.1", "worker.2", "worker.3"):
        script = programs[name][-1]
        assert " worker " in script
        assert " -B" not in script
        assert "--beat" not in script
        assert f"PROCESS_INDEX={name[-1]};" in script
    assert " beat " in programs["beat"][-1]
    assert programs["web"][-1].split("exec ", 1)[1].startswith("gunicorn ")


def test_a_procfile_line_without_a_command_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "Procfile"
    bad.write_text("web: gunicorn wsgi:app\nworker\n")
    with pytest.raises(SystemExit, match="worker"):
        procfile_programs(bad, workers=1)


def _documented() -> str:
    return (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")


def test_every_variable_settings_reads_is_in_the_deployment_guide() -> None:
    source = (ROOT / "core" / "config.py").read_text(encoding="utf-8")
    names = set(re.findall(r"""env(?:\.get\(|\[)["']([A-Z][A-Z0-9_]+)["']""", source))
    names |= set(re.findall(r"""_(?:int|networks)\(env, ["']([A-Z][A-Z0-9_]+)["']""", source))
    assert {"DATABASE_URL", "REDIS_URL", "CITY_REGISTRY_KEY", "SYNC_BATCH_SIZE"} <= names
    missing = sorted(n for n in names if f"`{n}`" not in _documented())
    assert not missing, f"docs/deployment.md does not describe {missing}"


def test_every_variable_the_procfile_uses_is_in_the_deployment_guide() -> None:
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    commands = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    names = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", commands))
    assert "PORT" in names
    missing = sorted(n for n in names if f"`{n}`" not in _documented())
    assert not missing, f"docs/deployment.md does not describe {missing}"
