"""Factories for the catalogue tests: data is created through the services, as users create it.

Imported by the other test_catalog_* modules (this module itself holds no tests).
"""

from __future__ import annotations

import hashlib
from typing import Any

from catalog import entries as entry_services
from catalog import scope, services
from catalog.codes import make_uscc
from catalog.divisions import GAOGANG_FILES, load_divisions_csv
from catalog.models import CatalogItem, Department, Division
from core import users
from core.auth import SYSTEM, Principal, Role, User

DISTRICT = "321203000000"
TOWN = "321203001000"  # 口岸街道
VILLAGE = "321203001001"  # 柴墟社区, under 口岸街道
OTHER_TOWN = "321203002000"  # 刁铺街道
OTHER_VILLAGE = "321203002001"


def seed_divisions(session: Any) -> None:
    if session.get(Division, VILLAGE) is None:
        load_divisions_csv(session, *GAOGANG_FILES)


def uscc_for(name: str, kind: str = "11") -> str:
    digits = str(int(hashlib.sha256(name.encode()).hexdigest(), 16))[:8]
    return make_uscc(kind + "321203", digits)


def make_department(session: Any, name: str, level: str = "4", division_code: str = DISTRICT) -> Department:
    seed_divisions(session)
    return services.create_department(
        session, SYSTEM, name=name, uscc=uscc_for(name), level=level, division_code=division_code
    )


_codes = iter(range(1, 10**6))


def make_item(
    session: Any,
    name: str = "测试许可事项",
    task_type: str = "01",
    use_levels: str = "4,5",
    competent_department: Department | None = None,
    **extra: Any,
) -> CatalogItem:
    """A basic item; ``competent_department`` records its 主管部门 (the only district department
    that may claim it)."""
    code = f"000199{next(_codes):06d}"
    item = services.create_item(
        session,
        SYSTEM,
        code=code,
        name=name,
        task_type=task_type,
        legal_basis="《测试条例》第一条",
        use_levels=use_levels,
        **extra,
    )
    if competent_department is not None:
        scope.set_item_competence(session, SYSTEM, item.id, competent_department.id)
    return item


def make_user(
    session: Any, role: Role, *, department: Department | None = None, division_code: str | None = None
) -> tuple[User, Principal, str]:
    n = next(_codes)
    user = users.create_user(
        session, SYSTEM, users.NewUser(
        username=f"user{n}",
        password="password-123",
        display_name=f"用户{n}",
        role=role,
        department_id=department.id if department else None,
        division_code=division_code,
    ))[0]
    token = users.issue_token(session, SYSTEM, user.id, "test")[1]
    return user, Principal.of(user), token


COMPLETE_FIELDS = {
    "accept_conditions": "申请人为本区居民",
    "anticipate_days": 20,
    "anticipate_unit": "working",
    "promise_days": 5,
    "promise_unit": "working",
    "project_type": "2",
    "visits": 1,
    "visits_reason": "需现场核验原件",
    "window_address": "高港区政务服务中心 3 号窗口",
    "opening_hours": "工作日 9:00-17:00",
    "phone": "0523-86901234",
    "charges": False,  # 是否收费 recorded as 否 (not recording it would read 信息待补充)
}

NO_CONTACT_FIELDS = {
    **COMPLETE_FIELDS,
    "visits": 0,
    "visits_reason": None,
    "handle_forms": "window,online",
    "online_depth": "1,2,3,4,5,6",
    "online_url": "https://www.jszwfw.gov.cn/item/1",
    "result_delivery": "post,elicence",
}
ELECTRONIC_MATERIALS = [{"name": "申请表", "form": "electronic", "required": True}]


def published_entry(session: Any, dept: Department, item: CatalogItem | None = None) -> Any:
    item = item or make_item(session)
    entry = entry_services.claim_item(session, SYSTEM, item_id=item.id, department_id=dept.id)
    entry_services.update_entry(session, SYSTEM, entry.id, fields=COMPLETE_FIELDS)
    entry_services.submit_entry(session, SYSTEM, entry.id)
    return entry_services.approve_entry(session, SYSTEM, entry.id)




UPPER_HEADER = ("基本编码", "名称", "事项类型", "设定依据", "行使层级", "主管部门")


def write_upper_csv(path: Any, rows: list[dict[str, str]], provenance: str = "测试数据：为测试编写") -> Any:
    """A province/city basic catalogue file in the documented columns (catalog/upper.py)."""
    import csv

    with open(path, "w", encoding="utf-8", newline="") as fh:
        if provenance:
            fh.write(f"# {provenance}\n")
        writer = csv.writer(fh)
        writer.writerow(UPPER_HEADER)
        for row in rows:
            writer.writerow([row.get(h, "") for h in UPPER_HEADER])
    return path


def import_upper(session: Any, rows: list[dict[str, str]], level: str = "2") -> Any:
    """Import an upper-level catalogue through the service (as `flask catalog import-basic` does)."""
    import tempfile
    from pathlib import Path

    from catalog.upper import import_basic_catalogue

    with tempfile.TemporaryDirectory() as tmp:
        path = write_upper_csv(Path(tmp) / "upper.csv", rows)
        return import_basic_catalogue(session, SYSTEM, path, level=level)


def upper_row_for(item: CatalogItem, **changes: str) -> dict[str, str]:
    """The upper-level row that matches ``item`` (same code, name, type, basis), with ``changes``."""
    row = {
        "基本编码": item.code,
        "名称": item.name,
        "事项类型": item.task_type,
        "设定依据": item.legal_basis,
        "行使层级": "2,3,4",
    }
    row.update(changes)
    return row
