"""Every write endpoint of the API x every principal that must be refused: 401 for anonymous and
for a bad token, 403 for the wrong department, division or role (the catalogue and the licence
register are not secret, so a refusal names the rule instead of hiding the object); and nothing is
written.

The endpoints come from the published OpenAPI document, so a new write endpoint fails
test_every_write_endpoint_has_a_refusal_case until it is given a request here.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories.catalog import DISTRICT, uscc_for
from tests.factories.licences import PERSON_TYPE, id_number
from tests.factories.security import (
    WRITE_METHODS,
    World,
    build_world,
    fingerprint,
    published_spec,
    write_operations,
)

SPEC = published_spec()
WRITES = write_operations(SPEC)

ALL_STAFF = ("editor_of_other_department", "reviewer_of_other_department", "operator_of_other_division")
# Department staff may issue licences (for their own department, always); an operator may not.
NOT_STAFF = ("operator_of_other_division",)


def _requests(w: World) -> dict[tuple[str, str], tuple[str, dict[str, Any] | None, tuple[str, ...]]]:
    """(method, documented path) -> (concrete URL, body valid for an allowed caller, refused roles)."""
    e, i, lic, t = w.entry_id, w.item_id, w.licence_id, w.licence_type
    return {
        ("POST", "/api/v1/departments"): (
            "/api/v1/departments",
            {
                "name": "高港区新设局",
                "uscc": uscc_for("高港区新设局"),
                "level": "4",
                "division_code": DISTRICT,
            },
            ALL_STAFF,
        ),
        ("POST", "/api/v1/items"): (
            "/api/v1/items",
            {"code": "000199999001", "name": "新增的基本目录事项", "task_type": "01"},
            ALL_STAFF,
        ),
        ("PATCH", "/api/v1/items/{item_id}"): (f"/api/v1/items/{i}", {"name": "改过名的事项"}, ALL_STAFF),
        ("POST", "/api/v1/items/{item_id}/claim"): (
            f"/api/v1/items/{i}/claim",
            {"department_id": w.department_id},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/items/{item_id}/decline"): (
            f"/api/v1/items/{i}/decline",
            {"department_id": w.department_id, "reason": "本部门不承担此事项"},
            ALL_STAFF,
        ),
        ("PUT", "/api/v1/items/{item_id}/competence"): (
            f"/api/v1/items/{i}/competence",
            {"department_id": w.department_id},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/entries/{entry_id}/withdraw-claim"): (
            f"/api/v1/entries/{e}/withdraw-claim",
            {"reason": "认领错误"},
            ALL_STAFF,
        ),
        ("PATCH", "/api/v1/entries/{entry_id}"): (
            f"/api/v1/entries/{e}",
            {"phone": "0523-86900000"},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/entries/{entry_id}/attachments"): (
            f"/api/v1/entries/{e}/attachments",
            # a real (tiny) PDF, so an allowed caller's 201 is the upload, not a refused file
            {"filename": "空白表格.pdf",
             "content_base64": "JVBERi0xLjQKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK"},
            ALL_STAFF,
        ),
        ("PUT", "/api/v1/entries/{entry_id}/no-contact"): (
            f"/api/v1/entries/{e}/no-contact",
            {"value": True},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/entries/{entry_id}/submit"): (f"/api/v1/entries/{e}/submit", None, ALL_STAFF),
        ("POST", "/api/v1/entries/{entry_id}/approve"): (f"/api/v1/entries/{e}/approve", None, ALL_STAFF),
        ("POST", "/api/v1/entries/{entry_id}/reject"): (
            f"/api/v1/entries/{e}/reject",
            {"reason": "材料不全，退回修改"},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/entries/{entry_id}/retire"): (
            f"/api/v1/entries/{e}/retire",
            {"reason": "事项已取消"},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/entries/{entry_id}/reopen"): (
            f"/api/v1/entries/{e}/reopen",
            {"reason": "需要修订"},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/entries/{entry_id}/revision"): (
            f"/api/v1/entries/{e}/revision",
            {"reason": "更新咨询电话"},
            ALL_STAFF,
        ),
        ("PATCH", "/api/v1/entries/{entry_id}/revision"): (
            f"/api/v1/entries/{e}/revision",
            {"fields": {"phone": "0523-86900000"}},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/entries/{entry_id}/revision/submit"): (
            f"/api/v1/entries/{e}/revision/submit",
            None,
            ALL_STAFF,
        ),
        ("POST", "/api/v1/entries/{entry_id}/revision/withdraw"): (
            f"/api/v1/entries/{e}/revision/withdraw",
            {"reason": "不再修订"},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/entries/{entry_id}/revision/approve"): (
            f"/api/v1/entries/{e}/revision/approve",
            None,
            ALL_STAFF,
        ),
        ("POST", "/api/v1/entries/{entry_id}/revision/reject"): (
            f"/api/v1/entries/{e}/revision/reject",
            {"reason": "电话有误"},
            ALL_STAFF,
        ),
        ("PUT", "/api/v1/review-settings"): (
            "/api/v1/review-settings",
            {"four_eyes": False, "reason": "只有一名审核人员"},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/licence-types"): (
            "/api/v1/licence-types",
            {"code": PERSON_TYPE[:-3] + "099", "name": "新证照类型", "holder_code_type": "111"},
            ALL_STAFF,
        ),
        ("PATCH", "/api/v1/licence-types/{code}"): (
            f"/api/v1/licence-types/{t}",
            {"name": "改名"},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/licence-types/{code}/entries"): (
            f"/api/v1/licence-types/{t}/entries",
            {"task_code": w.task_code, "role": "produces"},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/licence-authorisations"): (
            "/api/v1/licence-authorisations",
            {
                "holder_code": id_number(7),
                "type_codes": [PERSON_TYPE],
                "case_number": "GG20261130001",
                "task_code": w.task_code,
                "valid_until": "2099-01-01",
                "method": "signed_form",
            },
            NOT_STAFF,
        ),
        ("POST", "/api/v1/licence-authorisations/{authorisation_id}/withdraw"): (
            f"/api/v1/licence-authorisations/{w.authorisation_id}/withdraw",
            {"reason": "办件已办结"},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/licences"): (
            "/api/v1/licences",
            {
                "type_code": PERSON_TYPE,
                "holder_name": "王五",
                "holder_code": id_number(7),
                "face": {"gender": "男"},
            },
            NOT_STAFF,
        ),
        ("POST", "/api/v1/licences/{licence_id}/amend"): (
            f"/api/v1/licences/{lic}/amend",
            {"holder_name": "王五", "reason": "更正姓名"},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/licences/{licence_id}/suspend"): (
            f"/api/v1/licences/{lic}/suspend",
            {"reason": "涉嫌违规，暂停使用"},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/licences/{licence_id}/resume"): (f"/api/v1/licences/{lic}/resume", {}, ALL_STAFF),
        ("POST", "/api/v1/licences/{licence_id}/status"): (
            f"/api/v1/licences/{lic}/status",
            {"status": "cancelled", "category": "holder_request", "reason": "持证人申请注销"},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/licences/{licence_id}/revoke"): (
            f"/api/v1/licences/{lic}/revoke",
            {"reason": "依法撤销"},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/users"): (
            "/api/v1/users",
            {"username": "new.staff", "display_name": "新同事", "role": "admin", "password": "long-enough-1"},
            ALL_STAFF,
        ),
        ("PUT", "/api/v1/users/{user_id}/active"): (f"/api/v1/users/{w.user_id}/active", {"value": False},
                                                    ALL_STAFF),
        ("POST", "/api/v1/users/{user_id}/tokens"): (f"/api/v1/users/{w.user_id}/tokens", {"name": "对接"},
                                                     ALL_STAFF),
        ("POST", "/api/v1/tokens/{token_id}/revoke"): (
            f"/api/v1/tokens/{w.token_id}/revoke", None, ALL_STAFF
        ),
        ("POST", "/api/v1/sync/dead-letters/requeue"): (
            "/api/v1/sync/dead-letters/requeue",
            {"ids": [1]},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/sync/dead-letters/skip"): (
            "/api/v1/sync/dead-letters/skip",
            {"ids": [1], "reason": "人工处理完毕"},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/reports/case-stats"): (
            "/api/v1/reports/case-stats",
            {
                "year": 2026,
                "rows": [
                    {
                        "task_code": w.task_code,
                        "month": "2026-01",
                        "received": 3,
                        "online": 2,
                        "finished": 2,
                        "on_time": 2,
                    }
                ],
            },
            ALL_STAFF,
        ),
        ("PUT", "/api/v1/reports/{year}/narratives/{key}"): (
            "/api/v1/reports/2026/narratives/preface",
            {"text": "本报告根据《条例》编制。"},
            ALL_STAFF,
        ),
        ("DELETE", "/api/v1/reports/{year}/narratives/{key}"): (
            "/api/v1/reports/2026/narratives/preface",
            None,
            ALL_STAFF,
        ),
        ("PUT", "/api/v1/reports/{year}/figures/{key}"): (
            "/api/v1/reports/2026/figures/info_processing_fee",
            {"value": "0", "lower_bound": False},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/cases"): (
            "/api/v1/cases",
            {"project_no": "SEC-1", "task_code": w.task_code, "accept_date": "2026-03-02",
             "channel": "online"},
            ALL_STAFF,
        ),
        ("POST", "/api/v1/cases/batch"): (
            "/api/v1/cases/batch",
            {
                "cases": [
                    {"project_no": "SEC-2", "task_code": w.task_code, "accept_date": "2026-03-02",
                     "channel": "online"}
                ]
            },
            ALL_STAFF,
        ),
    }


# One world and one app for the module (tests/conftest.py): every test here starts from the same
# principals and rows, and each is rolled back to a savepoint afterwards.
@pytest.fixture(scope="module")
def world(module_app: Any, module_db: Any) -> World:
    session = module_db.session()
    try:
        return build_world(session)
    finally:
        session.close()


@pytest.fixture
def db(module_db: Any, per_test_savepoint: None) -> Any:
    return module_db


@pytest.fixture
def app(module_app: Any, per_test_savepoint: None) -> Any:
    return module_app


def test_every_write_endpoint_has_a_refusal_case(world: World) -> None:
    assert WRITES, "the OpenAPI document lists no write endpoint"
    assert set(WRITES) == set(_requests(world)), "classify the new write endpoint in _requests()"


def _send(client: Any, method: str, url: str, body: Any, headers: dict[str, str]) -> Any:
    return client.open(url, method=method, json=body if body is not None else None, headers=headers)


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_write_endpoint_refuses_anonymous_bad_token_and_wrong_scope_without_writing(
    client: Any, db: Any, world: World, method: str, path: str
) -> None:
    url, body, refused = _requests(world)[(method, path)]
    session = db.session()
    before = fingerprint(session)

    for label, headers, expected in [
        ("anonymous", {}, 401),
        ("bad token", {"Authorization": "Bearer not-a-real-token"}, 401),
        *[(role, {"Authorization": f"Bearer {world.tokens[role]}"}, 403) for role in refused],
    ]:
        response = _send(client, method, url, body, headers)
        assert response.status_code == expected, (label, response.status_code, response.get_json())
        error = response.get_json()
        assert set(error) == {"code", "message", "details"}, (label, error)
        session.expire_all()
        assert fingerprint(session) == before, f"{label}: {method} {url} wrote to the database"
    session.close()


# In this order: deactivating the user revokes its tokens (core.users), which would make the revoke a no-op.
ADMIN_ONLY = [
    ("POST", "/api/v1/users"),
    ("POST", "/api/v1/users/{user_id}/tokens"),
    ("POST", "/api/v1/tokens/{token_id}/revoke"),
    ("PUT", "/api/v1/users/{user_id}/active"),
    ("POST", "/api/v1/departments"),
    ("POST", "/api/v1/items"),
    ("PATCH", "/api/v1/items/{item_id}"),
    ("PUT", "/api/v1/items/{item_id}/competence"),
    ("POST", "/api/v1/licence-types"),
]


def test_the_refused_requests_succeed_for_an_allowed_caller_and_are_seen_as_writes(
    client: Any, db: Any, world: World
) -> None:
    """The requests above are refused for who sends them, not for what they contain, and the
    fingerprint does see a write: the admin's identical requests succeed and change it."""
    auth = {"Authorization": f"Bearer {world.admin}"}
    requests = _requests(world)
    session = db.session()
    for key in ADMIN_ONLY:
        before = fingerprint(session)
        url, body, _refused = requests[key]
        response = _send(client, key[0], url, body, auth)
        assert response.status_code in (200, 201), (key, response.get_json())
        session.expire_all()
        assert fingerprint(session) != before, key
    session.close()


def test_unsupported_method_is_405_with_allow_header_and_the_error_shape(client: Any) -> None:
    response = client.delete("/api/v1/departments")
    assert response.status_code == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert set(response.get_json()) == {"code", "message", "details"}


def test_every_documented_error_response_uses_the_error_shape() -> None:
    assert SPEC["components"]["schemas"]["Error"]["required"] == ["code", "details", "message"]
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            if method not in ("get", *WRITE_METHODS):
                continue
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) or status == "default":
                    ref = response.get("$ref") or response["content"]["application/json"]["schema"]["$ref"]
                    if ref.startswith("#/components/responses/"):
                        component = SPEC["components"]["responses"][ref.rsplit("/", 1)[1]]
                        ref = component["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/Error", (method, path, status)


@pytest.mark.parametrize(
    "url",
    [
        "/bundles/3000000000",
        "/api/v1/items/3000000000",
        "/api/v1/entries/3000000000",
        "/api/v1/sync/licences/3000000000",
        "/api/v1/licences/3000000000",
    ],
)
def test_ids_beyond_the_integer_columns_are_not_found_not_server_errors(client: Any, url: str) -> None:
    """The bounded id converter refuses them at routing, before any login check."""
    response = client.get(url)
    assert response.status_code == 404
    if url.startswith("/api/"):
        assert set(response.get_json()) == {"code", "message", "details"}
