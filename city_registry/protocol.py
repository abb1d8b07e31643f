"""Protocol helpers of the city registry: request signing, record validation, digests.

Signature (every request): ``X-Client-Id`` (the district's 6-digit code), ``X-Timestamp`` (Unix
seconds) and ``X-Signature`` = hex HMAC-SHA256 with the shared key over
``METHOD \\n PATH?QUERY \\n TIMESTAMP \\n hex SHA-256 of the body``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import operator
import re
from collections.abc import Iterable
from datetime import date
from typing import Any

MAX_SKEW_SECONDS = 300
MAX_BATCH = 5000
ROOT_OID = "1.2.156.3005.2"
RESULT_STATUSES = ("created", "updated", "duplicate", "stale", "rejected")
HOLDER_CODE_TYPES = ("111", "001")
REQUIRED_FIELDS = (
    "certificate_identifier", "certificate_type_code", "certificate_name", "certificate_number",
    "holder_name", "holder_code", "holder_code_type", "issuer_name", "issuer_code", "issue_date",
    "area_code", "status", "version",
)
# The required fields in one C call: a record lacking none of them (every record the district sends)
# skips building the list of missing ones (a quarter of validating a record).
_required_values = operator.itemgetter(*REQUIRED_FIELDS)
_BODY_START = len(ROOT_OID) + 1  # the identifier after the root OID and its dot
_ALNUM36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Optional per record: the district web request that made the change, logged here for tracing.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_IDENT = re.compile(
    r"^1\.2\.156\.3005\.2\.(?P<type>[0-9A-Z]{21})\.(?P<issuer>[0-9A-Z]{18})\."
    r"(?P<serial>[0-9A-Za-z]{1,40})\.(?P<version>\d{3})\.(?P<check>[0-9A-Z])$"
)


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def signature(key: str, method: str, path: str, timestamp: str, body: bytes) -> str:
    message = f"{method.upper()}\n{path}\n{timestamp}\n{body_digest(body)}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def signature_valid(key: str, method: str, path: str, timestamp: str, body: bytes, given: str) -> bool:
    return hmac.compare_digest(signature(key, method, path, timestamp, body), given or "")


_INDEX = {ch: i for i, ch in enumerate(_ALNUM36)}


# One step of MOD 37,36 as a table: state p, character ch -> next state (a lookup per character
# instead of two modulo operations; the check was the largest single cost of validating a record).
_STEP = [{ch: (((p + i) % 36 or 36) * 2) % 37 for ch, i in _INDEX.items()} for p in range(37)]


def _mod37_36_state(s: str, p: int = 36) -> int:
    step = _STEP
    for ch in s:
        p = step[p][ch]
    return p


@functools.lru_cache(maxsize=4096)
def _prefix_state(prefix: str) -> int:
    return _mod37_36_state(prefix)


def iso7064_mod37_36(s: str, prefix_len: int = 0) -> str:
    """ISO/IEC 7064 MOD 37,36 check character; the state after the first ``prefix_len`` characters
    (type code + issuer, shared by a department's licences) is cached."""
    p = _mod37_36_state(s[prefix_len:], _prefix_state(s[:prefix_len])) if prefix_len else _mod37_36_state(s)
    return _ALNUM36[(37 - p) % 36]


def licence_key(identifier: str) -> str:
    """The licence across its versions: the identifier without its version and check segments."""
    return identifier.rsplit(".", 2)[0]


def parse_day(value: Any) -> date | None:
    """YYYYMMDD or YYYY-MM-DD."""
    return _parse_day(value) if isinstance(value, str) else None


@functools.lru_cache(maxsize=8192)
def _parse_day(value: str) -> date | None:
    """Cached: a batch repeats a few days three times per record (issue date, valid from, valid to)."""
    if len(value) not in (8, 10) or not value[:4].isdigit():
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def validate_record(envelope: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(normalised record, None) or (None, reason in Chinese) for one element of ``records``.

    ``version`` of the result is the identifier's version segment (a new one per amendment);
    ``revision`` is the record's ``version`` field (+1 per status change of that identifier).
    """
    if not isinstance(envelope, dict):
        return None, "记录应为 JSON 对象"
    idem_key = envelope.get("idem_key")
    sequence = envelope.get("sequence")
    record = envelope.get("record")
    if not isinstance(idem_key, str) or not idem_key or len(idem_key) > 200:
        return None, "缺少幂等键 idem_key"
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
        return None, "sequence 应为非负整数"
    if not isinstance(record, dict):
        return None, "缺少 record 对象"
    request_id = envelope.get("request_id")
    if request_id is not None and not (isinstance(request_id, str) and _REQUEST_ID.fullmatch(request_id)):
        return None, "request_id 应为 1–64 位字母、数字或 ._:-"
    try:
        present = _required_values(record)
    except KeyError:
        present = (None,)
    if None in present or "" in present:  # the exact list only for a record that lacks something
        missing = [f for f in REQUIRED_FIELDS if record.get(f) in (None, "")]
        if missing:
            return None, "缺少字段：" + "、".join(missing)
    identifier = record["certificate_identifier"]
    match = _IDENT.match(identifier) if isinstance(identifier, str) else None
    if match is None:
        return None, "证照标识格式不符合 GB/T 36904"
    type_code, issuer, version, check = match.group("type", "issuer", "version", "check")
    if iso7064_mod37_36(identifier[_BODY_START:-2].replace(".", ""), prefix_len=39) != check:
        return None, "证照标识校验位错误"
    revision = record["version"]
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 1:
        return None, "version 应为正整数"
    if record["issuer_code"] != issuer:
        return None, "证照标识中的颁发机构代码与 issuer_code 不一致"
    if record["certificate_type_code"] != type_code:
        return None, "证照标识中的类型代码与 certificate_type_code 不一致"
    if record["holder_code_type"] not in HOLDER_CODE_TYPES:
        return None, "持证主体代码类型应为 111 或 001"
    issue_day = parse_day(record["issue_date"])
    if issue_day is None:
        return None, "颁发日期应为 YYYYMMDD"
    area = record["area_code"]
    if not (isinstance(area, str) and len(area) == 6 and area.isdigit()):
        return None, "管辖属地编码应为 6 位数字"
    for field in ("valid_from", "valid_to"):
        if record.get(field) not in (None, "") and parse_day(record[field]) is None:
            return None, f"{field} 应为 YYYYMMDD"
    return {
        "idem_key": idem_key,
        "sequence": sequence,
        "licence_key": licence_key(identifier),
        "identifier": identifier,
        "version": int(version),
        "revision": revision,
        "issuer_code": record["issuer_code"],
        "issue_day": issue_day.isoformat(),
        "status": str(record["status"]),
        "record": record,
        "request_id": request_id,
    }, None


def digest(rows: Iterable[tuple[str, int, str]]) -> tuple[int, str]:
    """Count and SHA-256 over sorted ``identifier|revision|status`` lines of one issuer and day.

    One line per licence (its latest version held): the identifier carries the version segment,
    ``revision`` (the record's ``version``) counts status changes of that identifier.
    """
    lines = sorted(f"{identifier}|{revision}|{status}\n" for identifier, revision, status in rows)
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode())
    return len(lines), h.hexdigest()
