"""Every licence page fits a 390 px wide phone without horizontal scrolling (issue #15 item 6).

The shared live site (tests/browser/conftest.py): its clerk, licence type and issued licence.
Headless Debian Chromium driven by Playwright (never `playwright install`).
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser

PASSWORD = "browser-pass-1"
TYPE_CODE = "11100000000013338W032"
WIDTH = 390

# The page does not scroll sideways, and neither does any box inside it (a table in a scroller
# still makes the reader swipe sideways).
FITS = """() => document.documentElement.scrollWidth <= window.innerWidth + 1
  && [...document.querySelectorAll('body *')].every(el => {
       const o = getComputedStyle(el).overflowX;
       return !(o === 'auto' || o === 'scroll') || el.scrollWidth <= el.clientWidth + 1;
     })"""
# The widest element, to say which one overflows when a page does not fit.
WIDEST = """() => {
  let worst = null, right = 0;
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.right > right) { right = r.right; worst = el; }
  }
  return worst ? `${worst.tagName.toLowerCase()}.${worst.className} right=${Math.round(right)}` : '';
}"""


def _phone(browser: Any) -> Any:
    return browser.new_context(
        viewport={"width": WIDTH, "height": 844},
        device_scale_factor=3,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )


def test_every_licence_page_fits_a_390px_phone(site: Any, browser: Any) -> None:
    lid = site.facts["licence_id"]
    context = _phone(browser)
    page = context.new_page()
    public = [
        f"/verify/{site.verify_token}",
        "/licences/types/",
        f"/licences/types/{TYPE_CODE}",
        "/licences/my-uses",
    ]
    staff = [
        "/staff/licences/",
        f"/staff/licences/new?type_code={TYPE_CODE}",
        f"/staff/licences/{lid}",
        f"/staff/licences/{lid}?full=1",
        f"/staff/licences/{lid}/amend",
    ]
    problems = []
    for path in public:
        page.goto(f"{site.base}{path}")
        if not page.evaluate(FITS):
            problems.append((path, page.evaluate(WIDEST)))
    page.goto(f"{site.base}/login?next=/staff/licences/")
    page.fill("#username", "browser_clerk")
    page.fill("#password", PASSWORD)
    page.click("form button[type=submit].primary")
    page.wait_for_url("**/staff/licences/")
    for path in staff:
        response = page.goto(f"{site.base}{path}")
        assert response is not None
        assert response.status == 200, (path, response.status)
        if not page.evaluate(FITS):
            problems.append((path, page.evaluate(WIDEST)))
    context.close()
    assert problems == []


def test_the_holder_code_in_the_staff_list_does_not_wrap_one_character_a_line(
    site: Any, browser: Any
) -> None:
    context = _phone(browser)
    page = context.new_page()
    page.goto(f"{site.base}/login?next=/staff/licences/")
    page.fill("#username", "browser_clerk")
    page.fill("#password", PASSWORD)
    page.click("form button[type=submit].primary")
    page.wait_for_url("**/staff/licences/")
    code = page.locator("[data-field=holder-code]").first
    box = code.bounding_box()
    line = float(code.evaluate("el => parseFloat(getComputedStyle(el).lineHeight) || 20"))
    assert box is not None
    assert box["height"] <= 2 * line + 2, box  # at most two lines, never a column of characters
    context.close()


def test_the_administrators_grants_page_fits_a_390px_phone(site: Any, browser: Any) -> None:
    context = _phone(browser)
    page = context.new_page()
    page.goto(f"{site.base}/login?next=/admin/licence-grants")
    page.fill("#username", "browser_admin")
    page.fill("#password", PASSWORD)
    page.click("form button[type=submit].primary")
    page.wait_for_url("**/admin/licence-grants")
    assert page.locator("td[data-label=证照类型]").count() >= 1  # the clerk's grant is listed
    department = page.locator("select[name=department_id] option").nth(1).get_attribute("value")
    problems = []
    for path in ("/admin/licence-grants", f"/admin/licence-grants?department_id={department}"):
        response = page.goto(f"{site.base}{path}")
        assert response is not None
        assert response.status == 200, (path, response.status)
        if not page.evaluate(FITS):
            problems.append((path, page.evaluate(WIDEST)))
    context.close()
    assert problems == []
