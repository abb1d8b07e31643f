"""/api/docs runs from vendored assets under the same strict CSP as every page: no inline script or
style, no 'unsafe-inline', and every asset the page names exists (the old preset script 404ed)."""

from __future__ import annotations

import re
from typing import Any


def test_api_docs_page_uses_only_vendored_assets_under_the_strict_csp(client: Any) -> None:
    response = client.get("/api/docs")
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in policy
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    html = response.get_data(as_text=True)
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []  # no inline script
    assert "<style" not in html
    assert " style=" not in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {a.rsplit("/", 1)[1] for a in assets} == {"swagger-ui.css", "swagger-ui-bundle.js", "init.js"}
    for asset in assets:
        assert asset.startswith("/static/swagger-ui/"), asset
        fetched = client.get(asset)
        assert fetched.status_code == 200, asset
        fetched.close()
    spec_url = re.search(r'data-spec-url="([^"]+)"', html).group(1)
    assert client.get(spec_url).get_json()["openapi"].startswith("3.")


def test_the_csp_of_the_docs_is_the_csp_of_every_page(client: Any) -> None:
    assert client.get("/api/docs").headers["Content-Security-Policy"] == client.get(
        "/login").headers["Content-Security-Policy"]
