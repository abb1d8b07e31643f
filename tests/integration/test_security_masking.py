"""No public page or public API response shows a licence holder's full code or full name.

Public surfaces: the portal (home, search, entry pages, divisions), the search API, Open311 JSON and
XML, licence-type pages, online verification (page and API, valid and revoked), the status lists,
the issuer keys, the CPSV-AP export and the bundle pages. All are fetched anonymously.
"""

from __future__ import annotations

from typing import Any

import pytest

from catalog.search import rebuild_index
from core.auth import SYSTEM
from reports import bundles
from tests.factories.catalog import make_department, published_entry
from tests.factories.licences import (
    ORG_TYPE,
    PERSON_TYPE,
    make_admin,
    make_staff,
    make_types,
    org_licence,
    person_licence,
)

PERSON_NAME = "欧阳锋华"
ORG_NAME = "泰州市高港区港城食品有限公司"


@pytest.fixture
def public_world(app: Any, db: Any, client: Any) -> dict[str, Any]:
    session = db.session()
    dept = make_department(session, "高港区市场监督管理局")
    entry = published_entry(session, dept)
    make_types(session)
    staff = make_staff(session, "高港区住房和城乡建设局", "MB123456", "mask_issuer")
    person = person_licence(session, staff, seq=41, holder_name=PERSON_NAME)
    org = org_licence(session, staff, seq=5, holder_name=ORG_NAME)
    bundle = bundles.save_bundle(
        session, SYSTEM, name="我要开餐馆", task_codes=[entry.task_code], published=True
    )
    rebuild_index(session)
    _admin, admin_token = make_admin(session, "mask_admin")
    session.commit()
    secrets = {person.holder_code, org.holder_code, PERSON_NAME, ORG_NAME}
    ids = {"person": person.id, "org": org.id}
    session.close()

    auth = {"Authorization": f"Bearer {staff.token}"}
    for code in (PERSON_TYPE, ORG_TYPE):
        linked = client.post(
            f"/api/v1/licence-types/{code}/entries",
            json={"task_code": entry.task_code, "role": "produces"},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert linked.status_code == 201, linked.get_json()
    tokens = {}
    for kind, licence_id in ids.items():
        r = client.get(f"/api/v1/licences/{licence_id}/token", headers=auth)
        assert r.status_code == 200, r.get_json()
        tokens[kind] = r.get_json()["token"]
    revoked = client.post(f"/api/v1/licences/{ids['org']}/revoke", json={"reason": "依法撤销"}, headers=auth)
    assert revoked.status_code == 200, revoked.get_json()
    return {
        "secrets": secrets,
        "tokens": tokens,
        "task_code": entry.task_code,
        "department_id": dept.id,
        "bundle_id": bundle.id,
    }


def public_urls(w: dict[str, Any]) -> list[str]:
    urls = [
        "/",
        "/divisions",
        "/search?q=测试",
        f"/entries/{w['task_code']}",
        "/api/v1/search?q=测试",
        f"/api/v1/entries/by-code/{w['task_code']}",
        "/api/v1/entries",
        "/api/v1/licence-types",
        f"/api/v1/licence-types/{PERSON_TYPE}",
        "/open311/v2/services.json",
        "/open311/v2/services.xml",
        "/licences/types/",
        f"/licences/types/{PERSON_TYPE}",
        f"/licences/types/{ORG_TYPE}",
        "/licences/keys.json",
        "/licences/status/revocation.json",
        "/licences/status/suspension.json",
        "/open-data/cpsv-ap.ttl",
        "/open-data/cpsv-ap.jsonld",
        "/bundles/",
        f"/bundles/{w['bundle_id']}",
    ]
    for token in w["tokens"].values():
        urls += [f"/verify/{token}", f"/api/v1/licences/verify/{token}"]
    return urls


def test_no_public_page_or_api_response_shows_a_holder_code_or_name(
    client: Any, public_world: dict[str, Any]
) -> None:
    checked = 0
    for url in public_urls(public_world):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        body = response.get_data(as_text=True)
        for secret in public_world["secrets"]:
            assert secret not in body, f"{url} shows {secret!r}"
        checked += 1
    assert checked == len(public_urls(public_world))


def test_verification_shows_the_masked_holder_so_the_check_above_is_meaningful(
    client: Any, public_world: dict[str, Any]
) -> None:
    body = client.get(f"/api/v1/licences/verify/{public_world['tokens']['person']}").get_json()
    assert body["valid"] is True
    text = client.get(f"/verify/{public_world['tokens']['person']}").get_data(as_text=True)
    assert PERSON_NAME[0] + "***" in text
