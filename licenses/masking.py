"""Masking of personal data on lists, exports and public pages (e.g. ``321203********123X``).

Only the issuing department sees holder names and codes whole, and each such read is audited
(licenses.queries.read_full_licence).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import object_session

from licenses.models import LicenceType


def mask_code(code: str | None) -> str:
    """Keep the first 6 (area) and the last 4 characters of an 18-character code."""
    if not code:
        return ""
    if len(code) <= 4:
        return "*" * len(code)
    if len(code) < 12:
        return code[:2] + "*" * (len(code) - 4) + code[-2:]
    return code[:6] + "*" * (len(code) - 10) + code[-4:]


def mask_name(name: str | None, holder_code_type: str = "111") -> str:
    """A person keeps the family name (``张**``); an organisation its first 2 and last 4 characters."""
    if not name:
        return ""
    if holder_code_type == "001" and len(name) > 6:
        return name[:2] + "*" * (len(name) - 6) + name[-4:]
    if len(name) == 1:
        return "*"
    return name[0] + "*" * (len(name) - 1)


def mask_face(face: dict[str, Any] | None, schema: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The face fields with every other person's name (type ``person``) masked like a holder's."""
    people = {f["key"] for f in schema or [] if f.get("type") == "person"}
    return {k: mask_name(v) if k in people and isinstance(v, str) else v for k, v in (face or {}).items()}


def face_schema_of(licence: Any) -> list[dict[str, Any]]:
    """The face-field definitions of a licence's type, read through the session the licence belongs to
    (the identity map answers repeats: one query per type on a list)."""
    session = object_session(licence)
    lt = session.get(LicenceType, licence.type_id) if session is not None and licence.type_id else None
    return list(lt.face_schema or []) if lt is not None else []
