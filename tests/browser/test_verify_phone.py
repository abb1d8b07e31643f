"""A department issues a licence in a real browser and sees its QR code; a phone-sized browser opens
the QR's URL and sees it valid; after the department revokes it, the same URL says it is not valid.

The app is the shared live site of tests/browser/conftest.py (werkzeug in a thread, a committed
temporary SQLite database, the embedded default, CSRF on). Headless Debian Chromium driven by
Playwright (never `playwright install`).
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser

PASSWORD = "browser-pass-1"
TYPE_CODE = "11100000000013338W032"
HOLDER_CODE = "11010519491231002X"


@pytest.fixture(scope="module")
def served(site: Any) -> str:
    """The shared live site (tests/browser/conftest.py): it has this licence type and its clerk."""
    return str(site.base)


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

    page.fill("#revoked-reason", "内部：现场检查发现违法经营")
    page.once("dialog", lambda d: d.accept())
    page.click("form.end-form:has(input[name=status][value=revoked]) button")
    page.wait_for_selector("[data-status=revoked]")

    mobile.reload()
    assert mobile.locator("h1.verdict").get_attribute("data-result") == "invalid"
    assert "吊销" in mobile.inner_text(".why")
    assert "现场检查" not in mobile.inner_text("main")  # the internal reason stays internal
    assert mobile.locator("[data-status=revoked]").count() == 1
    assert mobile.locator("[data-field=checked-at]").count() == 1

    mobile.goto(verify_url[:-12])
    assert mobile.locator("h1.verdict").get_attribute("data-result") == "invalid"
    staff.close()
    phone.close()
