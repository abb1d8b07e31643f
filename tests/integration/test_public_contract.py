"""What API users and staff read and call: Chinese 422 details, an inherited field refused with its
reason, 415 for a body that is not JSON, one visits range for the form and the API, and the public
URLs (one spelling `licences`, versioned reports) with the old paths answering 308."""

from __future__ import annotations

import re
from typing import Any

import pytest

from catalog import entries as entry_services
from catalog.entries import MAX_VISITS
from catalog.models import ImplementationEntry
from core.auth import SYSTEM, Role
from tests.factories.catalog import COMPLETE_FIELDS, make_department, make_item, make_user

PASSWORD = "password-123"


@pytest.fixture
def draft(session: Any) -> dict[str, Any]:
    dept = make_department(session, "接口契约测试局")
    item = make_item(session, "接口契约测试许可")
    entry = entry_services.claim_item(session, SYSTEM, item_id=item.id, department_id=dept.id)
    user, _principal, token = make_user(session, Role.DEPT_EDITOR, department=dept)
    session.commit()
    return {"entry": entry, "user": user, "auth": {"Authorization": f"Bearer {token}"}}


def _version(session: Any, entry_id: int) -> int:
    session.expire_all()
    return session.get(ImplementationEntry, entry_id).version


def test_a_form_encoded_patch_is_415_and_changes_nothing(client, session, draft):
    entry = draft["entry"]
    before = _version(session, entry.id)
    response = client.patch(f"/api/v1/entries/{entry.id}", data={"phone": "0523-1"}, headers=draft["auth"])
    assert response.status_code == 415
    body = response.get_json()
    assert body["code"] == "unsupported_media_type"
    assert "application/json" in body["message"]
    assert body["details"] == {"Content-Type": ["不支持的请求体类型：application/x-www-form-urlencoded"]}
    assert _version(session, entry.id) == before
    response = client.patch(f"/api/v1/entries/{entry.id}", json={"phone": "0523-86900001"},
                            headers=draft["auth"])
    assert response.status_code == 200
    assert _version(session, entry.id) == before + 1


def test_a_write_without_a_body_is_not_refused_as_unsupported(client, session, draft):
    entry = draft["entry"]
    assert client.patch(f"/api/v1/entries/{entry.id}", json=COMPLETE_FIELDS,
                        headers=draft["auth"]).status_code == 200
    response = client.post(f"/api/v1/entries/{entry.id}/submit", headers=draft["auth"])
    assert response.status_code == 200, response.get_json()


def test_validation_details_are_chinese(client, draft):
    response = client.patch(f"/api/v1/entries/{draft['entry'].id}",
                            json={"visits": "两次", "phone": 5, "bogus": 1}, headers=draft["auth"])
    assert response.status_code == 422
    assert response.get_json()["details"] == {
        "visits": ["应为整数"], "phone": ["应为字符串"], "bogus": ["未知字段"],
    }


def test_an_inherited_field_is_refused_as_inherited_not_unknown(client, session, draft):
    entry = draft["entry"]
    response = client.patch(f"/api/v1/entries/{entry.id}", json={"name": "改名", "task_type": "02"},
                            headers=draft["auth"])
    assert response.status_code == 422
    assert response.get_json()["details"] == {
        "name": ["继承自基本目录，不可修改"], "task_type": ["继承自基本目录，不可修改"],
    }


def test_the_api_and_the_form_allow_the_same_visits_range(client, session, draft):
    entry, auth = draft["entry"], draft["auth"]
    over = MAX_VISITS + 1
    response = client.patch(f"/api/v1/entries/{entry.id}", json={"visits": over}, headers=auth)
    assert response.status_code == 422
    assert response.get_json()["details"] == {"visits": [f"应在 0 到 {MAX_VISITS} 之间"]}
    most = {"visits": MAX_VISITS, "visits_reason": "多次核验"}
    assert client.patch(f"/api/v1/entries/{entry.id}", json=most, headers=auth).status_code == 200

    assert client.post("/login", data={"username": draft["user"].username,
                                       "password": PASSWORD}).status_code == 302
    form = {"accept_conditions": "x", "anticipate_days": "20", "anticipate_unit": "working",
            "promise_days": "5", "promise_unit": "working", "project_type": "2", "visits": str(over),
            "visits_reason": "需现场核验", "result_delivery": ["window"]}
    page = client.post(f"/staff/entries/{entry.id}/edit", data=form)
    assert page.status_code == 422
    assert re.search(rf'id="visits-error"[^>]*>应在 0 到 {MAX_VISITS} 之间<', page.get_data(as_text=True))


@pytest.mark.parametrize(("old", "new"), [
    ("/api/v1/licenses/lookup?holder_code=1&type_code=2",
     "/api/v1/licences/lookup?holder_code=1&type_code=2"),
    ("/api/v1/licenses", "/api/v1/licences"),
    ("/api/v1/licenses/7/amend", "/api/v1/licences/7/amend"),
    ("/api/reports/metrics?year=2025", "/api/v1/reports/metrics?year=2025"),
    ("/api/reports/case-stats", "/api/v1/reports/case-stats"),
])
@pytest.mark.parametrize("method", ["GET", "POST", "PATCH"])
def test_old_public_urls_answer_308_to_the_new_ones(client, old, new, method):
    response = client.open(old, method=method, json={"a": 1} if method != "GET" else None)
    assert response.status_code == 308
    assert response.headers["Location"] == new
    assert response.headers["Deprecation"] == "true"


def test_a_redirected_write_reaches_the_new_url_with_its_body(client, draft):
    response = client.post("/api/reports/case-stats", json={"year": 2025, "rows": []},
                           headers=draft["auth"], follow_redirects=True)
    assert response.request.path == "/api/v1/reports/case-stats"
    assert response.status_code != 308


def test_the_openapi_document_uses_one_spelling_and_a_versioned_reports_api(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert not [p for p in paths if p.startswith(("/api/v1/licenses", "/api/reports"))]
    assert "/api/v1/licences" in paths
    assert "/api/v1/reports/metrics" in paths
