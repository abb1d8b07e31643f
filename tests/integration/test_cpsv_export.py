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
