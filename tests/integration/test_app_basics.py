from sqlmodel import select

from core.audit import AuditLog, record, verify_chain
from core.auth import SYSTEM


def test_healthz_reports_database_and_broker(db, tmp_path):
    from tests.conftest import make_settings
    from webapp import create_app

    monitor = "monitor-token-0123456789"  # the details are the monitoring system's (core.app._for_caller)
    client = create_app(make_settings(tmp_path, db.url, metrics_token=monitor), database=db).test_client()
    body = client.get("/healthz", headers={"Authorization": f"Bearer {monitor}"}).get_json()
    assert body["status"] == "ok"
    assert body["database"]["dialect"] == "postgresql"
    assert body["broker"]["kind"] in {"redis", "filesystem"}


def test_openapi_and_swagger_ui_are_served(client):
    spec = client.get("/api/openapi.json")
    assert spec.status_code == 200
    assert spec.get_json()["openapi"].startswith("3.")
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.data


def test_unknown_api_path_gets_json_error_shape(client):
    body = client.get("/api/v1/does-not-exist").get_json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == "not_found"


def test_security_headers_on_pages(client):
    response = client.get("/login")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_audit_chain_detects_tampering(session):
    for i in range(3):
        record(session, actor=SYSTEM, action="test", entity_type="thing", entity_id=i, new={"i": i})
    assert verify_chain(session)[0]
    row = session.exec(select(AuditLog).order_by(AuditLog.id.desc())).first()
    row.new = {"i": 999}
    session.flush()
    ok, _count, broken = verify_chain(session)
    assert not ok
    assert broken == row.id


def test_audit_verify_command_reports_an_intact_chain(app, session):
    record(session, actor=SYSTEM, action="test", entity_type="thing", entity_id=1)
    session.commit()
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "哈希链无断点" in result.output


def test_pages_name_an_icon_so_browsers_do_not_ask_for_a_missing_favicon(client):
    # Without one a browser requests /favicon.ico on a visitor's first page: a 404 and a console error.
    assert '<link rel="icon" href="data:,">' in client.get("/").get_data(as_text=True)
