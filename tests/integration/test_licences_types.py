"""Licence types that match the law (issue #15 item 2): holder kinds per type, fields per holder kind,
one type per name (duplicates merged by a migration), the 实施编码 a licence was issued under."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlmodel import select

from core.auth import SYSTEM
from core.errors import Conflict, Invalid
from demo.licences_demo import holder_type_for
from demo.synthetic_licences import synthetic_face
from licenses import grants
from licenses import types as licence_types
from licenses.models import Licence, LicenceType
from licenses.reference import load_reference_types, reference_faces
from tests.factories.licences import PERSON_TYPE, auth, id_number, org_code, world  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]
EITHER_TYPE = "11100000000013338W901"  # a test code under a real authority code


def _either_type(session):
    lt = licence_types.create_licence_type(
        session,
        SYSTEM,
        {
            "code": EITHER_TYPE,
            "name": "测试：自然人或组织均可持有的许可证",
            "holder_code_type": "any",
            "face_schema": [
                {"key": "legal_representative", "label": "法定代表人", "type": "string", "required": True},
                {"key": "address", "label": "住所", "type": "string", "required": True},
            ],
        },
    )
    return lt


def test_a_type_for_either_holder_kind_records_the_concrete_kind_and_applies_fields_per_kind(
    client,
    db,
    world,  # noqa: F811
):
    with db.transaction() as session:
        lt = _either_type(session)
        assert [f.get("for") for f in lt.face_schema] == ["001", None]
        grants.grant_licence_rights(
            session, SYSTEM, user_id=_user_id(session, "clerk_a"), type_codes=[EITHER_TYPE]
        )
    a = auth(world["a"])
    person = client.post(
        "/api/v1/licences",
        json={
            "type_code": EITHER_TYPE,
            "holder_name": "张三",
            "holder_code": id_number(5),
            "face": {"address": "港城路1号"},
        },
        headers=a,
    )
    assert person.status_code == 201, person.get_json()
    assert person.get_json()["holder_code_type"] == "111"
    org = client.post(
        "/api/v1/licences",
        json={
            "type_code": EITHER_TYPE,
            "holder_name": "某诊所有限公司",
            "holder_code": org_code(5),
            "face": {"address": "港城路2号", "legal_representative": "李四"},
        },
        headers=a,
    )
    assert org.status_code == 201, org.get_json()
    assert org.get_json()["holder_code_type"] == "001"
    wrong = client.post(
        "/api/v1/licences",
        json={
            "type_code": EITHER_TYPE,
            "holder_name": "王五",
            "holder_code": id_number(6),
            "face": {"address": "港城路3号", "legal_representative": "王五"},
        },
        headers=a,
    )
    assert wrong.status_code == 422
    assert "只适用于法人和其他组织" in wrong.get_json()["details"]["face.legal_representative"][0]
    missing = client.post(
        "/api/v1/licences",
        json={
            "type_code": EITHER_TYPE,
            "holder_name": "某公司",
            "holder_code": org_code(7),
            "face": {"address": "x"},
        },
        headers=a,
    )
    assert missing.status_code == 422
    assert "face.legal_representative" in missing.get_json()["details"]


def _user_id(session, username):
    from core.auth import User

    return session.exec(select(User).where(User.username == username)).one().id


def test_a_natural_person_type_cannot_have_a_legal_representative_field(session):
    with pytest.raises(Invalid) as exc:
        licence_types.create_licence_type(
            session,
            SYSTEM,
            {
                "code": "11100000000013338W902",
                "name": "测试：个人证书",
                "holder_code_type": "111",
                "face_schema": [{"key": "legal_representative", "label": "法定代表人", "type": "string"}],
            },
        )
    assert "只适用于法人和其他组织" in exc.value.details["face_schema.0"][0]


def test_type_names_are_unique(session):
    from tests.factories.licences import make_types

    make_types(session)
    with pytest.raises(Conflict) as exc:
        licence_types.create_licence_type(
            session,
            SYSTEM,
            {"code": "11100000000013338W903", "name": "营业执照", "holder_code_type": "001"},
        )
    assert "已存在" in exc.value.message


def test_the_seven_national_types_carry_their_certificates_fields(session):
    load_reference_types(session, SYSTEM, include_inferred=True)
    faces = reference_faces()
    types = {t.code: t for t in session.exec(select(LicenceType)).all()}
    assert set(faces) == set(types), "every national type has its face fields, and only those"
    for lt in types.values():
        keys = {f["key"] for f in lt.face_schema}
        if lt.holder_code_type == "111":
            assert "legal_representative" not in keys, lt.name
    licence = {f["key"] for f in types["11100000MB0143028R001"].face_schema}
    assert {"legal_representative", "address", "scope"} <= licence  # 营业执照: 法定代表人, 住所, 经营范围
    marriage = {f["key"] for f in types["111000000000131433001"].face_schema}
    assert "address" not in marriage  # a 结婚证 has no address
    assert "registration_date" in marriage


def test_demo_holder_kinds_of_the_types_the_issue_named():
    assert holder_type_for("医疗机构执业许可证") == "001"
    assert holder_type_for("慈善组织公开募捐资格证书") == "001"
    assert holder_type_for("单位参保证明") == "001"
    assert holder_type_for("食品行业从业人员预防性体检合格证") == "111"


def test_synthetic_legal_representative_is_a_person_not_an_address():
    lt = LicenceType(
        code=PERSON_TYPE,
        name="x",
        authority_code=PERSON_TYPE[:18],
        holder_code_type="001",
        face_schema=[
            {"key": "legal_representative", "label": "法定代表人", "type": "string", "required": True},
            {"key": "address", "label": "住所", "type": "string", "required": True},
        ],
    )
    for seed in range(20):
        face = synthetic_face(lt, random.Random(seed), "001")
        assert "路" not in face["legal_representative"]
        assert len(face["legal_representative"]) <= 3
        assert face["address"].startswith("泰州市高港区")


def _task(uscc: str, n: int) -> str:
    return f"{uscc}4{n:012d}"


def test_a_licence_records_the_service_it_was_issued_under(client, db, world):  # noqa: F811
    uscc = world["a_dept"].uscc
    a = auth(world["a"])
    body = {
        "type_code": PERSON_TYPE,
        "holder_name": "张三",
        "holder_code": id_number(31),
        "face": {"gender": "男"},
    }
    none_linked = client.post("/api/v1/licences", json=body, headers=a)
    assert none_linked.status_code == 201
    assert none_linked.get_json()["task_code"] is None  # not recorded, never guessed
    with db.transaction() as session:
        licence_types.link_type_entry(session, SYSTEM, PERSON_TYPE, task_code=_task(uscc, 1), role="produces")
    one = client.post("/api/v1/licences", json={**body, "holder_code": id_number(32)}, headers=a)
    assert one.get_json()["task_code"] == _task(uscc, 1)
    with db.transaction() as session:
        licence_types.link_type_entry(session, SYSTEM, PERSON_TYPE, task_code=_task(uscc, 2), role="produces")
    ambiguous = client.post("/api/v1/licences", json={**body, "holder_code": id_number(33)}, headers=a)
    assert ambiguous.status_code == 422
    assert "task_code" in ambiguous.get_json()["details"]
    foreign = client.post(
        "/api/v1/licences",
        json={**body, "holder_code": id_number(34), "task_code": _task(org_code(1), 3)},
        headers=a,
    )
    assert foreign.status_code == 422
    chosen = client.post(
        "/api/v1/licences",
        json={**body, "holder_code": id_number(35), "task_code": _task(uscc, 2)},
        headers=a,
    )
    assert chosen.status_code == 201, chosen.get_json()
    with db.transaction() as session:
        licence = session.get(Licence, chosen.get_json()["id"])
        assert licence.task_code == _task(uscc, 2)
        assert session.exec(select(sa.func.count()).select_from(Licence)).one() == 3


def test_migration_merges_duplicate_types_keeping_the_licences_codes(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["skip_logging"] = True
    command.upgrade(cfg, "3b8f0d6e2c45")
    engine = sa.create_engine(url)
    type_cols = "id, code, name, authority_name, authority_code, authority_level, holder_code_type, category,"
    type_cols += " face_schema, is_active, created_at, updated_at"
    with engine.begin() as conn:
        for tid, code in ((1, "111000000000131433001"), (2, "11321203MB1580010X001")):
            conn.execute(
                sa.text(
                    f"INSERT INTO licence_type ({type_cols}) VALUES (:id, :code, '结婚证', '', :auth,"  # noqa: S608
                    " '国家级', '111', '证照', '[]', 1, '2024-01-01', '2024-01-01')"
                ),
                {"id": tid, "code": code, "auth": code[:18]},
            )
        conn.execute(
            sa.text(
                "INSERT INTO licence_type_entry (id, licence_type_id, task_code, role) VALUES"
                " (1, 2, 'T1', 'produces'), (2, 1, 'T2', 'produces'), (3, 2, 'T2', 'produces')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO licence (id, identifier, type_id, type_code, type_name, serial, version, number,"
                " holder_name, holder_code, holder_code_type, issuer_department_id, issuer_code,"
                " issuer_name, issue_date, valid_from, area_code, face, status, revision, is_current,"
                " created_at, updated_at) VALUES (1, 'X', 2, '11321203MB1580010X001', '结婚证', 'S', 1, 'N',"
                " '张三', 'C', '111', 1, 'I', '局', '2020-01-01', '2020-01-01', '321203', '{}', 'valid',"
                " 1, 1, '2024-01-01', '2024-01-01')"
            )
        )
    command.upgrade(cfg, "5d2a9c7e1f08")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id, code FROM licence_type")).all() == [
            (1, "111000000000131433001")
        ]
        assert conn.execute(sa.text("SELECT type_id, type_code FROM licence")).all() == [
            (1, "11321203MB1580010X001")  # the identifier's code stays
        ]
        links = sorted(
            conn.execute(sa.text("SELECT licence_type_id, task_code FROM licence_type_entry")).all()
        )
        assert links == [(1, "T1"), (1, "T2")]
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(
                sa.text(
                    f"INSERT INTO licence_type ({type_cols}) VALUES (3, 'Z', '结婚证', '', 'Z', '国家级',"  # noqa: S608
                    " '111', '证照', '[]', 1, '2024-01-01', '2024-01-01')"
                )
            )
    engine.dispose()
