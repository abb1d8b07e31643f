"""User and token administration (core.users): the admin pages, the API and the CLI call the same
services, and each write leaves exactly one audit row naming who acted."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from core import users
from core.audit import AuditLog
from core.auth import SYSTEM, ApiToken, Principal, Role, User, principal_for_token
from core.errors import Conflict, Forbidden, Invalid
from core.types import utcnow
from tests.factories.catalog import make_department

PASSWORD = "password-123"


def audit_rows(session: Any, action: str) -> list[AuditLog]:
    session.expire_all()
    return list(session.exec(select(AuditLog).where(AuditLog.action == action).order_by(col(AuditLog.id))))


@pytest.fixture
def admin(session: Any) -> User:
    user, _ = users.create_user(session, SYSTEM, users.NewUser(
        username="root_admin", display_name="区级管理员", role=Role.ADMIN, password=PASSWORD))
    session.commit()
    return user


def login(client: Any, user: User) -> None:
    response = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)


def test_each_admin_page_write_leaves_one_audit_row_with_the_admin_as_actor(client, session, admin):
    department = make_department(session, "用户管理测试局")
    session.commit()
    login(client, admin)
    response = client.post("/admin/users", data={
        "username": "wang.wu", "display_name": "王五", "role": "dept_editor",
        "department_id": str(department.id), "password": "long-enough-1",
    })
    assert response.status_code == 302
    user = session.exec(select(User).where(User.username == "wang.wu")).one()

    response = client.post(f"/admin/users/{user.id}/tokens", data={"name": "对接系统"})
    assert response.status_code == 200
    plain = re.search(r'id="secret-value">([^<]+)<', response.get_data(as_text=True)).group(1)
    token = session.exec(select(ApiToken).where(ApiToken.user_id == user.id)).one()
    assert client.post(f"/admin/tokens/{token.id}/revoke").status_code == 302
    assert client.post(f"/admin/users/{user.id}/active", data={"value": "0"}).status_code == 302

    for action in ("user.create", "token.issue", "token.revoke", "user.deactivate"):
        rows = audit_rows(session, action)
        subject = [r for r in rows if r.entity_id == str(user.id)]
        assert len(subject) == 1, action
        assert (subject[0].actor_id, subject[0].actor_name) == (admin.id, admin.display_name)
    issued = audit_rows(session, "token.issue")[-1]
    assert plain not in str(issued.new)
    assert issued.new["prefix"] == plain[:10]


def test_each_cli_write_leaves_one_audit_row_with_the_cli_as_actor(app, session, admin):
    department = make_department(session, "用户管理测试局")
    session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["catalog", "create-user", "zhao.liu", "--role", "dept_reviewer",
                                 "--department-id", str(department.id), "--password", "long-enough-1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["catalog", "create-token", "zhao.liu", "--name", "夜间同步"])
    assert result.exit_code == 0, result.output
    plain = result.output.strip()
    session.expire_all()
    assert principal_for_token(session, plain) is not None
    token = session.exec(select(ApiToken).where(ApiToken.prefix == plain[:10])).one()
    result = runner.invoke(args=["catalog", "revoke-token", str(token.id)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["catalog", "set-user-active", "zhao.liu", "--inactive"])
    assert result.exit_code == 0, result.output

    user = session.exec(select(User).where(User.username == "zhao.liu")).one()
    assert not user.is_active
    assert principal_for_token(session, plain) is None
    for action in ("user.create", "token.issue", "token.revoke", "user.deactivate"):
        subject = [r for r in audit_rows(session, action) if r.entity_id == str(user.id)]
        assert len(subject) == 1, action
        assert subject[0].actor_id is None
        assert subject[0].actor_name.startswith("cli:")


def test_cli_refuses_a_bad_user_in_chinese_and_writes_nothing(app, session, admin):
    before = len(audit_rows(session, "user.create"))
    result = app.test_cli_runner().invoke(
        args=["catalog", "create-user", "x", "--role", "dept_editor", "--password", "short"])
    assert result.exit_code == 1
    assert "用户名为 3-60 位" in result.output
    assert "部门角色必须指定所属部门" in result.output
    assert "密码至少 8 位" in result.output
    session.expire_all()
    assert session.exec(select(User).where(User.username == "x")).first() is None
    assert len(audit_rows(session, "user.create")) == before


def test_only_an_administrator_may_administer_users_and_tokens(session, admin):
    department = make_department(session, "用户管理测试局")
    editor, _ = users.create_user(session, SYSTEM, users.NewUser(
        username="editor_x", display_name="编辑", role=Role.DEPT_EDITOR, department_id=department.id,
        password=PASSWORD))
    actor = Principal.of(editor)
    with pytest.raises(Forbidden):
        users.create_user(session, actor, users.NewUser(username="evil", display_name="x", role="admin"))
    with pytest.raises(Forbidden):
        users.issue_token(session, actor, editor.id, "mine")
    with pytest.raises(Forbidden):
        users.set_user_active(session, actor, admin.id, False)


def test_user_rules_are_checked_in_the_service_with_chinese_details(session):
    with pytest.raises(Invalid) as raised:
        users.create_user(session, SYSTEM, users.NewUser(
            username="ok_name", display_name="某人", role=Role.DEPT_EDITOR, department_id=2**31 - 2,
            password=PASSWORD))
    assert raised.value.details == {"department_id": ["所属部门不存在"]}
    with pytest.raises(Invalid) as raised:
        users.create_user(session, SYSTEM, users.NewUser(
            username="ok_name", display_name="某人", role=Role.DIVISION_OPERATOR,
            division_code="999999999999",
            password=PASSWORD))
    assert raised.value.details == {"division_code": ["所在区划不存在"]}


def test_a_generated_password_is_returned_once_and_logs_in(session):
    user, generated = users.create_user(session, SYSTEM, users.NewUser(
        username="gen_pw", display_name="某人", role=Role.ADMIN))
    assert generated
    from core.auth import check_password

    assert check_password(user, generated)
    [row] = [r for r in audit_rows(session, "user.create") if r.entity_id == str(user.id)]
    assert generated not in str(row.new)


def test_each_api_write_leaves_one_audit_row_with_the_token_holder_as_actor(client, session, admin):
    department = make_department(session, "接口用户管理测试局")
    _token, plain = users.issue_token(session, SYSTEM, admin.id, "管理脚本")
    session.commit()
    auth = {"Authorization": f"Bearer {plain}"}
    response = client.post("/api/v1/users", headers=auth, json={
        "username": "sun.qi", "display_name": "孙七", "role": "dept_editor", "department_id": department.id,
    })
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    user_id = created["user"]["id"]
    assert created["password"]  # generated, shown once
    response = client.post(f"/api/v1/users/{user_id}/tokens", headers=auth, json={"name": "对接"})
    assert response.status_code == 201
    issued = response.get_json()
    assert issued["token"].startswith(issued["prefix"])
    listed = client.get(f"/api/v1/users/{user_id}/tokens", headers=auth).get_json()
    assert [t["prefix"] for t in listed] == [issued["prefix"]]
    assert "token" not in listed[0]
    assert client.post(f"/api/v1/tokens/{issued['id']}/revoke", headers=auth).status_code == 200
    response = client.put(f"/api/v1/users/{user_id}/active", headers=auth, json={"value": False})
    assert response.status_code == 200
    assert response.get_json()["is_active"] is False

    for action in ("user.create", "token.issue", "token.revoke", "user.deactivate"):
        subject = [r for r in audit_rows(session, action) if r.entity_id == str(user_id)]
        assert len(subject) == 1, action
        assert (subject[0].actor_id, subject[0].actor_name) == (admin.id, admin.display_name)


def test_api_user_errors_are_chinese_field_details(client, session, admin):
    _token, plain = users.issue_token(session, SYSTEM, admin.id, "管理脚本")
    session.commit()
    auth = {"Authorization": f"Bearer {plain}"}
    response = client.post("/api/v1/users", headers=auth, json={
        "username": "x", "display_name": "某人", "role": "dept_editor", "password": "short",
    })
    assert response.status_code == 422
    assert response.get_json()["details"] == {
        "username": ["用户名为 3-60 位字母、数字、下划线、点或连字符"],
        "department_id": ["部门角色必须指定所属部门"],
        "password": ["密码至少 8 位"],
    }
    duplicate = {"username": "root_admin", "display_name": "重名", "role": "admin"}
    response = client.post("/api/v1/users", headers=auth, json=duplicate)
    assert response.status_code == 409
    assert response.get_json()["details"] == {"username": ["用户名已存在"]}
    # Another case of the same letters is the same user name to whoever reads the audit log.
    response = client.post("/api/v1/users", headers=auth, json={**duplicate, "username": "ROOT_Admin"})
    assert response.status_code == 409
    assert response.get_json()["details"] == {"username": ["已有用户名 root_admin（不区分大小写）"]}


NOT_A_DEPARTMENT_ROLE = "该角色不属于部门，请勿指定所属部门"


@pytest.mark.parametrize("role", [Role.ADMIN, Role.DIVISION_OPERATOR])
def test_a_department_given_for_a_role_outside_departments_is_refused_not_dropped(session, role):
    department = make_department(session, "无关部门测试局")
    before = len(audit_rows(session, "user.create"))
    with pytest.raises(Invalid) as raised:
        users.create_user(session, SYSTEM, users.NewUser(
            username="no_dept_role", display_name="某人", role=role, department_id=department.id,
            division_code="321203000000" if role == Role.DIVISION_OPERATOR else None, password=PASSWORD))
    assert raised.value.details == {"department_id": [NOT_A_DEPARTMENT_ROLE]}
    assert session.exec(select(User).where(User.username == "no_dept_role")).first() is None
    assert len(audit_rows(session, "user.create")) == before


@pytest.mark.parametrize("channel", ["api", "form", "cli"])
def test_api_form_and_cli_refuse_a_department_for_an_administrator(app, client, session, admin, channel):
    department = make_department(session, "无关部门测试局")
    _token, plain = users.issue_token(session, SYSTEM, admin.id, "管理脚本")
    session.commit()
    asked = {"username": "admin_with_dept", "display_name": "某人", "role": "admin",
             "department_id": department.id, "password": "long-enough-1"}

    if channel == "api":
        response = client.post("/api/v1/users", headers={"Authorization": f"Bearer {plain}"}, json=asked)
        assert response.status_code == 422, response.get_json()
        assert set(response.get_json()) == {"code", "message", "details"}
        assert response.get_json()["details"] == {"department_id": [NOT_A_DEPARTMENT_ROLE]}
    elif channel == "form":
        login(client, admin)
        response = client.post("/admin/users", data={**asked, "department_id": str(department.id)})
        assert response.status_code == 422
        assert NOT_A_DEPARTMENT_ROLE in response.get_data(as_text=True)
    else:
        result = app.test_cli_runner().invoke(args=[
            "catalog", "create-user", "admin_with_dept", "--role", "admin",
            "--department-id", str(department.id), "--password", "long-enough-1"])
        assert result.exit_code == 1, result.output
        assert NOT_A_DEPARTMENT_ROLE in result.output

    session.expire_all()
    assert session.exec(select(User).where(User.username == "admin_with_dept")).first() is None


def test_a_name_taken_in_another_case_at_the_same_moment_is_a_409_not_a_500(any_session, monkeypatch):
    """Another administrator's create of the same name in another case lands between this create's
    check and its insert: the index uq_app_user_username_lower refuses the second account, and the
    refusal is a Conflict, not an IntegrityError (a 500). Before the index both accounts were made."""
    original = users.hash_password

    def concurrent_create_lands(password: str) -> str:  # runs after the check, before the insert
        any_session.execute(sa.insert(User).values(
            username="race_name", display_name="并发", password_hash="x", role="admin", is_active=True,
            session_epoch=0, created_at=utcnow()))
        return original(password)

    monkeypatch.setattr(users, "hash_password", concurrent_create_lands)
    with pytest.raises(Conflict) as raised:
        users.create_user(any_session, SYSTEM, users.NewUser(
            username="Race_Name", display_name="重名", role=Role.ADMIN, password=PASSWORD))
    assert raised.value.details == {"username": ["用户名已存在（不区分大小写）"]}
    # The transaction is still usable: only the refused row went, with its savepoint.
    names = any_session.exec(select(User.username).where(sa.func.lower(User.username) == "race_name")).all()
    assert names == ["race_name"]


def test_cli_finds_a_user_whatever_the_case_typed(app, session, admin):
    result = app.test_cli_runner().invoke(args=["catalog", "create-token", "ROOT_ADMIN", "--name", "脚本"])
    assert result.exit_code == 0, result.output
    assert principal_for_token(session, result.output.strip()).user_id == admin.id


def test_deactivating_an_account_revokes_its_tokens_so_reactivating_brings_none_back(client, session, admin):
    department = make_department(session, "停用令牌测试局")
    user, _ = users.create_user(session, SYSTEM, users.NewUser(
        username="token.holder", display_name="令牌持有人", role=Role.DEPT_EDITOR,
        department_id=department.id, password=PASSWORD))
    token, plain = users.issue_token(session, SYSTEM, user.id, "对接系统")
    session.commit()
    auth = {"Authorization": f"Bearer {plain}"}
    assert client.get("/api/v1/entries", headers=auth).status_code == 200

    actor = Principal.of(admin)
    users.set_user_active(session, actor, user.id, False)
    users.set_user_active(session, actor, user.id, True)
    session.commit()

    assert client.get("/api/v1/entries", headers=auth).status_code == 401
    session.refresh(token)
    assert token.revoked_at is not None
    [row] = [r for r in audit_rows(session, "user.deactivate") if r.entity_id == str(user.id)]
    assert row.new["revoked_token_ids"] == [token.id]


@pytest.mark.parametrize("role", [Role.ADMIN, Role.DEPT_EDITOR])
def test_a_division_given_for_a_role_that_has_none_is_refused_not_dropped(session, admin, role):
    from tests.factories.catalog import DISTRICT, seed_divisions

    seed_divisions(session)
    department = make_department(session, "区划测试局")
    with pytest.raises(Invalid) as caught:
        users.create_user(session, Principal.of(admin), users.NewUser(
            username="scoped.user", display_name="某人", role=role, password=PASSWORD,
            department_id=department.id if role == Role.DEPT_EDITOR else None, division_code=DISTRICT))
    assert "division_code" in caught.value.details
