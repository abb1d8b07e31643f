"""`flask demo load` on a fresh SQLite database builds the Gaogang demo and a second run reuses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlmodel import Session, select

from catalog import consistency
from catalog.codes import is_valid_uscc
from catalog.importer import read_uscc_map
from catalog.models import Department, Division, ImplementationEntry, Material
from catalog.norules import evaluate_no_contact
from core.auth import Role, User, check_password, principal_for_token
from core.config import Settings
from core.db import Database

ROOT = Path(__file__).resolve().parents[2]


def _counts(session: Session) -> dict[str, int]:
    def n(stmt) -> int:
        return int(session.exec(stmt).one())

    entry = ImplementationEntry
    entries = select(sa.func.count()).select_from(entry)
    return {
        "towns": n(select(sa.func.count()).select_from(Division).where(Division.level == "town")),
        "villages": n(select(sa.func.count()).select_from(Division).where(Division.level == "village")),
        "district_entries": n(select(sa.func.count()).select_from(entry).where(entry.level == "4")),
        "town_entries": n(entries.where(entry.level == "5", entry.applicable)),
        "village_entries": n(select(sa.func.count()).select_from(entry).where(entry.level == "6")),
        "declined": n(select(sa.func.count()).select_from(entry).where(sa.not_(entry.applicable))),
        "departments": n(select(sa.func.count()).select_from(Department)),
        "users": n(select(sa.func.count()).select_from(User)),
    }


@pytest.mark.slow
def test_demo_load_builds_the_gaogang_demo_on_fresh_sqlite_and_is_idempotent(tmp_path):
    from demo.app import create_app

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["skip_logging"] = True
    command.upgrade(cfg, "heads")
    db = Database(url)
    settings = Settings(
        database_url=url,
        instance_dir=tmp_path,
        secret_key="demo-test",
        city_registry_key="test-registry-key",
        ratelimit_enabled=False,
        city_registry_database_url=f"sqlite:///{tmp_path / 'registry.db'}",
    )
    runner = create_app(settings, database=db).test_cli_runner()

    result = runner.invoke(args=["demo", "load", "--no-progress"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "73 town-level and 66 village-level claims" in result.output

    with db.transaction() as session:
        counts = _counts(session)
        assert counts["towns"] == 15
        assert counts["villages"] == 153
        assert counts["district_entries"] == 1135
        published = session.exec(
            select(sa.func.count())
            .select_from(ImplementationEntry)
            .where(ImplementationEntry.level == "4", ImplementationEntry.status == "published")
        ).one()
        assert published >= 1130
        assert counts["town_entries"] == 73
        assert counts["village_entries"] == 66
        # Two residents' services in each of the three industrial parks, and the district items that
        # name another province (申领《四川省老年人优待证》), each with its reason.
        foreign = session.exec(
            select(ImplementationEntry).where(
                ImplementationEntry.level == "4", sa.not_(ImplementationEntry.applicable)
            )
        ).all()
        assert [e.name for e in foreign] == ["申领《四川省老年人优待证》"]
        assert "四川省" in foreign[0].not_applicable_reason
        assert counts["declined"] == 6 + len(foreign)
        assert not session.exec(
            select(ImplementationEntry).where(
                ImplementationEntry.level.in_(["5", "6"]), ImplementationEntry.name.contains("四川")
            )
        ).all()
        # No real upper-level catalogue exists for the demo: nothing to compare, and the report says so.
        assert consistency.consistency_report(session) == []
        assert [lv["items"] for lv in consistency.coverage(session)["levels"]] == [0, 0]
        assert not [
            d.name for d in session.exec(select(Department)).all() if "广安" in d.name
        ]
        bodies = session.exec(select(Department).where(Department.level.in_(["5", "6"]))).all()
        assert len([b for b in bodies if b.level == "5"]) == 15
        assert len([b for b in bodies if b.level == "6"]) == 153
        assert all(is_valid_uscc(b.uscc) for b in bodies)
        # District departments carry the demo's declared codes (data/demo_department_uscc_321203.csv),
        # not codes the importer made up.
        declared = read_uscc_map(ROOT / "data" / "demo_department_uscc_321203.csv")
        district = {
            d.name: d.uscc for d in session.exec(select(Department).where(Department.level == "4")).all()
        }
        assert {name: district[name] for name in declared} == declared
        village_types = set(
            session.exec(select(ImplementationEntry.task_type).where(ImplementationEntry.level == "6")).all()
        )
        assert village_types == {"20"}

        flagged = session.exec(select(ImplementationEntry).where(ImplementationEntry.no_contact)).all()
        assert len(flagged) >= 10
        for entry in flagged:
            materials = session.exec(select(Material).where(Material.entry_id == entry.id)).all()
            assert evaluate_no_contact(entry, materials).ok, entry.task_code
        failing = [
            e
            for e in session.exec(
                select(ImplementationEntry).where(
                    ImplementationEntry.level == "5", ImplementationEntry.status == "published"
                )
            ).all()
            if not evaluate_no_contact(
                e, session.exec(select(Material).where(Material.entry_id == e.id)).all()
            ).ok
        ]
        assert len(failing) >= 10
        # This year's case records (demo/cases_demo.py), through the intake service.
        from reports.models import CaseRecord

        assert session.exec(select(sa.func.count()).select_from(CaseRecord)).one() == 3000
        # The district's 2018 report figures are entered and 2018 is frozen, so the old-form report
        # reads with the published figures on `make run`.
        from reports.models import EnteredFigure, Snapshot

        assert session.exec(select(Snapshot).where(Snapshot.year == 2018)).first() is not None
        figures_file = (ROOT / "data" / "gaogang_2018_report_figures.csv").read_text(encoding="utf-8")
        entered = session.exec(select(EnteredFigure).where(EnteredFigure.year == 2018)).all()
        assert len(entered) == len(figures_file.strip().splitlines()) - 1

        # Element content (#12): every town and village claim and at least 150 district entries carry
        # a full element set marked 示例内容; the other district entries record nothing.
        demo = session.exec(
            select(ImplementationEntry).where(
                ImplementationEntry.demo_content, ImplementationEntry.applicable
            )
        ).all()
        by_level = {lv: [e for e in demo if e.level == lv] for lv in ("4", "5", "6")}
        assert len(by_level["5"]) == 73
        assert len(by_level["6"]) == 66
        assert len(by_level["4"]) >= 150
        for entry in demo:
            assert entry.visits is not None, entry.task_code
            assert entry.charges is not None, entry.task_code
            assert entry.result_name, entry.task_code
            assert entry.service_objects, entry.task_code
        bare = session.exec(
            select(ImplementationEntry).where(
                ImplementationEntry.level == "4", sa.not_(ImplementationEntry.demo_content)
            )
        ).all()
        assert bare
        assert all(e.visits is None and e.charges is None and e.visits_reason is None for e in bare)

    creds_path = tmp_path / "demo_credentials.json"
    creds = json.loads(creds_path.read_text())
    ours = {
        u["username"]: u
        for u in creds["users"]
        if u["username"].startswith("demo_") or u["username"] == "licence_clerk"
    }
    assert {u["role"] for u in ours.values()} == {r.value for r in Role}
    assert ours["demo_town"]["division_code"] == "321203001000"
    with db.transaction() as session:
        for cred in ours.values():
            user = session.exec(select(User).where(User.username == cred["username"])).one()
            assert check_password(user, cred["password"])
            assert principal_for_token(session, cred["token"]).user_id == user.id
    assert (creds_path.stat().st_mode & 0o777) == 0o600

    before = creds_path.read_text()
    again = runner.invoke(args=["demo", "load", "--no-progress"])
    assert again.exit_code == 0, again.output
    assert "demo already loaded" in again.output
    with db.transaction() as session:
        assert _counts(session) == counts
    assert json.loads(creds_path.read_text())["users"][:5] == json.loads(before)["users"][:5]
    db.engine.dispose()
