"""SQL- and HTML-injection strings through the free-text fields of items, entries, licences and
search aliases: stored and returned literally by the API, escaped in every page that shows them."""

from __future__ import annotations

from typing import Any

import pytest
from markupsafe import escape
from sqlmodel import select

from catalog.search_models import SearchAlias
from core.auth import Role
from tests.factories.catalog import COMPLETE_FIELDS, make_department, make_user
from tests.factories.licences import PERSON_TYPE, id_number, make_staff, make_types

PAYLOADS = [
    "'; DROP TABLE catalog_item;--",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
]
RAW_MARKUP = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _login(client: Any, username: str) -> None:
    response = client.post("/login", data={"username": username, "password": "password-123"})
    assert response.status_code in (302, 303), response.data[:300]


def assert_shown_escaped(html: str, payload: str) -> None:
    assert str(escape(payload)) in html, f"{payload!r} not shown (escaped) in the page"
    for raw in RAW_MARKUP:
        assert raw not in html, f"raw markup {raw!r} reached the page"


@pytest.fixture
def staff(app: Any, db: Any) -> dict[str, Any]:
    session = db.session()
    dept = make_department(session, "高港区市场监督管理局")
    admin_user, _p, admin_token = make_user(session, Role.ADMIN)
    _reviewer, _p2, reviewer_token = make_user(session, Role.ADMIN)
    make_types(session)
    issuer = make_staff(session, "高港区住房和城乡建设局", "MB123456", "inj_issuer")
    session.commit()
    session.close()
    return {
        "dept": dept.id,
        "admin": admin_token,
        "reviewer": reviewer_token,  # four-eyes: another person approves what the admin submitted
        "admin_username": admin_user.username,
        "issuer": issuer.token,
        "issuer_username": "inj_issuer",
    }


@pytest.mark.parametrize("payload", PAYLOADS)
def test_item_and_entry_text_is_stored_literally_and_escaped_in_pages(
    client: Any, staff: dict[str, Any], payload: str
) -> None:
    admin = _auth(staff["admin"])
    item = client.post(
        "/api/v1/items",
        json={"code": "000199888001", "name": f"事项{payload}", "task_type": "01", "legal_basis": payload},
        headers=admin,
    )
    assert item.status_code == 201, item.get_json()
    item_id = item.get_json()["id"]
    claim = {"department_id": staff["dept"]}
    entry = client.post(f"/api/v1/items/{item_id}/claim", json=claim, headers=admin)
    assert entry.status_code == 201, entry.get_json()
    entry_id = entry.get_json()["id"]
    text_fields = {
        "accept_conditions": payload,
        "window_address": payload,
        "opening_hours": payload,
        "keywords": payload,
        "visits_reason": payload,
    }
    patch = client.patch(
        f"/api/v1/entries/{entry_id}",
        json={
            **COMPLETE_FIELDS,
            **text_fields,
            "materials": [{"name": payload, "form": "electronic", "required": True}],
        },
        headers=admin,
    )
    assert patch.status_code == 200, patch.get_json()
    for step, who in (("submit", admin), ("approve", _auth(staff["reviewer"]))):
        r = client.post(f"/api/v1/entries/{entry_id}/{step}", headers=who)
        assert r.status_code == 200, (step, r.get_json())

    stored_item = client.get(f"/api/v1/items/{item_id}").get_json()
    assert stored_item["name"] == f"事项{payload}"
    assert stored_item["legal_basis"] == payload
    detail = client.get(f"/api/v1/entries/{entry_id}").get_json()
    for name, value in text_fields.items():
        assert detail[name] == value, name
    assert [m["name"] for m in detail["materials"]] == [payload]

    page = client.get(f"/entries/{detail['task_code']}")
    assert page.status_code == 200
    assert_shown_escaped(page.get_data(as_text=True), payload)

    _login(client, staff["admin_username"])
    for url in (f"/staff/entries/{entry_id}", "/staff/entries/", f"/staff/items/{item_id}"):
        staff_page = client.get(url)
        if staff_page.status_code == 404 and url.startswith("/staff/items/"):
            continue  # no item detail page: the item's name is checked on the entry pages
        assert staff_page.status_code == 200, url
        assert_shown_escaped(staff_page.get_data(as_text=True), payload)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_licence_text_is_stored_literally_and_escaped_in_staff_pages(
    client: Any, staff: dict[str, Any], payload: str
) -> None:
    issuer = _auth(staff["issuer"])
    issued = client.post(
        "/api/v1/licences",
        json={
            "type_code": PERSON_TYPE,
            "holder_name": f"张{payload}",
            "holder_code": id_number(31),
            "face": {"gender": "男", "work_type": payload},
        },
        headers=issuer,
    )
    assert issued.status_code == 201, issued.get_json()
    licence_id = issued.get_json()["id"]
    full = client.get(f"/api/v1/licences/{licence_id}/full", headers=issuer).get_json()
    assert full["holder_name"] == f"张{payload}"
    assert full["face"]["work_type"] == payload

    _login(client, staff["issuer_username"])
    page = client.get(f"/staff/licences/{licence_id}")
    assert page.status_code == 200
    assert_shown_escaped(page.get_data(as_text=True), payload)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_search_alias_text_is_stored_literally_and_escaped_on_the_aliases_page(
    client: Any, db: Any, staff: dict[str, Any], payload: str
) -> None:
    _login(client, staff["admin_username"])
    saved = client.post(
        "/admin/search/aliases",
        data={"alias": f"注入测试{payload}", "targets": f"社会保障卡|{payload}", "note": payload},
    )
    assert saved.status_code in (302, 303), saved.get_data(as_text=True)[:500]
    session = db.session()
    row = session.exec(select(SearchAlias).where(SearchAlias.note == payload)).one()
    session.close()
    # The note is kept as typed; alias and targets are normalised search words (by design), and the
    # page lists those two, escaped.
    page = client.get("/admin/search/aliases")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert str(escape(row.alias)) in html
    assert str(escape(row.targets)) in html
    for raw in RAW_MARKUP:
        assert raw not in html


@pytest.mark.parametrize("payload", PAYLOADS)
def test_search_query_is_echoed_literally_and_escaped(
    client: Any, staff: dict[str, Any], payload: str
) -> None:
    api = client.get("/api/v1/search", query_string={"q": payload})
    assert api.status_code == 200
    # The API reports the normalised query it searched for (punctuation dropped, lower case).
    assert "<" not in api.get_json()["query"]
    page = client.get("/search", query_string={"q": payload})
    assert page.status_code == 200
    assert_shown_escaped(page.get_data(as_text=True), payload)
