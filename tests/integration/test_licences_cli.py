"""`flask licences import` on PostgreSQL: bad rows reported by line, good rows kept,
re-runs idempotent."""

from __future__ import annotations

import json

import pytest
from sqlmodel import func, select

from licenses.models import Licence, LicenceOutbox
from tests.factories.licences import (
    ORG_TYPE,
    PERSON_TYPE,
    id_number,
    make_staff,
    make_types,
    org_code,
)


@pytest.fixture
def issuer(db, app):
    with db.transaction() as session:
        make_types(session)
        staff = make_staff(session, "高港区行政审批局", "MB158001", "clerk_a")
    return staff.department


def count(db, model):
    with db.transaction() as session:
        return session.exec(select(func.count()).select_from(model)).one()


def write(path, rows):
    header = "type_code,holder_name,holder_code,number,issue_date,valid_from,valid_to,area_code,face\n"
    path.write_text(header + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")


def test_import_reports_bad_rows_with_line_numbers_and_is_idempotent(app, db, issuer, tmp_path):
    face_person = json.dumps({"gender": "女"}, ensure_ascii=False).replace('"', '""')
    face_org = json.dumps({"legal_representative": "王五"}, ensure_ascii=False).replace('"', '""')
    bad_id = id_number(2)[:-1] + ("0" if id_number(2)[-1] != "0" else "1")
    csv_path = tmp_path / "licences.csv"
    write(
        csv_path,
        [
            [PERSON_TYPE, "李娜", id_number(1), "ZG2017001", "2017-03-01", "", "", "", f'"{face_person}"'],
            [PERSON_TYPE, "王芳", bad_id, "ZG2017002", "2017-03-02", "", "", "", f'"{face_person}"'],
            [
                ORG_TYPE,
                "泰州市高港区鑫源食品店",
                org_code(5),
                "YZ2017003",
                "2017-04-01",
                "",
                "",
                "",
                f'"{face_org}"',
            ],
            ["11100000000013338W999", "赵六", id_number(3), "X1", "2017-04-02", "", "", "", ""],
            [
                PERSON_TYPE,
                "周七",
                id_number(4),
                "ZG2017005",
                "2017-05-01",
                "2017-05-01",
                "2017-04-01",
                "",
                "",
            ],
        ],
    )
    runner = app.test_cli_runner()
    result = runner.invoke(args=["licences", "import", str(csv_path), "--department", issuer.uscc])
    assert result.exit_code == 1, result.output
    assert "第 3 行" in result.output
    assert "校验位" in result.output
    assert "第 5 行" in result.output
    assert "未知的证照类型代码" in result.output
    assert "第 6 行" in result.output
    assert "有效期截止日期早于起始日期" in result.output
    assert "导入 2 张" in result.output
    assert count(db, Licence) == 2
    assert count(db, LicenceOutbox) == 2
    again = runner.invoke(args=["licences", "import", str(csv_path), "--department", issuer.uscc])
    assert "导入 0 张，已存在跳过 2 张" in again.output
    assert count(db, Licence) == 2


def test_import_of_a_file_without_the_required_columns_says_which(app, issuer, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("name,code\nx,y\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["licences", "import", str(path), "--department", issuer.uscc])
    assert result.exit_code != 0
    assert "缺少列" in result.output


def test_import_for_an_unknown_department_fails_cleanly(app, issuer, tmp_path):
    path = tmp_path / "ok.csv"
    write(path, [])
    result = app.test_cli_runner().invoke(args=["licences", "import", str(path), "--department", "X" * 18])
    assert result.exit_code != 0
    assert "找不到" in result.output


def test_synthetic_licences_of_the_current_year_are_never_issued_in_the_future():
    from datetime import date

    from demo.synthetic_licences import synthetic_rows
    from licenses.models import LicenceType
    from licenses.types import today

    lt = LicenceType(code="11100000MB0143028R001", name="营业执照", authority_code="11100000MB0143028R",
                     holder_code_type="001")
    this_year = today().year
    dates = [row["issue_date"] for _, row in synthetic_rows([lt], 2000, year=this_year, seed=1)]
    assert max(dates) <= today()
    assert min(dates) >= date(this_year, 1, 1)


def test_load_types_loads_the_national_reference_types_and_no_demo_codes(app, db):
    from licenses.models import LicenceType
    from licenses.reference import NATIONAL_TYPES_CSV, read_reference_types

    reference = read_reference_types(NATIONAL_TYPES_CSV)
    explicit = {r.code for r in reference if not r.inferred}
    inferred = {r.code for r in reference if r.inferred}
    assert explicit
    assert inferred
    runner = app.test_cli_runner()

    result = runner.invoke(args=["licences", "load-types"])
    assert result.exit_code == 0, result.output
    assert f"新增证照类型 {len(explicit)} 个" in result.output
    with db.transaction() as session:
        types = session.exec(select(LicenceType)).all()
        assert {t.code for t in types} == explicit
        assert {t.authority_level for t in types} == {"国家级"}  # 11100000...: registered nationally
        assert all(t.validity_years is None for t in types)  # not stated by the reference file
        # The face fields come from the certificates (data/elicence_type_faces.json), checked there.
        from licenses.reference import reference_faces

        faces = reference_faces()
        assert all([f["key"] for f in t.face_schema] == [f["key"] for f in faces[t.code]] for t in types)

    again = runner.invoke(args=["licences", "load-types", "--include-inferred"])
    assert again.exit_code == 0, again.output
    assert f"新增证照类型 {len(inferred)} 个" in again.output
    with db.transaction() as session:
        assert set(session.exec(select(LicenceType.code)).all()) == explicit | inferred


def test_load_types_refuses_a_bad_reference_file_naming_the_line(app, db, tmp_path):
    from licenses.models import LicenceType

    path = tmp_path / "types.csv"
    path.write_text(
        "certificate_type_code,certificate_type_name,define_authority_name,holder_id_type,confidence\n"
        "11100000000013338W001,二级建造师注册证书,住建部,公民身份号码,explicit\n"
        "11100000000013338W002,某证,住建部,护照,explicit\n",
        encoding="utf-8",
    )
    result = app.test_cli_runner().invoke(args=["licences", "load-types", "--file", str(path)])
    assert result.exit_code == 1
    assert "第 3 行" in result.output
    assert count(db, LicenceType) == 0


def test_import_needs_the_issuing_department(app, issuer, tmp_path):
    path = tmp_path / "ok.csv"
    write(path, [])
    result = app.test_cli_runner().invoke(args=["licences", "import", str(path)])
    assert result.exit_code == 2
    assert "--department" in result.output


def test_grant_and_revoke_grant_commands_change_what_a_user_may_issue(app, db, issuer):
    from core.auth import Principal, User
    from licenses.grants import licence_rights

    runner = app.test_cli_runner()
    done = runner.invoke(args=["licences", "grant", "clerk_a", "--type", PERSON_TYPE])
    assert done.exit_code == 0, done.output
    refused = runner.invoke(args=["licences", "grant", "clerk_a", "--type", "11100000000013338W999"])
    assert refused.exit_code != 0
    assert "证照类型不存在" in refused.output
    # The name in another case names the same account (user names are unique case-blind).
    ended = runner.invoke(args=["licences", "revoke-grant", "Clerk_A", "--type", PERSON_TYPE])
    assert ended.exit_code == 0, ended.output
    with db.transaction() as session:
        user = session.exec(select(User).where(User.username == "clerk_a")).one()
        assert licence_rights(session, Principal.of(user)) == {ORG_TYPE}
