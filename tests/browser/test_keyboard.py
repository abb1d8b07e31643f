"""Keyboard-only use of the public portal: Tab reaches the skip link first, then the search box and
its button; Enter submits; on the results page the result links come right after the search form,
in order, and Enter opens one. Every focused element shows a visible focus indicator.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.browser

FOCUSED = """() => {
  const e = document.activeElement;
  const r = e.getBoundingClientRect();
  const s = getComputedStyle(e);
  return {
    tag: e.tagName.toLowerCase(), id: e.id, cls: e.className, text: (e.innerText || '').trim(),
    href: e.getAttribute('href') || '', type: e.getAttribute('type') || '',
    visible: r.width > 0 && r.height > 0 && r.right > 0 && r.bottom > 0 && r.left < innerWidth,
    outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2,
  };
}"""


def tab(page: Any) -> dict[str, Any]:
    page.keyboard.press("Tab")
    focused: dict[str, Any] = page.evaluate(FOCUSED)
    return focused


@pytest.fixture
def page(browser: Any, watch: Any) -> Iterator[Any]:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.problems = watch(p)
    yield p
    context.close()


def test_tab_reaches_skip_link_first_then_search_box_and_button_and_enter_submits(
    site: Any, page: Any
) -> None:
    page.goto(site.base + "/")
    first = tab(page)
    assert "skip-link" in first["cls"]
    assert first["href"] == "#main"
    assert first["visible"], "the skip link must appear when focused"
    assert first["outline"]

    order = [first]
    while order[-1]["id"] != "q":
        order.append(tab(page))
        assert len(order) < 15, f"the search box is not reached early: {order}"
    # Between the skip link and the search box only the header's links.
    assert all(step["tag"] == "a" and step["visible"] for step in order[1:-1])
    button = tab(page)
    assert (button["tag"], button["type"], button["text"]) == ("button", "submit", "搜索")
    assert button["outline"]

    page.keyboard.press("Shift+Tab")
    page.keyboard.type("社保")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=*")
    assert page.locator("#result-summary strong").inner_text() != "0"
    assert page.problems == []


def test_skip_link_moves_focus_to_the_main_content(site: Any, page: Any) -> None:
    page.goto(site.base + "/")
    tab(page)
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    nxt = tab(page)
    assert nxt["id"] == "q", nxt  # the first control of the home page's main content


def test_submit_button_submits_with_enter(site: Any, page: Any) -> None:
    page.goto(site.base + "/")
    page.focus("#q")
    page.keyboard.type("yibao")
    focused = tab(page)
    assert focused["text"] == "搜索"
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=yibao*")
    assert int(page.locator("#result-summary strong").inner_text()) > 0


def test_result_links_follow_the_search_form_in_order_and_open_with_enter(site: Any, page: Any) -> None:
    page.goto(site.base + "/search?q=社保")
    # One result per service: its title, then the places that offer it, each a link in reading order.
    hits = page.locator("ol.hits a")
    expected = [hits.nth(i).get_attribute("href") for i in range(3)]
    assert all(expected)
    assert expected[0] == page.locator("ol.hits li h3 a").first.get_attribute("href")

    page.focus("#q")
    assert tab(page)["text"] == "搜索"
    # The place picker (我的所在地) follows the search box: its list, then its button.
    assert tab(page)["id"] == "place"
    assert tab(page)["text"] == "设为所在地"
    jump = tab(page)  # the "jump to filters" link, shown when focused
    assert jump["href"] == "#facets"
    assert jump["visible"]
    reached = [tab(page) for _ in range(3)]
    assert [step["href"] for step in reached] == expected
    assert all(step["visible"] and step["outline"] for step in reached)

    page.keyboard.press("Enter")
    page.wait_for_url("**/entries/**")
    assert page.locator("#entry-name").is_visible()
    assert page.problems == []


def test_jump_link_reaches_the_filters(site: Any, page: Any) -> None:
    page.goto(site.base + "/search?q=社保")
    page.focus("#q")
    for _ in range(4):  # 搜索, the place list, 设为所在地, then the jump link
        tab(page)
    page.keyboard.press("Enter")
    facet = tab(page)
    assert page.locator("#facets a").first.get_attribute("href") == facet["href"]
    page.keyboard.press("Enter")
    page.wait_for_url("**level=**")
    assert page.locator("section[data-facet] a.selected").count() == 1
