"""Tables of the review workflow: revisions of published entries and the review settings."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Field, SQLModel

from core.types import UTCDateTime, utcnow


class RevisionStatus(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    APPROVED = "approved"


REVISION_STATUS_LABELS: dict[str, str] = {
    RevisionStatus.DRAFT: "修订草稿",
    RevisionStatus.SUBMITTED: "修订待审核",
    RevisionStatus.REJECTED: "修订已退回",
    RevisionStatus.WITHDRAWN: "修订已撤回",
    RevisionStatus.APPROVED: "修订已发布",
}
# A revision in one of these states is the entry's open revision (at most one per entry).
OPEN_REVISION_STATUSES = (
    RevisionStatus.DRAFT.value,
    RevisionStatus.SUBMITTED.value,
    RevisionStatus.REJECTED.value,
)


class EntryRevision(SQLModel, table=True):
    """修订: a proposed change to a published entry, reviewed before it replaces the published version.

    ``payload`` has the shape of an entry change (``{"fields": {...}, "materials": [...], "fees": [...]}``
    and any other child list) and holds only what differs from the published entry; the published
    entry keeps serving the portal, search, the API and the exports until the revision is approved.
    """

    __tablename__ = "entry_revision"

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="implementation_entry.id", index=True)
    base_version: int  # the entry version the revision was opened on
    status: str = Field(default=RevisionStatus.DRAFT.value, max_length=12)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    reason: str = Field(max_length=500)  # why the revision was opened (修订原因)
    reject_reason: str | None = Field(default=None, max_length=500)
    applied_version: int | None = Field(default=None)  # the entry version the approval produced
    created_by: int | None = Field(default=None)
    created_by_name: str = Field(default="", max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    submitted_by: int | None = Field(default=None)
    submitted_by_name: str | None = Field(default=None, max_length=100)
    submitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decided_by: int | None = Field(default=None)
    decided_by_name: str | None = Field(default=None, max_length=100)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    __table_args__ = (
        # At most one open revision per entry, held by the database against concurrent opens.
        sa.Index(
            "uq_entry_revision_open",
            "entry_id",
            unique=True,
            postgresql_where=sa.text("status IN ('draft', 'submitted', 'rejected')"),
            sqlite_where=sa.text("status IN ('draft', 'submitted', 'rejected')"),
        ),
    )


class ReviewSetting(SQLModel, table=True):
    """Settings of the review workflow an administrator may change (key -> JSON value), audited."""

    __tablename__ = "review_setting"

    key: str = Field(primary_key=True, max_length=60)
    value: Any = Field(sa_type=JSON)
    updated_by: int | None = Field(default=None)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
