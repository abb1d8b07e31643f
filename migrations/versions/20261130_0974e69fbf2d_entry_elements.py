"""the national element set of an entry; not recorded is NULL, not a default

Revision ID: 0974e69fbf2d
Revises: 5e1a9c3d7b20
Create Date: 2026-11-30 18:10:00

Online-safe: new nullable columns and new tables; NOT NULL and the defaults are dropped (a catalogue
change on PostgreSQL, no rewrite); the backfill runs in batches of ids.

Which of today's values did nobody enter (the rule, issue #12 item 2):

- Before this revision, a claim (``claim_item``), the importer and the demo created every entry with
  column defaults: visits 1, project_type 2 (承诺件), result_delivery "window", both time units
  "working" and accept_conditions "". Those values were then shown as facts (最多跑一次, 不收费).
- The only way a person (form, API or CLI) changed an entry's elements was ``update_entry``, and every
  call that changed anything wrote an audit row ``entry.update`` for that entry. The staff form sends
  every element at once, so a person who saved it affirmed each value shown, defaults included.
- Therefore: an entry with **no** ``entry.update`` audit row never had its elements entered by
  anyone (claimed or imported, perhaps published, never edited). Its columns that still hold the old
  defaults become NULL (未填报), and so does the 需到现场的原因 the importer wrote for every row
  ("需到窗口提交材料或领取结果"). An entry with at least one ``entry.update`` row keeps its values.
  (A partial API PATCH that did not name, say, visits is indistinguishable from a form save; such an
  entry keeps its value, and the quality check is where a doubtful value gets asked about.)
- For every entry, whatever its history: an empty 受理条件 or 结果送达方式 is NULL (an empty text is not
  a recorded fact), a time unit without its number of days is NULL, and a material's 份数 0 is NULL
  (份数 is at least 1 when recorded).
- 是否收费 (charges) is new: TRUE where fee rows were recorded, NULL everywhere else (no fee row was
  read as 不收费 before; it now reads 信息待补充 until someone records 不收费).

The downgrade puts the old defaults back into the NULLs (so it is lossy for "not recorded").
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.types

revision: str = '0974e69fbf2d'
down_revision: str | Sequence[str] | None = '5e1a9c3d7b20'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000

ENTRY_COLUMNS: list[tuple[str, sa.types.TypeEngine]] = [
    ('subject_nature', sqlmodel.sql.sqltypes.AutoString(length=20)),
    ('entrusted_department', sqlmodel.sql.sqltypes.AutoString(length=200)),
    ('joint_bodies', sqlmodel.sql.sqltypes.AutoString(length=500)),
    ('power_source', sqlmodel.sql.sqltypes.AutoString(length=20)),
    ('handle_item', sqlmodel.sql.sqltypes.AutoString(length=20)),
    ('service_objects', sqlmodel.sql.sqltypes.AutoString(length=40)),
    ('special_procedure', sa.Text()),
    ('anticipate_explain', sqlmodel.sql.sqltypes.AutoString(length=500)),
    ('promise_explain', sqlmodel.sql.sqltypes.AutoString(length=500)),
    ('charges', sa.Boolean()),
    ('in_hall', sa.Boolean()),
    ('handle_area', sqlmodel.sql.sqltypes.AutoString(length=20)),
    ('quantity_limit', sqlmodel.sql.sqltypes.AutoString(length=500)),
    ('result_type', sqlmodel.sql.sqltypes.AutoString(length=20)),
    ('result_name', sqlmodel.sql.sqltypes.AutoString(length=200)),
    ('result_sample', sa.Integer()),
    ('complaint_phone', sqlmodel.sql.sqltypes.AutoString(length=40)),
    ('review_channel', sqlmodel.sql.sqltypes.AutoString(length=500)),
    ('litigation_channel', sqlmodel.sql.sqltypes.AutoString(length=500)),
    ('mobile_url', sqlmodel.sql.sqltypes.AutoString(length=500)),
    ('pay_online', sa.Boolean()),
]
MATERIAL_COLUMNS: list[tuple[str, sa.types.TypeEngine]] = [
    ('source_channel', sqlmodel.sql.sqltypes.AutoString(length=20)),
    ('original', sqlmodel.sql.sqltypes.AutoString(length=10)),
    ('accept_standard', sqlmodel.sql.sqltypes.AutoString(length=500)),
    ('basis', sqlmodel.sql.sqltypes.AutoString(length=500)),
    ('blank_form', sa.Integer()),
    ('sample', sa.Integer()),
]
# Columns that had a default and now mean "not recorded" when NULL, with the old default.
OLD_DEFAULTS: list[tuple[str, sa.types.TypeEngine, object]] = [
    ('accept_conditions', sa.Text(), ''),
    ('anticipate_unit', sqlmodel.sql.sqltypes.AutoString(length=10), 'working'),
    ('promise_unit', sqlmodel.sql.sqltypes.AutoString(length=10), 'working'),
    ('project_type', sqlmodel.sql.sqltypes.AutoString(length=1), '2'),
    ('visits', sa.Integer(), 1),
    ('result_delivery', sqlmodel.sql.sqltypes.AutoString(length=40), 'window'),
]

# The importer wrote this reason for a visit nobody had recorded; on a never-edited entry it is not a fact.
IMPORTED_VISITS_REASON = '需到窗口提交材料或领取结果'
NEVER_EDITED = (
    "NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.entity_type = 'implementation_entry'"
    " AND a.action = 'entry.update' AND a.entity_id = CAST(implementation_entry.id AS VARCHAR(100)))"
)


def _sqlite_foreign_keys(on: bool) -> None:
    """SQLite (the embedded mode only) rebuilds a table to change NOT NULL, and other tables point at
    implementation_entry: SQLite's documented procedure is to switch foreign keys off around the
    rebuild. The pragma is ignored inside a transaction, so the migration's transaction is committed
    first (on SQLite this revision is therefore not atomic with the ones before it)."""
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        return
    raw = bind.connection.driver_connection
    if on:
        broken = raw.execute('PRAGMA foreign_key_check').fetchall()
        if broken:
            raise RuntimeError(f'foreign keys broken by the rebuild: {broken[:5]}')
    raw.commit()
    raw.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")


def upgrade() -> None:
    _sqlite_foreign_keys(on=False)
    with op.batch_alter_table('implementation_entry', schema=None) as batch_op:
        for name, type_ in ENTRY_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
        batch_op.add_column(
            sa.Column('demo_content', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        for name, type_, _default in OLD_DEFAULTS:
            batch_op.alter_column(name, existing_type=type_, nullable=True)
    with op.batch_alter_table('entry_material', schema=None) as batch_op:
        for name, type_ in MATERIAL_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
        batch_op.alter_column('copies', existing_type=sa.Integer(), nullable=True)

    op.create_table(
        'entry_step',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('entry_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column('post', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column('days', sa.Integer(), nullable=True),
        sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.ForeignKeyConstraint(['entry_id'], ['implementation_entry.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'entry_faq',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('entry_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('question', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('answer', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['entry_id'], ['implementation_entry.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'entry_attachment',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('entry_id', sa.Integer(), nullable=False),
        sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('uploaded_by', sa.Integer(), nullable=True),
        sa.Column('created_at', core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['entry_id'], ['implementation_entry.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    for table in ('entry_step', 'entry_faq', 'entry_attachment'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f'ix_{table}_entry_id'), ['entry_id'], unique=False)

    _sqlite_foreign_keys(on=True)
    _backfill_not_recorded()


def _id_batches(table: str) -> list[tuple[int, int]]:
    low, high = op.get_bind().execute(sa.text(f'SELECT MIN(id), MAX(id) FROM {table}')).one()  # noqa: S608 - fixed table names
    if low is None:
        return []
    return [(start, start + BATCH - 1) for start in range(int(low), int(high) + 1, BATCH)]


def _backfill_not_recorded() -> None:
    """See the module docstring for the rule."""
    bind = op.get_bind()
    for low, high in _id_batches('implementation_entry'):
        window = {'low': low, 'high': high}
        bind.execute(
            sa.text(
                'UPDATE implementation_entry SET'
                " visits = CASE WHEN visits = 1 THEN NULL ELSE visits END,"
                " project_type = CASE WHEN project_type = '2' THEN NULL ELSE project_type END,"
                " result_delivery = CASE WHEN result_delivery = 'window' THEN NULL ELSE result_delivery END,"
                " anticipate_unit = CASE WHEN anticipate_unit = 'working' THEN NULL ELSE anticipate_unit END,"
                " promise_unit = CASE WHEN promise_unit = 'working' THEN NULL ELSE promise_unit END,"
                " visits_reason = CASE WHEN visits_reason = :imported_reason THEN NULL ELSE visits_reason END"
                f' WHERE id BETWEEN :low AND :high AND {NEVER_EDITED}'
            ),
            window | {'imported_reason': IMPORTED_VISITS_REASON},
        )
        bind.execute(
            sa.text(
                'UPDATE implementation_entry SET'
                " accept_conditions = CASE WHEN TRIM(accept_conditions) = '' THEN NULL"
                ' ELSE accept_conditions END,'
                " result_delivery = CASE WHEN result_delivery = '' THEN NULL ELSE result_delivery END,"
                ' anticipate_unit = CASE WHEN anticipate_days IS NULL THEN NULL ELSE anticipate_unit END,'
                ' promise_unit = CASE WHEN promise_days IS NULL THEN NULL ELSE promise_unit END,'
                ' charges = CASE WHEN EXISTS (SELECT 1 FROM entry_fee f'
                ' WHERE f.entry_id = implementation_entry.id) THEN TRUE ELSE NULL END'
                ' WHERE id BETWEEN :low AND :high'
            ),
            window,
        )
    for low, high in _id_batches('entry_material'):
        bind.execute(
            sa.text('UPDATE entry_material SET copies = NULL WHERE copies = 0 AND id BETWEEN :low AND :high'),
            {'low': low, 'high': high},
        )


def downgrade() -> None:
    _sqlite_foreign_keys(on=False)
    bind = op.get_bind()
    for name, _type, default in OLD_DEFAULTS:
        bind.execute(
            sa.text(f'UPDATE implementation_entry SET {name} = :value WHERE {name} IS NULL'),  # noqa: S608 - fixed names
            {'value': default},
        )
    bind.execute(sa.text('UPDATE entry_material SET copies = 1 WHERE copies IS NULL'))
    for table in ('entry_attachment', 'entry_faq', 'entry_step'):
        op.drop_table(table)
    with op.batch_alter_table('entry_material', schema=None) as batch_op:
        batch_op.alter_column('copies', existing_type=sa.Integer(), nullable=False)
        for name, _type in reversed(MATERIAL_COLUMNS):
            batch_op.drop_column(name)
    with op.batch_alter_table('implementation_entry', schema=None) as batch_op:
        for name, type_, _default in OLD_DEFAULTS:
            batch_op.alter_column(name, existing_type=type_, nullable=False)
        batch_op.drop_column('demo_content')
        for name, _type in reversed(ENTRY_COLUMNS):
            batch_op.drop_column(name)
    _sqlite_foreign_keys(on=True)
