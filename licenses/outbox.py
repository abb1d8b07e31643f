"""The sync outbox writes: one ``licence_outbox`` row per licence change, in the caller's transaction,
so a change and the record the sync sends (licenses.sync) are committed together or not at all.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from core.types import utcnow
from licenses import recon_state
from licenses.models import Licence, LicenceOutbox
from licenses.sync import current_request_id


def outbox_payload(licence: Any, operation: str) -> dict[str, Any]:
    """The up_lic_data record (standards §3.3) of one licence version, JSON-serialisable."""
    return {
        "certificate_identifier": licence.identifier,
        "certificate_type_code": licence.type_code,
        "certificate_type_name": licence.type_name,
        "certificate_name": licence.type_name,
        "certificate_number": licence.number,
        "holder_name": licence.holder_name,
        "holder_code": licence.holder_code,
        "holder_code_type": licence.holder_code_type,
        "issuer_name": licence.issuer_name,
        "issuer_code": licence.issuer_code,
        "issue_date": licence.issue_date.isoformat(),
        "area_code": licence.area_code,
        "valid_from": licence.valid_from.isoformat(),
        "valid_to": licence.valid_to.isoformat() if licence.valid_to else None,
        "status": licence.status,
        "version": licence.revision,
        "operation": operation,
    }


def outbox_row(licence: Any, operation: str, request_id: str | None = None) -> dict[str, Any]:
    """Values of one outbox row; ``request_id`` defaults to the web request being served, if any."""
    now = utcnow()
    return {
        "licence_id": licence.id,
        "identifier": licence.identifier,
        "version": licence.revision,
        "operation": operation,
        "payload": outbox_payload(licence, operation),
        "issuer_code": licence.issuer_code,
        "issue_day": licence.issue_date,
        "status": "pending",
        "attempts": 0,
        "idem_key": f"{licence.identifier}:{licence.revision}",
        "created_at": now,
        "updated_at": now,
        "request_id": request_id or current_request_id(),
    }


def record_change(
    session: Session, licence: Licence, operation: str, *, request_id: str | None = None
) -> LicenceOutbox:
    """Write the outbox row of one licence change in the caller's transaction (flushes, never commits).

    ``version`` is the licence's ``revision`` (1 at issue, +1 per status change of the same
    identifier); an amendment is a new identifier starting again at revision 1. The idempotency key
    ``identifier:version`` is therefore unique per change.

    The row keeps the request id of the web request that made the change (``request_id``, else the
    one bound for the current request, ``licenses.sync.current_request_id``; None outside a request),
    so the worker's and the registry's log lines of this record can be found by that id.

    The reconciliation baseline (licenses.recon_state) follows in the same transaction.
    """
    if operation not in ("issue", "amend", "suspend", "resume", "revoke"):
        raise ValueError(f"unknown outbox operation {operation!r}")
    values = outbox_row(licence, operation, request_id)
    row = LicenceOutbox(**values)
    session.add(row)
    session.flush()
    recon_state.note_changes(session, [recon_state.Change.of_outbox(values)])
    return row
