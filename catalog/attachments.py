"""Files uploaded for an entry (空白表格, 示例样表, 审批结果样本): checks on the way in, rules on the way out.

A file is accepted only when its content is one of the allowed types and agrees with the name's
extension (a script renamed to 申请表.pdf is refused). The bytes are stored in the database and are
only ever sent back as a download with the type found here, never run, never rendered inline.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import zipfile
from typing import Any

from PIL import Image, UnidentifiedImageError
from sqlmodel import Session, col, select

from catalog import permissions
from catalog.element_models import EntryAttachment
from catalog.inputs import _check_id, _pk, _require
from catalog.models import ImplementationEntry, Material
from core import audit
from core.auth import Principal
from core.errors import Invalid, NotFound

MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024  # 5 MiB: a scanned form or a sample licence
# kind -> (Content-Type it is served with, extensions it may be uploaded under)
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pdf": ("application/pdf", (".pdf",)),
    "doc": ("application/msword", (".doc",)),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", (".docx",)),
    "xls": ("application/vnd.ms-excel", (".xls",)),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (".xlsx",)),
    "jpg": ("image/jpeg", (".jpg", ".jpeg")),
    "png": ("image/png", (".png",)),
}
ALLOWED_TEXT = "PDF、Word（doc/docx）、Excel（xls/xlsx）、JPG、PNG"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MAX_ZIP_MEMBERS = 5000


def _ole2_kind(data: bytes) -> str | None:
    """Word 97-2003 and Excel 97-2003 files are both OLE2 compound files; their main stream's
    name (UTF-16 in the directory) tells them apart."""
    if "WordDocument".encode("utf-16-le") in data:
        return "doc"
    if "Workbook".encode("utf-16-le") in data or "Book".encode("utf-16-le") in data:
        return "xls"
    return None


def _ooxml_kind(data: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ZIP_MEMBERS:
                return None
            names = {info.filename for info in infos}
    except (zipfile.BadZipFile, ValueError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    return None


def _image_kind(data: bytes) -> str | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            found = image.format
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    return {"JPEG": "jpg", "PNG": "png"}.get(found or "")


def sniff_kind(data: bytes) -> str | None:
    """The allowed type the bytes really are, or None. Reads the content only, never the name."""
    if data.startswith(b"%PDF-") and b"%%EOF" in data[-2048:]:
        return "pdf"
    if data.startswith(OLE2_MAGIC):
        return _ole2_kind(data)
    if data.startswith(b"PK\x03\x04"):
        return _ooxml_kind(data)
    if data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")):
        return _image_kind(data)
    return None


def clean_filename(name: str) -> str:
    """The last path part, without control or path characters, at most 200 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C" and ch not in '<>:"|?*')
    return base.strip(" .")[-200:] or "file"


def extension_kind(filename: str) -> str | None:
    lower = filename.lower()
    for kind, (_type, extensions) in KINDS.items():
        if lower.endswith(extensions):
            return kind
    return None


def upload_attachment(
    session: Session, actor: Principal, entry_id: int, *, filename: Any, data: Any
) -> EntryAttachment:
    """Store a file for an entry the actor may edit. Invalid (field ``file``, in Chinese) when the name's
    type is not allowed, the content is not that type, it is empty or larger than 5 MiB."""
    entry = session.get(ImplementationEntry, _check_id(entry_id, "实施清单"))
    if entry is None or not permissions.can_view_entry(actor, entry):
        raise NotFound(f"实施清单 {entry_id} 不存在")
    _require(permissions.can_edit_entry(actor, entry), "只能为本部门或本辖区的实施清单上传文件")
    if not isinstance(filename, str) or not isinstance(data, bytes | bytearray):
        raise Invalid("请选择要上传的文件", {"file": ["请选择要上传的文件"]})
    name = clean_filename(filename)
    claimed = extension_kind(name)
    errors: list[str] = []
    if not data:
        errors.append("上传的文件为空")
    elif len(data) > MAX_ATTACHMENT_BYTES:
        errors.append(f"文件不能超过 {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB")
    elif claimed is None:
        errors.append(f"文件类型不允许，只接受 {ALLOWED_TEXT}")
    else:
        found = sniff_kind(bytes(data))
        if found != claimed:
            errors.append(f"文件内容与扩展名不符（不是有效的 {claimed.upper()} 文件），只接受 {ALLOWED_TEXT}")
    if errors:
        raise Invalid("上传文件：" + errors[0], {"file": errors})
    row = EntryAttachment(
        entry_id=_pk(entry),
        filename=name,
        kind=claimed or "",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=bytes(data),
        uploaded_by=actor.user_id,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="entry.attachment",
        entity_type="implementation_entry",
        entity_id=entry.id,
        new={
            "attachment_id": row.id,
            "filename": name,
            "kind": row.kind,
            "size": row.size,
            "sha256": row.sha256,
        },
    )
    return row


def get_attachment(session: Session, actor: Principal, attachment_id: int) -> EntryAttachment:
    """The file if its entry is visible to ``actor`` (published for everyone; drafts to their staff)."""
    row = session.get(EntryAttachment, _check_id(attachment_id, "文件"))
    entry = session.get(ImplementationEntry, row.entry_id) if row is not None else None
    if row is None or entry is None or not permissions.can_view_entry(actor, entry):
        raise NotFound(f"文件 {attachment_id} 不存在")
    return row


def entry_attachments(session: Session, entry_id: int | None) -> list[EntryAttachment]:
    return list(
        session.exec(
            select(EntryAttachment)
            .where(EntryAttachment.entry_id == entry_id)
            .order_by(col(EntryAttachment.id))
        ).all()
    )


def published_file_ids(session: Session, entry: ImplementationEntry) -> set[int]:
    """The files the published version of ``entry`` links: its 审批结果样本 and its materials' 空白表格
    and 示例样表 (what the public entry page offers for download)."""
    ids = {entry.result_sample}
    for blank_form, sample in session.exec(
        select(Material.blank_form, Material.sample).where(Material.entry_id == entry.id)
    ):
        ids.update((blank_form, sample))
    return {i for i in ids if i is not None}


def may_see_file(session: Session, actor: Principal, entry: ImplementationEntry, attachment_id: int) -> bool:
    """Whether ``actor`` may see a file of ``entry``: those who see its working state see every file;
    anyone else only the files the published version links. Files are uploaded to the entry before a
    draft or revision refers to them and their ids are sequential, so a revision's new form or a result
    sample under review is not public until it is published."""
    return permissions.can_view_working_state(actor, entry) or attachment_id in published_file_ids(
        session, entry
    )


def visible_attachments(
    session: Session, actor: Principal, entry: ImplementationEntry
) -> list[EntryAttachment]:
    """The files of ``entry`` that ``actor`` may see (``may_see_file``), in upload order."""
    rows = entry_attachments(session, entry.id)
    if permissions.can_view_working_state(actor, entry):
        return rows
    public = published_file_ids(session, entry)
    return [row for row in rows if row.id in public]


def content_type(kind: str) -> str:
    return KINDS.get(kind, ("application/octet-stream", ()))[0]
