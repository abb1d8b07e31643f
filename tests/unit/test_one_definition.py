"""Each concept is defined once and imported (issue #11 item 5)."""

from pathlib import Path

from catalog import models as catalog_models
from core.types import CHINA_TZ, china_now
from reports import metrics

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ["core", "catalog", "licenses", "reports", "workers"]


def test_report_type_labels_and_scopes_are_the_catalogues():
    assert metrics.TYPE_LABELS is catalog_models.TASK_TYPES
    assert metrics.SIX_TYPES is catalog_models.NO_CONTACT_SCOPE_TYPES
    assert metrics.ON_APPLICATION is catalog_models.ON_APPLICATION_TYPES
    assert metrics.SIX_TYPES == ("01", "07", "08", "05", "04", "10")


def test_china_time_is_utc_plus_eight():
    assert china_now().utcoffset().total_seconds() == 8 * 3600
    assert str(CHINA_TZ) == "Asia/Shanghai"


def test_china_time_zone_is_defined_only_in_core_types():
    offenders = []
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if path.relative_to(ROOT).as_posix() == "core/types.py":
                continue
            if "timedelta(hours=8)" in text or '"Asia/Shanghai"' in text:
                offenders.append(path.relative_to(ROOT).as_posix())
    assert offenders == []


def test_iso7064_check_is_implemented_once_in_the_product():
    offenders = [
        path.relative_to(ROOT).as_posix()
        for package in PRODUCT
        for path in (ROOT / package).rglob("*.py")
        if "% 37" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
