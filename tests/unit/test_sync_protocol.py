"""Rules shared by the district and the reference registry, without I/O: signatures, identifier
checks, digests, envelopes and the classification of registry answers."""

from __future__ import annotations

import json
from types import SimpleNamespace

import httpx
import pytest

from city_registry import protocol
from licenses import reconcile, sync
from workers.registry_client import RegistryClient, sign

IDENT = "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U"


def _record(**overrides: object) -> dict[str, object]:
    record: dict[str, object] = {
        "certificate_identifier": IDENT,
        "certificate_type_code": "11100000000013338W011",
        "certificate_name": "证",
        "certificate_number": "N1",
        "holder_name": "某公司",
        "holder_code": "91120222MA06DG3067",
        "holder_code_type": "001",
        "issuer_name": "某局",
        "issuer_code": "11430000006122244L",
        "issue_date": "20230101",
        "area_code": "430000",
        "status": "valid",
        "version": 3,
    }
    record.update(overrides)
    return record


@pytest.mark.parametrize(
    "ident",
    [
        "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U",
        "1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025052201.002.0",
        "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F",
    ],
)
def test_registry_accepts_real_identifiers_check_characters(ident: str) -> None:
    body = ident[len("1.2.156.3005.2.") : -2].replace(".", "")
    assert protocol.iso7064_mod37_36(body) == ident[-1]
    assert protocol.iso7064_mod37_36(body, prefix_len=39) == ident[-1]


def test_signature_covers_method_path_timestamp_and_body() -> None:
    sig = sign("k", "POST", "/api/v1/licences/batch", "100", b"{}")
    assert sig == protocol.signature("k", "POST", "/api/v1/licences/batch", "100", b"{}")
    assert protocol.signature_valid("k", "POST", "/api/v1/licences/batch", "100", b"{}", sig)
    for changed in (
        ("k2", "POST", "/api/v1/licences/batch", "100", b"{}"),
        ("k", "GET", "/api/v1/licences/batch", "100", b"{}"),
        ("k", "POST", "/api/v1/licences/batch?x=1", "100", b"{}"),
        ("k", "POST", "/api/v1/licences/batch", "101", b"{}"),
        ("k", "POST", "/api/v1/licences/batch", "100", b"{ }"),
    ):
        assert not protocol.signature_valid(*changed, sig)


def test_valid_record_is_keyed_by_licence_and_ranked_by_identifier_version() -> None:
    rec, reason = protocol.validate_record({"idem_key": f"{IDENT}:3", "sequence": 9, "record": _record()})
    assert reason is None
    assert rec is not None
    assert rec["licence_key"] == "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403"
    assert (rec["version"], rec["revision"], rec["issue_day"]) == (1, 3, "2023-01-01")


@pytest.mark.parametrize(
    ("envelope", "reason"),
    [
        ("not an object", "JSON 对象"),
        ({"sequence": 1, "record": {}}, "idem_key"),
        ({"idem_key": "k", "sequence": -1, "record": {}}, "sequence"),
        ({"idem_key": "k", "sequence": True, "record": {}}, "sequence"),
        ({"idem_key": "k", "sequence": 1, "record": _record(holder_name="")}, "holder_name"),
        (
            {"idem_key": "k", "sequence": 1, "record": _record(certificate_identifier=IDENT[:-1] + "V")},
            "校验位",
        ),
        ({"idem_key": "k", "sequence": 1, "record": _record(certificate_identifier="1.2.3")}, "GB/T 36904"),
        ({"idem_key": "k", "sequence": 1, "record": _record(issuer_code="11430000006122245X")}, "颁发机构"),
        (
            {
                "idem_key": "k",
                "sequence": 1,
                "record": _record(certificate_type_code="11100000000013338W012"),
            },
            "类型代码",
        ),
        ({"idem_key": "k", "sequence": 1, "record": _record(holder_code_type="999")}, "111"),
        ({"idem_key": "k", "sequence": 1, "record": _record(issue_date="2023-02-30")}, "颁发日期"),
        ({"idem_key": "k", "sequence": 1, "record": _record(area_code="43")}, "属地"),
        ({"idem_key": "k", "sequence": 1, "record": _record(version=0)}, "version"),
        ({"idem_key": "k", "sequence": 1, "record": _record(valid_to="someday")}, "valid_to"),
    ],
)
def test_invalid_records_are_rejected_with_a_reason(envelope: object, reason: str) -> None:
    rec, message = protocol.validate_record(envelope)
    assert rec is None
    assert message is not None
    assert reason in message


def test_missing_fields_are_listed_exactly_whether_absent_empty_or_null() -> None:
    record = _record(holder_name="", issuer_name=None)
    del record["area_code"]
    rec, message = protocol.validate_record({"idem_key": "k", "sequence": 1, "record": record})
    assert rec is None
    assert message == "缺少字段：holder_name、issuer_name、area_code"
    # Zero and False are values, not gaps: they fail their own checks instead.
    rec, message = protocol.validate_record({"idem_key": "k", "sequence": 1, "record": _record(version=0)})
    assert message == "version 应为正整数"


def test_district_and_registry_compute_the_same_digest() -> None:
    rows = [(IDENT, 3, "valid"), ("1.2.156.3005.2.X.Y.Z.002.0", 1, "revoked")]
    assert reconcile.digest(rows) == protocol.digest(reversed(rows))
    assert reconcile.digest(rows) != reconcile.digest([(IDENT, 3, "suspended"), rows[1]])
    assert reconcile.digest([])[0] == 0


def test_licence_key_drops_version_and_check() -> None:
    assert sync.licence_key(IDENT) == protocol.licence_key(IDENT) == IDENT.rsplit(".", 2)[0]


def test_envelope_json_splices_the_stored_payload_unchanged() -> None:
    payload = json.dumps(_record(), ensure_ascii=False)
    row = SimpleNamespace(idem_key=f"{IDENT}:3", id=42, payload=payload)
    parsed = json.loads(sync.envelope_json(row))  # type: ignore[arg-type]  # envelope_json reads a row's attributes only
    assert parsed == {"idem_key": f"{IDENT}:3", "sequence": 42, "record": _record()}


def _client_answering(status: int, content: bytes) -> RegistryClient:
    client = RegistryClient("http://registry.test", "k", "321203")
    client._http = httpx.Client(
        base_url="http://registry.test",
        transport=httpx.MockTransport(lambda _req: httpx.Response(status, content=content)),
    )
    return client


@pytest.mark.parametrize(
    ("status", "content", "error"),
    [
        (503, b'{"error": {"message": "busy"}}', sync.RegistryUnavailableError),
        (502, b"<html>bad gateway</html>", sync.RegistryUnavailableError),
        (429, b"{}", sync.RegistryUnavailableError),
        (400, b'{"error": {"message": "bad"}}', sync.RegistryProtocolError),
        (401, b'{"error": {"message": "signature"}}', sync.RegistryProtocolError),
        (200, b'{"results": [', sync.RegistryProtocolError),
        (200, b'{"error": {"message": "db busy"}}', sync.RegistryProtocolError),
        (200, b'{"count": 0, "results": []}', sync.RegistryProtocolError),
        (
            200,
            b'{"count": 1, "results": [{"idem_key": "a", "status": "accepted"}]}',
            sync.RegistryProtocolError,
        ),
        (200, b"[1, 2]", sync.RegistryProtocolError),
    ],
)
def test_registry_answers_are_classified(status: int, content: bytes, error: type[Exception]) -> None:
    # A stand-in for the remote system's HTTP answers only; the real registry is tested over HTTP.
    client = _client_answering(status, content)
    with pytest.raises(error):
        client.post_batch("b", [{"idem_key": "a", "sequence": 1, "record": {}}])


def test_well_formed_answer_gives_one_result_per_record() -> None:
    client = _client_answering(
        200,
        b'{"count": 2, "results": [{"idem_key": "a", "status": "created"},'
        b'{"idem_key": "b", "status": "rejected", "message": "x"}]}',
    )
    results = client.post_batch("b", ['{"idem_key":"a"}', '{"idem_key":"b"}'])
    assert [(r.idem_key, r.status, r.message) for r in results] == [
        ("a", "created", None),
        ("b", "rejected", "x"),
    ]
