"""Boundaries the linter must see: migrations carry their own data, and a forbidden edge breaks
`lint-imports` (the contracts in pyproject.toml are live, not decoration)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).parent / "lint-imports"
APP_PACKAGES = ("catalog", "licenses", "reports", "workers", "city_registry", "demo", "benchmarks", "webapp")
LINTED = ("core", *APP_PACKAGES)


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "migration", sorted((ROOT / "migrations" / "versions").glob("*.py")), ids=lambda p: p.name
)
def test_migrations_import_no_application_code(migration):
    """A migration replays the schema and data of its day: live code (which changes) must not feed it."""
    live = {
        m for m in _imported_modules(migration) if m.split(".")[0] in (*APP_PACKAGES, "celery_app", "wsgi")
    }
    assert not live, f"{migration.name} imports {sorted(live)}: freeze what it needs in the migration"


def _copy_tree(tmp_path: Path) -> Path:
    target = tmp_path / "tree"
    target.mkdir()
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    for name in LINTED:
        shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("celery_app.py", "wsgi.py"):
        shutil.copy(ROOT / name, target / name)
    return target


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.parametrize(
    ("module", "source", "contract"),
    [
        ("catalog/_probe.py", "import demo.catalog_demo\n", "the product never imports the demo"),
        ("licenses/_probe.py", "from benchmarks import search_synth\n", "the product never imports the demo"),
        ("core/_probe.py", "import catalog.models\n", "core is infrastructure"),
        ("licenses/_probe.py", "import celery_app\n", "celery_app is imported only by entry points"),
    ],
)
def test_lint_imports_fails_when_a_forbidden_edge_is_added_back(tmp_path, module, source, contract):
    tree = _copy_tree(tmp_path)
    assert _lint(tree).returncode == 0  # the copy is as clean as the tree

    (tree / module).write_text(source, encoding="utf-8")
    result = _lint(tree)

    assert result.returncode != 0
    assert f"{contract}" in result.stdout
    assert "BROKEN" in result.stdout
    assert module.replace("/", ".").removesuffix(".py") in result.stdout
