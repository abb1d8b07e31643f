"""A real browser on the staff pages: log in, edit an entry, see the Chinese validation message next to
the field, add a material row with the page's script, and fit a phone screen.

The app is served by werkzeug in a thread against a committed temporary SQLite database, with CSRF
on, as in production. Headless Debian Chromium, driven by Playwright (never `playwright install`).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from werkzeug.serving import make_server

from catalog import services
from catalog.codes import make_uscc
from catalog.divisions import GAOGANG_FILES, load_divisions_csv
from core.auth import SYSTEM, Role, create_user
from core.config import Settings
from core.db import Database

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


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from core.app import create_app

    tmp = tmp_path_factory.mktemp("staff_browser")
    url = f"sqlite:///{tmp / 'browser.db'}"
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["skip_logging"] = True
    command.upgrade(cfg, "heads")

    db = Database(url)
    with db.transaction() as session:
        load_divisions_csv(session, *GAOGANG_FILES)
        name = "区浏览器测试局"
        digits = str(int(hashlib.sha256(name.encode()).hexdigest(), 16))[:8]
        dept = services.create_department(
            session,
            SYSTEM,
            name=name,
            uscc=make_uscc("11321203", digits),
            level="4",
            division_code="321203000000",
        )
        item = services.create_item(
            session,
            SYSTEM,
            code="000177000001",
            name="浏览器测试许可事项",
            task_type="01",
            legal_basis="《测试条例》",
            use_levels="4",
        )
        entry = services.claim_item(session, SYSTEM, item_id=item.id, department_id=dept.id)
        create_user(
            session,
            username="browser_editor",
            password=PASSWORD,
            display_name="浏览器编辑",
            role=Role.DEPT_EDITOR,
            department_id=dept.id,
        )
        entry_id = entry.id

    settings = Settings(
        database_url=url,
        instance_dir=tmp,
        secret_key="browser-test-secret",
        ratelimit_enabled=False,
        city_registry_database_url=f"sqlite:///{tmp / 'registry.db'}",
    )
    app = create_app(settings, database=db)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"base": f"http://127.0.0.1:{server.server_port}", "entry_id": entry_id}
    finally:
        server.shutdown()
        thread.join(timeout=5)
        db.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _login(page: Any, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", "browser_editor")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/staff/entries/")


def test_editor_sees_chinese_validation_message_next_to_the_field(served, browser):
    base, entry_id = served["base"], served["entry_id"]
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _login(page, base)
    assert "浏览器测试许可事项" in page.content()

    page.goto(f"{base}/staff/entries/{entry_id}/edit")
    page.fill("#anticipate_days", "10")
    page.fill("#promise_days", "15")
    page.fill("#visits", "0")
    page.check("input[name=result_delivery][value=window]")
    page.fill("#window_address", "高港区政务服务中心 1 号窗口")
    page.click("button.add-row[data-prefix=m]")
    new_rows = page.locator("#material-rows .row-card")
    assert new_rows.count() == 3  # two blank rows + the added one
    page.fill("#m-0-name", "申请表")
    page.click("form.entry-form button[type=submit].primary")
    page.wait_for_load_state()

    message = page.locator("#promise_days-error")
    assert message.is_visible()
    assert message.inner_text() == "承诺办结时限不能超过法定办结时限"
    # the message sits right after the input it describes
    described = page.locator("#promise_days").get_attribute("aria-describedby")
    assert described == "promise_days-error"
    assert page.locator("#m-0-name").input_value() == "申请表"

    page.fill("#promise_days", "5")
    page.click("form.entry-form button[type=submit].primary")
    page.wait_for_url(f"{base}/staff/entries/{entry_id}")
    assert "已保存" in page.content()
    assert "申请表" in page.content()
    assert errors == []
    context.close()


def test_edit_page_fits_a_phone_screen(served, browser):
    base, entry_id = served["base"], served["entry_id"]
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    _login(page, base)
    for path in ("/staff/entries/", f"/staff/entries/{entry_id}", f"/staff/entries/{entry_id}/edit"):
        page.goto(base + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (path, overflow)
    context.close()
