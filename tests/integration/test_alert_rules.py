"""deploy/prometheus/alerts.yml: every rule names only metrics (and label values) that the real
/metrics answer exports, carries for/severity/summary/description, and has a promtool unit test;
`promtool check rules` and `promtool test rules` pass (Debian package `prometheus`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_settings
from webapp import create_app

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"
SCRAPE_TOKEN = "scrape-" + "a" * 32
# Functions and keywords of PromQL that look like names in an expression.
PROMQL_WORDS = {"max", "min", "sum", "absent", "delta", "offset", "and", "or", "unless", "by", "on"}


def _rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
            for rule in group["rules"]]


def _exported(db: Any, tmp_path: Path) -> tuple[set[str], set[tuple[str, str]]]:
    app = create_app(make_settings(tmp_path, db.url, metrics_token=SCRAPE_TOKEN), database=db)
    response = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert response.status_code == 200
    names: set[str] = set()
    labels: set[tuple[str, str]] = set()
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            names.add(sample.name)
            labels |= set(sample.labels.items())
    return names, labels


def test_alert_rules_name_only_metrics_and_label_values_that_metrics_exports(db: Any, tmp_path: Path) -> None:
    names, labels = _exported(db, tmp_path)
    rules = _rules()
    assert rules
    for rule in rules:
        expr = rule["expr"]
        # Label matchers, ranges, strings and durations (30m) out; what is left are names.
        selectors = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"|\b\d+[smhdwy]\b", " ", expr)
        metrics = {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", selectors) if w not in PROMQL_WORDS}
        assert metrics, rule["alert"]
        assert metrics <= names, f"{rule['alert']} names {sorted(metrics - names)}, not in /metrics"
        for matcher in re.findall(r'(\w+)="([^"]*)"', expr):
            assert matcher in labels, f"{rule['alert']}: no series on /metrics has {matcher}"


def test_every_alert_rule_says_how_long_how_bad_and_what_to_do() -> None:
    for rule in _rules():
        assert re.fullmatch(r"[A-Z][A-Za-z]+", rule["alert"])
        assert re.fullmatch(r"\d+[smh]", str(rule["for"])), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]


def test_every_alert_has_a_promtool_unit_test_that_fires_it() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    fired = {case["alertname"] for t in tests for case in t["alert_rule_test"] if case["exp_alerts"]}
    assert fired == {rule["alert"] for rule in _rules()}


def test_promtool_checks_the_rules_and_runs_their_unit_tests() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    for args in (["check", "rules", RULES.name], ["test", "rules", RULE_TESTS.name]):
        result = subprocess.run([promtool, *args], cwd=RULES.parent, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


# What issue #16 asks the alerts to watch, and the /metrics series that measures each. "Sync lag" and
# "outbox age" are one series here (the age of the oldest pending record); the stall rule watches the lag
# from the other side (pending records while nothing is sent).
REQUIRED_CONCERNS = {
    "sync lag": ("gaogang_licence_outbox_records", "gaogang_licence_sync_throughput_per_second"),
    "outbox age": ("gaogang_licence_sync_lag_seconds",),
    "dead letters": ("gaogang_licence_sync_dead_letters",),
    "registry errors": ("gaogang_licence_sync_retrying_by_kind",),
}


def test_alert_rules_cover_sync_lag_dead_letters_registry_errors_and_outbox_age() -> None:
    exprs = [rule["expr"] for rule in _rules()]
    for concern, metrics in REQUIRED_CONCERNS.items():
        assert any(all(m in expr for m in metrics) for expr in exprs), f"no alert watches {concern}"
    # Both kinds of registry failure that leave rows waiting alert on their own.
    assert any('kind="unavailable"' in e for e in exprs)
    assert any('kind="protocol"' in e for e in exprs)
