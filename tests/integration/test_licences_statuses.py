"""Statuses as the law has them (issue #15 item 3): 注销, 吊销, 撤销, 挂失/作废 apart, 暂扣 reversible,
过期 computed; each with the date it took effect and a public reason category; the clerk's free
text never reaches the public page; the status lists agree with /verify right after a change."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlmodel import select

from licenses import queries
from licenses import types as licence_types
from licenses.models import ENDED_STATUSES, REASON_CATEGORIES, Licence, LicenceOutbox, LicenceStatus
from tests.factories.licences import auth, id_number, issue, world  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]
SECRET = "内部：举报人王某某提供线索"  # an internal reason that must never be public


def _token(client, world, lid):  # noqa: F811
    return client.get(f"/api/v1/licences/{lid}/token", headers=auth(world["a"])).get_json()["token"]


def _change(client, world, lid, **body):  # noqa: F811
    return client.post(f"/api/v1/licences/{lid}/status", json=body, headers=auth(world["a"]))


@pytest.mark.parametrize(
    ("status", "category", "label"),
    [
        ("cancelled", "holder_request", "注销"),
        ("revoked", "penalty", "吊销"),
        ("withdrawn", "improper_means", "撤销"),
        ("void", "lost", "挂失/作废"),
        ("suspended", "penalty_suspension", "暂扣（暂停使用）"),
    ],
)
def test_each_status_reads_differently_with_its_date_category_and_check_time_but_no_internal_text(
    client,
    world,  # noqa: F811
    status,
    category,
    label,
):
    lid = issue(client, world["a"], issue_date="2024-03-01").get_json()["id"]
    token = _token(client, world, lid)
    when = (licence_types.today() - timedelta(days=3)).isoformat()
    r = _change(client, world, lid, status=status, category=category, effective_date=when, reason=SECRET)
    assert r.status_code == 200, r.get_json()
    staff_view = r.get_json()
    assert staff_view["status"] == status
    assert staff_view["status_date"] == when
    assert staff_view["status_reason"] == SECRET  # the issuing department keeps its own record

    body = client.get(f"/api/v1/licences/verify/{token}").get_json()
    assert body["valid"] is False
    assert body["status"] == status
    assert body["status_label"] == label
    assert body["status_date"] == when
    assert body["category_label"] == REASON_CATEGORIES[status][category]
    assert body["checked_at"]
    assert SECRET not in json.dumps(body, ensure_ascii=False)

    page = client.get(f"/verify/{token}").get_data(as_text=True)
    assert f'data-status="{status}">{label}<' in page
    assert when in page
    assert REASON_CATEGORIES[status][category] in page
    assert 'data-field="checked-at"' in page
    assert SECRET not in page
    assert "张三" not in page


def test_revocation_and_cancellation_are_told_apart_on_the_public_page(client, world):  # noqa: F811
    a = issue(client, world["a"]).get_json()["id"]
    b = issue(client, world["a"], holder_code=id_number(12)).get_json()["id"]
    ta, tb = _token(client, world, a), _token(client, world, b)
    _change(client, world, a, status="revoked", reason="违法经营")
    _change(client, world, b, status="cancelled", category="holder_request", reason="本人申请")
    pa = client.get(f"/verify/{ta}").get_data(as_text=True)
    pb = client.get(f"/verify/{tb}").get_data(as_text=True)
    assert 'data-status="revoked">吊销<' in pa
    assert "证照已被颁发机构吊销" in pa
    assert 'data-status="cancelled">注销<' in pb
    assert "证照已注销" in pb
    assert "证照已被颁发机构吊销" not in pb


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "cancelled", "category": "penalty", "reason": "x"}, "category"),  # 吊销's category
        ({"status": "cancelled", "category": "holder_request"}, "reason"),
        ({"status": "revoked", "reason": "x", "effective_date": "2999-01-01"}, "effective_date"),
        ({"status": "revoked", "reason": "x", "effective_date": "2001-01-01"}, "effective_date"),
        ({"status": "revoked", "reason": "x", "effective_date": "2024-02-30"}, "effective_date"),
        ({"status": "superseded", "reason": "x"}, "status"),
    ],
)
def test_bad_status_changes_get_a_clear_chinese_422_and_change_nothing(client, world, db, body, field):  # noqa: F811
    lid = issue(client, world["a"]).get_json()["id"]
    r = _change(client, world, lid, **body)
    assert r.status_code == 422, r.get_json()
    error = r.get_json()
    assert set(error) == {"code", "message", "details"}
    assert field in error["details"], error
    assert any("\u4e00" <= ch <= "\u9fff" for ch in error["message"])
    with db.transaction() as session:
        licence = session.get(Licence, lid)
        assert licence.status == "valid"
        assert licence.revision == 1
        assert licence.status_date is None
        assert len(session.exec(select(LicenceOutbox).where(LicenceOutbox.licence_id == lid)).all()) == 1


def test_an_ended_licence_cannot_be_resumed_or_ended_again(client, world):  # noqa: F811
    lid = issue(client, world["a"]).get_json()["id"]
    assert _change(client, world, lid, status="void", category="lost", reason="持证人挂失").status_code == 200
    again = _change(client, world, lid, status="valid")
    assert again.status_code == 409
    assert "挂失/作废" in again.get_json()["message"]
    assert _change(client, world, lid, status="revoked", reason="x").status_code == 409


def test_expired_is_computed_from_the_dates_with_its_own_date(client, world):  # noqa: F811
    r = issue(client, world["a"], issue_date="2020-01-01", valid_from="2020-01-01", valid_to="2021-12-31")
    token = _token(client, world, r.get_json()["id"])
    body = client.get(f"/api/v1/licences/verify/{token}").get_json()
    assert body["status"] == "expired"
    assert body["status_label"] == "过期"
    assert body["status_date"] == "2022-01-01"


def _bit(client, purpose, index):
    doc = client.get(f"/licences/status/{purpose}.json")
    assert int(doc.headers["Cache-Control"].split("max-age=")[1]) <= 60  # within a minute of a change
    encoded = doc.get_json()["credentialSubject"]["encodedList"][1:]
    bits = gzip.decompress(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


@pytest.mark.parametrize("status", [s.value for s in ENDED_STATUSES])
def test_status_lists_and_verify_agree_right_after_a_change(client, world, status):  # noqa: F811
    lid = issue(client, world["a"]).get_json()["id"]
    token = _token(client, world, lid)
    assert not _bit(client, "revocation", lid)
    assert client.get(f"/api/v1/licences/verify/{token}").get_json()["valid"] is True
    category = next(iter(REASON_CATEGORIES[status]))
    assert _change(client, world, lid, status=status, category=category, reason="x").status_code == 200
    assert _bit(client, "revocation", lid)
    assert not _bit(client, "suspension", lid)
    assert client.get(f"/api/v1/licences/verify/{token}").get_json()["status"] == status


def test_suspension_list_follows_suspend_and_resume(client, world):  # noqa: F811
    lid = issue(client, world["a"]).get_json()["id"]
    _change(client, world, lid, status="suspended", category="under_investigation", reason="x")
    assert _bit(client, "suspension", lid)
    assert not _bit(client, "revocation", lid)
    _change(client, world, lid, status="valid")
    assert not _bit(client, "suspension", lid)


def test_reports_count_every_ended_status_as_revoked():
    from reports.services import LICENCE_GROUPS_SQL

    for status in ENDED_STATUSES:
        assert f"'{status.value}'" in LICENCE_GROUPS_SQL.text


def test_migration_splits_old_revoked_rows_by_their_reason(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["skip_logging"] = True
    command.upgrade(cfg, "7a1e5c3b9d21")
    engine = sa.create_engine(url)
    columns = (
        "id, identifier, type_id, type_code, type_name, serial, version, number, holder_name, holder_code,"
        " holder_code_type, issuer_department_id, issuer_code, issuer_name, issue_date, valid_from,"
        " area_code, face, status, revision, status_reason, status_changed_at, is_current, created_at,"
        " updated_at"
    )
    rows = [
        (1, "revoked", "因违法经营被吊销", "2025-05-31 17:00:00.000000+00:00"),
        (2, "revoked", "持证人申请注销（测试）", "2025-06-01 01:00:00.000000+00:00"),
        (3, "revoked", "其他原因", None),
        (4, "valid", None, None),
    ]
    with engine.begin() as conn:
        for lid, status, reason, changed in rows:
            conn.execute(
                sa.text(
                    f"INSERT INTO licence ({columns}) VALUES (:id, :ident, 1, 'T', '名', :ident, 1, 'N',"  # noqa: S608
                    " '张三', 'C', '111', 1, 'I', '局', '2020-01-01', '2020-01-01', '321203', '{}',"
                    " :status, 2, :reason, :changed, 1, '2024-01-01 00:00:00', '2025-07-01 02:00:00')"
                ),
                {"id": lid, "ident": f"S{lid}", "status": status, "reason": reason, "changed": changed},
            )
    command.upgrade(cfg, "3b8f0d6e2c45")
    with engine.connect() as conn:
        got = {
            r[0]: tuple(r[1:])
            for r in conn.execute(sa.text("SELECT id, status, status_category, status_date FROM licence"))
        }
    engine.dispose()
    assert got[1] == ("revoked", "penalty", "2025-06-01")  # 17:00 UTC is the next day in China
    assert got[2] == ("cancelled", "holder_request", "2025-06-01")
    assert got[3] == ("cancelled", "legacy_unclassified", "2025-07-01")  # conservative: 注销, said so
    assert got[4] == ("valid", None, None)


def test_every_status_but_valid_and_superseded_has_public_categories():
    for status in LicenceStatus:
        if status in (LicenceStatus.VALID, LicenceStatus.SUPERSEDED):
            continue
        assert REASON_CATEGORIES[status], status
    assert queries.EFFECTIVE_LABELS["expired"] == "过期"


def test_the_staff_status_form_records_category_date_and_reason(client, world, db):  # noqa: F811
    lid = issue(client, world["a"]).get_json()["id"]
    assert client.post("/login", data={"username": "clerk_a", "password": "password-123"}).status_code == 302
    detail = client.get(f"/staff/licences/{lid}").get_data(as_text=True)
    for label in ("注销", "吊销", "撤销", "挂失/作废", "暂扣"):
        assert f"<h3>{label}" in detail
    day = licence_types.today().isoformat()
    bad = client.post(
        f"/staff/licences/{lid}/status", data={"status": "cancelled", "category": "penalty", "reason": "x"}
    )
    assert bad.status_code == 302
    assert "原因类别" in client.get(f"/staff/licences/{lid}").get_data(as_text=True)
    done = client.post(
        f"/staff/licences/{lid}/status",
        data={"status": "cancelled", "category": "holder_request", "effective_date": day, "reason": SECRET},
    )
    assert done.status_code == 302
    with db.transaction() as session:
        licence = session.get(Licence, lid)
        assert (licence.status, licence.status_category, licence.status_reason) == (
            "cancelled",
            "holder_request",
            SECRET,
        )
        assert licence.status_date.isoformat() == day
