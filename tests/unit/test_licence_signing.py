import json
import time
from datetime import date

import pytest

from licenses.signing import (
    KeyStore,
    PublicKey,
    TokenClaims,
    Verifier,
    b64d,
    b64e,
    make_token,
)

IDENT = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F"
ISSUER = "11220000013544541J"


def claims_for(key, identifier=IDENT):
    return TokenClaims(
        key.kid,
        42,
        identifier,
        "张*",
        "220102********001X",
        date(2024, 1, 1),
        date(2026, 12, 31),
        int(time.time()),
    )


@pytest.fixture
def store(tmp_path):
    return KeyStore(tmp_path / "keys")


def verifier_for(*keys):
    return Verifier({k.kid: PublicKey(k.kid, k.algorithm, k.issuer_code, k.public_raw) for k in keys})


def test_token_signed_by_the_issuer_verifies_offline_with_its_public_key(store):
    key = store.key_for(ISSUER)
    token = make_token(key, claims_for(key))
    result = verifier_for(key).check(token)
    assert result.ok, result.reason
    assert result.claims.identifier == IDENT
    assert result.claims.holder_code_masked == "220102********001X"
    assert result.claims.valid_to == date(2026, 12, 31)


def test_keys_are_generated_once_and_kept_private_on_disk(store, tmp_path):
    first = store.key_for(ISSUER)
    again = KeyStore(tmp_path / "keys").key_for(ISSUER)
    assert first.kid == again.kid
    pem = next((tmp_path / "keys").glob("*.pem"))
    assert pem.stat().st_mode & 0o077 == 0


def test_forged_payload_fails_the_signature(store):
    key = store.key_for(ISSUER)
    prefix, payload, sig = make_token(key, claims_for(key)).split(".")
    data = json.loads(b64d(payload))
    data[4] = "220102********002X"
    forged = f"{prefix}.{b64e(json.dumps(data, separators=(',', ':')).encode())}.{sig}"
    result = verifier_for(key).check(forged)
    assert not result.ok
    assert "签名验证失败" in result.reason


@pytest.mark.parametrize("cut", [1, 10, 40, 90])
def test_truncated_tokens_are_not_valid(store, cut):
    key = store.key_for(ISSUER)
    token = make_token(key, claims_for(key))
    result = verifier_for(key).check(token[:-cut])
    assert not result.ok
    assert result.reason


def test_truncated_to_the_payload_only_says_incomplete(store):
    key = store.key_for(ISSUER)
    token = make_token(key, claims_for(key))
    result = verifier_for(key).check(token.rsplit(".", 1)[0])
    assert not result.ok
    assert "不完整" in result.reason


def test_token_signed_by_an_unpublished_key_is_rejected(store, tmp_path):
    published = store.key_for(ISSUER)
    rogue = KeyStore(tmp_path / "rogue").key_for(ISSUER)
    token = make_token(rogue, claims_for(rogue))
    result = verifier_for(published).check(token)
    assert not result.ok
    assert "签名密钥未知" in result.reason


def test_token_claiming_a_published_key_id_but_signed_by_another_key_is_rejected(store, tmp_path):
    published = store.key_for(ISSUER)
    rogue = KeyStore(tmp_path / "rogue").key_for(ISSUER)
    claims = claims_for(published)  # carries the published kid
    token = make_token(rogue, claims)
    result = verifier_for(published).check(token)
    assert not result.ok
    assert "签名验证失败" in result.reason


def test_key_of_one_issuer_cannot_vouch_for_another_issuers_licence(store):
    other = store.key_for("11330105002500287C")
    token = make_token(other, claims_for(other))  # identifier names issuer 11220000013544541J
    result = verifier_for(other).check(token)
    assert not result.ok
    assert "颁发机构" in result.reason


@pytest.mark.parametrize(
    "junk", ["", "L1", "L1..", "xx.yy.zz", "L1.!!!.@@@", "L1." + "A" * 2000, "L2.abc.def"]
)
def test_garbage_never_raises(store, junk):
    key = store.key_for(ISSUER)
    result = verifier_for(key).check(junk)
    assert not result.ok
    assert result.reason


def test_payload_with_a_bad_identifier_is_rejected_even_if_signed(store):
    key = store.key_for(ISSUER)
    token = make_token(key, claims_for(key, IDENT[:-1] + "0"))
    result = verifier_for(key).check(token)
    assert not result.ok
    assert "校验位" in result.reason


def test_tokens_are_compact_enough_for_a_qr_code(store):
    key = store.key_for(ISSUER)
    assert len(make_token(key, claims_for(key))) < 420
