"""The reports tests' world: a district catalogue with departments, a town, three items and their
entries, plus the case-statistics CSV helpers. Shared by test_reports and the report modules that build
on it (figures, forms, layout, publication, snapshots)."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from catalog import entries as entry_services
from catalog import services as catalog
from catalog.codes import make_uscc
from catalog.divisions import load_divisions_csv
from catalog.models import ImplementationEntry
from core import users
from core.auth import SYSTEM, Principal, Role
from reports import annual_report, services
from tests.conftest import sign_in

DATA = Path(__file__).resolve().parents[2] / "data"
YEAR = 2025
TOWN = "321203101000"  # 白马镇


def _entry(
    session: Session,
    item_id: int,
    dept_id: int,
    *,
    visits: int = 1,
    depth: str = "1,2",
    no_contact: bool = False,
    publish: bool = True,
    materials: list[dict[str, Any]] | None = None,
    fees: list[dict[str, Any]] | None = None,
    promise: int = 5,
) -> ImplementationEntry:
    entry = entry_services.claim_item(session, SYSTEM, item_id=item_id, department_id=dept_id)
    fields: dict[str, Any] = {
        "anticipate_days": 20,
        "promise_days": promise,
        "visits": visits,
        "online_depth": depth,
        "window_address": "高港区政务服务中心",
        "online_url": "https://www.jszwfw.gov.cn/",
        "result_delivery": "online,post" if visits == 0 else "window",
        "handle_forms": "window,online",
    }
    if visits:
        fields["visits_reason"] = "需现场核验原件"
    entry_services.update_entry(session, SYSTEM, entry.id, fields=fields, materials=materials, fees=fees)
    if no_contact:
        entry_services.set_no_contact(session, SYSTEM, entry.id, True)
    if publish:
        entry_services.submit_entry(session, SYSTEM, entry.id)
        entry_services.approve_entry(session, SYSTEM, entry.id)
    return entry


def backdate(session: Session, when: datetime) -> None:
    """Pretend everything in the catalogue happened at ``when`` (tests of as-of behaviour only)."""
    for table in ("catalog_item", "department", "implementation_entry"):
        session.execute(sa.text(f"UPDATE {table} SET created_at = :w"), {"w": when})  # noqa: S608
    session.execute(
        sa.text("UPDATE implementation_entry SET published_at = :w WHERE published_at IS NOT NULL"),
        {"w": when},
    )
    session.execute(sa.text("UPDATE entry_version SET created_at = :w"), {"w": when})
    session.flush()
    session.expire_all()


def build_world(session: Session) -> dict[str, Any]:
    load_divisions_csv(
        session,
        DATA / "divisions_321203_gaogang_towns.csv",
        DATA / "divisions_321203_gaogang_villages.csv",
        None,
    )
    d1 = catalog.create_department(
        session,
        SYSTEM,
        name="区市场监管局",
        uscc=make_uscc("11321203", "91000001"),
        level="4",
        division_code="321203000000",
    )
    d2 = catalog.create_department(
        session,
        SYSTEM,
        name="区民政局",
        uscc=make_uscc("11321203", "91000002"),
        level="4",
        division_code="321203000000",
    )
    town = catalog.create_department(
        session,
        SYSTEM,
        name="白马镇人民政府",
        uscc=make_uscc("11321203", "91000003"),
        level="5",
        division_code=TOWN,
    )
    i1 = catalog.create_item(
        session, SYSTEM, code="000101001000", name="食品经营许可", task_type="01", use_levels="4"
    )
    i2 = catalog.create_item(
        session, SYSTEM, code="000701001000", name="社会团体成立登记", task_type="07", use_levels="4"
    )
    i3 = catalog.create_item(
        session,
        SYSTEM,
        code="002001001000",
        name="城乡居民养老保险参保登记",
        task_type="20",
        use_levels="4,5",
    )
    licence_material = {"name": "营业执照", "form": "electronic", "required": True, "copies": 1}
    e1 = _entry(
        session,
        i1.id,
        d1.id,
        visits=0,
        depth="1,2,3,4,5,6",
        no_contact=True,
        materials=[
            licence_material,
            {"name": "食品安全管理制度", "form": "electronic", "required": True, "copies": 1},
        ],
        fees=[{"name": "工本费", "amount_fen": 1000, "basis": "苏价费〔2018〕1号"}],
    )
    e2 = _entry(
        session,
        i2.id,
        d2.id,
        visits=1,
        depth="1,2",
        materials=[{"name": "营  业执照", "form": "paper", "required": True, "copies": 2}],
        promise=10,
    )
    # A 公共服务 entry is outside the six types of Jiangsu's 不见面 scope: it cannot carry the flag.
    e3 = _entry(session, i3.id, town.id, visits=0, depth="4,5,7", promise=3)
    session.flush()
    return {"d1": d1, "d2": d2, "town": town, "items": (i1, i2, i3), "e1": e1, "e2": e2, "e3": e3}


def csv_text(rows: list[str], header: str = "task_code,month,received,online,finished,on_time") -> str:
    return "\n".join([header, *rows]) + "\n"


def import_csv(session: Session, text: str, year: int = YEAR, actor: Principal = SYSTEM) -> Any:
    rows, lines = services.read_case_csv(text)
    return services.import_case_stats(session, actor, year=year, rows=rows, line_of=lines)


def case_rows(world: dict[str, Any]) -> list[str]:
    e1, e2, e3 = world["e1"].task_code, world["e2"].task_code, world["e3"].task_code
    return [
        f"{e1},2025-01,100,80,90,88",
        f"{e1},2025-02,50,45,50,50",
        f"{e2},2025-01,30,0,30,29",
        f"{e3},2025-03,7,7,7,7",
    ]


def signed_in_admin(client: Any, session: Session, username: str) -> Any:
    """``client`` signed in as a new administrator named ``username`` (the report pages' tests)."""
    user = users.create_user(
        session,
        SYSTEM,
        users.NewUser(
            username=username, password="a-long-password-1", display_name="管理员", role=Role.ADMIN
        ),
    )[0]
    session.flush()
    sign_in(client, user.id)
    return client


def published_texts(report: annual_report.Report) -> dict[str, str]:
    """The text of each published format (Markdown, HTML, DOCX with its tables and footers), for
    asserting that something internal never reaches the public."""
    from docx import Document

    doc = Document(io.BytesIO(annual_report.render_docx(report)))
    seen: set[int] = set()
    cells = []
    for t in doc.tables:
        for row in t.rows:
            for c in row.cells:
                if id(c._tc) not in seen:  # a merged cell appears once per grid slot
                    seen.add(id(c._tc))
                    cells.append(c.text)
    footers = [p.text for s in doc.sections for p in s.footer.paragraphs]
    return {
        "md": annual_report.render_markdown(report),
        "html": annual_report.render_html(report),
        "docx": "\n".join([p.text for p in doc.paragraphs] + cells + footers),
    }
