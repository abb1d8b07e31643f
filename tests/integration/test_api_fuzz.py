"""Schemathesis against /api/openapi.json: no 5xx, every response matches the documented schema.

Bounded so it can run in ``make test``: a fixed number of examples per operation and a
derandomised (fixed-seed) Hypothesis run, once as an anonymous client and once with an admin
token, on data created through the services inside the rolled-back test transaction.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from core.auth import Role
from core.config import Settings
from tests.factories.catalog import DISTRICT, make_department, make_user, published_entry
from tests.factories.licences import make_staff, make_types, person_licence

MAX_EXAMPLES = 8
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def seeded(app: Any, db: Any) -> dict[str, Any]:
    """A department, a published entry, a licence and an admin token, through the services."""
    session = db.session()
    dept = make_department(session, "高港区市场监督管理局")
    entry = published_entry(session, dept)
    make_types(session)
    staff = make_staff(session, "高港区住房和城乡建设局", "MB123456", "fuzz_editor")
    licence = person_licence(session, staff)
    _user, _principal, admin_token = make_user(session, Role.ADMIN, division_code=DISTRICT)
    session.commit()
    return {"entry": entry, "licence": licence, "admin_token": admin_token}


def _published_spec() -> dict[str, Any]:
    """The OpenAPI document as /api/openapi.json serves it (building it touches no database)."""
    from webapp import create_app

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = Settings(
            database_url=f"sqlite:///{folder / 'spec.db'}",
            instance_dir=folder,
            secret_key="fuzz-spec",
            testing=True,
            ratelimit_enabled=False,
            city_registry_database_url=f"sqlite:///{folder / 'registry.db'}",
        )
        response = create_app(settings).test_client().get("/api/openapi.json")
        assert response.status_code == 200
        spec: dict[str, Any] = response.get_json()
        return spec


# The schema is loaded once at import (parametrisation happens at collection). Each case is sent to
# the per-test app on the rolled-back PostgreSQL: the app is set on the operation so that checks
# which re-send a request reach it too.
schema = schemathesis.openapi.from_dict(_published_spec())
schema.config.update(base_url="http://localhost")

# Checks left out for the token client, and why:
# - ignored_auth re-sends without the token through the requests transport, which cannot reach a
#   WSGI app; anonymous refusal of every write is asserted endpoint by endpoint in
#   test_security_roles.py instead.
# - positive_data_acceptance / negative_data_rejection expect JSON Schema to say everything that
#   is valid: check digits (USCC, ID numbers), references to existing rows and cross-field rules
#   (on_time <= finished) are domain rules that answer 422 with field details by design, and
#   marshmallow's lenient booleans (0/1) are accepted on purpose.
TOKEN_EXCLUDED = [
    schemathesis.checks.ignored_auth,
    schemathesis.checks.positive_data_acceptance,
    schemathesis.checks.negative_data_rejection,
]


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_as_anonymous_client_never_errors_and_matches_its_schema(
    case: Any, app: Any, seeded: dict[str, Any]
) -> None:
    case.operation.app = app
    case.call_and_validate()


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_as_admin_never_errors_and_matches_its_schema(
    case: Any, app: Any, seeded: dict[str, Any]
) -> None:
    case.operation.app = app
    case.call_and_validate(
        headers={"Authorization": f"Bearer {seeded['admin_token']}"}, excluded_checks=TOKEN_EXCLUDED
    )
