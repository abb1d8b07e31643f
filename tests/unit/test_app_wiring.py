"""The production app carries no demo command; the demo runner's app does."""

from pathlib import Path

from core.config import Settings


def _settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", instance_dir=tmp_path,
                    secret_key="wiring-test", ratelimit_enabled=False,
                    city_registry_key="wiring-test-registry-key")


def test_production_app_has_no_demo_command(tmp_path):
    from webapp import create_app

    app = create_app(_settings(tmp_path))
    assert "demo" not in app.cli.commands
    assert {"catalog", "licences"} <= set(app.cli.commands)


def test_demo_app_adds_the_demo_command(tmp_path):
    from demo.app import create_app

    app = create_app(_settings(tmp_path))
    assert "demo" in app.cli.commands
