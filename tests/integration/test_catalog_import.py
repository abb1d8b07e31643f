"""Importing the real district catalogue, bad rows, idempotency, and the `flask catalog` commands."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlmodel import func, select

from catalog.codes import is_valid_uscc, make_uscc
from catalog.importer import import_items_csv, read_department_map, read_uscc_map
from catalog.models import CatalogItem, Department, Division, EntryVersion, ImplementationEntry
from core.errors import Invalid
from tests.factories.catalog import (
    seed_divisions,
)

ROOT = Path(__file__).resolve().parents[2]
REAL_FILE = ROOT / "data" / "service_items_guangan_511602.csv"
DEMO_USCC_MAP = ROOT / "data" / "demo_department_uscc_321203.csv"
DEPARTMENT_MAP = ROOT / "data" / "department_map_511602_321203.csv"
# The 统一社会信用代码 the tests' departments are registered with (the importer never makes one up).
USCCS = {f"区{c}局": make_uscc("11321203", f"7{n:07d}") for n, c in enumerate("甲乙丙丁戊己", start=1)}
HEADER = (
    "seq,item_name,item_type,task_type_code,department,item_group,basic_code,implementation_code,"
    "area_code,area_name,dept_code\n"
)


def _count(session, model) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


@pytest.mark.slow
def test_real_catalogue_imports_every_row_as_published_district_entries(app, session):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["catalog", "load-divisions"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        args=[
            "catalog",
            "import-items",
            str(REAL_FILE),
            "--district",
            "321203",
            "--uscc-map",
            str(DEMO_USCC_MAP),
            "--department-map",
            str(DEPARTMENT_MAP),
            "--no-progress",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "新建实施清单 1135" in result.output

    with REAL_FILE.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    session.expire_all()
    entries = session.exec(select(ImplementationEntry)).all()
    assert len(entries) == 1135
    assert {e.status for e in entries} == {"published"}
    assert {e.level for e in entries} == {"4"}
    assert {e.division_code for e in entries} == {"321203000000"}
    assert sorted(e.name for e in entries) == sorted(r["item_name"] for r in rows)
    items = session.exec(select(CatalogItem)).all()
    assert {i.source_code for i in items} == {r["basic_code"] for r in rows}
    assert all(len(i.code) == 12 and i.code.startswith("32") for i in items)
    departments = session.exec(select(Department)).all()
    assert len(departments) == len({r["department"] for r in rows}) == 34
    assert all(is_valid_uscc(d.uscc) for d in departments)
    assert {d.name: d.uscc for d in departments} == read_uscc_map(DEMO_USCC_MAP)
    assert not [d.name for d in departments if "广安" in d.name]
    # Each item's 主管部门 is the (mapped) department of its row.
    names = read_department_map(DEPARTMENT_MAP)
    by_id = {d.id: d.name for d in departments}
    competent = {i.source_code: by_id[i.competent_department_id] for i in items}
    assert all(competent[r["basic_code"]] == names[r["department"]] for r in rows)
    assert all(
        e.task_code == next(d.uscc for d in departments if d.id == e.department_id) + "4" + e.catalog_code
        for e in entries[:50]
    )

    assert _count(session, EntryVersion) == 1135


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "items.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def test_bad_rows_are_reported_with_line_numbers_while_good_rows_import(any_session, tmp_path):
    seed_divisions(any_session)
    path = _write(
        tmp_path,
        "1,好事项一,行政许可,1,区甲局,,SRC-1,x,511602000000,广安区,1\n"  # line 2
        '2,"跨行\n的事项名",公共服务,20,区乙局,,SRC-2,x,511602000000,广安区,1\n'  # lines 3-4
        "3,,行政许可,1,区丙局,,SRC-3,x,511602000000,广安区,1\n"  # line 5: empty name
        "4,坏类型,审核转报,12,区丁局,,SRC-4,x,511602000000,广安区,1\n"  # line 6: unknown type
        "5,重复编码,行政许可,1,区戊局,,SRC-1,x,511602000000,广安区,1\n"  # line 7: duplicate code
        "6,缺列,行政许可,1\n"  # line 8: wrong column count
        "7,类型矛盾,行政许可,20,区己局,,SRC-7,x,511602000000,广安区,1\n"  # line 9: code vs name
        "8,好事项二,行政确认,7,区甲局,,SRC-8,x,511602000000,广安区,1\n",  # line 10
    )
    report = import_items_csv(any_session, path, "321203", progress=False, department_usccs=USCCS)
    assert [line for line, _ in report.errors] == [5, 6, 7, 8, 9]
    reasons = dict(report.errors)
    assert "名称为空" in reasons[5]
    assert "12" in reasons[6]
    assert "重复" in reasons[7]
    assert "列数" in reasons[8]
    assert "不一致" in reasons[9]
    assert report.created == 3
    names = set(any_session.exec(select(ImplementationEntry.name)).all())
    assert names == {"好事项一", "跨行\n的事项名", "好事项二"}
    # Departments of refused rows were never created.
    depts = set(any_session.exec(select(Department.name)).all())
    assert depts == {"区甲局", "区乙局"}
    assert (
        any_session.exec(select(CatalogItem).where(CatalogItem.source_code == "SRC-2")).one().task_type
        == "20"
    )


def test_rerunning_an_import_changes_nothing(any_session, tmp_path):
    seed_divisions(any_session)
    path = _write(
        tmp_path,
        "1,事项一,行政许可,1,区甲局,,SRC-1,x,511602000000,广安区,1\n"
        "2,事项二,公共服务,20,区乙局,,SRC-2,x,511602000000,广安区,1\n",
    )
    first = import_items_csv(any_session, path, "321203", progress=False, department_usccs=USCCS)
    codes = sorted(any_session.exec(select(ImplementationEntry.task_code)).all())
    second = import_items_csv(any_session, path, "321203", progress=False, department_usccs=USCCS)
    assert (first.created, second.created, second.skipped) == (2, 0, 2)
    assert sorted(any_session.exec(select(ImplementationEntry.task_code)).all()) == codes
    assert _count(any_session, EntryVersion) == 2
    assert _count(any_session, Department) == 2


def test_reimport_with_changed_name_updates_the_district_item_but_not_the_upper_level(any_session, tmp_path):
    from catalog.consistency import consistency_report

    seed_divisions(any_session)
    first = _write(tmp_path, "1,旧名称,行政许可,1,区甲局,,SRC-1,x,511602000000,广安区,1\n")
    import_items_csv(any_session, first, "321203", progress=False, department_usccs=USCCS)
    code = any_session.exec(select(CatalogItem.code)).one()
    second = _write(tmp_path, "1,新名称,行政许可,1,区甲局,,SRC-1,x,511602000000,广安区,1\n")
    report = import_items_csv(any_session, second, "321203", progress=False, department_usccs=USCCS)
    assert (report.created, report.updated) == (0, 1)
    assert any_session.exec(select(CatalogItem.code)).one() == code  # deterministic, unchanged
    assert any_session.exec(select(CatalogItem.name)).one() == "新名称"
    # No upper level imported: nothing to compare with, so nothing is reported as drift.
    assert consistency_report(any_session) == []


def test_import_needs_the_district_loaded(any_session, tmp_path):
    path = _write(tmp_path, "1,事项,行政许可,1,区甲局,,SRC-1,x,511602000000,广安区,1\n")
    # Every test rolls back, so the district is absent unless something committed it: say so, don't skip.
    assert any_session.get(Division, "321203000000") is None, (
        "高港区 is already in the test database: a test or fixture committed divisions outside its rollback"
    )
    with pytest.raises(Invalid, match="load-divisions"):
        import_items_csv(any_session, path, "321203", progress=False, department_usccs=USCCS)


def test_taizhou_divisions_load_for_scale(app, session):
    result = app.test_cli_runner().invoke(args=["catalog", "load-divisions", "--city"])
    assert result.exit_code == 0, result.output
    session.expire_all()
    levels = dict(session.exec(select(Division.level, func.count()).group_by(Division.level)).all())
    assert levels["village"] == 1745
    assert levels["town"] == 109
    assert levels["county"] == 6


def test_cli_creates_user_and_token_that_the_api_accepts(app, client, session):
    runner = app.test_cli_runner()
    runner.invoke(args=["catalog", "load-divisions"])
    result = runner.invoke(
        args=[
            "catalog",
            "create-user",
            "zhangsan",
            "--role",
            "division_operator",
            "--division",
            "321203001000",
            "--password",
            "secret-pass-1",
        ]
    )
    assert result.exit_code == 0, result.output
    bad = runner.invoke(
        args=["catalog", "create-user", "lisi", "--role", "dept_editor", "--password", "secret-pass-1"]
    )
    assert bad.exit_code != 0
    assert "部门" in bad.output
    token = runner.invoke(args=["catalog", "create-token", "zhangsan"]).output.strip()
    assert token.startswith("gg_")
    response = client.get("/api/v1/entries/1/history", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404  # authenticated (not 401); the entry does not exist
    assert runner.invoke(args=["catalog", "create-token", "nobody"]).exit_code != 0


def test_cli_reports_bad_rows_by_line_and_exits_nonzero(app, session, tmp_path):
    runner = app.test_cli_runner()
    runner.invoke(args=["catalog", "load-divisions"])
    path = _write(
        tmp_path,
        "1,好事项,行政许可,1,区甲局,,SRC-1,x,511602000000,广安区,1\n"
        "2,坏事项,行政许可,99,区乙局,,SRC-2,x,511602000000,广安区,1\n",
    )
    mapping = tmp_path / "usccs.csv"
    mapping.write_text(
        "department,uscc\n" + "".join(f"{k},{v}\n" for k, v in USCCS.items()), encoding="utf-8"
    )
    result = runner.invoke(
        args=[
            "catalog",
            "import-items",
            str(path),
            "--district",
            "321203",
            "--uscc-map",
            str(mapping),
            "--no-progress",
        ]
    )
    assert result.exit_code == 2
    assert "新建实施清单 1" in result.output
    assert "第 3 行" in result.output
    missing = runner.invoke(args=["catalog", "import-items", str(path), "--district", "999999"])
    assert missing.exit_code == 1
    assert "load-divisions" in missing.output


def test_a_new_department_without_a_uscc_is_refused_with_its_line_never_invented(app, session, tmp_path):
    runner = app.test_cli_runner()
    runner.invoke(args=["catalog", "load-divisions"])
    path = _write(
        tmp_path,
        "1,有代码的事项,行政许可,1,区甲局,,SRC-1,x,511602000000,广安区,1\n"  # line 2: in the mapping
        "2,无代码的事项,行政许可,1,区无码局,,SRC-2,x,511602000000,广安区,1\n",  # line 3: no code anywhere
    )
    mapping = tmp_path / "usccs.csv"
    mapping.write_text(f"# provenance comment\ndepartment,uscc\n区甲局,{USCCS['区甲局']}\n", encoding="utf-8")
    result = runner.invoke(
        args=["catalog", "import-items", str(path), "--uscc-map", str(mapping), "--no-progress"]
    )
    assert result.exit_code == 2, result.output
    assert "第 3 行" in result.output
    assert "区无码局" in result.output
    assert "统一社会信用代码" in result.output
    session.expire_all()
    assert set(session.exec(select(Department.name)).all()) == {"区甲局"}
    assert session.exec(select(Department.uscc)).one() == USCCS["区甲局"]
    assert set(session.exec(select(ImplementationEntry.name)).all()) == {"有代码的事项"}

    without_map = runner.invoke(args=["catalog", "import-items", str(path), "--no-progress"])
    assert without_map.exit_code == 2
    assert "第 3 行" in without_map.output


def test_the_uscc_column_of_the_file_is_used_and_must_agree_with_the_registered_code(any_session, tmp_path):
    seed_divisions(any_session)
    path = tmp_path / "items.csv"
    other = make_uscc("11321203", "79999999")
    path.write_text(
        HEADER.rstrip("\n") + ",department_uscc\n"
        f"1,事项一,行政许可,1,区甲局,,SRC-1,x,511602000000,广安区,1,{USCCS['区甲局']}\n"  # line 2
        f"2,事项二,行政许可,1,区甲局,,SRC-2,x,511602000000,广安区,1,{other}\n"  # line 3: disagrees
        "3,事项三,行政许可,1,区甲局,,SRC-3,x,511602000000,广安区,1,\n"  # line 4: known department
        "4,事项四,行政许可,1,区乙局,,SRC-4,x,511602000000,广安区,1,ABC\n",  # line 5: not a USCC
        encoding="utf-8",
    )
    report = import_items_csv(any_session, path, "321203", progress=False)
    assert [line for line, _ in report.errors] == [3, 5]
    reasons = dict(report.errors)
    assert "不一致" in reasons[3]
    assert "18 位" in reasons[5]
    assert report.created == 2
    assert set(any_session.exec(select(Department.uscc)).all()) == {USCCS["区甲局"]}


def test_a_uscc_map_with_a_bad_line_is_refused_naming_it(tmp_path):
    path = tmp_path / "map.csv"
    path.write_text(f"# comment\ndepartment,uscc\n区甲局,{USCCS['区甲局']}\n区乙局,123\n", encoding="utf-8")
    with pytest.raises(Invalid, match="第 4 行"):
        read_uscc_map(path)
    path.write_text(
        f"department,uscc\n区甲局,{USCCS['区甲局']}\n区甲局,{USCCS['区乙局']}\n", encoding="utf-8"
    )
    with pytest.raises(Invalid, match=r"第 3 行.*两个不同"):
        read_uscc_map(path)
