"""licence: one live licence per (type, issuing department, 证照编号)

A unique index over (type_id, issuer_department_id, number) of the live licences: the current version of
a licence that is valid or suspended (licenses.models.LIVE_NUMBER). Before it, two licences of one type
and one department could carry the same printed number (concurrent issues, or a number typed twice).
Versions an amendment superseded, and licences that ended (注销, 吊销, 撤销, 作废), are outside it: an
amendment keeps its number, and a 补发 certificate may take over the lost one's. The 电子证照标识 does not
guarantee this: it is built from the 流水号, not from the number. An index, not a constraint: SQLite
would rebuild the table, which other tables reference.

If the live licences already hold a number twice, the upgrade stops before changing anything and lists
the numbers (type, department, number, the identifiers that carry it). What an operator does then: for
each listed number, decide with the issuing department which licence rightly carries it, and give the
other one its correct number by a 变更 (an amendment with the new "number": POST
/api/v1/licences/<id>/amend, or the amend form of the staff licence page), or end it (注销 / 作废) if
it was issued in error; then run the upgrade again. Nothing is changed automatically: which certificate keeps a printed number is a legal decision.

Revision ID: 834838d12e0d
Revises: c8e4a1f7d293
Create Date: 2026-12-02 15:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '834838d12e0d'
down_revision: str | Sequence[str] | None = 'c8e4a1f7d293'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# licenses.models.LIVE_NUMBER at this revision.
LIVE = "is_current AND status IN ('valid', 'suspended')"
SHOWN = 20  # duplicate numbers listed in the message (all are counted)


def duplicates(conn: sa.Connection) -> list[tuple[str, str, str, int, str]]:
    """(type code, department USCC, number, count, identifiers) of every number live licences share."""
    groups = conn.execute(sa.text(
        f"SELECT type_id, issuer_department_id, number, count(*) FROM licence WHERE {LIVE} "
        "GROUP BY type_id, issuer_department_id, number HAVING count(*) > 1 "
        "ORDER BY type_id, issuer_department_id, number"
    )).all()
    found = []
    for type_id, department_id, number, count in groups:
        rows = conn.execute(
            sa.text(
                f"SELECT type_code, issuer_code, identifier FROM licence WHERE {LIVE} "
                "AND type_id = :t AND issuer_department_id = :d AND number = :n ORDER BY id"
            ),
            {"t": type_id, "d": department_id, "n": number},
        ).all()
        found.append((rows[0][0], rows[0][1], number, int(count), ", ".join(r[2] for r in rows)))
    return found


def upgrade() -> None:
    found = duplicates(op.get_bind())
    if found:
        lines = "\n".join(
            f"  type {code}, issuer {issuer}, number {number!r}: {count} licences ({identifiers})"
            for code, issuer, number, count, identifiers in found[:SHOWN]
        )
        more = f"\n  ... and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
        raise RuntimeError(
            f"licence numbers are not unique: {len(found)} number(s) are carried by more than one live "
            f"licence of the same type and issuing department (证照编号重复):\n{lines}{more}\n"
            "Nothing was changed. Give each listed licence but one its correct number by an amendment "
            "(变更), or end the one issued in error (注销/作废), then run the upgrade again "
            "(see this migration's docstring)."
        )
    op.create_index(
        "uq_licence_number",
        "licence",
        ["type_id", "issuer_department_id", "number"],
        unique=True,
        postgresql_where=sa.text(LIVE),
        sqlite_where=sa.text(LIVE),
    )


def downgrade() -> None:
    op.drop_index("uq_licence_number", table_name="licence")
