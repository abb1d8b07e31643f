"""The CPSV-AP export validates against the official 3.2.0 SHACL shapes with 0 violations."""

from pathlib import Path

import pytest
from pyshacl import validate
from rdflib import Graph

from catalog.codes import make_task_code, make_uscc
from catalog.models import CatalogItem, Department, Division, Fee, ImplementationEntry, Material
from reports.cpsv import Extras, build_graph, serialise

SHAPES = Path(__file__).resolve().parents[2] / "data" / "cpsv-ap-3.2.0" / "cpsv-ap-SHACL.ttl"


@pytest.fixture
def published_entry(session):
    session.add(Division(code="321203000000", name="高港区", level="county"))
    session.flush()
    dept = Department(name="区行政审批局", uscc=make_uscc("11321203", "MB000001"), level="4",
                      division_code="321203000000")
    item = CatalogItem(code="000104002000", name="食品经营许可", task_type="01",
                       legal_basis="《中华人民共和国食品安全法》第三十五条", use_levels="4")
    session.add_all([dept, item])
    session.flush()
    entry = ImplementationEntry(
        task_code=make_task_code(dept.uscc, "4", item.code), item_id=item.id, department_id=dept.id,
        level="4", division_code="321203000000", name=item.name, task_type="01",
        legal_basis=item.legal_basis, catalog_code=item.code, status="published", visits=0,
        online_depth="1,2,3,4,5,6", result_delivery="post,elicence", promise_days=5, phone="0523-86921234",
        accept_conditions="申请人持有营业执照",
    )
    session.add(entry)
    session.flush()
    session.add_all([
        Material(entry_id=entry.id, name="食品经营许可申请书", form="electronic"),
        Fee(entry_id=entry.id, name="工本费", amount_fen=1050),
    ])
    session.flush()
    return entry


def _conforms(graph: Graph) -> tuple[bool, str]:
    shapes = Graph().parse(SHAPES)
    conforms, _graph, text = validate(graph, shacl_graph=shapes, inference="none")
    return conforms, text


def test_export_conforms_to_official_shapes(session, published_entry):
    extras = Extras(outputs={published_entry.id: [("11100000000013338W011", "食品经营许可证")]},
                    events=[("1", "开办餐馆一件事", "开饭店要办的事", [published_entry.id])])
    graph = build_graph(session, "http://127.0.0.1:5000", extras)
    conforms, text = _conforms(graph)
    assert conforms, text
    assert len(graph) > 40


def test_both_serialisations_parse_to_the_same_graph(session, published_entry):
    graph = build_graph(session, "http://127.0.0.1:5000")
    ttl = Graph().parse(data=serialise(graph, "ttl"), format="turtle")
    jsonld = Graph().parse(data=serialise(graph, "jsonld"), format="json-ld")
    assert len(ttl) == len(jsonld) == len(graph)


def test_public_urls_serve_the_export(client, published_entry):
    ttl = client.get("/open-data/cpsv-ap.ttl")
    assert ttl.status_code == 200
    assert ttl.headers["Content-Type"].startswith("text/turtle")
    assert "食品经营许可".encode() in ttl.data
    assert client.get("/open-data/cpsv-ap.jsonld").status_code == 200
    assert client.get("/open-data/cpsv-ap.xml").status_code == 404


def test_an_invalid_graph_is_detected(session, published_entry):
    graph = build_graph(session, "http://127.0.0.1:5000")
    from rdflib import RDF, URIRef
    from rdflib.namespace import DCTERMS
    service = next(graph.subjects(RDF.type, URIRef("http://purl.org/vocab/cpsv#PublicService")))
    graph.remove((service, DCTERMS.description, None))
    conforms, _ = _conforms(graph)
    assert not conforms


# ---------------------------------------------------------------- the cached document (production path)


@pytest.fixture
def builds(monkeypatch):
    """Counts the documents built (reports.cpsv.build_graph runs), the ~2 s of CPU the cache saves."""
    import reports.cpsv

    made: list[int] = []
    original = reports.cpsv.build_graph

    def counted(*args, **kwargs):
        made.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(reports.cpsv, "build_graph", counted)
    return made


def test_the_export_is_built_once_then_served_from_the_cache_and_revalidated(client, session, builds):
    from catalog import revisions
    from core.auth import SYSTEM
    from licenses.types import link_type_entry
    from reports.bundles import save_bundle
    from tests.factories.catalog import make_department, make_item, published_entry
    from tests.factories.licences import PERSON_TYPE, make_types

    dept = make_department(session, "区缓存测试局")
    first = published_entry(session, dept, make_item(session, name="缓存测试事项甲"))
    session.commit()

    ttl = client.get("/open-data/cpsv-ap.ttl")
    assert ttl.status_code == 200
    etag = ttl.headers.get("ETag")
    assert etag
    assert ttl.headers.get("Last-Modified")
    assert ttl.headers.get("Cache-Control") == "public, no-cache"
    assert "缓存测试事项甲".encode() in ttl.data
    again = client.get("/open-data/cpsv-ap.ttl")
    assert (again.status_code, again.data, again.headers.get("ETag")) == (200, ttl.data, etag)
    assert len(builds) == 1  # the second request did not rebuild
    unchanged = client.get("/open-data/cpsv-ap.ttl", headers={"If-None-Match": etag})
    assert (unchanged.status_code, unchanged.data, unchanged.headers.get("ETag")) == (304, b"", etag)
    assert client.get("/open-data/cpsv-ap.jsonld").headers.get("ETag") != etag  # one document per format
    assert len(builds) == 2

    def rebuilt_after(change) -> bytes:
        nonlocal etag
        change()
        session.commit()
        before = len(builds)
        response = client.get("/open-data/cpsv-ap.ttl", headers={"If-None-Match": etag})
        assert response.status_code == 200
        assert response.headers["ETag"] != etag
        assert len(builds) == before + 1
        etag = response.headers["ETag"]
        return response.data

    def revise_phone() -> None:
        revisions.open_revision(session, SYSTEM, first.id, reason="更新咨询电话")
        revisions.update_revision(session, SYSTEM, first.id, fields={"phone": "0523-86900077"})
        revisions.submit_revision(session, SYSTEM, first.id)
        revisions.approve_revision(session, SYSTEM, first.id)

    # A publish (through the services, as a reviewer publishes) ...
    second = make_item(session, name="缓存测试事项乙")
    assert "缓存测试事项乙".encode() in rebuilt_after(lambda: published_entry(session, dept, second))
    # ... a change of a published entry, a licence type it produces, a life event it belongs to.
    assert b"0523-86900077" in rebuilt_after(revise_phone)
    make_types(session)
    assert PERSON_TYPE.encode() in rebuilt_after(lambda: link_type_entry(
        session, SYSTEM, PERSON_TYPE, task_code=first.task_code, role="produces"))
    assert "缓存测试一件事".encode() in rebuilt_after(lambda: save_bundle(
        session, SYSTEM, name="缓存测试一件事", description="", entry_ids=[first.id], published=True))


def test_the_catalogue_stamp_moves_with_a_publish_on_both_databases(any_session):
    from reports.cpsv_cache import catalogue_stamp
    from tests.factories.catalog import make_department, make_item, published_entry

    dept = make_department(any_session, "区戳记测试局")
    published_entry(any_session, dept, make_item(any_session, name="戳记测试事项甲"))
    before = catalogue_stamp(any_session)
    assert before is not None
    assert before == catalogue_stamp(any_session)  # nothing changed, the same stamp (and ETag)
    assert before.last_modified is not None
    assert before.last_modified.utcoffset() is not None
    published_entry(any_session, dept, make_item(any_session, name="戳记测试事项乙"))
    after = catalogue_stamp(any_session)
    assert after is not None
    assert after.etag("ttl", "http://x") != before.etag("ttl", "http://x")
    assert after.last_modified >= before.last_modified
