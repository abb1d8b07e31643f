"""Shared pieces of the security tests (this module itself holds no tests).

A small world created through the services, one bearer token per role that must be refused, the
write operations of the published OpenAPI document, and a fingerprint of every table so a test can
assert that a refused request wrote nothing.
"""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from core.auth import ApiToken, Role
from core.config import Settings
from core.types import china_today
from licenses import authorisations
from tests.factories.catalog import (
    OTHER_TOWN,
    make_department,
    make_item,
    make_user,
    published_entry,
)
from tests.factories.licences import PERSON_TYPE, make_staff, make_types, person_licence

WRITE_METHODS = ("post", "put", "patch", "delete")


def published_spec() -> dict[str, Any]:
    """The OpenAPI document exactly as /api/openapi.json serves it (building it reads no database).

    A fresh copy on every call (callers may change it); the document itself is built once per process,
    since three test modules ask for it while they are collected, in every xdist worker."""
    spec: dict[str, Any] = json.loads(_published_spec_text())
    return spec


@functools.cache
def _published_spec_text() -> str:
    from webapp import create_app

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = Settings(
            database_url=f"sqlite:///{folder / 'spec.db'}",
            instance_dir=folder,
            secret_key="security-spec",
            testing=True,
            ratelimit_enabled=False,
            city_registry_database_url=f"sqlite:///{folder / 'registry.db'}",
        )
        response = create_app(settings).test_client().get("/api/openapi.json")
        assert response.status_code == 200
        return response.get_data(as_text=True)


def write_operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
        if method in WRITE_METHODS
    )


@dataclass
class World:
    department_id: int
    entry_id: int
    task_code: str
    item_id: int
    licence_id: int
    licence_type: str
    admin: str
    tokens: dict[str, str] = field(default_factory=dict)
    user_id: int = 0  # the licence issuer's account, for the user administration endpoints
    token_id: int = 0  # one of its API tokens
    authorisation_id: int = 0  # a holder's 用证授权 recorded by department A


def build_world(session: Any) -> World:
    """Department A with a published entry and a free item, a licence of department L, and the
    tokens of principals that are not allowed to touch any of them."""
    dept_a = make_department(session, "高港区市场监督管理局")
    entry = published_entry(session, dept_a)
    free_item = make_item(session, name="未认领的测试事项")
    make_types(session)
    issuer = make_staff(session, "高港区住房和城乡建设局", "MB123456", "sec_issuer")
    licence = person_licence(session, issuer)

    dept_b = make_department(session, "高港区民政局")
    tokens = {
        "editor_of_other_department": make_user(session, Role.DEPT_EDITOR, department=dept_b)[2],
        "reviewer_of_other_department": make_user(session, Role.DEPT_REVIEWER, department=dept_b)[2],
        "operator_of_other_division": make_user(session, Role.DIVISION_OPERATOR, division_code=OTHER_TOWN)[2],
    }
    admin = make_user(session, Role.ADMIN)[2]
    a_editor = make_user(session, Role.DEPT_EDITOR, department=dept_a)[1]
    authorisation = authorisations.record_authorisation(
        session,
        a_editor,
        {
            "holder_code": licence.holder_code,
            "type_codes": [PERSON_TYPE],
            "case_number": "GG-SEC-0001",
            "task_code": entry.task_code,
            "valid_until": china_today() + timedelta(days=300),
            "method": "signed_form",
        },
    )
    token_id = session.execute(
        sa.select(ApiToken.id).where(ApiToken.user_id == issuer.actor.user_id)
    ).scalars().first()
    session.commit()
    return World(
        department_id=dept_a.id,
        entry_id=entry.id,
        task_code=entry.task_code,
        item_id=free_item.id,
        licence_id=licence.id,
        licence_type=PERSON_TYPE,
        admin=admin,
        tokens=tokens,
        user_id=issuer.actor.user_id,
        token_id=token_id,
        authorisation_id=authorisation.id,
    )


def fingerprint(session: Any) -> dict[str, str]:
    """md5 of every row of every table (PostgreSQL): any insert, update or delete changes it."""
    tables = session.execute(
        sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    ).scalars()
    digest = "coalesce(md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))), '')"
    sql = " UNION ALL ".join(
        f"SELECT '{table}' AS name, {digest} AS digest FROM \"{table}\" t"  # noqa: S608  (names from pg_tables)
        for table in tables
    )
    return {name: digest for name, digest in session.execute(sa.text(sql)).all()}
