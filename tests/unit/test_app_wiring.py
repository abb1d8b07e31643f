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


def _func(bound):
    return bound.__func__


def _code(func):
    code = func.__code__
    return (code.co_code, code.co_consts, code.co_names, code.co_varnames, func.__defaults__)


def test_cached_url_builders_are_the_ones_werkzeug_compiles_for_each_rule(tmp_path):
    """core.app.BuilderCachingRule shares compiled URL builders between apps: every rule of a second
    app gets the very code werkzeug would compile for it, and URLs built through it are unchanged."""
    from flask import url_for
    from werkzeug.routing import Rule

    from webapp import create_app

    first = {(r.endpoint, r.rule): r for r in create_app(_settings(tmp_path)).url_map.iter_rules()}
    app = create_app(_settings(tmp_path))
    rules = list(app.url_map.iter_rules())
    assert len(rules) > 150
    shared = [r for r in rules if _func(r._build) is _func(first[r.endpoint, r.rule]._build)]
    assert len(shared) == len(rules) - 1, "every rule but Flask's static one reuses the first app's builders"
    for rule in rules:
        if not isinstance(rule, Rule) or type(rule) is Rule:
            continue  # Flask's static route, added before the class is chosen
        for append_unknown in (False, True):
            cached = rule._compile_builder(append_unknown)
            assert _code(cached) == _code(Rule._compile_builder(rule, append_unknown)), rule.rule
    with app.test_request_context():
        assert url_for("licences_api.LicenceItem", licence_id=7, page=2) == "/api/v1/licences/7?page=2"
