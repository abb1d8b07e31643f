"""Existing licence types carrying another person's name as a plain string get the "person" type that
masks it; a key an administrator gave another type keeps it, and the downgrade restores strings."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from tests.conftest import sqlite_at_revision

BEFORE, AFTER = "96357455b42e", "c8e4a1f7d293"
SCHEMA = [
    {"key": "spouse_name", "label": "配偶姓名", "type": "string", "required": True, "max_length": 200},
    {"key": "legal_representative", "label": "法定代表人", "type": "text", "required": True},
    {"key": "gender", "label": "性别", "type": "string"},
]


def _schema(engine: sa.Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        raw = conn.execute(sa.text("SELECT face_schema FROM licence_type WHERE code = 'T'")).scalar_one()
    return json.loads(raw) if isinstance(raw, str) else raw


def test_spouse_name_becomes_a_person_field_and_back(tmp_path: Path) -> None:
    cfg, engine = sqlite_at_revision(tmp_path, BEFORE)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO licence_type (code, name, authority_name, authority_code, authority_level,"
                " holder_code_type, category, face_schema, is_active, created_at, updated_at) VALUES"
                " ('T', '结婚证', '民政部', '11100000000013338W', '国家级', '111', '证', :schema, 1,"
                " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            ),
            {"schema": json.dumps(SCHEMA, ensure_ascii=False)},
        )
    command.upgrade(cfg, AFTER)
    assert [f["type"] for f in _schema(engine)] == ["person", "text", "string"]
    command.downgrade(cfg, BEFORE)
    assert [f["type"] for f in _schema(engine)] == ["string", "text", "string"]
