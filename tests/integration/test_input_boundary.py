"""The input boundary (core.input_guard): control characters, lone surrogates, deep nesting,
unreadable bodies and anonymous callers with invalid bodies, on real endpoints of the app."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from core.auth import Role, User
from core.input_guard import SEGMENT_PATTERN, TEXT_PATTERN
from core.logging import configure_logging
from licenses.models import Licence
from tests.conftest import ROOT, make_settings
from tests.factories.catalog import DISTRICT, make_department, make_user, published_entry
from tests.factories.licences import PERSON_TYPE, id_number, make_staff, make_types, person_licence


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def world(app: Any, db: Any) -> dict[str, Any]:
    session = db.session()
    dept = make_department(session, "高港区市场监督管理局")
    entry = published_entry(session, dept)
    make_types(session)
    staff = make_staff(session, "高港区住房和城乡建设局", "MB123456", "boundary_editor")
    licence = person_licence(session, staff)
    admin, _p, admin_token = make_user(session, Role.ADMIN)
    session.commit()
    return {
        "entry_id": entry.id,
        "task_code": entry.task_code,
        "licence_id": licence.id,
        "staff_token": staff.token,
        "admin_token": admin_token,
        "admin_username": admin.username,
    }


def _licence_count(db: Any) -> int:
    session = db.session()
    try:
        return session.execute(sa.select(sa.func.count()).select_from(Licence)).scalar_one()
    finally:
        session.close()


def assert_refused_naming(response: Any, field: str, status: int = 422) -> None:
    assert response.status_code == status, response.data[:400]
    body = response.get_json()
    assert set(body) == {"code", "message", "details"}
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"]), body["message"]
    assert field in body["details"], body["details"]


# ---- item 9: NUL and other control characters, one boundary for the whole app -------------------


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/entries?q=a%00b", "q"),
        ("/api/v1/items?q=%00", "q"),
        ("/api/v1/search?q=%E5%8A%9E%00", "q"),
        ("/search?q=%00", "q"),
        ("/api/v1/departments?name=%01x", "name"),
        ("/entries/%00", "path"),
        ("/licences/types/%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00", "path"),
    ],
)
def test_control_characters_in_path_or_query_are_refused_with_422_naming_the_field(
    client: Any, world: dict[str, Any], url: str, field: str
) -> None:
    response = client.get(url, headers={"Accept": "application/json"})
    assert_refused_naming(response, field)


def test_nul_in_a_staff_list_filter_is_refused(client: Any, world: dict[str, Any]) -> None:
    client.post("/login", data={"username": "boundary_editor", "password": "password-123"})
    response = client.get("/staff/licences/?q=%E5%BC%A0%00", headers={"Accept": "application/json"})
    assert_refused_naming(response, "q")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("holder_name", "张\x00三"),
        ("holder_name", "张\x1b三"),
        ("face.work_type", "建筑\x00电工"),
        ("holder_name", "张\ud800三"),
    ],
)
def test_control_characters_in_licence_fields_are_refused_and_nothing_is_stored(
    client: Any, db: Any, world: dict[str, Any], field: str, value: str
) -> None:
    body: dict[str, Any] = {
        "type_code": PERSON_TYPE,
        "holder_name": "王五",
        "holder_code": id_number(77),
        "face": {"gender": "男", "work_type": "焊工"},
    }
    if field == "face.work_type":
        body["face"]["work_type"] = value
    else:
        body[field] = value
    before = _licence_count(db)
    raw = json.dumps(body, ensure_ascii=True)  # "\ud800" travels as an escape, as a client sends it
    response = client.post(
        "/api/v1/licences", data=raw, content_type="application/json", headers=_auth(world["staff_token"])
    )
    assert_refused_naming(response, field)
    assert _licence_count(db) == before


def test_nul_in_a_reason_and_in_an_entry_patch_is_refused(client: Any, world: dict[str, Any]) -> None:
    lid = world["licence_id"]
    response = client.post(
        f"/api/v1/licences/{lid}/suspend", json={"reason": "核查\x00"}, headers=_auth(world["staff_token"])
    )
    assert_refused_naming(response, "reason")
    response = client.patch(
        f"/api/v1/entries/{world['entry_id']}",
        json={"fields": {"window_address": "3 号窗口\x00"}},
        headers=_auth(world["admin_token"]),
    )
    assert_refused_naming(response, "fields.window_address")


def test_multi_line_text_with_tab_and_newlines_still_passes_the_boundary(
    client: Any, world: dict[str, Any]
) -> None:
    lid = world["licence_id"]
    response = client.post(
        f"/api/v1/licences/{lid}/suspend",
        json={"reason": "核查\r\n持证人\t信息"},
        headers=_auth(world["staff_token"]),
    )
    assert response.status_code == 200, response.data[:300]
    assert response.get_json()["status"] == "suspended"


def test_a_form_field_with_a_control_character_is_refused(client: Any, world: dict[str, Any]) -> None:
    client.post("/login", data={"username": world["admin_username"], "password": "password-123"})
    response = client.post(
        "/admin/users",
        data={"username": "newbie", "display_name": "新\x00人", "role": "admin"},
        headers={"Accept": "application/json"},
    )
    assert_refused_naming(response, "display_name")


# ---- item 10: other malformed input --------------------------------------------------------------


def test_json_nested_100000_deep_is_a_400_for_an_anonymous_client(client: Any) -> None:
    response = client.post("/api/v1/licences", data="[" * 100_000, content_type="application/json")
    assert response.status_code == 400, response.data[:300]
    assert response.get_json()["code"] == "bad_request"


def test_json_nested_deeper_than_the_limit_is_a_400_even_when_it_parses(
    client: Any, world: dict[str, Any]
) -> None:
    body = '{"holder_name": ' + "[" * 200 + "]" * 200 + "}"
    response = client.post(
        "/api/v1/licences", data=body, content_type="application/json", headers=_auth(world["staff_token"])
    )
    assert response.status_code == 400, response.data[:300]
    assert set(response.get_json()) == {"code", "message", "details"}


def test_a_lone_surrogate_can_only_arrive_as_a_json_escape_and_is_refused_there(
    client: Any, world: dict[str, Any]
) -> None:
    # In a URL its UTF-8 bytes decode to U+FFFD: an ordinary (if odd) search.
    assert client.get("/api/v1/entries?q=%ED%A0%80").status_code == 200
    raw = '{"reason": "\\ud800"}'
    response = client.post(f"/api/v1/licences/{world['licence_id']}/suspend", data=raw,
                           content_type="application/json", headers=_auth(world["staff_token"]))
    assert_refused_naming(response, "reason")
    response = client.post(f"/api/v1/licences/{world['licence_id']}/suspend", data=raw,
                           content_type="application/json")
    assert response.status_code == 401  # anonymous: authentication first


def test_admin_user_form_with_a_32_character_division_code_is_a_422_and_logs_no_password_hash(
    client: Any, world: dict[str, Any], db: Any
) -> None:
    stream = io.StringIO()
    configure_logging("web", stream=stream)
    try:
        client.post("/login", data={"username": world["admin_username"], "password": "password-123"})
        response = client.post(
            "/admin/users",
            data={
                "username": "village_op",
                "display_name": "村经办",
                "role": "division_operator",
                "division_code": DISTRICT + "0" * (32 - len(DISTRICT)),
                "password": "a-long-password-123",
            },
        )
    finally:
        configure_logging("web")
    assert response.status_code == 422, response.data[:500]
    assert "所在区划" in response.get_data(as_text=True)
    session = db.session()
    try:
        assert session.execute(sa.select(User).where(User.username == "village_op")).first() is None
    finally:
        session.close()
    assert "$argon2" not in stream.getvalue()
    assert "password_hash" not in stream.getvalue()


# ---- item 12: invalid bodies get 401 before 422 for anonymous callers -----------------------------


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("post", "/api/v1/licences", {"holder_name": 5}),
        ("post", "/api/v1/items", {"name": ""}),
        ("post", "/api/v1/departments", {"no": "such field"}),
        ("patch", "/api/v1/entries/1", {"fields": "not an object"}),
        ("post", "/api/v1/licence-types", {}),
        ("post", "/api/v1/reports/case-stats", []),
        ("post", "/api/v1/sync/dead-letters/requeue", {"ids": "x"}),
        ("get", "/api/v1/licences?status=nonsense&limit=-1", None),
    ],
)
def test_an_anonymous_invalid_request_to_a_protected_endpoint_gets_401_not_422(
    client: Any, world: dict[str, Any], method: str, url: str, body: Any
) -> None:
    kwargs = {"json": body} if body is not None else {}
    response = getattr(client, method)(url, **kwargs)
    assert response.status_code == 401, (url, response.status_code, response.data[:300])
    assert response.get_json()["code"] == "unauthorized"
    assert response.get_json()["details"] == {}


def test_the_same_invalid_body_with_a_token_still_gets_its_422(client: Any, world: dict[str, Any]) -> None:
    response = client.post("/api/v1/licences", json={"holder_name": 5}, headers=_auth(world["staff_token"]))
    assert response.status_code == 422
    assert "holder_name" in response.get_json()["details"]


def test_public_endpoints_still_answer_anonymous_callers(client: Any, world: dict[str, Any]) -> None:
    assert client.get("/api/v1/entries?q=办理").status_code == 200
    assert client.get(f"/api/v1/entries/{world['entry_id']}").status_code == 200
    assert client.get("/api/v1/items?limit=oops").status_code == 422


# ---- item 9: never log bound parameters or personal data -----------------------------------------


def test_a_failing_request_logs_neither_bound_parameters_nor_personal_data(app: Any, db: Any) -> None:
    """A query that fails on a value quoting it back (PostgreSQL: invalid input syntax "<value>")."""
    holder_code = id_number(5)
    phone = "13812345678"
    password_hash = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"

    def explode() -> Any:
        session = db.session()
        logging.getLogger("gaogang.test").warning(
            "about to fail for %s (tel %s)", holder_code, phone, extra={"hash": password_hash}
        )
        session.execute(sa.text("SELECT CAST(:v AS integer)"), {"v": f"{holder_code} 姓名：张三"})

    app.add_url_rule("/_test/explode", "test_explode", explode)
    stream = io.StringIO()
    configure_logging("web", stream=stream)
    try:
        response = app.test_client().get("/_test/explode", headers={"Accept": "application/json"})
    finally:
        configure_logging("web")
    assert response.status_code == 500
    logged = stream.getvalue()
    assert "DataError" in logged  # the error was logged, with its traceback
    assert holder_code not in logged
    assert holder_code[:6] + "********" + holder_code[-4:] in logged
    assert "张三" not in logged
    assert "姓名：张*" in logged
    assert phone not in logged
    assert "138****5678" in logged
    assert "$argon2id$v=19" not in logged
    assert "RdescudvJCsgt3ub" not in logged  # nor any part of the hash
    assert "hidden due to hide_parameters" in logged


# ---- item 10: a malformed chunked body through real HTTP servers ---------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module", params=["werkzeug", "gunicorn"])
def http_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    """The app behind a real HTTP/1.1 server on a free port (chunked bodies need one): werkzeug's
    in this process, and gunicorn (production's server, whose body reader raises its own errors)
    as a separate process on a throwaway SQLite database. Nothing here reaches the database: the
    body is refused, or the anonymous caller is, before any query.

    One server of each kind for the module (pytest runs the tests of one param together): every
    request closes its connection and changes nothing, so the tests cannot see each other, and
    starting gunicorn (a fresh interpreter loading the whole app) is the slow part of these tests."""
    tmp_path = tmp_path_factory.mktemp(f"http-{request.param}")
    port = _free_port()
    if request.param == "werkzeug":
        from werkzeug.serving import WSGIRequestHandler, make_server

        from webapp import create_app

        app = create_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 'chunked.db'}"))
        WSGIRequestHandler.protocol_version = "HTTP/1.1"
        server = make_server("127.0.0.1", port, app, threaded=False)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield "127.0.0.1", port
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            WSGIRequestHandler.protocol_version = "HTTP/1.0"
        return
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'chunked.db'}",
        "INSTANCE_DIR": str(tmp_path),
        "SECRET_KEY": "chunked-test",
        "CITY_REGISTRY_KEY": "chunked-test-registry-key",
        "RATELIMIT_ENABLED": "0",
    }
    env.pop("REDIS_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--log-level", "warning", "webapp:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        # gunicorn's master binds the port before its worker has loaded the app, so an open port is not
        # a ready server (on a loaded machine the load takes seconds): wait for an answer to /healthz.
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
                    answer.read()
                break
            except urllib.error.HTTPError:
                break  # any HTTP answer (even a degraded 503) means the worker is serving
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start: {process.stderr.read()[-2000:]!r}") from None
                time.sleep(0.2)
        yield "127.0.0.1", port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _raw_request(address: tuple[str, int], request_bytes: bytes) -> tuple[int, bytes]:
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(request_bytes)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    status = int(raw.split(b" ", 2)[1])
    return status, raw.partition(b"\r\n\r\n")[2]


CHUNKED_HEAD = (
    b"POST /api/v1/licences HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
)


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\n{}\r\n0\r\n\r\n",  # a chunk size that is not hex
        b"2\r\n{}XX0\r\n\r\n",  # no CRLF after the chunk data
    ],
)
def test_a_malformed_chunked_body_is_a_400_from_a_real_server(
    http_server: tuple[str, int], body: bytes
) -> None:
    status, payload = _raw_request(http_server, CHUNKED_HEAD + body)
    assert status == 400, payload[:300]
    assert json.loads(payload)["code"] == "bad_request"


def test_a_well_formed_chunked_body_is_read_and_reaches_the_authentication_check(
    http_server: tuple[str, int],
) -> None:
    document = json.dumps({"holder_name": "张三"}).encode()
    body = f"{len(document):x}\r\n".encode() + document + b"\r\n0\r\n\r\n"
    status, payload = _raw_request(http_server, CHUNKED_HEAD + body)
    assert status == 401, payload[:300]


def test_the_openapi_document_states_the_refused_characters(client: Any) -> None:
    """Clients (and the API fuzzer) learn the boundary's rule from the document itself."""
    spec = client.get("/api/openapi.json").get_json()
    holder_name = spec["components"]["schemas"]["Issue"]["properties"]["holder_name"]
    assert holder_name["pattern"] == TEXT_PATTERN
    (token,) = spec["paths"]["/api/v1/licences/verify/{token}"]["parameters"]
    assert token["schema"] == {
        "type": "string", "pattern": SEGMENT_PATTERN, "minLength": 1, "maxLength": 1200,
    }
    assert re.fullmatch(TEXT_PATTERN, "核查\r\n原因\t一")
    assert not re.fullmatch(TEXT_PATTERN, "a\x00b")
    assert not re.fullmatch(SEGMENT_PATTERN, "a\tb")


def test_a_body_that_is_not_json_is_a_400_after_authentication(client: Any, world: dict[str, Any]) -> None:
    broken = '{"reason": '
    url = f"/api/v1/licences/{world['licence_id']}/suspend"
    assert client.post(url, data=broken, content_type="application/json").status_code == 401
    response = client.post(
        url, data=broken, content_type="application/json", headers=_auth(world["staff_token"])
    )
    assert response.status_code == 400
    assert response.get_json()["code"] == "bad_request"


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("get", "/staff/cases/warnings?page=99999999999999999999", None),
        ("post", "/admin/search/aliases", {"id": "99999999999999999999", "alias": "测试", "targets": "许可"}),
        ("post", "/admin/licence-grants/grant", {"user_id": "99999999999999999999", "type_codes": "x"}),
        ("post", "/admin/licence-grants/revoke", {"user_id": "99999999999999999999", "type_code": "x"}),
    ],
)
def test_a_page_number_or_id_beyond_any_row_is_no_server_error(
    client: Any, world: dict[str, Any], method: str, path: str, data: dict[str, str] | None
) -> None:
    # Twenty digits overflowed the database's integer comparison (an OFFSET or an id lookup): a 500.
    client.post("/login", data={"username": world["admin_username"], "password": "password-123"})
    response = client.open(path, method=method.upper(), data=data)
    assert response.status_code < 500, response.get_data(as_text=True)[:300]


def test_what_a_signed_in_user_is_shown_is_never_cached(client: Any, world: dict[str, Any]) -> None:
    full = client.get(
        f"/api/v1/licences/{world['licence_id']}/full",
        headers={"Authorization": f"Bearer {world['staff_token']}"},
    )
    assert full.status_code == 200
    assert "no-store" in full.headers["Cache-Control"]
    client.post("/login", data={"username": world["admin_username"], "password": "password-123"})
    assert "no-store" in client.get("/staff/licences/").headers["Cache-Control"]
    client.post("/logout")
    # The public portal stays cacheable as before.
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")
