"""axe-core (vendored, tests/browser/assets/axe.min.js) finds no serious or critical accessibility
violation on the public pages and on the staff entry list and edit page.

axe is injected into a browser context that bypasses the CSP: the injection is the only thing that
needs it. That the pages themselves satisfy the CSP is checked without the bypass in test_csp.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

# axe tags: WCAG 2.0/2.1/2.2 A and AA plus axe's best practices (landmarks, headings, skip link...).
AXE_OPTIONS = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"],
    },
    "resultTypes": ["violations"],
}
BLOCKING = ("serious", "critical")

# name -> (path, a selector proving the page is the one meant, not an error page)
PUBLIC_PAGES = {
    "home": (lambda s: "/", "#q"),
    "search-with-facet": (lambda s: "/search?q=社保&level=5", "section[data-facet=level] a.selected"),
    "search-no-hits": (lambda s: "/search?q=zzzzqqqq", ".card.empty"),
    "search-elsewhere": (lambda s: "/search?q=gongjijin", ".card.elsewhere"),
    "entry": (lambda s: f"/entries/{s.entry_task_code}", "#entry-name"),
    "divisions": (lambda s: "/divisions", "main h1"),
    "bundles": (lambda s: "/bundles/", "main h1"),
    "bundle": (lambda s: f"/bundles/{s.bundle_id}", "main h1"),
    "verify-valid": (lambda s: f"/verify/{s.verify_token}", "h1.verdict[data-result=valid]"),
    "verify-invalid": (lambda s: f"/verify/{s.verify_token[:-12]}", "h1.verdict[data-result=invalid]"),
    "licence-types": (lambda s: "/licences/types/", "main h1"),
    "login": (lambda s: "/login", "#username"),
    "not-found": (lambda s: "/entries/000000000000000000000000000000000", "main"),
}
STAFF_PAGES = {
    "staff-entries": (lambda s: "/staff/entries/", "main h1"),
    "staff-entry": (lambda s: f"/staff/entries/{s.entry_id}", "main h1"),
    "staff-entry-edit": (lambda s: f"/staff/entries/{s.entry_id}/edit", "form.entry-form"),
}
ADMIN_PAGES = {
    "admin-dashboard": (lambda s: "/admin/dashboard", "main h1"),
    "admin-users": (lambda s: "/admin/users", "main h1"),
    "admin-elsewhere": (lambda s: "/admin/search/elsewhere", "main h1"),
    "licence-detail": (lambda s: f"/staff/licences/{s.facts['licence_id']}", "section.qr"),
}
# Issuing is the licence clerk's (a grant), not the administrator's (issue #15 item 1).
CLERK_PAGES = {
    "licence-new": (lambda s: "/staff/licences/new?type_code=11100000000013338W032", "#holder_name"),
    "licence-list": (lambda s: "/staff/licences/", "table.licence-table"),
    "licence-status-forms": (lambda s: f"/staff/licences/{s.facts['licence_id']}", "form.end-form"),
    "holder-uses": (lambda s: "/licences/my-uses", "#holder_code"),
}
PHONE_PAGES = ("home", "search-with-facet", "entry", "verify-valid")
AXE_JS = Path(__file__).resolve().parent / "assets" / "axe.min.js"


def run_axe(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)
    violations: list[dict[str, Any]] = result["violations"]
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        targets = [" ".join(map(str, n["target"])) for n in v["nodes"][:3]]
        lines.append(f"{v['impact']} {v['id']}: {v['help']} ({len(v['nodes'])} nodes, e.g. {targets})")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def anonymous(browser: Any) -> Iterator[Any]:
    context = browser.new_context(bypass_csp=True, locale="zh-CN")
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def staff(browser: Any, site: Any, login: Any) -> Iterator[Any]:
    context = browser.new_context(bypass_csp=True, locale="zh-CN")
    page = context.new_page()
    login(page, site.base)
    yield page
    context.close()


@pytest.mark.parametrize("name", list(PUBLIC_PAGES))
def test_public_page_has_no_serious_accessibility_violation(name: str, site: Any, anonymous: Any) -> None:
    path, proof = PUBLIC_PAGES[name]
    anonymous.goto(site.base + path(site))
    assert anonymous.locator(proof).count() >= 1, anonymous.url
    blocking = [v for v in run_axe(anonymous) if v["impact"] in BLOCKING]
    assert blocking == [], describe(blocking)


@pytest.mark.parametrize("name", list(STAFF_PAGES))
def test_staff_page_has_no_serious_accessibility_violation(name: str, site: Any, staff: Any) -> None:
    path, proof = STAFF_PAGES[name]
    staff.goto(site.base + path(site))
    assert "/login" not in staff.url
    assert staff.locator(proof).count() >= 1, staff.url
    blocking = [v for v in run_axe(staff) if v["impact"] in BLOCKING]
    assert blocking == [], describe(blocking)


@pytest.fixture(scope="module")
def admin(browser: Any, site: Any, login: Any) -> Iterator[Any]:
    context = browser.new_context(bypass_csp=True, locale="zh-CN")
    page = context.new_page()
    login(page, site.base, username="browser_admin", next_path="/admin/")
    yield page
    context.close()


@pytest.mark.parametrize("name", list(ADMIN_PAGES))
def test_admin_page_has_no_serious_accessibility_violation(name: str, site: Any, admin: Any) -> None:
    path, proof = ADMIN_PAGES[name]
    admin.goto(site.base + path(site))
    assert admin.locator(proof).count() >= 1, admin.url
    blocking = [v for v in run_axe(admin) if v["impact"] in BLOCKING]
    assert blocking == [], describe(blocking)


@pytest.fixture(scope="module")
def clerk(browser: Any, site: Any, login: Any) -> Iterator[Any]:
    context = browser.new_context(bypass_csp=True, locale="zh-CN")
    page = context.new_page()
    login(page, site.base, username="browser_clerk", next_path="/staff/licences/")
    yield page
    context.close()


@pytest.mark.parametrize("name", list(CLERK_PAGES))
def test_licence_clerk_page_has_no_serious_accessibility_violation(name: str, site: Any, clerk: Any) -> None:
    path, proof = CLERK_PAGES[name]
    clerk.goto(site.base + path(site))
    assert clerk.locator(proof).count() >= 1, clerk.url
    blocking = [v for v in run_axe(clerk) if v["impact"] in BLOCKING]
    assert blocking == [], describe(blocking)


def test_wide_table_on_a_phone_can_be_scrolled_with_the_keyboard(site: Any, browser: Any, login: Any) -> None:
    """The entry history's tables overflow a phone screen: the wrapper becomes a focusable region."""
    context = browser.new_context(
        bypass_csp=True, locale="zh-CN", viewport={"width": 375, "height": 740}, is_mobile=True
    )
    page = context.new_page()
    login(page, site.base)
    page.goto(f"{site.base}/staff/entries/{site.entry_id}/history")
    page.wait_for_load_state("load")
    scrolling = page.locator(".table-scroll[role=region][tabindex='0']")
    assert scrolling.count() >= 1
    assert scrolling.first.get_attribute("aria-label")
    blocking = [v for v in run_axe(page) if v["impact"] in BLOCKING]
    assert blocking == [], describe(blocking)
    context.close()


@pytest.fixture(scope="module")
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        bypass_csp=True, locale="zh-CN", viewport={"width": 375, "height": 740}, is_mobile=True
    )
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("name", PHONE_PAGES)
def test_phone_layout_has_no_serious_accessibility_violation(name: str, site: Any, phone: Any) -> None:
    path, proof = PUBLIC_PAGES[name]
    phone.goto(site.base + path(site))
    assert phone.locator(proof).count() >= 1
    blocking = [v for v in run_axe(phone) if v["impact"] in BLOCKING]
    assert blocking == [], describe(blocking)


def test_axe_reports_a_planted_violation(site: Any, anonymous: Any) -> None:
    """The check can fail: an unlabeled input and low-contrast text are caught."""
    anonymous.goto(site.base + "/login")
    anonymous.evaluate(
        """() => {
          const i = document.createElement('input'); document.querySelector('main').appendChild(i);
          const p = document.createElement('p'); p.textContent = '浅色文字';
          p.style.color = '#eeeeee'; p.style.background = '#ffffff';
          document.querySelector('main').appendChild(p);
        }"""
    )
    ids = {v["id"] for v in run_axe(anonymous) if v["impact"] in BLOCKING}
    assert {"label", "color-contrast"} <= ids
