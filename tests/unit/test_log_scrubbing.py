"""Log records are masked when they are created, in the web app and in the Celery worker."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import Settings
from core.logging import PersonalDataFilter

ID_NUMBER = "32120319800101001X"
ARGON2 = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub"


@pytest.fixture
def plain_record_factory() -> Iterator[None]:
    """Start from the standard factory (another test may have installed ours) and restore it."""
    saved = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)
    yield
    logging.setLogRecordFactory(saved)


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.getLogger("test").makeRecord("test", logging.ERROR, __file__, 1, msg, args, None)


def test_building_the_worker_app_masks_every_record_it_logs(
    plain_record_factory: None, tmp_path: Path
) -> None:
    from celery_app import make_celery

    assert ID_NUMBER in _record("holder %s", ID_NUMBER).getMessage()  # unmasked before
    make_celery(Settings(database_url=f"sqlite:///{tmp_path / 'w.db'}", instance_dir=tmp_path,
                         secret_key="x"))
    record = _record("holder %s password %s", ID_NUMBER, ARGON2)
    assert record.getMessage() == "holder 321203********001X password $argon2[已隐藏]"


def test_the_handler_filter_masks_extra_fields_and_credentials_by_name() -> None:
    record = _record("plain")
    record.body = {"holder_code": ID_NUMBER, "password": "hunter2-long", "note": "tel 13812345678"}
    assert PersonalDataFilter().filter(record)
    assert record.body == {
        "holder_code": "321203********001X", "password": "[已隐藏]", "note": "tel 138****5678",
    }
