"""Staff pages through the Flask test client: login by the form, then list, claim, edit, flag,
submit, review, publish, retire, history, consistency and the admin pages. Data is created
through catalog.services and core.auth, as users create it."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import select

from catalog import entries as entry_services
from catalog import scope, services
from catalog.codes import make_uscc
from catalog.divisions import GAOGANG_FILES, load_divisions_csv
from catalog.models import CatalogItem, Department, EntryVersion, Fee, ImplementationEntry, Material
from core import users
from core.auth import SYSTEM, ApiToken, Role, User, principal_for_token
from tests.factories.catalog import import_upper, upper_row_for

DISTRICT = "321203000000"
TOWN = "321203001000"  # 口岸街道
VILLAGE = "321203001001"  # a community under 口岸街道
OTHER_TOWN = "321203002000"  # 刁铺街道
PASSWORD = "correct-horse-9"

COMPLETE = {
    "accept_conditions": "申请人为本区居民",
    "anticipate_days": "20",
    "anticipate_unit": "working",
    "promise_days": "5",
    "promise_unit": "working",
    "project_type": "2",
    "visits": "1",
    "visits_reason": "需现场核验原件",
    "result_delivery": ["window"],
    "window_address": "高港区政务服务中心 3 号窗口",
    "opening_hours": "工作日 9:00-17:00",
    "phone": "0523-86901234",
}
NO_CONTACT = {
    **COMPLETE,
    "visits": "0",
    "visits_reason": "",
    "handle_forms": ["window", "online"],
    "online_depth": ["1", "2", "3", "4", "5"],
    "online_url": "https://www.jszwfw.gov.cn/item/1",
    "result_delivery": ["post", "elicence"],
    "m-0-name": "申请表",
    "m-0-form": "electronic",
    "m-0-required": "1",
    "m-0-copies": "1",
}


def _uscc(name: str, kind: str = "11") -> str:
    digits = str(int(hashlib.sha256(name.encode()).hexdigest(), 16))[:8]
    return make_uscc(kind + "321203", digits)


_seq = iter(range(1, 10**6))


@dataclass
class World:
    dept_a: Department
    dept_b: Department
    town_body: Department
    village_body: Department
    other_town_body: Department
    item: CatalogItem
    item2: CatalogItem
    service_item: CatalogItem
    entry_a: ImplementationEntry
    entry_b: ImplementationEntry
    users: dict[str, User]


def _item(session: Any, name: str, task_type: str = "01", use_levels: str = "4,5") -> CatalogItem:
    return services.create_item(
        session,
        SYSTEM,
        code=f"000188{next(_seq):06d}",
        name=name,
        task_type=task_type,
        legal_basis="《测试条例》第一条",
        use_levels=use_levels,
    )


def _dept(session: Any, name: str, level: str, division: str) -> Department:
    return services.create_department(
        session, SYSTEM, name=name, uscc=_uscc(name), level=level, division_code=division
    )


def _user(session: Any, key: str, role: Role, **scope: Any) -> User:
    return users.create_user(
        session, SYSTEM, users.NewUser(
            username=f"{key}{next(_seq)}", password=PASSWORD, display_name=key, role=role, **scope
    ))[0]


@pytest.fixture(scope="module")
def world(module_app: Any, module_db: Any) -> Iterator[World]:
    """Built once for the module (tests/conftest.py, "one app and one world per module"); each test
    runs in a savepoint that is rolled back after it. Tests read the world's rows afresh through their
    own ``session`` (``_fresh``), never through these detached objects."""
    session = module_db.session()
    try:
        yield _build_world(session)
    finally:
        session.close()


@pytest.fixture
def db(module_db: Any, per_test_savepoint: None) -> Any:
    return module_db


@pytest.fixture
def app(module_app: Any, per_test_savepoint: None) -> Any:
    return module_app


def _build_world(session: Any) -> World:
    load_divisions_csv(session, *GAOGANG_FILES)
    dept_a = _dept(session, "区测试甲局", "4", DISTRICT)
    dept_b = _dept(session, "区测试乙局", "4", DISTRICT)
    town_body = _dept(session, "口岸街道办事处（测试）", "5", TOWN)
    village_body = _dept(session, "柴墟社区居委会（测试）", "6", VILLAGE)
    other_town_body = _dept(session, "刁铺街道办事处（测试）", "5", OTHER_TOWN)
    item = _item(session, "测试事项甲许可")
    item2 = _item(session, "测试事项乙许可")
    service_item = _item(session, "测试公共服务证明", task_type="20", use_levels="4,5,6")
    scope.set_item_competence(session, SYSTEM, item2.id, dept_a.id)  # 主管部门: department A
    entry_a = entry_services.claim_item(session, SYSTEM, item_id=item.id, department_id=dept_a.id)
    entry_b = entry_services.claim_item(session, SYSTEM, item_id=item.id, department_id=dept_b.id)
    users = {
        "admin": _user(session, "admin", Role.ADMIN),
        "editor_a": _user(session, "editor_a", Role.DEPT_EDITOR, department_id=dept_a.id),
        "reviewer_a": _user(session, "reviewer_a", Role.DEPT_REVIEWER, department_id=dept_a.id),
        "editor_b": _user(session, "editor_b", Role.DEPT_EDITOR, department_id=dept_b.id),
        "town_op": _user(session, "town_op", Role.DIVISION_OPERATOR, division_code=TOWN),
        "village_op": _user(session, "village_op", Role.DIVISION_OPERATOR, division_code=VILLAGE),
    }
    session.commit()
    return World(
        dept_a,
        dept_b,
        town_body,
        village_body,
        other_town_body,
        item,
        item2,
        service_item,
        entry_a,
        entry_b,
        users,
    )


def login(client: Any, user: User) -> None:
    response = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.data.decode()


def _fresh(session: Any, entry: ImplementationEntry) -> ImplementationEntry:
    session.expire_all()
    return session.get(ImplementationEntry, entry.id)


def _page(response: Any) -> str:
    return response.get_data(as_text=True)


# ---------------------------------------------------------------- anonymous and scope


def test_entry_list_links_the_claim_page_only_for_roles_that_may_claim(client, world):
    login(client, world.users["reviewer_a"])
    page = _page(client.get("/staff/entries/"))
    assert 'href="/staff/items/"' not in page  # reviewers get 403 there
    assert client.get("/staff/items/").status_code == 403
    client.post("/logout")
    login(client, world.users["editor_a"])
    assert 'href="/staff/items/"' in _page(client.get("/staff/entries/"))



def test_anonymous_visitor_is_sent_to_login_from_staff_pages(client, world):
    response = client.get("/staff/entries/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/staff/entries/")
    assert client.get(f"/staff/entries/{world.entry_a.id}/edit").status_code == 302


def test_anonymous_page_writes_are_refused_and_change_nothing(client, session, world):
    entry_id = world.entry_a.id
    for path, data in (
        (f"/staff/entries/{entry_id}/edit", COMPLETE),
        (f"/staff/entries/{entry_id}/submit", {}),
        (f"/staff/entries/{entry_id}/no-contact", {"value": "1"}),
        (f"/staff/items/{world.item2.id}/claim", {"department_id": world.dept_a.id}),
        ("/admin/users", {"username": "intruder", "display_name": "x", "role": "admin"}),
    ):
        response = client.post(path, data=data)
        assert response.status_code == 401, path
    entry = _fresh(session, world.entry_a)
    assert entry.status == "draft"
    assert entry.version == 1
    assert session.exec(select(User).where(User.username == "intruder")).first() is None


def test_entry_list_shows_only_the_users_own_department(client, world):
    login(client, world.users["editor_a"])
    page = _page(client.get("/staff/entries/"))
    assert world.entry_a.task_code in page
    assert world.entry_b.task_code not in page


def test_entry_list_of_a_town_operator_covers_its_town_and_villages_only(client, session, world):
    town_entry = entry_services.claim_item(
        session, SYSTEM, item_id=world.item.id, department_id=world.town_body.id
    )
    village_entry = entry_services.claim_item(
        session, SYSTEM, item_id=world.service_item.id, department_id=world.village_body.id
    )
    other = entry_services.claim_item(
        session, SYSTEM, item_id=world.item.id, department_id=world.other_town_body.id
    )
    session.commit()
    login(client, world.users["town_op"])
    page = _page(client.get("/staff/entries/"))
    assert town_entry.task_code in page
    assert other.task_code not in page
    page = _page(client.get(f"/staff/entries/?division_code={VILLAGE}"))
    assert village_entry.task_code in page
    assert town_entry.task_code not in page
    page = _page(client.get(f"/staff/entries/?division_code={OTHER_TOWN}"))  # outside the scope: ignored
    assert other.task_code not in page


def test_published_entries_of_others_are_listed_read_only_on_request(client, session, world):
    login(client, world.users["admin"])
    client.post(f"/staff/entries/{world.entry_a.id}/edit", data=COMPLETE)
    client.post(f"/staff/entries/{world.entry_a.id}/submit")
    client.post("/logout")
    login(client, world.users["reviewer_a"])  # four-eyes: not the one who submitted
    client.post(f"/staff/entries/{world.entry_a.id}/approve")
    client.post("/logout")
    login(client, world.users["editor_b"])
    assert world.entry_a.task_code not in _page(client.get("/staff/entries/"))
    page = _page(client.get("/staff/entries/?all=1"))
    assert world.entry_a.task_code in page
    assert world.entry_b.task_code in page
    detail = _page(client.get(f"/staff/entries/{world.entry_a.id}"))
    assert "编辑实施要素" not in detail
    assert "发起修订" not in detail


def test_entry_list_filters_by_status_and_keyword(client, session, world):
    login(client, world.users["admin"])
    page = _page(client.get("/staff/entries/?status=published"))
    assert world.entry_a.task_code not in page
    page = _page(client.get("/staff/entries/?q=甲许可&status=draft"))
    assert world.entry_a.task_code in page
    assert (
        client.get("/staff/entries/?page=abc&limit=-5&department_id=99999999999999999999").status_code == 200
    )


def test_other_department_cannot_open_edit_or_act_on_an_entry(client, session, world):
    login(client, world.users["editor_b"])
    entry_id = world.entry_a.id
    assert client.get(f"/staff/entries/{entry_id}").status_code == 403
    assert client.get(f"/staff/entries/{entry_id}/edit").status_code == 403
    assert client.post(f"/staff/entries/{entry_id}/edit", data=COMPLETE).status_code == 403
    for action in ("submit", "approve", "reopen"):
        assert client.post(f"/staff/entries/{entry_id}/{action}").status_code == 403, action
    assert client.post(f"/staff/entries/{entry_id}/reject", data={"reason": "x"}).status_code == 403
    assert client.post(f"/staff/entries/{entry_id}/no-contact", data={"value": "1"}).status_code == 403
    response = client.post(f"/staff/items/{world.item2.id}/claim", data={"department_id": world.dept_a.id})
    assert response.status_code == 403
    assert _fresh(session, world.entry_a).version == 1
    assert (
        session.exec(select(ImplementationEntry).where(ImplementationEntry.item_id == world.item2.id)).first()
        is None
    )


def test_village_operator_cannot_claim_for_another_division(client, session, world):
    login(client, world.users["village_op"])
    response = client.post(
        f"/staff/items/{world.service_item.id}/claim", data={"department_id": world.other_town_body.id}
    )
    assert response.status_code == 403
    response = client.post(
        f"/staff/items/{world.service_item.id}/claim", data={"department_id": world.town_body.id}
    )
    assert response.status_code == 403


def test_huge_ids_in_urls_are_404_not_500(client, world):
    login(client, world.users["admin"])
    assert client.get(f"/staff/entries/{2**64}").status_code == 404
    assert client.post(f"/staff/entries/{2**63}/submit").status_code == 404


# ---------------------------------------------------------------- claim, edit, validation


def test_editor_claims_an_item_then_edits_materials_and_fees_as_rows(client, session, world):
    login(client, world.users["editor_a"])
    items_page = _page(client.get(f"/staff/items/?q=乙许可&department_id={world.dept_a.id}"))
    assert "测试事项乙许可" in items_page
    response = client.post(f"/staff/items/{world.item2.id}/claim", data={"department_id": world.dept_a.id})
    assert response.status_code == 302
    entry = session.exec(
        select(ImplementationEntry).where(
            ImplementationEntry.item_id == world.item2.id,
            ImplementationEntry.department_id == world.dept_a.id,
        )
    ).one()
    assert response.headers["Location"].endswith(f"/staff/entries/{entry.id}/edit")
    assert entry.task_code == world.dept_a.uscc + "4" + world.item2.code

    form = dict(COMPLETE)
    form.update(
        {
            "m-0-name": "身份证",
            "m-0-form": "both",
            "m-0-required": "1",
            "m-0-copies": "1",
            "m-0-licence_type_code": "",
            "m-0-notes": "",
            "m-1-name": "",
            "m-1-form": "paper",
            "m-1-copies": "1",  # a blank row is ignored
            "m-2-name": "营业执照复印件",
            "m-2-form": "paper",
            "m-2-copies": "2",
            "m-2-notes": "加盖公章",
            "f-0-name": "工本费",
            "f-0-amount": "12.50",
            "f-0-basis": "苏价费〔2018〕1号",
            "f-1-name": "",
            "f-1-amount": "",
        }
    )
    response = client.post(f"/staff/entries/{entry.id}/edit", data=form)
    assert response.status_code == 302, _page(response)
    session.expire_all()
    materials = session.exec(
        select(Material).where(Material.entry_id == entry.id).order_by(Material.position)
    ).all()
    assert [(m.name, m.form, m.required, m.copies) for m in materials] == [
        ("身份证", "both", True, 1),
        ("营业执照复印件", "paper", False, 2),
    ]
    fees = session.exec(select(Fee).where(Fee.entry_id == entry.id)).all()
    assert [(f.name, f.amount_fen) for f in fees] == [("工本费", 1250)]
    detail = _page(client.get(f"/staff/entries/{entry.id}"))
    assert "营业执照复印件" in detail
    assert "12.50" in detail

    edit_page = _page(client.get(f"/staff/entries/{entry.id}/edit"))
    assert 'value="身份证"' in edit_page
    assert 'name="m-2-name"' in edit_page  # two stored rows + blank rows for new ones


def test_edit_shows_chinese_validation_messages_next_to_the_fields(client, session, world):
    login(client, world.users["editor_a"])
    form = dict(COMPLETE, promise_days="30", phone="call me")
    form.update(
        {
            "m-0-name": "",
            "m-0-notes": "没有名称的材料",
            "m-0-form": "paper",
            "f-0-name": "工本费",
            "f-0-amount": "-3",
        }
    )
    response = client.post(f"/staff/entries/{world.entry_a.id}/edit", data=form)
    assert response.status_code == 422
    page = _page(response)
    assert re.search(r'id="m-0-name-error"[^>]*>请填写材料名称<', page)
    assert re.search(r'id="f-0-amount-error"[^>]*>请填写金额', page)
    assert 'value="没有名称的材料"' in page  # what the user typed is kept

    form = dict(COMPLETE, promise_days="30", phone="call me")
    response = client.post(f"/staff/entries/{world.entry_a.id}/edit", data=form)
    assert response.status_code == 422
    page = _page(response)
    assert re.search(r'id="promise_days-error"[^>]*>承诺办结时限不能超过法定办结时限<', page)
    assert re.search(r'id="phone-error"[^>]*>咨询电话只能包含', page)
    assert 'aria-invalid="true" aria-describedby="promise_days-error"' in page
    assert _fresh(session, world.entry_a).version == 1  # nothing written


def test_non_integer_time_limit_is_a_field_error_not_a_500(client, session, world):
    login(client, world.users["editor_a"])
    response = client.post(
        f"/staff/entries/{world.entry_a.id}/edit",
        data=dict(COMPLETE, anticipate_days="二十", visits="99999999999999999999"),
    )
    assert response.status_code == 422
    page = _page(response)
    assert re.search(r'id="anticipate_days-error"[^>]*>请输入整数<', page)
    assert 'id="visits-error"' in page


def test_decline_records_not_applicable_with_reason(client, session, world):
    login(client, world.users["editor_a"])
    response = client.post(
        f"/staff/items/{world.item2.id}/decline",
        data={"department_id": world.dept_a.id, "reason": "本局无此职能"},
    )
    assert response.status_code == 302
    entry = session.exec(
        select(ImplementationEntry).where(ImplementationEntry.item_id == world.item2.id)
    ).one()
    assert entry.applicable is False
    assert entry.not_applicable_reason == "本局无此职能"
    response = client.post(
        f"/staff/items/{world.item2.id}/decline", data={"department_id": world.dept_a.id, "reason": ""}
    )
    assert response.status_code == 302  # flashed, nothing new
    assert (
        len(
            session.exec(
                select(ImplementationEntry).where(ImplementationEntry.item_id == world.item2.id)
            ).all()
        )
        == 1
    )


def test_town_operator_claims_for_a_village_body_in_its_town(client, session, world):
    login(client, world.users["town_op"])
    page = _page(client.get(f"/staff/items/?department_id={world.village_body.id}"))
    assert "测试公共服务证明" in page
    assert "测试事项乙许可" not in page  # not a village-level item
    response = client.post(
        f"/staff/items/{world.service_item.id}/claim", data={"department_id": world.village_body.id}
    )
    assert response.status_code == 302
    entry = session.exec(
        select(ImplementationEntry).where(ImplementationEntry.department_id == world.village_body.id)
    ).one()
    assert entry.level == "6"
    assert entry.division_code == VILLAGE


# ---------------------------------------------------------------- no-contact, lifecycle, history


def test_no_contact_flag_is_refused_with_each_failing_condition(client, session, world):
    login(client, world.users["editor_a"])
    assert client.post(f"/staff/entries/{world.entry_a.id}/edit", data=COMPLETE).status_code == 302
    detail = _page(client.get(f"/staff/entries/{world.entry_a.id}"))
    assert "需见面的环节" in detail  # the rule's failures are shown before trying
    assert 'id="no-contact-class">否<' in detail
    response = client.post(
        f"/staff/entries/{world.entry_a.id}/no-contact", data={"value": "1"}, follow_redirects=True
    )
    page = _page(response)
    assert "不满足不见面审批条件" in page
    assert "办理形式未填报" in page
    assert _fresh(session, world.entry_a).no_contact is False

    assert client.post(f"/staff/entries/{world.entry_a.id}/edit", data=NO_CONTACT).status_code == 302
    response = client.post(
        f"/staff/entries/{world.entry_a.id}/no-contact", data={"value": "1"}, follow_redirects=True
    )
    assert "已标记为不见面审批" in _page(response)
    assert _fresh(session, world.entry_a).no_contact is True


def test_submit_review_publish_retire_and_the_history_shows_it(client, session, world):
    entry_id = world.entry_a.id
    login(client, world.users["editor_a"])
    response = client.post(f"/staff/entries/{entry_id}/submit", follow_redirects=True)
    assert "实施清单尚不完整" in _page(response)  # time limits missing
    assert "法定办结时限" in _page(response)
    assert _fresh(session, world.entry_a).status == "draft"
    client.post(f"/staff/entries/{entry_id}/edit", data=COMPLETE)
    assert client.post(f"/staff/entries/{entry_id}/submit").status_code == 302
    assert _fresh(session, world.entry_a).status == "submitted"
    # an editor cannot approve their own work
    assert client.post(f"/staff/entries/{entry_id}/approve").status_code == 403

    client.post("/logout")
    login(client, world.users["reviewer_a"])
    response = client.post(f"/staff/entries/{entry_id}/reject", data={"reason": ""}, follow_redirects=True)
    assert "请填写理由" in _page(response)
    response = client.post(f"/staff/entries/{entry_id}/reject", data={"reason": "窗口地址写错了"})
    assert response.status_code == 302
    assert _fresh(session, world.entry_a).status == "draft"

    client.post("/logout")
    login(client, world.users["editor_a"])
    client.post(f"/staff/entries/{entry_id}/submit")
    client.post("/logout")
    login(client, world.users["reviewer_a"])
    assert client.post(f"/staff/entries/{entry_id}/approve").status_code == 302
    entry = _fresh(session, world.entry_a)
    assert entry.status == "published"
    detail = _page(client.get(f"/staff/entries/{entry_id}"))
    assert f'href="/entries/{entry.task_code}"' in detail
    assert client.post(f"/staff/entries/{entry_id}/retire", data={"reason": "职能调整"}).status_code == 302
    assert _fresh(session, world.entry_a).status == "retired"

    history = _page(client.get(f"/staff/entries/{entry_id}/history"))
    for action in ("认领", "修改实施要素", "提交审核", "退回修改", "审核通过并发布", "停用"):
        assert action in history, action
    assert "窗口地址写错了" in history
    assert "职能调整" in history
    versions = session.exec(select(EntryVersion).where(EntryVersion.entry_id == entry_id)).all()
    assert len(versions) >= 6


def test_published_entry_is_not_reopened_but_revised(client, session, world):
    login(client, world.users["admin"])
    client.post(f"/staff/entries/{world.entry_a.id}/edit", data=COMPLETE)
    client.post(f"/staff/entries/{world.entry_a.id}/submit")
    client.post("/logout")
    login(client, world.users["reviewer_a"])
    client.post(f"/staff/entries/{world.entry_a.id}/approve")
    client.post("/logout")
    login(client, world.users["editor_a"])
    assert _fresh(session, world.entry_a).status == "published"
    response = client.get(f"/staff/entries/{world.entry_a.id}/edit")
    assert response.status_code == 302  # no revision open yet: the reason is asked first
    response = client.post(f"/staff/entries/{world.entry_a.id}/reopen", follow_redirects=True)
    assert "请发起修订" in _page(response)
    assert _fresh(session, world.entry_a).status == "published"
    assert "修订（转为草稿）" not in _page(client.get(f"/staff/entries/{world.entry_a.id}"))


def test_consistency_report_lists_drift_from_the_upper_level_item(client, session, world):
    import_upper(session, [upper_row_for(world.item, 名称="测试事项甲许可（新名称）")])
    session.commit()
    login(client, world.users["editor_a"])
    page = _page(client.get("/staff/consistency"))
    assert world.entry_a.task_code in page
    assert world.entry_b.task_code not in page  # another department's drift is not shown to A
    assert "测试事项甲许可（新名称）" in page
    assert "按上级目录更新" in page
    assert client.post(f"/staff/entries/{world.entry_a.id}/align").status_code == 302
    assert _fresh(session, world.entry_a).name == "测试事项甲许可（新名称）"
    assert world.entry_a.task_code not in _page(client.get("/staff/consistency"))
    assert client.post(f"/staff/entries/{world.entry_b.id}/align").status_code == 403
    login(client, world.users["admin"])
    page = _page(client.get("/staff/consistency"))
    assert world.entry_b.task_code in page


# ---------------------------------------------------------------- admin


def test_non_admin_cannot_use_admin_pages(client, session, world):
    login(client, world.users["editor_a"])
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/departments").status_code == 403
    response = client.post(
        "/admin/users",
        data={"username": "sneaky", "display_name": "x", "role": "admin", "password": "long-enough-1"},
    )
    assert response.status_code == 403
    assert (
        client.post(f"/admin/users/{world.users['admin'].id}/active", data={"value": "0"}).status_code == 403
    )
    assert client.post(f"/admin/users/{world.users['editor_a'].id}/tokens").status_code == 403
    assert session.exec(select(User).where(User.username == "sneaky")).first() is None


def test_admin_creates_a_user_issues_a_token_once_revokes_it_and_deactivates(client, session, world):
    login(client, world.users["admin"])
    response = client.post(
        "/admin/users",
        data={
            "username": "zhang.san",
            "display_name": "张三",
            "role": "dept_editor",
            "department_id": str(world.dept_b.id),
            "password": "",
        },
    )
    assert response.status_code == 200
    page = _page(response)
    assert "初始密码" in page
    password = re.search(r'id="secret-value">([^<]+)<', page).group(1)
    user = session.exec(select(User).where(User.username == "zhang.san")).one()
    assert user.department_id == world.dept_b.id

    response = client.post(f"/admin/users/{user.id}/tokens", data={"name": "对接系统"})
    token = re.search(r'id="secret-value">([^<]+)<', _page(response)).group(1)
    assert response.headers["Cache-Control"] == "no-store"
    assert principal_for_token(session, token).user_id == user.id
    listing = _page(client.get("/admin/users"))
    assert token not in listing
    assert token[:10] in listing

    row = session.exec(select(ApiToken).where(ApiToken.user_id == user.id)).one()
    assert client.post(f"/admin/tokens/{row.id}/revoke").status_code == 302
    session.expire_all()
    assert principal_for_token(session, token) is None

    assert client.post(f"/admin/users/{user.id}/active", data={"value": "0"}).status_code == 302
    client.post("/logout")
    response = client.post("/login", data={"username": "zhang.san", "password": password})
    assert response.status_code == 401


def test_admin_user_form_errors_are_shown_next_to_fields(client, session, world):
    login(client, world.users["admin"])
    response = client.post(
        "/admin/users", data={"username": "x", "display_name": "", "role": "dept_editor", "password": "short"}
    )
    assert response.status_code == 422
    page = _page(response)
    assert 'id="username-error"' in page
    assert 'id="display_name-error"' in page
    response = client.post(
        "/admin/users",
        data={
            "username": "li.si",
            "display_name": "李四",
            "role": "dept_editor",
            "password": "long-enough-1",
        },
    )
    assert response.status_code == 422
    assert re.search(
        r'id="department_id-error"[^>]*>部门角色必须指定所属部门|department_id-error', _page(response)
    )


def test_admin_creates_department_and_sees_uscc_errors_next_to_the_field(client, session, world):
    login(client, world.users["admin"])
    response = client.post(
        "/admin/departments",
        data={"name": "区新设局", "uscc": "11321203ABC", "level": "4", "division_code": DISTRICT},
    )
    assert response.status_code == 422
    assert re.search(r'id="uscc-error"[^>]*>统一社会信用代码应为 18 位<', _page(response))
    uscc = _uscc("区新设局")
    response = client.post(
        "/admin/departments", data={"name": "区新设局", "uscc": uscc, "level": "4", "division_code": DISTRICT}
    )
    assert response.status_code == 302
    assert session.exec(select(Department).where(Department.uscc == uscc)).one().name == "区新设局"
    assert "区新设局" in _page(client.get("/admin/departments?level=4"))


def test_pages_fit_a_phone_and_use_no_inline_script(client, world):
    login(client, world.users["editor_a"])
    page = _page(client.get(f"/staff/entries/{world.entry_a.id}/edit"))
    assert 'name="viewport" content="width=device-width' in page
    assert "<script>" not in page
    assert 'src="/static/staff/rows.js"' in page
    assert client.get("/static/staff/rows.js").status_code == 200
