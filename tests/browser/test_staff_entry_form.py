"""A real browser on the staff pages: log in, edit an entry, see the Chinese validation message next to
the field, add a material row with the page's script, and fit a phone screen.

The app is the shared live site of tests/browser/conftest.py (werkzeug in a thread, a committed
temporary SQLite database, CSRF on, as in production). Headless Debian Chromium, driven by Playwright (never
`playwright install`).
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(site: Any) -> dict[str, Any]:
    """The shared live site (tests/browser/conftest.py): its editor's department claimed one item."""
    return {"base": site.base, "entry_id": site.entry_id}


def test_editor_sees_chinese_validation_message_next_to_the_field(served, browser, login):
    base, entry_id = served["base"], served["entry_id"]
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, base)
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


def test_edit_page_fits_a_phone_screen(served, browser, login):
    base, entry_id = served["base"], served["entry_id"]
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    login(page, base)
    for path in ("/staff/entries/", f"/staff/entries/{entry_id}", f"/staff/entries/{entry_id}/edit"):
        page.goto(base + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (path, overflow)
    context.close()
