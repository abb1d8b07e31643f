"""The 三级四同 drift rule: one table of answers for the Python rule and its SQL form (on both
databases), and the reports' drift rate counts exactly the entries the consistency report lists.

Missing (NULL or empty) on both sides is no drift; missing on one side and present on the other is."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from catalog import consistency, services
from catalog import entries as entry_services
from core.auth import SYSTEM
from core.types import utcnow
from reports import services as report_services
from tests.factories.catalog import import_upper, make_department, make_item, upper_row_for

# (entry value, item value, drift?)
DRIFT_TABLE = [
    ("食品经营许可", "食品经营许可", False),
    ("食品经营许可", "食品经营许可（变更）", True),
    (None, None, False),
    ("", "", False),
    ("", None, False),
    (None, "", False),
    (None, "《食品安全法》", True),
    ("《食品安全法》", None, True),
    ("", "《食品安全法》", True),
    ("《食品安全法》", "", True),
]


@pytest.mark.parametrize(("entry_value", "item_value", "drift"), DRIFT_TABLE)
def test_drift_rule_for_one_field(entry_value: str | None, item_value: str | None, drift: bool) -> None:
    assert consistency.values_differ(entry_value, item_value) is drift


def _literal(value: str | None) -> Any:
    return sa.null() if value is None else sa.literal(value, sa.Text)


@pytest.mark.parametrize(("entry_value", "item_value", "drift"), DRIFT_TABLE)
def test_sql_drift_rule_gives_the_tables_answer(
    any_session: Any, entry_value: str | None, item_value: str | None, drift: bool
) -> None:
    expr = consistency.values_differ_sql(_literal(entry_value), _literal(item_value))
    assert bool(any_session.execute(sa.select(expr)).scalar_one()) is drift


def test_reports_count_the_entries_the_consistency_report_lists(any_session: Any) -> None:
    dept = make_department(any_session, "区卫健局")
    kept = make_item(any_session, name="医师执业注册")
    changed = make_item(any_session, name="护士执业注册")
    emptied = make_item(any_session, name="医疗机构执业登记")
    entries = {
        item.id: entry_services.claim_item(any_session, SYSTEM, item_id=item.id, department_id=dept.id)
        for item in (kept, changed, emptied)
    }
    import_upper(
        any_session,
        [
            upper_row_for(kept),
            upper_row_for(changed, 名称="护士执业注册（变更）"),
            upper_row_for(emptied, 设定依据=""),
        ],
    )
    # A local edit of the district's own copy neither hides nor makes drift.
    services.update_item(any_session, SYSTEM, changed.id, name="护士执业注册（变更）")
    services.update_item(any_session, SYSTEM, kept.id, legal_basis="本地改过的依据")
    listed = {d.entry_id for d in consistency.consistency_report(any_session)}
    assert listed == {entries[changed.id].id, entries[emptied.id].id}
    facts = report_services.load_catalogue_facts(any_session, utcnow() + timedelta(seconds=1))
    flagged = {e.id for e in facts["entries"] if e.drift}
    assert flagged == listed
