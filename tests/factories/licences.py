"""Factories for the licence tests (this module itself holds no tests).

Departments and users are created as the demo creates them; licence types and licences only
through the licence services (licenses.types, grants, issuing), so tests exercise the rules users hit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import Session

from catalog.codes import id_check_char, make_uscc
from catalog.models import Department
from core import users
from core.auth import SYSTEM, Principal, Role
from core.db import id_of
from demo.licences_demo import ensure_department
from licenses import grants as licence_grants
from licenses import issuing
from licenses import types as licence_types
from licenses.models import Licence, LicenceType

PERSON_TYPE = "11100000000013338W032"  # 建筑施工特种作业人员操作资格证书 (a real national type code)
ORG_TYPE = "11100000MB0143028R001"  # 营业执照


def id_number(seq: int, born: str = "19800101", area: str = "321203") -> str:
    first17 = f"{area}{born}{seq % 1000:03d}"
    return first17 + id_check_char(first17)


def org_code(seq: int) -> str:
    return make_uscc("91321203", f"MA{seq:06d}")


# Test accounts need no brute-force resistance; the production hasher costs ~0.3 s per user.


@dataclass
class Staff:
    department: Department
    actor: Principal
    token: str


def make_types(session: Session) -> tuple[LicenceType, LicenceType]:
    person = licence_types.create_licence_type(
        session,
        SYSTEM,
        {
            "code": PERSON_TYPE,
            "name": "建筑施工特种作业人员操作资格证书",
            "holder_code_type": "111",
            "validity_years": 2,
            "authority_level": "国家级",
            "face_schema": [
                {"key": "gender", "label": "性别", "type": "enum", "choices": ["男", "女"], "required": True},
                {"key": "work_type", "label": "操作类别", "type": "string", "required": False},
                {"key": "first_issued", "label": "初次领证日期", "type": "date"},
            ],
        },
    )
    org = licence_types.create_licence_type(
        session,
        SYSTEM,
        {
            "code": ORG_TYPE,
            "name": "营业执照",
            "holder_code_type": "001",
            "validity_years": None,
            "face_schema": [
                {"key": "legal_representative", "label": "法定代表人", "type": "person", "required": True},
                {"key": "registered_capital", "label": "注册资本（万元）", "type": "integer"},
            ],
        },
    )
    return person, org


def make_staff(
    session: Session,
    name: str,
    org8: str,
    username: str,
    role: Role = Role.LICENCE_CLERK,
    grants: tuple[str, ...] = (PERSON_TYPE, ORG_TYPE),
) -> Staff:
    """A user of a department holding licence grants for ``grants`` there (both test types by default)."""
    dept = ensure_department(session, name, "11321203", org8)
    user = users.create_user(
        session, SYSTEM, users.NewUser(
        username=username,
        password="password-123",
        display_name=f"{name}经办人",
        role=role,
        department_id=dept.id,
    ))[0]
    if grants:
        licence_grants.grant_licence_rights(session, SYSTEM, user_id=id_of(user), type_codes=grants)
    return Staff(dept, Principal.of(user), users.issue_token(session, SYSTEM, id_of(user), "tests")[1])


def make_admin(session: Session, username: str = "licence_admin") -> tuple[Principal, str]:
    user = users.create_user(
        session, SYSTEM, users.NewUser(
            username=username, password="password-123", display_name="区级管理员", role=Role.ADMIN
    ))[0]
    return Principal.of(user), users.issue_token(session, SYSTEM, user.id, "tests")[1]


def person_licence(session: Session, staff: Staff, seq: int = 1, **overrides: Any) -> Licence:
    data: dict[str, Any] = {
        "type_code": PERSON_TYPE,
        "holder_name": "张三",
        "holder_code": id_number(seq),
        "face": {"gender": "男", "work_type": "建筑电工"},
    }
    data.update(overrides)
    return issuing.issue_licence(session, staff.actor, data)


def org_licence(session: Session, staff: Staff, seq: int = 1, **overrides: Any) -> Licence:
    data: dict[str, Any] = {
        "type_code": ORG_TYPE,
        "holder_name": "泰州市高港区港城食品有限公司",
        "holder_code": org_code(seq),
        "face": {"legal_representative": "李四"},
    }
    data.update(overrides)
    return issuing.issue_licence(session, staff.actor, data)


# ---- the licence API tests' world: two departments' clerks and an administrator (a fixture, imported
# by the API, keys, statuses, types, authorisations and verify-path modules)


@pytest.fixture
def world(db: Any, app: Any) -> dict[str, Any]:
    with db.transaction() as session:
        make_types(session)
        a = make_staff(session, "高港区行政审批局", "MB158001", "clerk_a")
        b = make_staff(session, "高港区民政局", "01414003", "clerk_b")
        _admin, admin_token = make_admin(session)
    return {"a": a.token, "b": b.token, "admin": admin_token, "a_dept": a.department}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def issue(client: Any, token: str, **overrides: Any) -> Any:
    body: dict[str, Any] = {
        "type_code": PERSON_TYPE,
        "holder_name": "张三",
        "holder_code": id_number(11),
        "face": {"gender": "男", "work_type": "建筑电工"},
    }
    body.update(overrides)
    return client.post("/api/v1/licences", json=body, headers=auth(token))
