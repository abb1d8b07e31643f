"""Shared browser-test fixtures: one live site and one headless Chromium for the whole session.

The site is the app served by werkzeug in a thread against a committed temporary SQLite database
(the embedded default), with CSRF on as in production. It holds the district-size synthetic
catalogue (real Gaogang divisions, real item names) plus a small hand-made slice every browser test
needs: a department with an editor and a claimed entry, a licence type with one issued licence, and
a published bundle. Headless Debian Chromium driven by Playwright (never `playwright install`).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
AXE_JS = Path(__file__).resolve().parent / "assets" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "browser-pass-1"
EDITOR = "browser_editor"
CLERK = "browser_clerk"
TYPE_CODE = "11100000000013338W032"
HOLDER_CODE = "11010519491231002X"
ENTRY_ITEM_NAME = "浏览器测试许可事项"
LONG_TYPE_CODE = "11100000000013338W099"
LONG_TYPE_NAME = "建筑施工企业安全生产管理人员考核合格证书（安全生产考核“三类人员”）"


@dataclass
class LiveSite:
    base: str
    app: Any
    entry_id: int
    entry_task_code: str
    bundle_id: int
    verify_token: str
    facts: dict[str, Any] = field(default_factory=dict)


def _seed(session: Any) -> dict[str, Any]:
    from benchmarks import search_synth
    from catalog import entries as entry_services
    from catalog import services
    from catalog.codes import make_uscc
    from catalog.search import rebuild_index
    from core import users
    from core.auth import SYSTEM, Principal, Role
    from core.db import id_of
    from demo.licences_demo import ensure_department
    from licenses import grants, issuing
    from licenses import types as licence_types
    from reports import bundles

    search_synth.generate(session, "district")
    name = "区浏览器测试局"
    digits = str(int(hashlib.sha256(name.encode()).hexdigest(), 16))[:8]
    dept = services.create_department(
        session, SYSTEM, name=name, uscc=make_uscc("11321203", digits), level="4",
        division_code="321203000000",
    )
    item = services.create_item(
        session, SYSTEM, code="000177000001", name=ENTRY_ITEM_NAME, task_type="01",
        legal_basis="《测试条例》", use_levels="4",
    )
    entry = entry_services.claim_item(session, SYSTEM, item_id=item.id, department_id=dept.id)
    users.create_user(
        session, SYSTEM, users.NewUser(username=EDITOR, password=PASSWORD, display_name="浏览器编辑",
        role=Role.DEPT_EDITOR, department_id=dept.id,
    ))[0]

    licence_types.create_licence_type(
        session,
        SYSTEM,
        {
            "code": TYPE_CODE,
            "name": "建筑施工特种作业人员操作资格证书",
            "holder_code_type": "111",
            "validity_years": 2,
            "face_schema": [{"key": "gender", "label": "性别", "type": "enum", "choices": ["男", "女"]}],
        },
    )
    # A real national type with one of the longest names (data/elicence_type_codes_observed.csv): the
    # administrator's type filter lists every type, so its widest option sets the select's width.
    licence_types.create_licence_type(
        session, SYSTEM, {"code": LONG_TYPE_CODE, "name": LONG_TYPE_NAME, "holder_code_type": "111"}
    )
    issuer = ensure_department(session, "高港区行政审批局", "11321203", "MB158001")
    clerk = users.create_user(
        session, SYSTEM, users.NewUser(username=CLERK, password=PASSWORD, display_name="证照专员",
        role=Role.LICENCE_CLERK, department_id=issuer.id,
    ))[0]
    grants.grant_licence_rights(session, SYSTEM, user_id=id_of(clerk), type_codes=[TYPE_CODE])
    licence = issuing.issue_licence(
        session,
        Principal.of(clerk),
        {"type_code": TYPE_CODE, "holder_name": "李四", "holder_code": HOLDER_CODE, "face": {"gender": "女"}},
    )

    admin = users.create_user(
        session, SYSTEM, users.NewUser(
            username="browser_admin", password=PASSWORD, display_name="管理员", role=Role.ADMIN,
    ))[0]
    published = [
        row[0]
        for row in session.connection().exec_driver_sql(
            "SELECT task_code FROM implementation_entry WHERE status = 'published' ORDER BY id LIMIT 3"
        )
    ]
    bundle = bundles.save_bundle(
        session, Principal.of(admin), name="新生儿出生一件事",
        description="出生医学证明、户口登记、医保参保一次办。", task_codes=published, published=True,
    )
    session.flush()
    rebuild_index(session)
    return {
        "entry_id": entry.id,
        "entry_task_code": published[0],
        "bundle_id": bundle.id,
        "licence_id": licence.id,
    }


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    from core.config import Settings
    from core.db import Database
    from licenses import verification
    from licenses.models import Licence
    from webapp import create_app

    tmp = tmp_path_factory.mktemp("browser_site")
    url = f"sqlite:///{tmp / 'site.db'}"
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["skip_logging"] = True
    command.upgrade(cfg, "heads")
    db = Database(url)
    from argon2 import PasswordHasher

    import core.auth

    # Production-cost argon2 makes every login take ~0.5 s; the hash carries its own parameters.
    with pytest.MonkeyPatch.context() as mp, db.transaction() as session:
        mp.setattr(core.auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        facts = _seed(session)

    settings = Settings(
        database_url=url,
        instance_dir=tmp,
        secret_key="browser-test-secret",
        city_registry_key="test-registry-key",
        ratelimit_enabled=False,
        city_registry_database_url=f"sqlite:///{tmp / 'registry.db'}",
    )
    app = create_app(settings, database=db)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.extensions["gaogang.settings"] = settings.with_overrides(public_base_url=base)
    with db.transaction() as session:
        licence = session.get(Licence, facts["licence_id"])
        token = verification.token_for(session, app.extensions["licences.keystore"], licence)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveSite(
            base=base,
            app=app,
            entry_id=facts["entry_id"],
            entry_task_code=facts["entry_task_code"],
            bundle_id=facts["bundle_id"],
            verify_token=token,
            facts=facts,
        )
    finally:
        server.shutdown()
        thread.join(timeout=5)
        db.engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _login(page: Any, base: str, username: str = EDITOR, next_path: str = "/staff/entries/") -> None:
    page.goto(f"{base}/login?next={next_path}")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form button[type=submit].primary")
    page.wait_for_url(f"{base}{next_path}")


# Run by the browser before any page script (init scripts are not subject to the page's CSP); each
# violation is reported to Python through an exposed function, so none is lost on navigation.
_CSP_LISTENER = """
document.addEventListener('securitypolicyviolation', (e) => {
  window.__reportCsp(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' +
                     e.documentURI + ' ' + (e.sourceFile || '') + ':' + e.lineNumber);
});
"""


def _watch(page: Any) -> list[str]:
    """Collect, from now on, page errors, console errors and warnings (Chromium reports CSP refusals
    there), `securitypolicyviolation` events and failed responses into the returned list."""
    problems: list[str] = []
    page.expose_function("__reportCsp", lambda text: problems.append(f"securitypolicyviolation: {text}"))
    page.add_init_script(_CSP_LISTENER)
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}")
            if msg.type in ("error", "warning") and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}")
            if r.status >= 400
            else None
        ),
    )
    return problems


@pytest.fixture(scope="session")
def login() -> Any:
    """login(page, base, username=EDITOR, next_path="/staff/entries/") through the real form."""
    return _login


@pytest.fixture(scope="session")
def watch() -> Any:
    """watch(page) -> the live list of problems the page reports from now on."""
    return _watch

