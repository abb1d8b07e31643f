"""licence_type.face_schema: other people's names on a face are fields of type "person"

配偶姓名 (spouse_name) and 法定代表人 (legal_representative) were plain strings, so lists, the staff page
and the audit log showed them whole while the holder's own name was masked. A field of type "person" is
masked like the holder's name wherever that is; existing types that carry these keys as strings are
marked so (an administrator's own choice of another type for them is kept).

Revision ID: c8e4a1f7d293
Revises: 96357455b42e
Create Date: 2026-12-02 14:10:00

"""
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = 'c8e4a1f7d293'
down_revision: str | Sequence[str] | None = '96357455b42e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The keys data/elicence_type_faces.json gives other people's names, frozen here.
PERSON_KEYS = ("spouse_name", "legal_representative")

_type = sa.table("licence_type", sa.column("id", sa.Integer), sa.column("face_schema", sa.JSON))


def _retype(before: str, after: str) -> None:
    conn = op.get_bind()
    for type_id, schema in conn.execute(sa.select(_type.c.id, _type.c.face_schema)).all():
        fields: list[dict[str, Any]] = json.loads(schema) if isinstance(schema, str) else list(schema or [])
        changed = False
        for field in fields:
            if field.get("key") in PERSON_KEYS and field.get("type") == before:
                field["type"] = after
                changed = True
        if changed:
            conn.execute(sa.update(_type).where(_type.c.id == type_id).values(face_schema=fields))


def upgrade() -> None:
    _retype("string", "person")


def downgrade() -> None:
    _retype("person", "string")
