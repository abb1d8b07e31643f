"""Keys and signed status lists (issue #15 item 5): a department's key is published with its first
licence, `flask licences rotate-key` leaves old QR codes valid, keys.json lists keys with their
validity, status lists verify offline with the published keys, loose key permissions stop the app."""

from __future__ import annotations

import base64
import gzip
import os

import pytest
from sqlmodel import select

from core.auth import ANONYMOUS, SYSTEM
from core.errors import Forbidden, NotFound
from licenses import issuing, verification
from licenses import types as licence_types
from licenses.signing import (
    KeyPermissionError,
    KeyStore,
    PublicKey,
    b64d,
    make_token,
    new_claims,
    verify_document,
)
from tests.conftest import make_settings
from tests.factories.licences import PERSON_TYPE, auth, id_number, issue, world  # noqa: F401  (fixture)


def _keys(client):
    return client.get("/licences/keys.json").get_json()["keys"]


def _published(client):
    return {
        k["kid"]: PublicKey(k["kid"], k["alg"], k.get("issuer_code") or "", b64d(k["x"]))
        for k in _keys(client)
    }


def test_the_first_licence_publishes_its_departments_key(client, world):  # noqa: F811
    uscc = world["a_dept"].uscc
    assert not [k for k in _keys(client) if k.get("issuer_code") == uscc]
    assert issue(client, world["a"]).status_code == 201
    mine = [k for k in _keys(client) if k.get("issuer_code") == uscc]
    assert len(mine) == 1  # before anyone opened a QR code
    assert mine[0]["status"] == "current"
    assert mine[0]["valid_from"]


def test_publish_keys_covers_departments_whose_licences_came_before(app, client, db, world):  # noqa: F811
    with db.transaction() as session:
        from catalog.models import Department
        from core.auth import Principal, User
        from tests.factories.licences import Staff

        user = session.exec(select(User).where(User.username == "clerk_b")).one()
        dept = session.get(Department, user.department_id)
        issuing.issue_licence(  # no keystore: how licences were issued before issue 15
            session,
            Staff(dept, Principal.of(user), "").actor,
            {
                "type_code": PERSON_TYPE,
                "holder_name": "李四",
                "holder_code": id_number(41),
                "face": {"gender": "女"},
            },
        )
        uscc = dept.uscc
    assert not [k for k in _keys(client) if k.get("issuer_code") == uscc]
    result = app.test_cli_runner().invoke(args=["licences", "publish-keys"])
    assert result.exit_code == 0, result.output
    assert [k for k in _keys(client) if k.get("issuer_code") == uscc]


def test_a_rotated_key_leaves_old_tokens_valid_and_new_tokens_use_the_new_key(app, client, world):  # noqa: F811
    a = auth(world["a"])
    lid = issue(client, world["a"]).get_json()["id"]
    old_token = client.get(f"/api/v1/licences/{lid}/token", headers=a).get_json()["token"]
    old_kid = verification._kid_hint(old_token)
    result = app.test_cli_runner().invoke(
        args=["licences", "rotate-key", "--department", world["a_dept"].uscc]
    )
    assert result.exit_code == 0, result.output
    assert old_kid in result.output
    new_token = client.get(f"/api/v1/licences/{lid}/token", headers=a).get_json()["token"]
    new_kid = verification._kid_hint(new_token)
    assert new_kid != old_kid
    for token in (old_token, new_token):
        body = client.get(f"/api/v1/licences/verify/{token}").get_json()
        assert body["valid"] is True, body
    listed = {k["kid"]: k for k in _keys(client)}
    assert listed[old_kid]["status"] == "retired"
    assert listed[old_kid]["retired_at"]
    valid_to = client.get(f"/api/v1/licences/{lid}", headers=a).get_json()["valid_to"]
    assert listed[old_kid]["verify_until"] == valid_to  # the last day a token of it can prove anything
    assert listed[new_kid]["status"] == "current"
    retired = app.extensions["licences.keystore"].folder / "retired"
    assert [p.name for p in retired.iterdir()] == [f"{world['a_dept'].uscc}.Ed25519.{old_kid}.pem"]
    assert retired.stat().st_mode & 0o077 == 0  # kept, private


def test_rotating_needs_an_administrator_and_a_known_department(db, tmp_path, world):  # noqa: F811

    store = KeyStore(tmp_path / "keys")
    with db.transaction() as session:
        with pytest.raises(Forbidden):
            verification.rotate_signing_key(session, ANONYMOUS, store, world["a_dept"].uscc)
        with pytest.raises(NotFound):
            verification.rotate_signing_key(session, SYSTEM, store, "9" * 18)
    assert not (tmp_path / "keys").exists()  # nothing made for a refused request


def test_a_token_signed_with_an_unknown_key_is_refused_with_a_clear_reason(client, world, tmp_path):  # noqa: F811
    lid = issue(client, world["a"]).get_json()["id"]
    rogue = KeyStore(tmp_path / "rogue").key_for(world["a_dept"].uscc)
    token = make_token(
        rogue,
        new_claims(
            rogue,
            status_index=lid,
            identifier=client.get(f"/api/v1/licences/{lid}", headers=auth(world["a"])).get_json()[
                "identifier"
            ],
            holder_name_masked="张*",
            holder_code_masked="x",
            valid_from=licence_types.today(),
            valid_to=None,
        ),
    )
    body = client.get(f"/api/v1/licences/verify/{token}").get_json()
    assert body["valid"] is False
    assert "签名密钥未知" in body["reason"]


def _bits(doc):
    encoded = doc["credentialSubject"]["encodedList"][1:]
    return gzip.decompress(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


def test_status_lists_are_signed_and_verify_offline_with_the_published_keys(client, world):  # noqa: F811
    lid = issue(client, world["a"]).get_json()["id"]
    client.post(f"/api/v1/licences/{lid}/revoke", json={"reason": "x"}, headers=auth(world["a"]))
    keys = _published(client)  # what an offline verifier downloads once
    for purpose in ("revocation", "suspension"):
        doc = client.get(f"/licences/status/{purpose}.json").get_json()
        assert doc["proof"]["kid"] in keys
        assert verify_document(doc, keys), purpose
        tampered = {**doc, "credentialSubject": {**doc["credentialSubject"], "length": 1}}
        assert not verify_document(tampered, keys)
        assert not verify_document({k: v for k, v in doc.items() if k != "proof"}, keys)
    revocation = client.get("/licences/status/revocation.json").get_json()
    assert _bits(revocation)[lid // 8] & (0x80 >> (lid % 8))


def test_the_app_refuses_to_start_when_key_files_are_open_to_others(db, tmp_path):
    from webapp import create_app

    folder = tmp_path / "licence_keys"
    KeyStore(folder).key_for("91321203MA0000001X")
    pem = next(folder.glob("*.pem"))
    os.chmod(pem, 0o644)
    with pytest.raises(KeyPermissionError) as exc:
        create_app(make_settings(tmp_path, db.url), database=db)
    assert str(pem) in str(exc.value)
    os.chmod(pem, 0o600)
    create_app(make_settings(tmp_path, db.url), database=db)  # tight again: starts


def test_a_rotated_status_list_key_leaves_old_signed_lists_verifiable_with_the_published_keys(
    app,
    client,
    db,
    world,  # noqa: F811
):
    lid = issue(client, world["a"]).get_json()["id"]
    client.post(f"/api/v1/licences/{lid}/revoke", json={"reason": "x"}, headers=auth(world["a"]))
    old_list = client.get("/licences/status/revocation.json").get_json()
    old_kid = old_list["proof"]["kid"]
    before = {k["kid"]: k for k in _keys(client) if k["use"] == "status-list"}
    assert before[old_kid]["status"] == "current"
    assert before[old_kid]["valid_from"]

    refused = app.test_cli_runner().invoke(args=["licences", "rotate-key"])
    assert refused.exit_code != 0
    assert "--status-list" in refused.output
    result = app.test_cli_runner().invoke(args=["licences", "rotate-key", "--status-list"])
    assert result.exit_code == 0, result.output
    assert old_kid in result.output

    new_list = client.get("/licences/status/revocation.json").get_json()
    new_kid = new_list["proof"]["kid"]
    assert new_kid != old_kid
    listed = {k["kid"]: k for k in _keys(client) if k["use"] == "status-list"}
    assert listed[old_kid]["status"] == "retired"
    assert listed[old_kid]["retired_at"]
    assert listed[new_kid]["status"] == "current"
    keys = _published(client)  # the key history an offline verifier downloads after the rotation
    assert verify_document(old_list, keys)
    assert verify_document(new_list, keys)
    assert not verify_document(old_list, {new_kid: keys[new_kid]})  # it is the old key that proves it
    retired = app.extensions["licences.keystore"].folder / "retired"
    assert [p.name for p in retired.glob(f"status-list.*.{old_kid}.pem")]

    again = app.test_cli_runner().invoke(args=["licences", "rotate-key", "--status-list"])
    assert again.exit_code == 0, again.output
    history = {k["kid"]: k["status"] for k in _keys(client) if k["use"] == "status-list"}
    assert history[old_kid] == history[new_kid] == "retired"
    assert list(history.values()).count("current") == 1
    assert verify_document(old_list, _published(client))
    with db.transaction() as session:
        from core.audit import AuditLog

        rotations = session.exec(
            select(AuditLog)
            .where(AuditLog.action == "licence_key.rotate_status_list")
            .order_by(AuditLog.id)  # a heap scan's order is not the insertion order
        ).all()
        assert [r.old["kid"] for r in rotations] == [old_kid, new_kid]


def test_only_an_administrator_rotates_the_status_list_key(app, db, world):  # noqa: F811
    store = app.extensions["licences.keystore"]
    with db.transaction() as session, pytest.raises(Forbidden):
        verification.rotate_status_list_key(session, ANONYMOUS, store)
