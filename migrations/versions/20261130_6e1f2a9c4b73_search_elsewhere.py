"""search: services the district does not handle, with where to go (elsewhere_service)

Revision ID: 6e1f2a9c4b73
Revises: d3f7431c9e55
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.types

revision: str = "6e1f2a9c4b73"
down_revision: str | Sequence[str] | None = "d3f7431c9e55"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "elsewhere_service",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("words", sa.String(length=500), nullable=False),
        sa.Column("body", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("updated_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    # Seed rows frozen here (as the alias seed is). They name the body only: address, phone and link
    # could not be sourced when this was written, so they are NULL ("未填报") and the rows are
    # unverified; the portal says "信息待核实" until an administrator checks and completes them.
    table = sa.table(
        "elsewhere_service",
        sa.column("name", sa.String),
        sa.column("words", sa.String),
        sa.column("body", sa.String),
        sa.column("note", sa.String),
        sa.column("verified", sa.Boolean),
        sa.column("updated_at", core.types.UTCDateTime(timezone=True)),
    )
    now = core.types.utcnow()
    op.bulk_insert(
        table,
        [
            {"name": name, "words": words, "body": body, "note": note, "verified": False, "updated_at": now}
            for name, words, body, note in SEED
        ],
    )


def downgrade() -> None:
    op.drop_table("elsewhere_service")


# (name, "|"-separated search words, body, note). Demo content: the bodies are the usual ones for a
# district of 泰州市, named from general knowledge and not checked against an official source.
SEED: list[tuple[str, str, str, str]] = [
    (
        "住房公积金缴存、提取、贷款",
        "公积金|住房公积金|公积金提取|公积金贷款|公积金缴存",
        "泰州市住房公积金管理中心",
        "演示数据，待核实：住房公积金由市级中心统一管理，不在本区事项目录中；地址、电话请管理员核实后补充。",
    ),
    (
        "机动车驾驶证考试、换证、补证",
        "驾照|驾驶证换证|考驾照|机动车驾驶证|驾照到期",
        "泰州市公安局交通警察支队车辆管理所",
        "演示数据，待核实：本区目录只有拖拉机和联合收割机驾驶证；机动车驾驶证由车辆管理所办理。",
    ),
]
