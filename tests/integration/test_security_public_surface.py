"""The anonymous surface, probed as an attacker would: unpublished files behind sequential ids, the
language and shape of the framework's own errors, redirects built from the Host header, and what may
be cached of a response that sets a cookie."""

from __future__ import annotations

from typing import Any

import pytest

from catalog import entries as entry_services
from catalog import revisions
from catalog.attachments import upload_attachment
from core.auth import SYSTEM, Role
from tests.conftest import sign_in
from tests.factories.catalog import make_department, make_item, make_user, published_entry

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def published(session: Any) -> dict[str, Any]:
    dept = make_department(session, "区民政局")
    entry = published_entry(session, dept)
    editor = make_user(session, Role.DEPT_EDITOR, department=dept)[0]
    session.commit()
    return {"entry": entry, "editor": editor}


def test_a_published_entrys_file_is_public_only_once_the_published_version_links_it(
    client: Any, session: Any, published: dict[str, Any]
) -> None:
    entry = published["entry"]
    # Uploaded for a revision still being prepared: the published version does not link it yet.
    row = upload_attachment(session, SYSTEM, entry.id, filename="审批结果样本（待审核）.pdf", data=PDF)
    revisions.open_revision(session, SYSTEM, entry.id, reason="补充审批结果样本")
    revisions.update_revision(session, SYSTEM, entry.id, fields={"result_sample": row.id})
    session.commit()
    assert client.get(f"/files/{row.id}").status_code == 404
    sign_in(client, published["editor"].id)  # the department's own staff see what they prepare
    assert client.get(f"/files/{row.id}").status_code == 200
    client.post("/logout")

    revisions.submit_revision(session, SYSTEM, entry.id)
    revisions.approve_revision(session, SYSTEM, entry.id)
    session.commit()
    response = client.get(f"/files/{row.id}")
    assert response.status_code == 200
    assert response.data == PDF


def test_the_entry_api_lists_only_the_files_the_published_version_links(
    client: Any, session: Any, published: dict[str, Any]
) -> None:
    """The download is refused (above); the listing must not give the names, sizes and digests away."""
    entry = published["entry"]
    row = upload_attachment(session, SYSTEM, entry.id, filename="审批结果样本（待审核）.pdf", data=PDF)
    session.commit()
    listed = client.get(f"/api/v1/entries/{entry.id}").get_json()["attachments"]
    assert row.id not in [a["id"] for a in listed]
    assert client.get(f"/api/v1/entries/by-code/{entry.task_code}").get_json()["attachments"] == listed
    sign_in(client, published["editor"].id)  # the department's own staff see what they prepare
    listed = client.get(f"/api/v1/entries/{entry.id}").get_json()["attachments"]
    assert row.id in [a["id"] for a in listed]


def test_a_drafts_task_code_answers_as_a_code_that_does_not_exist(
    client: Any, session: Any, published: dict[str, Any]
) -> None:
    dept = published["entry"].department_id
    item = make_item(session, "草稿事项")
    draft = entry_services.claim_item(session, SYSTEM, item_id=item.id, department_id=dept)
    session.commit()
    unknown = "0" * len(draft.task_code)
    answers = [client.get(f"/api/v1/entries/by-code/{code}") for code in (draft.task_code, unknown)]
    assert [a.status_code for a in answers] == [404, 404]
    messages = [
        a.get_json()["message"].replace(code, "<code>")
        for a, code in zip(answers, (draft.task_code, unknown), strict=True)
    ]
    assert messages[0] == messages[1]
    assert "实施清单" not in answers[0].get_json()["message"]  # not "实施清单 <internal id> 不存在"


def test_an_unknown_open_data_format_is_the_error_shape_in_chinese(client: Any) -> None:
    response = client.get("/open-data/cpsv-ap.xml")
    assert response.status_code == 404
    body = response.get_json()
    assert body["code"] == "not_found"
    assert ".ttl" in body["message"]
    assert "开放数据格式" in body["message"]


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/api/v1/no-such-thing", {}, 404),
        ("GET", "/no-such-page", {}, 404),
        ("GET", "/entries/" + "1" * 40, {}, 404),  # the view's own abort(404)
        ("DELETE", "/api/v1/search", {}, 405),
        ("POST", "/", {}, 405),
        (
            "POST",
            "/api/v1/entries",
            {"data": b"{}" + b" " * (21 * 1024 * 1024), "content_type": "application/json"},
            413,
        ),
    ],
)
def test_the_frameworks_own_errors_speak_chinese(
    client: Any, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    # werkzeug answered "The requested URL was not found on the server. If you entered the URL
    # manually...", on the JSON API and on the page a citizen sees.
    for accept in ("application/json", "text/html"):
        response = client.open(path, method=method, headers={"Accept": accept}, **kwargs)
        assert response.status_code == status
        text = response.get_data(as_text=True)
        if response.is_json:
            body = response.get_json()
            assert set(body) == {"code", "message", "details"}
            assert _has_chinese(body["message"]), body
        for english in ("requested URL", "not allowed", "exceeds the capacity"):
            assert english not in text


def test_the_rate_limit_answer_speaks_chinese(db: Any, tmp_path: Any) -> None:
    from tests.conftest import make_settings
    from webapp import create_app

    app = create_app(make_settings(tmp_path, db.url, ratelimit_enabled=True, redis_url=None), database=db)
    app.config["WTF_CSRF_ENABLED"] = False
    limited = app.test_client()
    for _ in range(20):
        limited.post("/login", data={"username": "nobody", "password": "wrong-password"})
    page = limited.post("/login", data={"username": "nobody", "password": "wrong-password"})
    assert page.status_code == 429
    assert "per 1 minute" not in page.get_data(as_text=True)  # flask-limiter's own description
    assert "请求过于频繁" in page.get_data(as_text=True)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8443"])
def test_a_routing_redirect_never_names_the_host_the_client_sent(client: Any, host: str) -> None:
    # /bundles → /bundles/ was answered with Location: http://<Host header>/bundles/, which a cache
    # keyed on the path would serve to everyone.
    response = client.get("/bundles", headers={"Host": host})
    assert response.status_code in (301, 308)
    assert response.headers["Location"] == "/bundles/"


def test_a_response_that_sets_a_cookie_is_not_kept_by_shared_caches(client: Any) -> None:
    login = client.get("/login")  # the session cookie with this visitor's CSRF token
    assert "gg_session=" in login.headers.get("Set-Cookie", "")
    assert "no-store" in login.headers["Cache-Control"]
    place = client.get("/search?q=社保&place=321203001001")  # the place picker's cookie
    assert "place=" in place.headers.get("Set-Cookie", "")
    assert "no-store" in place.headers["Cache-Control"]
    fresh = client.application.test_client()
    assert "no-store" not in fresh.get("/search?q=社保").headers.get("Cache-Control", "")


@pytest.mark.parametrize("prefix", ["/verify/", "/api/v1/licences/verify/", "/api/v1/licenses/verify/"])
def test_the_access_log_keeps_only_the_head_of_a_verification_token_on_every_path(
    client: Any, prefix: str
) -> None:
    import io
    import json

    from core.logging import configure_logging

    stream = io.StringIO()
    configure_logging("web", stream=stream)
    try:
        token = "L1." + "A" * 120
        client.get(prefix + token)
        lines = [json.loads(x) for x in stream.getvalue().splitlines() if x.strip()]
        access = [line for line in lines if line["logger"] == "gaogang.access"]
        assert access
        for line in access:
            assert token not in line["path"]
            assert line["path"].startswith(prefix + "L1.AAA")
    finally:
        configure_logging("web")
