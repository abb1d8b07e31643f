"""app_user: one account per user name whatever its case; sign-in finds names case-blind

A unique index on lower(username). core.users already refused a name that differs from another only
in case (ATK_ED1 beside atk_ed1); the index makes that hold against two creates at the same moment,
and serves sign-in, which now looks names up by lower(username) ("Admin" signs in as "admin"). On
SQLite, an index on an expression (3.9+); no table rebuild.

Failed logins (login_failure) are counted per name typed, under the SHA-256 of the name; they are now
counted under the digest of the lower-cased name, so that typing a name in another case does not start
a fresh count. The rows of accounts whose name has capitals are moved to the new key here, so a count
or a lock in progress survives the upgrade. Where a row already holds the new key it counted a name
that named no account before this change (every such attempt failed whatever the password): it gives
way to the account's own row.

If two accounts already have names that differ only in case, the upgrade stops before changing
anything and lists them. What an operator does then: decide with their holders which account keeps
the name, rename the other (``UPDATE app_user SET username = '<new name>' WHERE id = <id>``: audit rows
refer to accounts by id, and its holder signs in with the new name), or deactivate it if it is not
used, then run the upgrade again.

Revision ID: 6c1c3ad14363
Revises: 834838d12e0d
Create Date: 2026-12-02 17:00:00

"""
import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '6c1c3ad14363'
down_revision: str | Sequence[str] | None = '834838d12e0d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_app_user_username_lower"
SHOWN = 20  # groups of names listed in the message (all are counted)

_user = sa.table("app_user", sa.column("id", sa.Integer), sa.column("username", sa.String))
_failure = sa.table("login_failure", sa.column("name_digest", sa.String))


def _digest(name: str) -> str:
    # core.login.name_digest at this revision (user names are ASCII: lower() is core.auth.username_key).
    return hashlib.sha256(name.encode()).hexdigest()


def duplicates(conn: sa.Connection) -> list[list[tuple[int, str]]]:
    """The accounts, (id, username), of every name that more than one account has in some case."""
    folded = sa.func.lower(_user.c.username)
    keys = conn.execute(
        sa.select(folded).group_by(folded).having(sa.func.count() > 1).order_by(folded)
    ).scalars().all()
    return [
        [(int(i), str(n)) for i, n in conn.execute(
            sa.select(_user.c.id, _user.c.username).where(folded == key).order_by(_user.c.id)
        ).all()]
        for key in keys
    ]


def _capitalised(conn: sa.Connection) -> list[str]:
    return [str(n) for n in conn.execute(
        sa.select(_user.c.username).where(_user.c.username != sa.func.lower(_user.c.username))
    ).scalars()]


def _move(conn: sa.Connection, old: str, new: str) -> None:
    if conn.execute(sa.select(_failure.c.name_digest).where(_failure.c.name_digest == old)).first() is None:
        return
    conn.execute(sa.delete(_failure).where(_failure.c.name_digest == new))
    conn.execute(sa.update(_failure).where(_failure.c.name_digest == old).values(name_digest=new))


def upgrade() -> None:
    conn = op.get_bind()
    found = duplicates(conn)
    if found:
        lines = "\n".join(
            "  " + ", ".join(f"{name!r} (id {user_id})" for user_id, name in group) for group in found[:SHOWN]
        )
        more = f"\n  ... and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
        raise RuntimeError(
            f"user names are not unique whatever their case: {len(found)} name(s) are held by more than "
            f"one account (用户名仅大小写不同):\n{lines}{more}\n"
            "Nothing was changed. Rename all accounts of each listed group but one (UPDATE app_user SET "
            "username = '<new name>' WHERE id = <id>), or deactivate the unused one after renaming it, "
            "then run the upgrade again (see this migration's docstring)."
        )
    for name in _capitalised(conn):
        _move(conn, _digest(name), _digest(name.lower()))
    op.create_index(INDEX, "app_user", [sa.text("lower(username)")], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="app_user")
    conn = op.get_bind()
    for name in _capitalised(conn):
        _move(conn, _digest(name.lower()), _digest(name))
