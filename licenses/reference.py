"""Production reference data for the licence catalogue: the national 证照类型 shipped in data/.

The file (data/elicence_type_codes_observed.csv, provenance in data/README.md) lists national
证照类型代码 seen in public code, each with the defining authority and the holder's identifier
type. Rows marked ``confidence=inferred`` are loaded only when asked for: their codes were deduced
from context, not read as such. Nothing here invents a value the file does not state: the
validity rule and the face fields stay unknown (administrators complete them in the catalogue),
and the authority level comes from the division part of the authority's 统一社会信用代码
(GB 32100: characters 3-8).

The demo's local types (made-up codes under a demo authority) are not here: they live in demo/.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from core.auth import Principal
from core.config import PROJECT_ROOT
from core.errors import Invalid
from licenses.models import LicenceType
from licenses.types import create_licence_type

NATIONAL_TYPES_CSV = PROJECT_ROOT / "data" / "elicence_type_codes_observed.csv"
FACES_JSON = PROJECT_ROOT / "data" / "elicence_type_faces.json"
REQUIRED_COLUMNS = ("certificate_type_code", "certificate_type_name", "holder_id_type", "confidence")
HOLDER_ID_TYPES = {"公民身份号码": "111", "统一社会信用代码": "001"}


@dataclass(frozen=True)
class ReferenceType:
    """One row of the reference file, already checked."""

    line: int
    code: str
    name: str
    authority_name: str
    holder_code_type: str
    inferred: bool


def authority_level(authority_uscc: str) -> str:
    """证照定义机构级别 from the registration division in the authority's USCC (characters 3-8)."""
    division = authority_uscc[2:8]
    if division == "100000":
        return "国家级"
    if division.endswith("0000"):
        return "省部级"
    if division.endswith("00"):
        return "地市级"
    return "区县级"


def read_reference_types(path: Path = NATIONAL_TYPES_CSV) -> list[ReferenceType]:
    """The rows of a reference file; Invalid naming the file and line on the first bad row."""
    out: list[ReferenceType] = []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise Invalid(f"{path.name}：缺少列 {', '.join(missing)}", {"file": missing})
        for row in reader:
            line = reader.line_num
            code = (row["certificate_type_code"] or "").strip().upper()
            name = (row["certificate_type_name"] or "").strip()
            holder = HOLDER_ID_TYPES.get((row["holder_id_type"] or "").strip())
            confidence = (row["confidence"] or "").strip()
            if not code or not name:
                raise Invalid(f"{path.name} 第 {line} 行：证照类型代码和名称都不能为空")
            if holder is None:
                raise Invalid(
                    f"{path.name} 第 {line} 行：持证主体代码类型应为“公民身份号码”或“统一社会信用代码”"
                )
            if confidence not in ("explicit", "inferred"):
                raise Invalid(f"{path.name} 第 {line} 行：confidence 应为 explicit 或 inferred")
            out.append(
                ReferenceType(
                    line=line,
                    code=code,
                    name=name,
                    authority_name=(row.get("define_authority_name") or "").strip(),
                    holder_code_type=holder,
                    inferred=confidence == "inferred",
                )
            )
    return out


def reference_faces(path: Path | None = None) -> dict[str, list[dict[str, Any]]]:
    """Face-field schemas of the national types by code (data/elicence_type_faces.json)."""
    data = json.loads((path or FACES_JSON).read_text(encoding="utf-8"))
    return {code: fields for code, fields in data.items() if not code.startswith("_")}


def load_reference_types(
    session: Session,
    actor: Principal,
    path: Path = NATIONAL_TYPES_CSV,
    *,
    include_inferred: bool = False,
) -> int:
    """Add the reference file's types that are not in the catalogue yet (by code); returns how many.

    Each type goes through ``create_licence_type`` (validation, audit row, administrators only).
    Existing types are left as they are: administrators may have completed them. Flushes only.
    """
    existing = set(session.exec(select(LicenceType.code)).all())
    faces = reference_faces()
    added = 0
    for ref in read_reference_types(path):
        if ref.code in existing or (ref.inferred and not include_inferred):
            continue
        try:
            create_licence_type(
                session,
                actor,
                {
                    "code": ref.code,
                    "name": ref.name,
                    "authority_name": ref.authority_name,
                    "authority_level": authority_level(ref.code[:18]),
                    "holder_code_type": ref.holder_code_type,
                    "face_schema": faces.get(ref.code, []),
                },
            )
        except Invalid as exc:
            raise Invalid(f"{path.name} 第 {ref.line} 行：{exc.message}", exc.details) from None
        existing.add(ref.code)
        added += 1
    return added
