"""A real browser on the public portal: type a query on the home page, see highlighted results,
apply a facet, open an entry's detail page, and fit a phone screen. Screenshots are kept under
test-artifacts/.

The app is the shared live site of tests/browser/conftest.py: served by werkzeug in a thread against a
committed temporary SQLite database holding the district-size synthetic catalogue (real Gaogang
divisions, real item names). Headless Debian Chromium driven by Playwright (never `playwright install`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def portal(site: Any) -> str:
    """The shared live site (tests/browser/conftest.py)."""
    return str(site.base)


def test_citizen_searches_filters_and_opens_an_entry(portal: str, browser: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Console errors include CSP violations; any failed request counts (the pages name an empty icon, so
    # the browser asks for no /favicon.ico).
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400
            else None
        ),
    )

    page.goto(portal + "/")
    page.fill("#q", "社保")
    page.press("#q", "Enter")
    page.wait_for_url("**/search?q=*")
    summary = page.locator("#result-summary")
    assert "共找到" in summary.inner_text()
    total = int(summary.locator("strong").inner_text())
    assert total > 10
    first = page.locator("ol.hits li h3 a").first
    assert first.locator("mark").count() >= 1  # the matched words are highlighted

    page.locator("section[data-facet=level] a", has_text="镇(乡、街道)级").click()
    page.wait_for_url("**level=5**")
    narrowed = int(page.locator("#result-summary strong").inner_text())
    assert 0 < narrowed < total
    assert page.locator("section[data-facet=level] a.selected").count() == 1
    tags = page.locator("ol.hits li .meta").all_inner_texts()
    assert tags
    assert all("镇(乡、街道)级" in t for t in tags)
    page.screenshot(path=str(ARTIFACTS / "portal-results.png"), full_page=True)

    name = page.locator("ol.hits li h3 a").first.inner_text()
    page.locator("ol.hits li h3 a").first.click()
    page.wait_for_url("**/entries/**")
    assert page.locator("#entry-name").inner_text() == name
    for heading in ("要带什么", "要多久", "要多少钱", "在哪办", "网上怎么办"):
        assert page.locator("h2", has_text=heading).count() == 1
    page.screenshot(path=str(ARTIFACTS / "portal-entry.png"), full_page=True)
    assert errors == []
    context.close()


def test_portal_fits_a_phone_screen(portal: str, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, locale="zh-CN")
    page = context.new_page()
    for path in ("/", "/search?q=gongjijin", "/search?q=canjiren", "/divisions"):
        page.goto(portal + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{path} scrolls sideways ({width}px)"
    page.goto(portal + "/search?q=canjiren")
    assert page.locator("ol.hits li").count() > 0
    page.screenshot(path=str(ARTIFACTS / "portal-phone.png"), full_page=True)
    context.close()
