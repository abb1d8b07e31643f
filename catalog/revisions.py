"""Revisions (修订) of published entries: a service is never taken offline to be changed.

Editing a published entry opens a revision: a draft change in the entry change payload shape
(``{"fields": {...}, "materials": [...], "fees": [...]}`` and any other child list), holding only
what differs from the published entry. The portal, search, the API and the exports keep serving the
published entry while the revision is edited, submitted, rejected or withdrawn. Approval applies the
payload through ``catalog.entries.apply_entry_change`` (the core of ``update_entry``: the same
validation, a new version, reindexing, an audit row). At most one revision per entry is open
(draft, submitted or rejected). ``fields`` may also carry ``no_contact`` (the 不见面审批 flag),
checked by the rule on approval like ``set_no_contact``.

Every function takes a Session and the acting Principal, flushes and never commits; every write
appends an audit row on the entry, so the revision's story reads in the entry's history.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from catalog import permissions
from catalog.entries import (
    ENTRY_CHILD_LISTS,
    _ready_for_review,
    _save_version,
    _snapshot,
    alignment_target,
    apply_alignment,
    apply_entry_change,
    authors_of,
    check_four_eyes,
    get_entry,
    prepare_entry_change,
)
from catalog.inputs import _as_text, _pk, _raise_if, _require
from catalog.models import EntryStatus, EntryVersion, ImplementationEntry
from catalog.revision_models import (
    OPEN_REVISION_STATUSES,
    REVISION_STATUS_LABELS,
    EntryRevision,
    RevisionStatus,
)
from core import audit
from core.auth import Principal
from core.db import compare_and_set
from core.errors import Conflict, Invalid, NotFound
from core.types import utcnow

EDITABLE_STATUSES = (RevisionStatus.DRAFT.value, RevisionStatus.REJECTED.value)
STATUS_WORDS = REVISION_STATUS_LABELS


def open_revision_of(session: Session, entry_id: int | None) -> EntryRevision | None:
    """The entry's open revision (draft, submitted or rejected), if any."""
    return session.exec(
        select(EntryRevision).where(
            EntryRevision.entry_id == entry_id, col(EntryRevision.status).in_(OPEN_REVISION_STATUSES)
        )
    ).first()


def open_revisions_of(session: Session, entry_ids: list[int]) -> dict[int, EntryRevision]:
    """Open revisions of several entries (for lists), by entry id."""
    if not entry_ids:
        return {}
    rows = session.exec(
        select(EntryRevision).where(
            col(EntryRevision.entry_id).in_(entry_ids), col(EntryRevision.status).in_(OPEN_REVISION_STATUSES)
        )
    )
    return {r.entry_id: r for r in rows}


def revisions_to_handle(
    session: Session, actor: Principal, *, limit: int = 50
) -> list[tuple[EntryRevision, ImplementationEntry]]:
    """Open revisions that wait for ``actor``: submitted ones it may review, draft or rejected ones it
    may edit (oldest first). The entries stay published meanwhile, so a status filter cannot find them."""
    rows = session.exec(
        select(EntryRevision, ImplementationEntry)
        .join(ImplementationEntry, col(ImplementationEntry.id) == EntryRevision.entry_id)
        .where(col(EntryRevision.status).in_(OPEN_REVISION_STATUSES))
        .order_by(col(EntryRevision.id))
    )
    out = []
    for revision, entry in rows:
        if revision.status == RevisionStatus.SUBMITTED.value:
            mine = permissions.can_review_entry(actor, entry)
        else:
            mine = permissions.can_edit_entry(actor, entry)
        if mine:
            out.append((revision, entry))
            if len(out) >= limit:
                break
    return out


def entry_revisions(session: Session, entry_id: int) -> list[EntryRevision]:
    """Every revision of an entry, newest first."""
    return list(
        session.exec(
            select(EntryRevision)
            .where(EntryRevision.entry_id == entry_id)
            .order_by(col(EntryRevision.id).desc())
        )
    )


def _text(value: Any, name: str, *, required: bool) -> str | None:
    errors: dict[str, list[str]] = {}
    text = _as_text(value, name, 500, errors, required=required)
    _raise_if(errors)
    return text


def _open_or_conflict(session: Session, entry: ImplementationEntry) -> EntryRevision:
    """The entry's open revision. None open: Conflict when its last revision was already handled
    (approved or withdrawn; e.g. a rejection that waited on PostgreSQL for the entry's lock while an
    approval committed, or a page opened before), NotFound when the entry was never revised."""
    revision = open_revision_of(session, entry.id)
    if revision is not None:
        return revision
    last = session.exec(
        select(EntryRevision)
        .where(EntryRevision.entry_id == entry.id)
        .order_by(col(EntryRevision.id).desc())
        .execution_options(populate_existing=True)  # the status as stored now, not as this session read it
    ).first()
    if last is not None:
        raise Conflict(
            f"该{STATUS_WORDS.get(last.status, last.status)}，当前没有待处理的修订，请刷新后查看",
            {"status": [last.status]},
        )
    raise NotFound("该实施清单没有进行中的修订", {"revision": ["请先发起修订"]})


def _require_status(revision: EntryRevision, allowed: tuple[str, ...]) -> None:
    if revision.status not in allowed:
        raise Conflict(
            f"修订当前为“{STATUS_WORDS.get(revision.status, revision.status)}”，不能执行此操作"
            f"（需为：{'、'.join(STATUS_WORDS[s] for s in allowed)}）",
            {"status": [revision.status]},
        )


def _move(session: Session, revision: EntryRevision, allowed: tuple[str, ...], to: str) -> str:
    """Compare-and-set the revision's status: from the status this request read (one of ``allowed``,
    else Conflict as ``_require_status``) to ``to`` (the same status for an edit), in one conditional
    UPDATE; the status it left is returned. A request that read the revision before another one
    changed its status (approved and rejected at the same moment) matches no row: Conflict, nothing
    written. PostgreSQL already runs these one after the other (the services lock the entry first);
    SQLite has no row locks, and there this is the guard."""
    _require_status(revision, allowed)
    old = revision.status
    if not compare_and_set(session, EntryRevision, revision.id, {"status": old}, status=to):
        raise Conflict("该修订刚被其他人处理（状态已变化），请刷新后重试", {"status": [old]})
    revision.status = to
    return old


def _record(
    session: Session,
    actor: Principal,
    revision: EntryRevision,
    action: str,
    *,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        entity_type="implementation_entry",
        entity_id=revision.entry_id,
        old=old,
        new={"revision_id": revision.id, **(new or {})},
        reason=reason,
    )


def open_revision(session: Session, actor: Principal, entry_id: int, *, reason: Any) -> EntryRevision:
    """Open a revision of a published entry, with the reason (修订原因). The entry stays published.

    Editors of the entry only. Conflict when the entry is not published or already has an open
    revision (the database's partial unique index holds that against concurrent opens too).
    """
    entry = get_entry(session, entry_id, for_update=True)
    _require(permissions.can_edit_entry(actor, entry), "只能修订本部门或本辖区的实施清单")
    text = _text(reason, "reason", required=True) or ""
    if entry.status != EntryStatus.PUBLISHED.value or not entry.applicable:
        raise Conflict(
            "只有已发布的实施清单需要修订；草稿直接编辑，已停用的请重新打开", {"status": [entry.status]}
        )
    existing = open_revision_of(session, entry.id)
    if existing is not None:
        raise Conflict(
            f"该实施清单已有进行中的修订（{STATUS_WORDS.get(existing.status, existing.status)}）",
            {"revision_id": [str(existing.id)]},
        )
    revision = EntryRevision(
        entry_id=_pk(entry),
        base_version=entry.version,
        payload={"fields": {}},
        reason=text,
        created_by=actor.user_id,
        created_by_name=actor.name,
    )
    try:
        with session.begin_nested():
            session.add(revision)
            session.flush()
    except sa.exc.IntegrityError:
        raise Conflict("该实施清单已有进行中的修订") from None
    _record(session, actor, revision, "entry.revision.open", new={"base_version": entry.version}, reason=text)
    return revision


ALIGN = "align"  # payload flag: adopt the upper-level 四同 values (entries.align_entry) on approval


def _split(payload: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields, child lists) of a payload."""
    fields = dict(payload.get("fields") or {})
    lists = {k: v for k, v in payload.items() if k not in ("fields", ALIGN) and v is not None}
    return fields, lists


def _aligns(session: Session, entry: ImplementationEntry, payload: Mapping[str, Any]) -> bool:
    """Whether the payload asks for alignment and alignment would change something."""
    if payload.get(ALIGN) is not True:
        return False
    target = alignment_target(session, entry)
    return any(getattr(entry, k) != v for k, v in target.items())


def _rows(rows: Any) -> list[dict[str, Any]]:
    """Child rows without their position: the order of the list is the position."""
    return [{k: v for k, v in row.items() if k != "position"} for row in rows or []]


def _reduce(session: Session, entry: ImplementationEntry, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Keep only what differs from the published entry, so the diff and the approval are exact."""
    published = _snapshot(session, entry)
    fields, lists = _split(payload)
    kept = {k: v for k, v in fields.items() if published.get(k) != v}
    out: dict[str, Any] = {"fields": kept}
    for name, rows in lists.items():
        if _rows(published.get(name)) != _rows(rows):
            out[name] = _rows(rows)
    if _aligns(session, entry, payload):
        out[ALIGN] = True
    return out


# The child lists an entry change may replace (catalog.entries owns the list).
CHILD_LISTS = ENTRY_CHILD_LISTS


def _validated(session: Session, entry: ImplementationEntry, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload validated by the same rules as ``update_entry`` and coerced to the snapshot's shape."""
    fields, lists = _split(payload)
    if payload.get(ALIGN) not in (None, True, False):
        raise Invalid("align 应为是/否", {ALIGN: ["应为 true 或 false"]})
    unknown = sorted(set(lists) - set(CHILD_LISTS))
    if unknown:
        raise Invalid(
            f"未知的子列表：{'、'.join(unknown)}",
            {name: [f"未知字段；可修改的列表：{'、'.join(CHILD_LISTS)}"] for name in unknown},
        )
    flag = fields.pop("no_contact", None)
    if flag is not None and not isinstance(flag, bool):
        raise Invalid("不见面审批标记应为是/否", {"no_contact": ["应为 true 或 false"]})
    change = prepare_entry_change(session, entry, fields=fields, **lists)
    out = change.payload()
    if flag is not None:
        out["fields"]["no_contact"] = flag
    if payload.get(ALIGN) is True:
        out[ALIGN] = True
    return _reduce(session, entry, out)


def update_revision(
    session: Session,
    actor: Principal,
    entry_id: int,
    *,
    fields: Mapping[str, Any],
    materials: list[dict[str, Any]] | None = None,
    fees: list[dict[str, Any]] | None = None,
    align: bool | None = None,
    **lists: list[dict[str, Any]] | None,
) -> EntryRevision:
    """Change the open revision: ``fields`` are merged into it, a child list given replaces its list;
    ``align`` True asks to adopt the upper-level 四同 values (name, type, basis, code) on approval.

    Validated like ``update_entry`` (Invalid naming every bad field, nothing written); only a draft
    or a rejected revision is edited (Conflict otherwise). The published entry does not change.
    """
    entry = get_entry(session, entry_id, for_update=True)
    _require(permissions.can_edit_entry(actor, entry), "只能修订本部门或本辖区的实施清单")
    revision = _open_or_conflict(session, entry)
    _require_status(revision, EDITABLE_STATUSES)
    current_fields, current_lists = _split(revision.payload or {})
    given = {"materials": materials, "fees": fees, **lists}
    merged = {
        "fields": {**current_fields, **dict(fields)},
        **current_lists,
        **{k: v for k, v in given.items() if v is not None},
        ALIGN: (revision.payload or {}).get(ALIGN, False) if align is None else align,
    }
    payload = _validated(session, entry, merged)
    if payload == revision.payload:
        return revision
    before = proposed_state(session, entry, revision)
    _move(session, revision, EDITABLE_STATUSES, revision.status)  # not submitted meanwhile
    revision.payload = payload
    revision.updated_at = utcnow()
    session.flush()
    after = proposed_state(session, entry, revision)
    # The audit row says what the revision now proposes for each element it touched.
    keys = sorted(k for k in {*before, *after} if before.get(k) != after.get(k))
    _record(
        session,
        actor,
        revision,
        "entry.revision.update",
        old={k: before.get(k) for k in keys},
        new={k: after.get(k) for k in keys},
    )
    return revision


def _apply(session: Session, actor: Principal, entry: ImplementationEntry, revision: EntryRevision) -> None:
    """Write the revision into the entry through the same path as ``update_entry``."""
    fields, lists = _split(revision.payload or {})
    if (revision.payload or {}).get(ALIGN) is True:
        apply_alignment(session, actor, entry, reason=revision.reason)
    flag = fields.pop("no_contact", None)
    old_flag, version = entry.no_contact, entry.version
    if flag is not None:
        # Set first, so the core checks the new data against the rule when the flag is on.
        entry.no_contact = flag
    apply_entry_change(
        session, actor, entry, fields=fields, action="entry.revise", reason=revision.reason, **lists
    )
    if flag is not None and flag != old_flag:
        if entry.version == version:
            _save_version(session, entry, actor)
        audit.record(
            session,
            actor=actor,
            action="entry.no_contact",
            entity_type="implementation_entry",
            entity_id=entry.id,
            old={"no_contact": old_flag},
            new={"no_contact": flag},
            reason=revision.reason,
        )


def _dry_run(session: Session, actor: Principal, entry: ImplementationEntry, revision: EntryRevision) -> None:
    """Apply the revision and run the completeness check in a savepoint that is always rolled back:
    the same checks as approval, without touching the published entry."""
    nested = session.begin_nested()
    try:
        _apply(session, actor, entry, revision)
        _ready_for_review(session, entry)
    finally:
        nested.rollback()
    session.refresh(entry)


def submit_revision(session: Session, actor: Principal, entry_id: int) -> EntryRevision:
    """draft or rejected → submitted (editor). Invalid when the revision changes nothing or the entry
    it would publish is incomplete (the same checks as approval)."""
    entry = get_entry(session, entry_id, for_update=True)
    _require(permissions.can_edit_entry(actor, entry), "只能提交本部门或本辖区的修订")
    revision = _open_or_conflict(session, entry)
    _require_status(revision, EDITABLE_STATUSES)
    fields, lists = _split(revision.payload or {})
    if not fields and not lists and not _aligns(session, entry, revision.payload or {}):
        raise Invalid("修订与已发布版本没有差别，无需提交", {"payload": ["没有改动"]})
    _dry_run(session, actor, entry, revision)
    old = _move(session, revision, EDITABLE_STATUSES, RevisionStatus.SUBMITTED.value)
    revision.submitted_by, revision.submitted_by_name, revision.submitted_at = (
        actor.user_id,
        actor.name,
        utcnow(),
    )
    revision.updated_at = utcnow()
    session.flush()
    _record(
        session,
        actor,
        revision,
        "entry.revision.submit",
        old={"status": old},
        new={"status": revision.status},
    )
    return revision


def withdraw_revision(session: Session, actor: Principal, entry_id: int, reason: Any = None) -> EntryRevision:
    """Withdraw the open revision (editor): the published entry stays as it is."""
    entry = get_entry(session, entry_id, for_update=True)
    _require(permissions.can_edit_entry(actor, entry), "只能撤回本部门或本辖区的修订")
    text = _text(reason, "reason", required=False)
    revision = _open_or_conflict(session, entry)
    old = _move(session, revision, OPEN_REVISION_STATUSES, RevisionStatus.WITHDRAWN.value)
    revision.updated_at = utcnow()
    session.flush()
    _record(
        session,
        actor,
        revision,
        "entry.revision.withdraw",
        old={"status": old},
        new={"status": revision.status},
        reason=text,
    )
    return revision


def reject_revision(session: Session, actor: Principal, entry_id: int, reason: Any) -> EntryRevision:
    """submitted → rejected with a reason (reviewer); the editor sees the reason, edits and resubmits."""
    entry = get_entry(session, entry_id, for_update=True)
    _require(permissions.can_review_entry(actor, entry), "只能审核本部门或本辖区的修订")
    text = _text(reason, "reason", required=True)
    revision = _open_or_conflict(session, entry)
    _move(session, revision, (RevisionStatus.SUBMITTED.value,), RevisionStatus.REJECTED.value)
    revision.reject_reason = text
    revision.decided_by, revision.decided_by_name, revision.decided_at = actor.user_id, actor.name, utcnow()
    revision.updated_at = utcnow()
    session.flush()
    _record(
        session,
        actor,
        revision,
        "entry.revision.reject",
        old={"status": "submitted"},
        new={"status": revision.status},
        reason=text,
    )
    return revision


def approve_revision(session: Session, actor: Principal, entry_id: int) -> EntryRevision:
    """submitted → approved (reviewer): the payload replaces the published values, the entry's version
    goes up, search follows. Under four-eyes review the submitter may not approve (Forbidden). The entry
    is left as it was when the result fails validation or the completeness check (Invalid: the change
    is applied in a savepoint; the revision's claim goes with the caller's rollback, as after every
    refusal)."""
    entry = get_entry(session, entry_id, for_update=True)
    _require(permissions.can_review_entry(actor, entry), "只能审核本部门或本辖区的修订")
    revision = _open_or_conflict(session, entry)
    _require_status(revision, (RevisionStatus.SUBMITTED.value,))
    check_four_eyes(session, actor, authors_of(session, entry, revision))
    if entry.status != EntryStatus.PUBLISHED.value:
        raise Conflict("实施清单已不是已发布状态，修订不能发布", {"status": [entry.status]})
    # Claimed first, so that a concurrent rejection or a second approval of it is refused before
    # anything is applied (and the savepoint below nests in a transaction already begun).
    _move(session, revision, (RevisionStatus.SUBMITTED.value,), RevisionStatus.APPROVED.value)
    with session.begin_nested():
        entry.published_at = utcnow()
        _apply(session, actor, entry, revision)
        _ready_for_review(session, entry)
    revision.applied_version = entry.version
    revision.decided_by, revision.decided_by_name, revision.decided_at = actor.user_id, actor.name, utcnow()
    revision.updated_at = utcnow()
    session.flush()
    _record(
        session,
        actor,
        revision,
        "entry.revision.approve",
        old={"status": "submitted"},
        new={"status": revision.status, "version": entry.version},
    )
    return revision


# ---------------------------------------------------------------- what the reviewer compares


def published_state(session: Session, entry: ImplementationEntry) -> dict[str, Any]:
    """The entry as published now, in the snapshot shape."""
    return _snapshot(session, entry)


def proposed_state(session: Session, entry: ImplementationEntry, revision: EntryRevision) -> dict[str, Any]:
    """The published entry with the revision laid over it: what approval would publish."""
    state = _snapshot(session, entry)
    fields, lists = _split(revision.payload or {})
    if (revision.payload or {}).get(ALIGN) is True:
        state.update(alignment_target(session, entry))
    state.update(fields)
    state.update(lists)
    return state


def last_published_state(session: Session, entry: ImplementationEntry) -> dict[str, Any] | None:
    """The snapshot of the entry's latest published version, or None if it was never published."""
    row = session.exec(
        select(EntryVersion)
        .where(EntryVersion.entry_id == entry.id, EntryVersion.status == EntryStatus.PUBLISHED.value)
        .order_by(col(EntryVersion.id).desc())
        .limit(1)
    ).first()
    return dict(row.snapshot) if row is not None else None
