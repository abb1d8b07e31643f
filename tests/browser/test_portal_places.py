"""A real browser on the grouped results (issue 14 item 6): one result per service with where it can
be done, the place picker (a plain form: it works with scripts off) remembered across searches,
the citizen's place listed first, and all of it fitting a 390 px phone screen.

The shared live site of tests/browser/conftest.py (district-size synthetic catalogue on the real
Gaogang divisions, where every town and village claims items). Headless Debian Chromium.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
TOWN = "321203001000"  # 口岸街道 (2023 NBS code)
QUERY = "登记"


def _places_first(page: Any) -> list[tuple[bool, bool]]:
    """Per result: whether any of its places is marked as the citizen's, and whether the first is."""
    out = []
    for hit in page.locator("ol.hits li.hit").all():
        marks = [p.locator(".tag", has_text="所在地").count() > 0 for p in hit.locator("ul.places li").all()]
        out.append((any(marks), bool(marks) and marks[0]))
    return out


def test_the_place_picker_is_remembered_and_puts_the_place_first(site: Any, browser: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    # Scripts off: the picker is a form, nothing in it needs JavaScript.
    context = browser.new_context(locale="zh-CN", java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{site.base}/search?q={QUERY}")
    names = page.locator("ol.hits li.hit h3 a").all_inner_texts()
    assert len(names) == 10
    assert len(set(names)) == 10  # one result per service
    assert "项服务" in page.locator("#result-summary").inner_text()

    page.select_option("#place", TOWN)
    page.locator("form.place-picker button").click()
    page.wait_for_url(f"**place={TOWN}**")
    marked = _places_first(page)
    assert any(has for has, _first in marked)
    assert all(first for has, first in marked if has)

    # A new search without the field: the browser's cookie brings the place back.
    page.goto(f"{site.base}/search?q={QUERY}")
    assert page.locator("#place").input_value() == TOWN
    assert _places_first(page) == marked
    page.screenshot(path=str(ARTIFACTS / "portal-places.png"), full_page=True)

    # "不限（全区）" forgets it.
    page.select_option("#place", "")
    page.locator("form.place-picker button").click()
    page.goto(f"{site.base}/search?q={QUERY}")
    assert page.locator("#place").input_value() == ""
    context.close()


def test_grouped_results_and_the_picker_fit_a_390px_phone(site: Any, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{site.base}/search?q={QUERY}&place={TOWN}")
    assert page.locator("ul.places li").count() > 0
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the results scroll sideways ({width}px)"
    page.screenshot(path=str(ARTIFACTS / "portal-places-phone.png"), full_page=True)
    context.close()
