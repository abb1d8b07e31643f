"""CSV/XLSX formula injection: every spreadsheet export writes formula-like text as text.

A cell starting with =, +, -, @, tab or CR is a formula to Excel, WPS and LibreOffice. The
exports: the staff licence export (CSV) and the dashboard tables (CSV and XLSX).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook

from catalog import services as catalog
from core.auth import SYSTEM, Role
from core.exports import FORMULA_TRIGGERS
from core.types import CHINA_TZ as CHINA
from tests.factories.catalog import DISTRICT, make_user, seed_divisions, uscc_for
from tests.factories.licences import make_staff, make_types, person_licence

PAYLOAD = '=HYPERLINK("http://evil.example/","点击查看")'
# The departments are created now: ask for this year's figures as of a day after today.
_TODAY = datetime.now(CHINA).date()
AS_NOW = f"year={_TODAY.year}&as_of={(_TODAY + timedelta(days=1)).isoformat()}"
PAYLOADS = [PAYLOAD, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1"]


def _csv_rows(response: Any) -> list[list[str]]:
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def assert_no_cell_is_a_formula(cells: list[Any]) -> None:
    for value in cells:
        assert not (isinstance(value, str) and value.startswith(FORMULA_TRIGGERS)), value


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_licence_export_writes_formula_like_numbers_and_names_as_text(
    app: Any, db: Any, client: Any, payload: str
) -> None:
    session = db.session()
    make_types(session)
    staff = make_staff(session, "高港区住房和城乡建设局", "MB123456", "export_editor")
    person_licence(session, staff, number=payload, holder_name="=张三")
    session.commit()
    session.close()
    client.post("/login", data={"username": "export_editor", "password": "password-123"})
    response = client.get("/staff/licences/export.csv")
    assert response.status_code == 200
    header, *rows = _csv_rows(response)
    assert len(rows) == 1
    row = dict(zip(header, rows[0], strict=True))
    assert_no_cell_is_a_formula(rows[0])
    assert row["证照编号"] == "'" + payload.strip()  # the value itself survives, after the apostrophe
    assert row["持证主体"] == "'=**"  # masked names keep no leading "="
    assert row["证照类型代码"][0].isdigit()  # ordinary cells are left alone


@pytest.fixture
def admin_client(app: Any, db: Any, client: Any) -> Any:
    session = db.session()
    seed_divisions(session)
    for i, payload in enumerate(PAYLOADS):
        catalog.create_department(
            session, SYSTEM, name=f"{payload}{i}", uscc=uscc_for(f"formula{i}"), level="4",
            division_code=DISTRICT,
        )
    user, _p, _token = make_user(session, Role.ADMIN)
    session.commit()
    session.close()
    client.post("/login", data={"username": user.username, "password": "password-123"})
    return client


def test_the_dashboard_csv_export_writes_formula_like_names_as_text(admin_client: Any) -> None:
    response = admin_client.get(f"/admin/dashboard/export/entries_by_department.csv?{AS_NOW}")
    assert response.status_code == 200, response.data[:300]
    rows = _csv_rows(response)
    names = [row[1] for row in rows[1:]]
    assert {f"'{p.strip()}{i}" for i, p in enumerate(PAYLOADS)} <= set(names)
    for row in rows:
        assert_no_cell_is_a_formula(row)


def test_the_dashboard_xlsx_export_stores_formula_like_names_as_quoted_text(admin_client: Any) -> None:
    response = admin_client.get(f"/admin/dashboard/export/entries_by_department.xlsx?{AS_NOW}")
    assert response.status_code == 200, response.data[:300]
    sheet = load_workbook(io.BytesIO(response.data)).active
    found = {}
    for row in sheet.iter_rows(min_row=2):
        name = row[1]
        assert name.data_type != "f"
        found[name.value] = name
    for i, payload in enumerate(PAYLOADS):
        cell = found[f"{payload.strip()}{i}"]  # the original text, not a formula and not rewritten
        assert cell.data_type == "s"
        assert cell.quotePrefix
    counts = [cell.value for cell in next(sheet.iter_rows(min_row=2))[2:]]
    assert all(isinstance(v, int) for v in counts)  # numbers stay numbers
