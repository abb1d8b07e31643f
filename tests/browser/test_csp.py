"""The pages really satisfy the Content-Security-Policy: a browser WITHOUT bypass_csp visits the
public, staff and administrator pages (and uses their scripts) and sees no `securitypolicyviolation`
event, no console error or warning and no failed request. A scan of every template backs it up for
pages the browser does not visit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
YEAR = 2025

PUBLIC = [
    lambda s: "/",
    lambda s: "/search?q=社保&level=5",
    lambda s: "/search?q=zzzzqqqq",
    lambda s: f"/entries/{s.entry_task_code}",
    lambda s: "/divisions",
    lambda s: "/bundles/",
    lambda s: f"/bundles/{s.bundle_id}",
    lambda s: f"/verify/{s.verify_token}",
    lambda s: f"/verify/{s.verify_token[:-12]}",
    lambda s: "/licences/types/",
    lambda s: "/licences/types/11100000000013338W032",
    lambda s: "/login",
]
EDITOR = [
    lambda s: "/staff/entries/",
    lambda s: f"/staff/entries/{s.entry_id}",
    lambda s: f"/staff/entries/{s.entry_id}/history",
    lambda s: "/staff/items/",
]
ADMIN = [
    lambda s: "/admin/",
    lambda s: "/admin/users",
    lambda s: "/admin/departments",
    lambda s: "/admin/search/aliases",
    lambda s: "/admin/sync/",
    lambda s: "/admin/bundles/",
    lambda s: "/admin/bundles/new",
    lambda s: f"/admin/bundles/{s.bundle_id}",
    lambda s: "/admin/dashboard",
    lambda s: "/admin/reports/",
    lambda s: "/staff/consistency",
    lambda s: "/staff/licences/",
    lambda s: f"/staff/licences/{s.facts['licence_id']}",
    lambda s: "/staff/licence-types/new",
]
CLERK = [
    lambda s: "/staff/licences/",
    lambda s: "/staff/licences/new?type_code=11100000000013338W032",
    lambda s: f"/staff/licences/{s.facts['licence_id']}",
    lambda s: "/licences/my-uses",
]


@pytest.fixture
def strict(browser: Any, watch: Any) -> Iterator[tuple[Any, list[str]]]:
    context = browser.new_context(locale="zh-CN")  # no bypass_csp: the policy applies
    page = context.new_page()
    yield page, watch(page)
    context.close()


def visit_all(page: Any, base: str, paths: list[str], problems: list[str]) -> None:
    for path in paths:
        response = page.goto(base + path)
        assert response is not None
        assert response.status == 200, (path, response.status)
        assert "default-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("load")
    assert problems == []


def test_public_pages_raise_no_csp_violation(site: Any, strict: tuple[Any, list[str]]) -> None:
    page, problems = strict
    visit_all(page, site.base, [p(site) for p in PUBLIC], problems)


def test_staff_pages_and_the_edit_form_script_raise_no_csp_violation(
    site: Any, strict: tuple[Any, list[str]], login: Any
) -> None:
    page, problems = strict
    login(page, site.base)
    visit_all(page, site.base, [p(site) for p in EDITOR], problems)
    page.goto(f"{site.base}/staff/entries/{site.entry_id}/edit")
    rows = page.locator("#material-rows .row-card")
    before = rows.count()
    page.click("button.add-row[data-prefix=m]")  # the page's own script (static/staff/rows.js) runs
    assert rows.count() == before + 1
    assert problems == []


def test_admin_pages_raise_no_csp_violation(site: Any, strict: tuple[Any, list[str]], login: Any) -> None:
    page, problems = strict
    login(page, site.base, username="browser_admin", next_path="/admin/")
    visit_all(page, site.base, [p(site) for p in ADMIN], problems)
    # Freezing a year-end snapshot (a real form POST with its CSRF token) makes the report pages exist.
    page.goto(f"{site.base}/admin/reports/")
    page.click(f"form[action$='/admin/reports/{YEAR}/snapshot'] button")
    page.wait_for_load_state("load")
    visit_all(page, site.base, [f"/admin/reports/{YEAR}", f"/admin/reports/{YEAR}/tables/2"], problems)


def test_api_docs_render_from_vendored_assets_without_a_csp_violation(
    site: Any, strict: tuple[Any, list[str]]
) -> None:
    """Swagger UI (core/static/swagger-ui, started by init.js) under the same policy as every page."""
    page, problems = strict
    response = page.goto(site.base + "/api/docs")
    assert response is not None
    assert response.status == 200
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    page.wait_for_selector(".opblock", timeout=15_000)  # operations rendered from /api/openapi.json
    assert page.locator(".opblock").count() > 10
    page.locator(".opblock-summary").first.click()  # expanding an operation runs more of the UI
    page.wait_for_timeout(300)
    assert problems == []


def test_licence_clerk_pages_raise_no_csp_violation(
    site: Any, strict: tuple[Any, list[str]], login: Any
) -> None:
    page, problems = strict
    login(page, site.base, username="browser_clerk", next_path="/staff/licences/")
    visit_all(page, site.base, [p(site) for p in CLERK], problems)


def test_an_inline_script_would_be_caught(site: Any, strict: tuple[Any, list[str]]) -> None:
    """The check can fail: an inline style and an inline script planted into a page are reported."""
    page, problems = strict
    page.goto(site.base + "/login")
    page.evaluate(
        """() => {
          const s = document.createElement('script'); s.textContent = 'window.x = 1';
          document.body.appendChild(s);
          const d = document.createElement('div'); d.setAttribute('style', 'color: red');
          document.body.appendChild(d);
        }"""
    )
    page.wait_for_timeout(100)
    joined = "\n".join(problems)
    assert "securitypolicyviolation: script-src" in joined
    assert "securitypolicyviolation: style-src" in joined


# Standalone documents meant to be downloaded and opened from disk (never under the site's CSP).
STANDALONE = {"reports/templates/reports/report_document.html"}
INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle\s*=|\son[a-z]+\s*=|javascript:", re.IGNORECASE
)


def test_no_template_uses_inline_scripts_styles_or_handlers() -> None:
    templates = [
        p for p in ROOT.glob("*/templates/**/*.html") if ".venv" not in p.parts
    ]
    assert len(templates) > 30
    found = []
    for path in templates:
        rel = path.relative_to(ROOT).as_posix()
        if rel in STANDALONE:
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if INLINE.search(line):
                found.append(f"{rel}:{lineno}: {line.strip()}")
    assert found == []
