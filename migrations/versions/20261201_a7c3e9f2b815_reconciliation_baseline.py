"""reconciliation_baseline: each licence's latest change and per-(issuer, day) sums, kept on write

The digest tree's district side (licenses.reconcile_tree) read the whole outbox on every run (a window
over all rows, two MD5s each). These two tables are kept in the outbox transaction
(licenses.recon_state), so a run that finds nothing reads one row per (issuer, day). Filled here from
the outbox: on PostgreSQL in SQL, on SQLite row by row in Python (SQLite has no MD5).

Revision ID: a7c3e9f2b815
Revises: c6e1f0a9d2b4
Create Date: 2026-12-01 02:40:00

"""
import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'a7c3e9f2b815'
down_revision: str | Sequence[str] | None = 'c6e1f0a9d2b4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLS = "licence_key, idem_key, issuer_code, day, identifier, revision, lstatus, bucket, hi, lo"


def _pg_fill() -> None:
    lk = "substr(identifier, 1, length(identifier) - 6)"
    vseg = "substr(identifier, length(identifier) - 4, 3)"
    md5 = "md5(identifier || '|' || revision || '|' || lstatus)"
    op.execute(
        f"INSERT INTO licence_recon_latest ({_COLS}) SELECT licence_key, idem_key, issuer_code, day, "
        f"identifier, revision, lstatus, md5(licence_key), "
        f"('x00000000' || substr({md5}, 1, 8))::bit(64)::bigint, "
        f"('x00000000' || substr({md5}, 9, 8))::bit(64)::bigint FROM ("
        "SELECT idem_key, issuer_code, to_char(issue_day, 'YYYY-MM-DD') AS day, identifier, "
        f"version AS revision, payload->>'status' AS lstatus, {lk} AS licence_key, "
        f"row_number() OVER (PARTITION BY {lk} ORDER BY {vseg} DESC, version DESC, id) AS rn "
        "FROM licence_outbox WHERE status <> 'skipped') latest WHERE rn = 1")


def _sqlite_fill() -> None:
    conn = op.get_bind()
    latest: dict[str, tuple[tuple[int, int], tuple[object, ...]]] = {}
    rows = conn.execute(sa.text(
        "SELECT idem_key, issuer_code, CAST(issue_day AS TEXT), identifier, version, "
        "json_extract(payload, '$.status') FROM licence_outbox WHERE status <> 'skipped' ORDER BY id"))
    for idem_key, issuer, day, identifier, version, status in rows:
        key, vseg, _check = identifier.rsplit(".", 2)
        rank = (int(vseg), int(version))
        if key in latest and latest[key][0] >= rank:
            continue
        u = int(hashlib.md5(f"{identifier}|{version}|{status or ''}".encode()).hexdigest()[:16], 16)  # noqa: S324
        bucket = hashlib.md5(key.encode()).hexdigest()  # noqa: S324
        latest[key] = (rank, (key, idem_key, issuer, day, identifier, version, status or "", bucket,
                              u >> 32, u & 0xFFFFFFFF))
    values = [dict(zip(_COLS.split(", "), v, strict=True)) for _r, v in latest.values()]
    if values:
        conn.execute(sa.text(f"INSERT INTO licence_recon_latest ({_COLS}) VALUES ("
                             + ", ".join(f":{c}" for c in _COLS.split(", ")) + ")"), values)


def upgrade() -> None:
    op.create_table(
        'licence_recon_latest',
        sa.Column('licence_key', sa.String(length=120), nullable=False),
        sa.Column('idem_key', sa.String(length=140), nullable=False),
        sa.Column('issuer_code', sa.String(length=18), nullable=False),
        sa.Column('day', sa.String(length=10), nullable=False),
        sa.Column('identifier', sa.String(length=120), nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('lstatus', sa.String(length=20), nullable=False),
        sa.Column('bucket', sa.String(length=32), nullable=False),
        sa.Column('hi', sa.BigInteger(), nullable=False),
        sa.Column('lo', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('licence_key'),
    )
    op.create_table(
        'licence_recon_day',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('issuer_code', sa.String(length=18), nullable=False),
        sa.Column('day', sa.String(length=10), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('hi', sa.BigInteger(), nullable=False),
        sa.Column('lo', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    if op.get_bind().dialect.name == "postgresql":
        _pg_fill()
    else:
        _sqlite_fill()
    op.execute("INSERT INTO licence_recon_day (issuer_code, day, n, hi, lo) "
               "SELECT issuer_code, day, count(*), sum(hi), sum(lo) FROM licence_recon_latest "
               "GROUP BY issuer_code, day")
    op.create_index('ix_licence_recon_latest_node', 'licence_recon_latest',
                    ['issuer_code', 'day', 'bucket'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_licence_recon_latest_node', table_name='licence_recon_latest')
    op.drop_table('licence_recon_day')
    op.drop_table('licence_recon_latest')
