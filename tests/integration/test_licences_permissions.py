"""Licence rights are their own permission (issue #15 item 1): per department and licence type, granted
by an administrator; catalogue roles give none of it and a licence grant gives no catalogue rights.

The permission matrix below covers every licence write endpoint of the published OpenAPI document;
a new one fails test_every_licence_write_endpoint_is_in_the_matrix until it is added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from catalog import entries as entry_services
from core.auth import SYSTEM, Principal, Role, principal_for_token
from core.errors import Forbidden
from licenses import grants as licence_grants
from licenses import issuing
from licenses.bulk import bulk_issue
from tests.factories.catalog import make_item, make_user
from tests.factories.licences import ORG_TYPE, PERSON_TYPE, id_number, make_staff, make_types
from tests.factories.security import fingerprint, published_spec, write_operations

LICENCE_WRITES = sorted(
    (method, path)
    for method, path in write_operations(published_spec())
    if path.startswith("/api/v1/licences")
)


@dataclass
class World:
    licence_id: int
    entry_id: int
    tokens: dict[str, str]
    principals: dict[str, Principal]


@pytest.fixture(scope="module")
def world(module_app: Any, module_db: Any) -> World:
    """Built once for the module (tests/conftest.py, "one app and one world per module"); each test
    runs in a savepoint that is rolled back after it."""
    return _build_world(module_db)


@pytest.fixture
def db(module_db: Any, per_test_savepoint: None) -> Any:
    return module_db


@pytest.fixture
def app(module_app: Any, per_test_savepoint: None) -> Any:
    return module_app


def _build_world(db: Any) -> World:
    with db.transaction() as session:
        make_types(session)
        clerk = make_staff(session, "高港区行政审批局", "MB158001", "clerk_a")
        dept = clerk.department
        org_only = make_staff(session, "高港区行政审批局", "MB158001", "clerk_org_only", grants=(ORG_TYPE,))
        lapsed = make_staff(session, "高港区行政审批局", "MB158001", "clerk_lapsed")
        licence_grants.revoke_licence_rights(session, SYSTEM, user_id=lapsed.actor.user_id)
        other = make_staff(session, "高港区民政局", "01414003", "clerk_b")
        _u, editor, editor_token = make_user(session, Role.DEPT_EDITOR, department=dept)
        _u, _reviewer, reviewer_token = make_user(session, Role.DEPT_REVIEWER, department=dept)
        _u, admin, admin_token = make_user(session, Role.ADMIN)
        licence = issuing.issue_licence(
            session,
            clerk.actor,
            {
                "type_code": PERSON_TYPE,
                "holder_name": "张三",
                "holder_code": id_number(1),
                "face": {"gender": "男"},
            },
        )
        # A draft entry of the clerk's own department: its editor may change it, the clerk may not.
        entry = entry_services.claim_item(
            session, SYSTEM, item_id=make_item(session).id, department_id=dept.id
        )
    return World(
        licence_id=licence.id,
        entry_id=entry.id,
        tokens={
            "clerk": clerk.token,
            "catalogue_editor_same_department": editor_token,
            "catalogue_reviewer_same_department": reviewer_token,
            "clerk_without_this_type": org_only.token,
            "clerk_whose_grant_was_revoked": lapsed.token,
            "clerk_of_other_department": other.token,
            "district_admin": admin_token,
        },
        principals={"clerk": clerk.actor, "editor": editor, "admin": admin},
    )


def _matrix(w: World) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """(method, documented path) -> (URL, a body valid for the clerk)."""
    lid = w.licence_id
    return {
        ("POST", "/api/v1/licences"): (
            "/api/v1/licences",
            {
                "type_code": PERSON_TYPE,
                "holder_name": "王五",
                "holder_code": id_number(7),
                "face": {"gender": "男"},
            },
        ),
        ("POST", "/api/v1/licences/{licence_id}/amend"): (
            f"/api/v1/licences/{lid}/amend",
            {"holder_name": "张叁", "reason": "更正姓名"},
        ),
        ("POST", "/api/v1/licences/{licence_id}/suspend"): (
            f"/api/v1/licences/{lid}/suspend",
            {"reason": "涉嫌违规，暂停使用"},
        ),
        ("POST", "/api/v1/licences/{licence_id}/resume"): (f"/api/v1/licences/{lid}/resume", {}),
        ("POST", "/api/v1/licences/{licence_id}/status"): (
            f"/api/v1/licences/{lid}/status",
            {"status": "cancelled", "category": "holder_request", "reason": "持证人申请注销"},
        ),
        ("POST", "/api/v1/licences/{licence_id}/revoke"): (
            f"/api/v1/licences/{lid}/revoke",
            {"reason": "依法吊销"},
        ),
    }


REFUSED = (
    "catalogue_editor_same_department",
    "catalogue_reviewer_same_department",
    "clerk_without_this_type",
    "clerk_whose_grant_was_revoked",
    "clerk_of_other_department",
    "district_admin",
)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_every_licence_write_endpoint_is_in_the_matrix(world: World) -> None:
    assert LICENCE_WRITES, "the OpenAPI document lists no licence write endpoint"
    assert set(LICENCE_WRITES) == set(_matrix(world))


# Issuing names no licence: the other department's clerk, holding the type there, issues in its own
# department's name, which is allowed; every other combination is refused.
CASES = [
    (method, path, who)
    for method, path in LICENCE_WRITES
    for who in REFUSED
    if not (who == "clerk_of_other_department" and path == "/api/v1/licences")
]


@pytest.mark.parametrize(("method", "path", "who"), CASES)
def test_licence_write_is_refused_without_a_grant_for_that_department_and_type(
    client: Any, db: Any, world: World, method: str, path: str, who: str
) -> None:
    url, body = _matrix(world)[(method, path)]
    session = db.session()
    before = fingerprint(session)
    response = client.open(url, method=method, json=body, headers=auth(world.tokens[who]))
    assert response.status_code == 403, (who, response.get_json())
    error = response.get_json()
    assert set(error) == {"code", "message", "details"}
    session.expire_all()
    assert fingerprint(session) == before, f"{who}: {method} {url} wrote to the database"
    session.close()


def test_the_clerk_with_the_grant_may_do_each_of_them(client: Any, world: World) -> None:
    m = _matrix(world)
    headers = auth(world.tokens["clerk"])
    issue = client.post(
        m[("POST", "/api/v1/licences")][0], json=m[("POST", "/api/v1/licences")][1], headers=headers
    )
    assert issue.status_code == 201, issue.get_json()
    sequence = [
        "/api/v1/licences/{licence_id}/suspend",
        "/api/v1/licences/{licence_id}/resume",
        "/api/v1/licences/{licence_id}/amend",
    ]
    for path in sequence:
        url, body = m[("POST", path)]
        response = client.post(url, json=body, headers=headers)
        assert response.status_code in (200, 201), (path, response.get_json())
    new_id = response.get_json()["id"]
    url, body = m[("POST", "/api/v1/licences/{licence_id}/status")]
    cancelled = client.post(url, json=body, headers=headers)  # the superseded version: refused as a conflict
    assert cancelled.status_code == 409, cancelled.get_json()
    revoked = client.post(f"/api/v1/licences/{new_id}/revoke", json={"reason": "依法吊销"}, headers=headers)
    assert revoked.status_code == 200, revoked.get_json()


def test_a_catalogue_editor_gets_a_403_with_the_reason_when_issuing(client: Any, world: World) -> None:
    url, body = _matrix(world)[("POST", "/api/v1/licences")]
    response = client.post(url, json=body, headers=auth(world.tokens["catalogue_editor_same_department"]))
    assert response.status_code == 403
    assert "实施清单编辑权限不含证照权限" in response.get_json()["message"]


def test_reads_of_holder_data_need_the_grant_too(client: Any, world: World) -> None:
    lid = world.licence_id
    for path in (f"/api/v1/licences/{lid}", f"/api/v1/licences/{lid}/full", f"/api/v1/licences/{lid}/token"):
        assert client.get(path, headers=auth(world.tokens["clerk"])).status_code == 200, path
        for who in ("catalogue_editor_same_department", "clerk_without_this_type"):
            assert client.get(path, headers=auth(world.tokens[who])).status_code == 403, (who, path)
    assert (
        client.get("/api/v1/licences", headers=auth(world.tokens["clerk_without_this_type"])).get_json()[
            "total"
        ]
        == 0
    )
    assert (
        client.get(
            "/api/v1/licences", headers=auth(world.tokens["catalogue_editor_same_department"])
        ).status_code
        == 403
    )


def test_a_licences_sync_state_needs_the_grant_too(client: Any, world: World) -> None:
    # It names the licence's identifier and its changes: the issuing department's catalogue staff
    # (no grant) read it by id although the licence API refuses them the licence.
    path = f"/api/v1/sync/licences/{world.licence_id}"
    assert client.get(path, headers=auth(world.tokens["clerk"])).status_code == 200
    assert client.get(path, headers=auth(world.tokens["district_admin"])).status_code == 200
    for who in (
        "catalogue_editor_same_department",
        "catalogue_reviewer_same_department",
        "clerk_without_this_type",
    ):
        assert client.get(path, headers=auth(world.tokens[who])).status_code == 403, who


def test_a_licence_grant_gives_no_catalogue_rights(client: Any, world: World) -> None:
    url = f"/api/v1/entries/{world.entry_id}"
    body = {"phone": "0523-86900000"}
    refused = client.patch(url, json=body, headers=auth(world.tokens["clerk"]))
    assert refused.status_code in (403, 404), refused.get_json()
    allowed = client.patch(url, json=body, headers=auth(world.tokens["catalogue_editor_same_department"]))
    assert allowed.status_code == 200, allowed.get_json()


def test_only_an_administrator_grants_licence_rights(db: Any, world: World) -> None:
    with db.transaction() as session:
        editor = world.principals["editor"]
        with pytest.raises(Forbidden):
            licence_grants.grant_licence_rights(
                session, editor, user_id=editor.user_id, type_codes=[PERSON_TYPE]
            )
        with pytest.raises(Forbidden):
            licence_grants.grant_licence_rights(
                session, world.principals["clerk"], user_id=editor.user_id, type_codes=[PERSON_TYPE]
            )
        licence_grants.grant_licence_rights(
            session, world.principals["admin"], user_id=editor.user_id, type_codes=[PERSON_TYPE]
        )
        assert licence_grants.licence_rights(session, editor) == {PERSON_TYPE}


def test_bulk_import_refuses_rows_of_types_the_actor_has_no_grant_for(db: Any, world: World) -> None:
    from catalog.models import Department

    with db.transaction() as session:
        clerk = world.principals["clerk"]
        dept = session.get(Department, clerk.department_id)
        editor = world.principals["editor"]
        rows = [
            (
                2,
                {
                    "type_code": PERSON_TYPE,
                    "holder_name": "赵六",
                    "holder_code": id_number(21),
                    "face": {"gender": "男"},
                },
            )
        ]
        refused = bulk_issue(session, editor, dept, rows, source="test")
        assert refused.inserted == 0
        assert "实施清单编辑权限不含证照权限" in refused.errors[0][1]
        done = bulk_issue(session, clerk, dept, rows, source="test")
        assert done.inserted == 1, done.errors


def _login(client: Any, username: str) -> Any:
    return client.post("/login", data={"username": username, "password": "password-123"})


def test_the_licence_clerk_lands_on_the_licence_list(client: Any, world: World) -> None:
    assert _login(client, "clerk_a").status_code == 302
    landing = client.get("/staff/")
    assert landing.status_code == 302
    assert landing.headers["Location"].endswith("/staff/licences/")
    page = client.get("/staff/licences/").get_data(as_text=True)
    assert "颁发证照" in page
    assert "/staff/entries/" not in page  # no catalogue link in the navigation


def test_a_catalogue_editor_lands_on_the_catalogue_and_cannot_open_the_issue_form(
    client: Any, db: Any, world: World
) -> None:
    with db.transaction() as session:
        from core.auth import User

        user = session.get(User, world.principals["editor"].user_id)
        username = user.username
    assert _login(client, username).status_code == 302
    assert client.get("/staff/").headers["Location"].endswith("/staff/entries/")
    assert client.get("/staff/licences/new").status_code == 403
    assert client.get("/staff/licences/").status_code == 403


def test_the_navigation_links_the_licence_list_only_for_those_it_lets_in(
    client: Any, db: Any, world: World
) -> None:
    """A catalogue editor without a licence grant is not sent to a 403 by the menu; the clerk is linked."""
    with db.transaction() as session:
        from core.auth import User

        username = session.get(User, world.principals["editor"].user_id).username
    assert _login(client, username).status_code == 302
    page = client.get("/staff/entries/").get_data(as_text=True)
    assert 'href="/staff/licences/"' not in page
    assert client.get("/staff/licences/").status_code == 403
    client.post("/logout")
    assert _login(client, "clerk_a").status_code == 302
    assert 'href="/staff/licences/"' in client.get("/staff/licences/").get_data(as_text=True)


def test_demo_clerk_is_a_licence_clerk_with_an_api_token(db: Any, tmp_path: Any) -> None:
    from core.config import Settings
    from demo.licences_demo import DEMO_USER, ensure_clerk, ensure_department

    settings = Settings(database_url=db.url, instance_dir=tmp_path, secret_key="x", testing=True)
    with db.transaction() as session:
        dept = ensure_department(session, "高港区行政审批局", "11321203", "MB158001")
        user = ensure_clerk(session, dept, settings)
        assert user.role == Role.LICENCE_CLERK.value
        creds = json.loads((tmp_path / "demo_credentials.json").read_text())
        entry = next(u for u in creds["users"] if u["username"] == DEMO_USER["username"])
        principal = principal_for_token(session, entry["token"])
        assert principal is not None
        assert principal.role == Role.LICENCE_CLERK
        assert principal.department_id == dept.id


# The administrators' page for licence rights (/admin/licence-grants): every write on it, with a form
# body valid for an administrator.
GRANT_PAGE_WRITES = ("/admin/licence-grants/grant", "/admin/licence-grants/revoke")


def _username(db: Any, principal: Principal) -> str:
    from core.auth import User

    with db.transaction() as session:
        user = session.get(User, principal.user_id)
        return str(user.username)


def _page_forms(w: World) -> dict[str, dict[str, Any]]:
    editor = w.principals["editor"]
    return {
        "/admin/licence-grants/grant": {
            "user_id": str(editor.user_id),
            "type_codes": [PERSON_TYPE, ORG_TYPE],
            "department_id": str(editor.department_id),
        },
        "/admin/licence-grants/revoke": {
            "user_id": str(w.principals["clerk"].user_id),
            "type_code": PERSON_TYPE,
        },
    }


@pytest.mark.parametrize("who", ["clerk_a", "editor", "clerk_b"])
def test_only_an_administrator_opens_the_grants_page_or_changes_grants_on_it(
    client: Any, db: Any, world: World, who: str
) -> None:
    username = who if who.startswith("clerk") else _username(db, world.principals[who])
    assert _login(client, username).status_code == 302
    assert client.get("/admin/licence-grants").status_code == 403
    session = db.session()
    before = fingerprint(session)
    for url, form in _page_forms(world).items():
        assert client.post(url, data=form).status_code == 403, (who, url)
    session.expire_all()
    assert fingerprint(session) == before, f"{who} changed grants through the page"
    session.close()


def test_the_grants_page_sends_anonymous_visitors_to_the_login(client: Any, world: World) -> None:
    for url in ("/admin/licence-grants", *GRANT_PAGE_WRITES):
        response = client.post(url, data={}) if url in GRANT_PAGE_WRITES else client.get(url)
        assert response.status_code == 302, url
        assert "/login" in response.headers["Location"]


def test_an_administrator_grants_and_revokes_licence_rights_on_the_page(
    client: Any, db: Any, world: World
) -> None:
    from sqlmodel import select

    from core.audit import AuditLog

    editor = world.principals["editor"]
    assert _login(client, _username(db, world.principals["admin"])).status_code == 302
    home = client.get("/admin/").get_data(as_text=True)
    assert "/admin/licence-grants" in home
    page = client.get(f"/admin/licence-grants?department_id={editor.department_id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "授予权限：高港区行政审批局" in text
    assert f'<option value="{editor.user_id}">' in text
    assert 'name="csrf_token"' in text

    form = _page_forms(world)["/admin/licence-grants/grant"]
    granted = client.post("/admin/licence-grants/grant", data=form, follow_redirects=True)
    assert granted.status_code == 200
    assert "已授予 2 个证照类型的办理权限" in granted.get_data(as_text=True)
    with db.transaction() as session:
        assert licence_grants.licence_rights(session, editor) == {PERSON_TYPE, ORG_TYPE}

    # The editor may now issue: the page gave exactly the right the API checks.
    url, body = _matrix(world)[("POST", "/api/v1/licences")]
    issued = client.post(url, json=body, headers=auth(world.tokens["catalogue_editor_same_department"]))
    assert issued.status_code == 201, issued.get_json()

    bad = client.post(
        "/admin/licence-grants/grant",
        data={"user_id": str(editor.user_id), "type_codes": ["X" * 21]},
        follow_redirects=True,
    )
    assert "证照类型不存在" in bad.get_data(as_text=True)
    none = client.post(
        "/admin/licence-grants/grant", data={"user_id": str(editor.user_id)}, follow_redirects=True
    )
    assert "请至少指定一个证照类型" in none.get_data(as_text=True)

    revoked = client.post(
        "/admin/licence-grants/revoke",
        data={
            "user_id": str(editor.user_id),
            "type_code": PERSON_TYPE,
            "department_id": str(editor.department_id),
        },
        follow_redirects=True,
    )
    assert "已收回该证照类型的办理权限" in revoked.get_data(as_text=True)
    with db.transaction() as session:
        assert licence_grants.licence_rights(session, editor) == {ORG_TYPE}
        actions = session.exec(
            select(AuditLog.action).where(
                AuditLog.entity_type == "user", AuditLog.entity_id == str(editor.user_id)
            )
        ).all()
        assert actions.count("licence_grant.grant") == 1
        assert actions.count("licence_grant.revoke") == 1
    refused = client.post(url, json=body, headers=auth(world.tokens["catalogue_editor_same_department"]))
    assert refused.status_code == 403
