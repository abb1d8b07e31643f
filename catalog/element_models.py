"""Child tables of the national element set (standards §1.4): 办理流程 steps, 常见问题 and uploaded files.

Kept apart from catalog/models.py so the element set reads as one piece; the entry's own element
columns are on ImplementationEntry and Material.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime, utcnow


class EntryStep(SQLModel, table=True):
    """办理环节: one step of an entry's 办理流程, with the post that handles it and its time limit."""

    __tablename__ = "entry_step"

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="implementation_entry.id", index=True)
    position: int = Field(default=0)
    name: str = Field(max_length=100)  # 环节
    post: str | None = Field(default=None, max_length=100)  # 承办岗位
    days: int | None = Field(default=None)  # 环节时限
    unit: str | None = Field(default=None, max_length=10)  # TIME_UNITS


class EntryFaq(SQLModel, table=True):
    """常见问题 of an entry."""

    __tablename__ = "entry_faq"

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="implementation_entry.id", index=True)
    position: int = Field(default=0)
    question: str = Field(max_length=500)
    answer: str = Field(sa_type=sa.Text)


class EntryAttachment(SQLModel, table=True):
    """A file uploaded for an entry: 空白表格, 示例样表 or 审批结果样本.

    The bytes live in the database (no path on disk to traverse or execute); ``kind`` is the type
    found by reading the content, and it alone decides the Content-Type it is served with.
    Attachments are never changed: a new upload is a new row, so every entry version keeps its file.
    """

    __tablename__ = "entry_attachment"

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="implementation_entry.id", index=True)
    filename: str = Field(max_length=200)  # the uploader's name, cleaned; only shown and suggested
    kind: str = Field(max_length=10)  # pdf, doc, docx, xls, xlsx, jpg, png
    size: int
    sha256: str = Field(max_length=64)
    data: bytes = Field(sa_type=sa.LargeBinary)
    uploaded_by: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
