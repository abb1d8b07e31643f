"""The daily 电子监察 refresh is wired into Celery beat (celery_app) as a named task of workers.tasks."""

from pathlib import Path

from celery.schedules import crontab

from tests.conftest import make_settings


def test_beat_refreshes_case_warnings_once_a_day(tmp_path: Path) -> None:
    from celery_app import make_celery

    app = make_celery(make_settings(tmp_path, f"sqlite:///{tmp_path}/x.db"))
    entry = app.conf.beat_schedule["case-warnings-refresh"]
    assert entry["task"] == "workers.refresh_case_warnings"
    assert isinstance(entry["schedule"], crontab)
    assert entry["schedule"].hour == {1}
    app.loader.import_default_modules()
    assert "workers.refresh_case_warnings" in app.tasks
