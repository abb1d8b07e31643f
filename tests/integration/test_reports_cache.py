"""The dashboard's metrics cache on the production path: the same code runs in tests, hits are served
from the cache, writes through the web invalidate it, and entries expire after their time to live."""

from __future__ import annotations

from typing import Any

import pytest
from test_reports import YEAR, admin_client, case_rows, csv_text, import_csv, world  # noqa: F401

from reports.cache import EXTENSION, MetricsCache

EXPORT = f"/admin/dashboard/export/cases_by_month.csv?year={YEAR}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def january(client: Any) -> str:
    response = client.get(EXPORT)
    assert response.status_code == 200
    return response.get_data(as_text=True).lstrip("\ufeff").splitlines()[1]


@pytest.fixture
def clock(app: Any) -> Clock:
    clock = Clock()
    app.extensions[EXTENSION] = MetricsCache(ttl_seconds=30, clock=clock)
    return clock


def test_each_app_has_its_own_metrics_cache(app: Any) -> None:
    assert isinstance(app.extensions[EXTENSION], MetricsCache)


def test_dashboard_serves_cached_figures_until_a_web_write_invalidates_them(
    admin_client: Any, session: Any, world: dict[str, Any], clock: Clock  # noqa: F811
) -> None:
    import_csv(session, csv_text(case_rows(world)))
    assert january(admin_client) == "01,1月,130,80,120,117"
    # A write that bypasses the web layer does not clear the cache: the page still shows the old figure,
    # which proves the second read was a cache hit.
    e1 = world["e1"].task_code
    import_csv(session, csv_text([f"{e1},2025-01,200,80,90,88"]))
    assert january(admin_client) == "01,1月,130,80,120,117"
    # The case-statistics API is a web write: it clears the cache, the next read is fresh.
    response = admin_client.post("/api/v1/reports/case-stats", json={"year": YEAR, "rows": [
        {"task_code": e1, "month": "2025-01", "received": 300, "online": 80, "finished": 90, "on_time": 88},
    ]})
    assert response.status_code == 200, response.get_json()
    assert january(admin_client) == "01,1月,330,80,120,117"


def test_cached_figures_expire_after_their_time_to_live(
    admin_client: Any, session: Any, world: dict[str, Any], clock: Clock  # noqa: F811
) -> None:
    import_csv(session, csv_text(case_rows(world)))
    assert january(admin_client) == "01,1月,130,80,120,117"
    import_csv(session, csv_text([f"{world['e1'].task_code},2025-01,200,80,90,88"]))
    clock.now += 29.9
    assert january(admin_client) == "01,1月,130,80,120,117"
    clock.now += 0.2
    assert january(admin_client) == "01,1月,230,80,120,117"
