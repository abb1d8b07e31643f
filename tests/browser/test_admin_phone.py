"""The administrator's dashboard and licence list fit a 390 px wide phone without horizontal scrolling.

The shared live site (tests/browser/conftest.py: it holds a licence type with one of the longest real
names, which sets the width of the administrator's type filter) and its administrator. Headless
Debian Chromium driven by Playwright (never `playwright install`).
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser

PASSWORD = "browser-pass-1"
WIDTH = 390
# The page does not scroll sideways; the widest element says which one overflows when it does.
WIDEST = """() => {
  let worst = null, right = 0;
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.right > right) { right = r.right; worst = el; }
  }
  return [document.documentElement.scrollWidth,
          worst ? `${worst.tagName.toLowerCase()}.${worst.className} right=${Math.round(right)}` : ''];
}"""


def test_the_admin_dashboard_and_licence_list_fit_a_390px_phone(site: Any, browser: Any) -> None:
    context = browser.new_context(
        viewport={"width": WIDTH, "height": 844}, device_scale_factor=1, locale="zh-CN"
    )
    page = context.new_page()
    page.goto(f"{site.base}/login?next=/admin/dashboard")
    page.fill("#username", "browser_admin")
    page.fill("#password", PASSWORD)
    page.click("form button[type=submit].primary")
    page.wait_for_url("**/admin/dashboard")
    problems = []
    for path in ("/admin/dashboard", "/staff/licences/"):
        response = page.goto(f"{site.base}{path}")
        assert response is not None
        assert response.status == 200, path
        width, widest = page.evaluate(WIDEST)
        if width > WIDTH:
            problems.append((path, width, widest))
    context.close()
    assert problems == []
