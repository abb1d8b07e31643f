"""Tables of the sync to the city registry that are not the outbox itself (licenses.models owns that)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Field, SQLModel

from core.db import table_of
from core.types import UTCDateTime, utcnow
from licenses.models import LicenceOutbox

# Draining reads "pending, oldest first": a partial index holds only the pending rows of the outbox,
# so marking a row sent removes its entry instead of adding one (see the sync migration for figures).
_pending = sa.text("status = 'pending'")
PENDING_INDEX = sa.Index(
    "ix_licence_outbox_pending",
    table_of(LicenceOutbox).c.id,
    postgresql_where=_pending,
    sqlite_where=_pending,
)
# Dead letters (status 'failed') are listed and counted for the operator and the alerts.
_failed = sa.text("status = 'failed'")
FAILED_INDEX = sa.Index(
    "ix_licence_outbox_failed",
    table_of(LicenceOutbox).c.id,
    postgresql_where=_failed,
    sqlite_where=_failed,
)


class SyncLock(SQLModel, table=True):
    """Single-flight lease for a periodic job (outbox sweep, nightly reconciliation).

    A lease, not a session lock: a worker killed while holding it loses it when ``expires_at`` passes.
    """

    __tablename__ = "sync_lock"

    name: str = Field(primary_key=True, max_length=40)
    owner: str | None = Field(default=None, max_length=100)
    acquired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SyncRun(SQLModel, table=True):
    """One run of a sync job (drain, sweep, reconciliation) with its counts, for the status page."""

    __tablename__ = "sync_run"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20, index=True)  # drain / sweep / reconcile
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str = Field(default="running", max_length=20)  # running / ok / interrupted / error
    counts: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    message: str | None = Field(default=None, max_length=1000)


class ReconLatest(SQLModel, table=True):
    """The latest non-skipped change of each licence, as the registry ranks it (对账基线), kept on write
    in the outbox transaction (licenses.recon_state), with its tree bucket and its row hash split into
    two unsigned 32-bit halves (plain SUM adds them without overflow on SQLite and PostgreSQL).

    Read only for the days whose digests differ; the levels above the day read ReconDay."""

    __tablename__ = "licence_recon_latest"

    licence_key: str = Field(primary_key=True, max_length=120)
    idem_key: str = Field(max_length=140)  # the outbox row of that change
    issuer_code: str = Field(max_length=18)
    day: str = Field(max_length=10)  # 颁发日期 of that change, YYYY-MM-DD
    identifier: str = Field(max_length=120)
    revision: int
    lstatus: str = Field(max_length=20)
    bucket: str = Field(max_length=32)  # MD5(licence_key)
    hi: int = Field(sa_type=sa.BigInteger)
    lo: int = Field(sa_type=sa.BigInteger)

    __table_args__ = (sa.Index("ix_licence_recon_latest_node", "issuer_code", "day", "bucket"),)


class ReconDay(SQLModel, table=True):
    """Per (issuer, day) count and digest sum, as an append-only log of deltas: each outbox transaction
    adds one row per day it changes (no row is updated, so writers never wait on a hot day), and the
    reconciliation folds the log into one row per day before reading it (licenses.recon_state)."""

    __tablename__ = "licence_recon_day"

    id: int | None = Field(default=None, primary_key=True)
    issuer_code: str = Field(max_length=18)
    day: str = Field(max_length=10)
    n: int
    hi: int = Field(sa_type=sa.BigInteger)
    lo: int = Field(sa_type=sa.BigInteger)
