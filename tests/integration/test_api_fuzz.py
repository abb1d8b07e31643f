"""Schemathesis against /api/openapi.json: no 5xx, every response matches the documented schema,
with all of schemathesis' checks (exclusions below, each with its reason).

Bounded so it can run in ``make test``: every case of schemathesis' coverage phase (each field's
boundaries and wrong types, the part that finds 500s) and a few random examples per operation
(``FUZZ_EXAMPLES``, 4 by default; ``make fuzz`` runs 50) in a derandomised (fixed-seed) Hypothesis
run, on data created through the services inside the rolled-back test transaction.

Schemathesis sends control characters (NUL included) on both sides of the patterns the document
states for every text field and path segment (core.input_guard). What it cannot generate (lone
surrogates, deep nesting, oversized bodies) is sent to every operation by the hostile-input test
at the end.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import load_all_checks
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.generation.meta import TestPhase
from schemathesis.pytest._test_builder import build_operation_test
from schemathesis.python._constants.orchestrator import make_constants_value_source

from core.auth import Role
from tests.factories.catalog import make_department, make_user, published_entry
from tests.factories.licences import make_staff, make_types, person_licence
from tests.factories.security import published_spec

# The module's app and world are built once per xdist group (see ``seeded``): the hostile-input test is
# one group and the fuzz three (``fuzz_group``), so they run side by side.
XDIST_GROUP_PER_TEST_FUNCTION = True

# Random examples per operation after the coverage phase. 4 in ``make test``: at 8 they cost a third of
# this module's time (about 10 % of the whole suite's) for cases the coverage phase mostly already sends.
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def seeded(module_app: Any, module_db: Any) -> dict[str, Any]:
    """A department, a published entry, a licence and an admin token, through the services: built once
    for the module (tests/conftest.py, "one app and one world per module"); what a test's requests
    write is rolled back after it."""
    session = module_db.session()
    dept = make_department(session, "高港区市场监督管理局")
    entry = published_entry(session, dept)
    make_types(session)
    staff = make_staff(session, "高港区住房和城乡建设局", "MB123456", "fuzz_editor")
    licence = person_licence(session, staff)
    _user, _principal, admin_token = make_user(session, Role.ADMIN)
    session.commit()
    session.close()
    return {"entry": entry, "licence": licence, "admin_token": admin_token}


@pytest.fixture
def db(module_db: Any, per_test_savepoint: None) -> Any:
    return module_db


@pytest.fixture
def app(module_app: Any, per_test_savepoint: None) -> Any:
    return module_app


SPEC = published_spec()
schema = schemathesis.openapi.from_dict(SPEC)
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


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path, operation with the path's shared parameters) for every operation of the document."""
    ops = []
    for path, item in SPEC["paths"].items():
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                ops.append((method.upper(), path, {**op, "parameters": shared + op.get("parameters", [])}))
    return ops


def _protected(op: dict[str, Any]) -> bool:
    return bool(op.get("security"))


# One test per operation, parametrized by its label and built when it runs: schemathesis builds an
# operation's coverage cases when it builds its Hypothesis test, and with ``schema.parametrize()`` that
# happened at collection, for all 83 operations, in every xdist worker (collecting this module took
# 8.8 s; 1.6 s now). Built at run time, each operation's cases are built once, by the worker that runs
# it. Same phases, settings, seed and checks as ``schema.parametrize()``: the test is built by the
# function schemathesis' own pytest plugin uses (a private module, hence the version range in
# pyproject.toml).
OPERATIONS = {f"{method} {path}": op for method, path, op in _operations()}
LABELS = list(OPERATIONS)
# Three xdist groups of operations (``fuzz_group``): each built module fixture is shared by a third of
# the operations, and three workers fuzz at once.
FUZZ_GROUPS = 3


@functools.cache
def _feedback() -> FeedbackSources:
    return FeedbackSources(constants_value_source=make_constants_value_source(schema))


def fuzz_group(label: str) -> str:
    return f"{__name__}::fuzz{LABELS.index(label) % FUZZ_GROUPS}"


@pytest.mark.parametrize(
    "label", [pytest.param(label, marks=pytest.mark.xdist_group(fuzz_group(label))) for label in LABELS]
)
def test_api_as_anonymous_client_and_as_admin_never_errors_and_matches_its_schema(
    label: str, app: Any, seeded: dict[str, Any]
) -> None:
    """Every generated case of an operation that needs a token is sent with the admin token; every
    case of an operation anyone may call is sent anonymously, and its random examples with the admin
    token as well.

    An operation that needs a token answers an anonymous caller 401 before it reads any input: that is
    asserted for every such operation with hostile input by the test below and role by role in
    test_security_roles.py, so sending it every generated case anonymously (about a third of this
    test's request time) would only check the same 401 again. A public operation validates its input
    the same way for both callers, so its coverage cases (boundaries and wrong types, field by field)
    go to the public side only, the one an attacker reaches."""
    method, path = label.split(" ", 1)
    public = not _protected(OPERATIONS[label])

    @FUZZ_SETTINGS
    def check(case: Any) -> None:
        case.operation.app = app
        if public:
            case.call_and_validate()
            if case.meta is not None and case.meta.phase.name == TestPhase.COVERAGE:
                return
        case.call_and_validate(
            headers={"Authorization": f"Bearer {seeded['admin_token']}"}, excluded_checks=TOKEN_EXCLUDED
        )

    load_all_checks()
    run = build_operation_test(
        config=schema.config, operation=schema[path][method], test_func=check, given_kwargs={},
        feedback=_feedback(),
    )
    run()


# ---- hostile input schemathesis cannot generate, on every operation --------------------------------

HOSTILE_TEXT = ["a\x00b", "\x1b", "\x7f", "x\x85y", "\ud800"]
JSON = "application/json"
DEEP_JSON = "[" * 100_000
OVERSIZED = b'{"name": "' + b"x" * (21 * 1024 * 1024) + b'"}'  # beyond MAX_CONTENT_LENGTH (20 MiB)


def _url(path: str, params: list[dict[str, Any]], hostile: str | None = None) -> str:
    """The path with its parameters filled in: ids 1, strings of their documented length made of
    ``hostile`` (one character) or of "a"."""
    for p in params:
        if p["in"] != "path":
            continue
        schema_ = p.get("schema", {})
        size = max(schema_.get("minLength", 1), 1)
        value = "1" if schema_.get("type") == "integer" else (hostile or "a") * size
        path = path.replace("{" + p["name"] + "}", quote(value, safe=""))
    return path


def _body_properties(op: dict[str, Any]) -> list[str]:
    content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    ref = content.get("schema", {}).get("$ref", "")
    component = SPEC["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {}) if ref else {}
    return list(component.get("properties", {})) or ["name"]


def _assert_refused(response: Any, allowed: set[int], what: str) -> None:
    assert response.status_code in allowed, (what, response.status_code, response.data[:300])
    body = response.get_json()
    assert body is not None, (what, response.data[:300])
    assert set(body) == {"code", "message", "details"}, (what, body)


@pytest.mark.parametrize("as_admin", [False, True], ids=["anonymous", "admin"])
def test_every_operation_refuses_control_characters_surrogates_deep_nesting_and_oversized_bodies(
    app: Any, seeded: dict[str, Any], as_admin: bool
) -> None:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {seeded['admin_token']}"} if as_admin else {}
    for method, path, op in _operations():
        params = op["parameters"]
        # Anonymous callers of a protected operation hear 401 before anything about their input.
        refused = {401} if _protected(op) and not as_admin else {422}
        for text in HOSTILE_TEXT:
            in_url = text != "\ud800"  # a URL cannot carry a lone surrogate: bodies only
            text_in_path = any(p["in"] == "path" and p["schema"].get("type") != "integer" for p in params)
            if in_url and text_in_path:
                url = _url(path, params, hostile=text[1] if len(text) == 3 else text[0])
                r = client.open(url, method=method, headers=headers)
                _assert_refused(r, refused, f"{method} {url}")
            for p in params:
                if p["in"] == "query" and in_url:
                    url = _url(path, params)
                    r = client.open(url, method=method, headers=headers, query_string={p["name"]: text})
                    _assert_refused(r, refused | {404}, f"{method} {url}?{p['name']}")
            if "requestBody" in op:
                body = json.dumps(dict.fromkeys(_body_properties(op), text))  # surrogates as escapes
                url = _url(path, params)
                r = client.open(url, method=method, headers=headers, data=body, content_type=JSON)
                _assert_refused(r, refused | {404}, f"{method} {url} {text!r}")
        if "requestBody" in op or method in ("POST", "PUT", "PATCH"):
            url = _url(path, params)
            r = client.open(url, method=method, headers=headers, data=DEEP_JSON, content_type=JSON)
            _assert_refused(r, {400}, f"{method} {url} deep")
            r = client.open(url, method=method, headers=headers, data=OVERSIZED, content_type=JSON)
            _assert_refused(r, {413}, f"{method} {url} oversized")
