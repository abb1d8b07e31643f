"""GovApi documents blueprints lazily (core.app): it re-implements flask-smorest's
``Api.register_blueprint`` in two halves, so this compares its document with the one flask-smorest's
own method builds for the same blueprints. A flask-smorest upgrade that changes what registration
does shows up here instead of as a silently different /api/openapi.json."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Flask
from flask.views import MethodView
from flask_smorest import Api, Blueprint

from core.app import GovApi


class ThingSchema(ma.Schema):
    id = ma.fields.Int(dump_only=True)
    name = ma.fields.Str(required=True, metadata={"description": "名称"})


class ThingQuery(ma.Schema):
    q = ma.fields.Str()


def _blueprints() -> list[Blueprint]:
    things = Blueprint("things", __name__, url_prefix="/api/v1/things", description="事物")

    @things.route("")
    class Things(MethodView):
        @things.arguments(ThingQuery, location="query")
        @things.response(200, ThingSchema(many=True))
        def get(self, args: dict[str, Any]) -> list[dict[str, Any]]:
            """列出事物"""
            return []

        @things.arguments(ThingSchema)
        @things.response(201, ThingSchema)
        @things.alt_response(409, description="冲突")
        def post(self, data: dict[str, Any]) -> dict[str, Any]:
            return data

    others = Blueprint("others", __name__, url_prefix="/api/v1/others", description="其他")

    @others.route("/<int:other_id>")
    @others.response(200, ThingSchema)
    def other(other_id: int) -> dict[str, Any]:
        return {"id": other_id, "name": "x"}

    return [things, others]


def _document(api_class: type[Any]) -> dict[str, Any]:
    app = Flask(__name__)
    app.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    api = api_class(app)
    for blp in _blueprints():
        api.register_blueprint(blp)
    document: dict[str, Any] = api.spec.to_dict()
    return document


def test_the_lazy_document_is_the_one_flask_smorest_builds() -> None:
    ours, theirs = _document(GovApi), _document(Api)
    # GovApi states the project's error shape for every error response (ERROR_SCHEMA): compare the
    # rest, and the error schema's name only.
    ours_components = ours.pop("components")
    theirs_components = theirs.pop("components")
    assert ours == theirs
    assert set(ours_components["schemas"]) - {"Error"} == set(theirs_components["schemas"]) - {"Error"}
    assert ours["paths"]["/api/v1/things"]["post"]["responses"].keys() == {"201", "409", "422", "default"}
