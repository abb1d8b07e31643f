"""The catalogue data layer on both the embedded SQLite and PostgreSQL (``any_session``)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from catalog import consistency, revisions, services
from catalog import entries as entry_services
from catalog.divisions import count_by_level, list_divisions
from catalog.models import EntryVersion
from core.audit import AuditLog, verify_chain
from core.auth import SYSTEM, Role
from core.errors import Conflict, Forbidden, Invalid, NotFound
from tests.factories.catalog import (
    COMPLETE_FIELDS,
    DISTRICT,
    ELECTRONIC_MATERIALS,
    NO_CONTACT_FIELDS,
    TOWN,
    VILLAGE,
    import_upper,
    make_department,
    make_item,
    make_user,
    published_entry,
    seed_divisions,
    upper_row_for,
    uscc_for,
)


def test_gaogang_divisions_load_with_levels_and_are_idempotent(any_session):
    seed_divisions(any_session)
    counts = count_by_level(any_session)
    assert counts == {"province": 1, "city": 1, "county": 1, "town": 15, "village": 153}
    from catalog.divisions import GAOGANG_FILES, load_divisions_csv

    assert load_divisions_csv(any_session, *GAOGANG_FILES) == 0
    villages = list_divisions(any_session, parent_code=TOWN)
    assert VILLAGE in [v.code for v in villages]
    assert all(v.level == "village" for v in villages)


def test_a_village_moves_under_a_town_that_is_new_in_the_same_load(any_session, tmp_path):
    """A township reorganised: the reload adds a town and moves a village under it, in one call."""
    from catalog.divisions import GAOGANG_FILES, load_divisions_csv
    from catalog.models import Division

    towns, villages, _counties = GAOGANG_FILES
    load_divisions_csv(any_session, towns, villages)
    town_lines = towns.read_text(encoding="utf-8").splitlines()
    first_town = town_lines[1].split(",")
    new_town = ",".join(["321203199000", "321203199", "新设镇", "镇", *first_town[4:]])
    moved_towns = tmp_path / "towns.csv"
    moved_towns.write_text("\n".join([*town_lines, new_town]) + "\n", encoding="utf-8")
    village_lines = villages.read_text(encoding="utf-8").splitlines()
    head = village_lines[0].split(",")
    moved = dict(zip(head, village_lines[1].split(","), strict=True))
    moved.update(town_code9="321203199", town_code12="321203199000", town_name="新设镇")
    moved_villages = tmp_path / "villages.csv"
    moved_villages.write_text(
        "\n".join([village_lines[0], ",".join(moved[k] for k in head), *village_lines[2:]]) + "\n",
        encoding="utf-8",
    )
    assert load_divisions_csv(any_session, moved_towns, moved_villages) == 2
    any_session.expire_all()
    assert any_session.get(Division, moved["code12"]).parent_code == "321203199000"
    assert any_session.get(Division, "321203199000").level == "town"


def test_claim_builds_task_code_from_uscc_level_and_basic_code(any_session):
    dept = make_department(any_session, "区行政审批局")
    item = make_item(any_session, name="食品经营许可")
    entry = entry_services.claim_item(any_session, SYSTEM, item_id=item.id, department_id=dept.id)
    assert entry.task_code == dept.uscc + "4" + item.code
    assert len(entry.task_code) == 31
    assert (entry.name, entry.task_type, entry.catalog_code, entry.status) == (
        "食品经营许可",
        "01",
        item.code,
        "draft",
    )
    with pytest.raises(Conflict):
        entry_services.claim_item(any_session, SYSTEM, item_id=item.id, department_id=dept.id)


def test_department_uscc_with_bad_check_digit_is_accepted_with_warning(any_session):
    seed_divisions(any_session)
    dept = services.create_department(
        any_session, SYSTEM, name="老代码单位", uscc="91350100M0001TGQXM", level="4", division_code=DISTRICT
    )
    assert dept.uscc_warning
    assert "校验" in dept.uscc_warning
    with pytest.raises(Invalid) as err:
        services.create_department(
            any_session, SYSTEM, name="坏代码", uscc="91350100M0001TGQX", level="4", division_code=DISTRICT
        )
    assert "uscc" in err.value.details


def test_department_level_must_match_division_level(any_session):
    seed_divisions(any_session)
    with pytest.raises(Invalid) as err:
        services.create_department(
            any_session,
            SYSTEM,
            name="口岸街道办",
            uscc=uscc_for("口岸街道办"),
            level="5",
            division_code=DISTRICT,
        )
    assert "division_code" in err.value.details


def test_village_body_cannot_claim_item_not_allowed_at_village_level(any_session):
    village = make_department(any_session, "柴墟社区居委会", level="6", division_code=VILLAGE)
    with pytest.raises(Invalid):
        make_item(any_session, name="村级许可", task_type="01", use_levels="4,5,6")
    item = make_item(any_session, name="许可", task_type="01", use_levels="4,5")
    with pytest.raises(Invalid) as err:
        entry_services.claim_item(any_session, SYSTEM, item_id=item.id, department_id=village.id)
    assert "department_id" in err.value.details
    service = make_item(any_session, name="社区服务", task_type="20", use_levels="4,5,6")
    entry = entry_services.claim_item(any_session, SYSTEM, item_id=service.id, department_id=village.id)
    assert entry.level == "6"
    assert entry.division_code == VILLAGE


def test_update_rejects_locked_fields_and_promise_longer_than_statutory(any_session):
    dept = make_department(any_session, "区人社局")
    entry = entry_services.claim_item(
        any_session, SYSTEM, item_id=make_item(any_session).id, department_id=dept.id
    )
    with pytest.raises(Invalid) as err:
        entry_services.update_entry(any_session, SYSTEM, entry.id, fields={"name": "改名"})
    assert "name" in err.value.details
    with pytest.raises(Invalid) as err:
        entry_services.update_entry(
            any_session,
            SYSTEM,
            entry.id,
            fields={**COMPLETE_FIELDS, "anticipate_days": 5, "promise_days": 10},
        )
    assert "promise_days" in err.value.details
    with pytest.raises(Invalid) as err:
        entry_services.update_entry(
            any_session, SYSTEM, entry.id, fields={"visits": 2, "visits_reason": None}
        )
    assert "visits_reason" in err.value.details
    any_session.refresh(entry)
    assert entry.version == 1
    assert entry.anticipate_days is None


def test_working_day_promise_is_compared_in_calendar_days(any_session):
    dept = make_department(any_session, "区交通运输局")
    entry = entry_services.claim_item(
        any_session, SYSTEM, item_id=make_item(any_session).id, department_id=dept.id
    )
    # 10 working days are 14 calendar days: within a 15-calendar-day statutory limit, not within 13.
    entry_services.update_entry(
        any_session,
        SYSTEM,
        entry.id,
        fields={
            "anticipate_days": 15,
            "anticipate_unit": "calendar",
            "promise_days": 10,
            "promise_unit": "working",
        },
    )
    with pytest.raises(Invalid):
        entry_services.update_entry(any_session, SYSTEM, entry.id, fields={"anticipate_days": 13})


def test_lifecycle_keeps_every_version_and_audits_old_and_new(any_session):
    dept = make_department(any_session, "区住建局")
    entry = entry_services.claim_item(
        any_session, SYSTEM, item_id=make_item(any_session).id, department_id=dept.id
    )
    with pytest.raises(Invalid):
        entry_services.submit_entry(any_session, SYSTEM, entry.id)  # time limits missing
    entry_services.update_entry(
        any_session,
        SYSTEM,
        entry.id,
        fields={**COMPLETE_FIELDS, "charges": True},
        materials=[{"name": "身份证", "form": "paper"}],
        fees=[{"name": "工本费", "amount_fen": 1000, "basis": "苏价费〔2018〕1号"}],
    )
    entry_services.submit_entry(any_session, SYSTEM, entry.id)
    with pytest.raises(Conflict):
        entry_services.update_entry(any_session, SYSTEM, entry.id, fields={"phone": "12345"})
    entry_services.reject_entry(any_session, SYSTEM, entry.id, "材料不全")
    entry_services.submit_entry(any_session, SYSTEM, entry.id)
    entry_services.approve_entry(any_session, SYSTEM, entry.id)
    # A published entry is revised without going offline: its next version is published again.
    revisions.open_revision(any_session, SYSTEM, entry.id, reason="缩短承诺时限")
    revisions.update_revision(any_session, SYSTEM, entry.id, fields={"promise_days": 3})
    revisions.submit_revision(any_session, SYSTEM, entry.id)
    revisions.approve_revision(any_session, SYSTEM, entry.id)
    entry_services.retire_entry(any_session, SYSTEM, entry.id, "职能调整")

    history = entry_services.entry_history(any_session, entry.id)
    assert [v.status for v in history] == [
        "draft",
        "draft",
        "submitted",
        "draft",
        "submitted",
        "published",
        "published",
        "retired",
    ]
    assert [v.version for v in history] == list(range(1, 9))
    assert history[5].snapshot["promise_days"] == 5
    assert history[6].snapshot["promise_days"] == 3
    assert history[5].snapshot["fees"][0]["amount_fen"] == 1000
    rows = any_session.exec(
        select(AuditLog)
        .where(AuditLog.entity_type == "implementation_entry", AuditLog.entity_id == str(entry.id))
        .order_by(AuditLog.id)
    ).all()
    actions = [r.action for r in rows]
    assert actions[0] == "entry.claim"
    assert actions[-1] == "entry.retire"
    edit = next(
        r
        for r in rows
        if r.action == "entry.revise" and "promise_days" in r.new and r.new["promise_days"] == 3
    )
    assert edit.old["promise_days"] == 5
    assert rows[-1].reason == "职能调整"
    assert verify_chain(any_session)[0]


def test_no_contact_flag_is_refused_with_named_failures_then_accepted(any_session):
    dept = make_department(any_session, "区市监局")
    entry = entry_services.claim_item(
        any_session, SYSTEM, item_id=make_item(any_session).id, department_id=dept.id
    )
    entry_services.update_entry(
        any_session,
        SYSTEM,
        entry.id,
        fields=COMPLETE_FIELDS,
        materials=[{"name": "营业执照", "form": "paper", "required": True}],
    )
    with pytest.raises(Invalid) as err:
        entry_services.set_no_contact(any_session, SYSTEM, entry.id, True)
    failures = err.value.details["no_contact"]
    assert any("需见面的环节" in f for f in failures)
    assert any("营业执照" in f for f in failures)
    assert any("办理形式未填报" in f for f in failures)
    entry_services.update_entry(
        any_session, SYSTEM, entry.id, fields=NO_CONTACT_FIELDS, materials=ELECTRONIC_MATERIALS
    )
    assert entry_services.set_no_contact(any_session, SYSTEM, entry.id, True).no_contact
    # An edit that breaks the rule while flagged is refused and nothing changes.
    with pytest.raises(Invalid) as err:
        entry_services.update_entry(
            any_session, SYSTEM, entry.id, fields={"visits": 1, "visits_reason": "核验"}
        )
    assert "no_contact" in err.value.details
    any_session.refresh(entry)
    assert entry.visits == 0


def test_decline_records_reason_and_hides_from_public(any_session):
    dept = make_department(any_session, "区林业局")
    item = make_item(any_session)
    entry = entry_services.decline_item(
        any_session, SYSTEM, item_id=item.id, department_id=dept.id, reason="本区无林区"
    )
    assert not entry.applicable
    assert entry.not_applicable_reason == "本区无林区"
    with pytest.raises(Invalid):
        entry_services.decline_item(
            any_session, SYSTEM, item_id=make_item(any_session).id, department_id=dept.id, reason=" "
        )
    entry_services.submit_entry(any_session, SYSTEM, entry.id)
    entry_services.approve_entry(any_session, SYSTEM, entry.id)
    from core.auth import ANONYMOUS

    _rows, total = entry_services.list_entries(any_session, ANONYMOUS, item_id=item.id)
    assert total == 0


def test_editor_of_one_department_cannot_touch_another(any_session):
    a = make_department(any_session, "区教科体局")
    b = make_department(any_session, "区民政局")
    _, editor_a, _ = make_user(any_session, Role.DEPT_EDITOR, department=a)
    entry_b = entry_services.claim_item(
        any_session, SYSTEM, item_id=make_item(any_session).id, department_id=b.id
    )
    with pytest.raises(Forbidden):
        entry_services.update_entry(any_session, editor_a, entry_b.id, fields={"phone": "123456"})
    with pytest.raises(Forbidden):
        entry_services.claim_item(
            any_session, editor_a, item_id=make_item(any_session).id, department_id=b.id
        )
    with pytest.raises(NotFound):
        entry_services.get_visible_entry(any_session, editor_a, entry_b.id)


def test_town_operator_manages_its_villages_but_village_operator_not_its_town(any_session):
    town = make_department(any_session, "口岸街道办事处", level="5", division_code=TOWN)
    village = make_department(any_session, "柴墟社区居委会", level="6", division_code=VILLAGE)
    _, town_op, _ = make_user(any_session, Role.DIVISION_OPERATOR, division_code=TOWN)
    _, village_op, _ = make_user(any_session, Role.DIVISION_OPERATOR, division_code=VILLAGE)
    service = make_item(any_session, name="社区服务", task_type="20", use_levels="4,5,6")
    v_entry = entry_services.claim_item(any_session, village_op, item_id=service.id, department_id=village.id)
    t_entry = entry_services.claim_item(any_session, town_op, item_id=service.id, department_id=town.id)
    entry_services.update_entry(any_session, town_op, v_entry.id, fields=COMPLETE_FIELDS)
    with pytest.raises(Forbidden):
        entry_services.update_entry(any_session, village_op, t_entry.id, fields=COMPLETE_FIELDS)
    entry_services.submit_entry(any_session, village_op, v_entry.id)
    with pytest.raises(Forbidden):
        entry_services.approve_entry(any_session, village_op, v_entry.id)
    # Four-eyes: the town operator wrote this draft, so another reviewer of the town approves it.
    with pytest.raises(Forbidden, match="双人审核"):
        entry_services.approve_entry(any_session, town_op, v_entry.id)
    _, other_town_op, _ = make_user(any_session, Role.DIVISION_OPERATOR, division_code=TOWN)
    assert entry_services.approve_entry(any_session, other_town_op, v_entry.id).status == "published"


def test_four_eyes_refuses_whoever_edited_a_revision_not_only_its_submitter(any_session):
    """A town operator edits its village's revision, the village operator submits it: the town
    operator may not approve what it wrote; another reviewer of the town may."""
    village = make_department(any_session, "柴墟社区居委会", level="6", division_code=VILLAGE)
    _, town_op, _ = make_user(any_session, Role.DIVISION_OPERATOR, division_code=TOWN)
    _, village_op, _ = make_user(any_session, Role.DIVISION_OPERATOR, division_code=VILLAGE)
    _, other_town_op, _ = make_user(any_session, Role.DIVISION_OPERATOR, division_code=TOWN)
    item = make_item(any_session, name="社区服务", task_type="20", use_levels="4,5,6")
    entry = published_entry(any_session, village, item)
    revisions.open_revision(any_session, village_op, entry.id, reason="更新咨询电话")
    revisions.update_revision(any_session, town_op, entry.id, fields={"phone": "0523-86990001"})
    revisions.submit_revision(any_session, village_op, entry.id)
    with pytest.raises(Forbidden, match="双人审核"):
        revisions.approve_revision(any_session, town_op, entry.id)
    assert revisions.approve_revision(any_session, other_town_op, entry.id).status == "approved"


def test_consistency_report_lists_drift_from_the_upper_item_until_aligned(any_session):
    dept = make_department(any_session, "区卫健局")
    item = make_item(any_session, name="医师执业注册")
    import_upper(any_session, [upper_row_for(item)])
    entry = entry_services.claim_item(any_session, SYSTEM, item_id=item.id, department_id=dept.id)
    assert consistency.consistency_report(any_session) == []
    import_upper(any_session, [upper_row_for(item, 名称="医师执业注册（变更）")])
    drift = consistency.consistency_report(any_session)
    assert [d.entry_id for d in drift] == [entry.id]
    assert drift[0].fields == {"name": ("医师执业注册", "医师执业注册（变更）")}
    entry_services.align_entry(any_session, SYSTEM, entry.id)
    assert consistency.consistency_report(any_session) == []


def test_huge_ids_are_not_found(any_session):
    with pytest.raises(NotFound):
        entry_services.get_entry(any_session, 2**63)
    with pytest.raises(NotFound):
        services.get_item(any_session, 2**31)
    assert any_session.exec(select(EntryVersion)).first() is None
