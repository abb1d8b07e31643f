"""A department issues a licence in a real browser and sees its QR code; a phone-sized browser opens
the QR's URL and sees it valid; after the department revokes it, the same URL says it is not valid.

The app is served by werkzeug in a thread against a committed temporary SQLite database (the embedded
default), with CSRF on. Headless Debian Chromium driven by Playwright (never `playwright install`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from werkzeug.serving import make_server

from core.auth import SYSTEM, Role, create_user
from core.config import Settings
from core.db import Database
from demo.licences_demo import ensure_department
from licenses import services

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "browser-pass-1"
TYPE_CODE = "11100000000013338W032"
HOLDER_CODE = "11010519491231002X"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from core.app import create_app

    tmp = tmp_path_factory.mktemp("verify_browser")
    url = f"sqlite:///{tmp / 'browser.db'}"
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["skip_logging"] = True
    command.upgrade(cfg, "heads")
    db = Database(url)
    with db.transaction() as session:
        services.create_licence_type(
            session,
            SYSTEM,
            {
                "code": TYPE_CODE,
                "name": "建筑施工特种作业人员操作资格证书",
                "holder_code_type": "111",
                "validity_years": 2,
                "face_schema": [{"key": "gender", "label": "性别", "type": "enum", "choices": ["男", "女"]}],
            },
        )
        dept = ensure_department(session, "高港区行政审批局", "11321203", "MB158001")
        create_user(
            session,
            username="browser_clerk",
            password=PASSWORD,
            display_name="证照专员",
            role=Role.DEPT_EDITOR,
            department_id=dept.id,
        )
    settings = Settings(
        database_url=url,
        instance_dir=tmp,
        secret_key="browser-test-secret",
        ratelimit_enabled=False,
        city_registry_database_url=f"sqlite:///{tmp / 'registry.db'}",
    )
    app = create_app(settings, database=db)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.extensions["gaogang.settings"] = settings.with_overrides(public_base_url=base)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        thread.join(timeout=5)
        db.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def test_phone_sees_a_licence_valid_then_revoked(served: str, browser: Any) -> None:
    staff = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = staff.new_page()
    page.goto(f"{served}/login?next=/staff/licences/")
    page.fill("input[name=username]", "browser_clerk")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{served}/staff/licences/new?type_code={TYPE_CODE}")
    page.fill("#holder_name", "张三")
    page.fill("#holder_code", HOLDER_CODE)
    page.select_option("#face-gender", "男")
    page.click("form[method=post] button.primary")
    page.wait_for_url("**/staff/licences/*")
    qr = page.locator("section.qr img")
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")
    verify_url = page.locator("a.verify-link").get_attribute("href")
    assert verify_url.startswith(f"{served}/verify/L1.")

    phone = browser.new_context(
        viewport={"width": 375, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )
    mobile = phone.new_page()
    mobile.goto(verify_url)
    assert mobile.locator("h1.verdict").get_attribute("data-result") == "valid"
    assert "证照有效" in mobile.inner_text("h1.verdict")
    body = mobile.inner_text("main")
    assert "张*" in body
    assert "110105********002X" in body
    assert HOLDER_CODE not in body
    assert mobile.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")

    page.fill("#revoke-reason", "当事人申请注销")
    page.once("dialog", lambda d: d.accept())
    page.click("form[action$='/revoke'] button")
    page.wait_for_selector("[data-status=revoked]")

    mobile.reload()
    assert mobile.locator("h1.verdict").get_attribute("data-result") == "invalid"
    assert "吊销" in mobile.inner_text(".why")
    assert "当事人申请注销" in mobile.inner_text(".why")
    assert mobile.locator("[data-status=revoked]").count() == 1

    mobile.goto(verify_url[:-12])
    assert mobile.locator("h1.verdict").get_attribute("data-result") == "invalid"
    staff.close()
    phone.close()
