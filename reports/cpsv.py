"""The published catalogue as CPSV-AP 3.2.0 (Core Public Service Vocabulary Application Profile).

Mapping (documented in docs/cpsv-ap.md):
- the catalogue → dcat:Dataset published by the district government (foaf:Agent);
- a published implementation entry (实施清单) → cpsv:PublicService, identified by its 实施编码;
- the implementing body (实施主体) → cv:PublicOrganisation with dct:spatial → its division (dct:Location);
- 事项类型 → dct:type skos:Concept; legal basis (设定依据) → cv:hasLegalResource eli:LegalResource;
- online / window / post channels → cv:Channel (dct:type skos:Concept);
- fees (收费项目) → cv:Cost in CNY (yuan as xsd:double; we store integer fen);
- materials (申请材料) → cv:Evidence via cpsv:hasInput;
- 承诺办结时限 → cv:processingTime as xsd:duration (P{n}D);
- licence types an entry produces (证照目录) → cv:Output via cpsv:produces;
- bundles (一件事) → cv:Event (life event) via cv:isGroupedBy;
- national elements (issue #12): 受理条件 → cv:Requirement via cv:holdsRequirement; 审批结果 (type, name)
  → cv:Output via cpsv:produces; 受理标准 of a material → the cv:Evidence's dct:description; 监督投诉电话
  → a second cv:ContactPoint; 移动端办理地址 → a "mobile" cv:Channel. (办理时间 is free text; CPSV-AP's
  cv:openingHours wants a time:TemporalEntity, so it is not mapped.) Elements nobody recorded are left
  out (an absent triple), never defaulted.
Code-list values are typed skos:Concept and places dct:Location so the official shapes validate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from rdflib import RDF, XSD, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, SKOS
from sqlmodel import Session, col, select

from catalog.elements import RESULT_TYPES
from catalog.models import (
    TASK_TYPES,
    Department,
    Division,
    EntryStatus,
    Fee,
    ImplementationEntry,
    Material,
)
from core.db import id_of

CPSV = Namespace("http://purl.org/vocab/cpsv#")
CV = Namespace("http://data.europa.eu/m8g/")
ELI = Namespace("http://data.europa.eu/eli/ontology#")
CNY = URIRef("http://publications.europa.eu/resource/authority/currency/CNY")

CHANNELS = {"online": "网上办理", "mobile": "移动端办理", "window": "窗口办理", "post": "快递申请"}
ZH = "zh"


@dataclass
class Extras:
    """What other packages add: licence types produced per entry and bundles (life events)."""

    outputs: dict[int, list[tuple[str, str]]] = field(default_factory=dict)  # entry_id -> [(code, name)]
    events: list[tuple[str, str, str, list[int]]] = field(default_factory=list)  # (id, title, desc, entries)


def _zh(text: str) -> Literal:
    return Literal(text, lang=ZH)


def _concept(g: Graph, iri: URIRef, label: str) -> URIRef:
    g.add((iri, RDF.type, SKOS.Concept))
    g.add((iri, SKOS.prefLabel, _zh(label)))
    return iri


def build_graph(session: Session, base_url: str, extras: Extras | None = None) -> Graph:
    extras = extras or Extras()
    base = Namespace(base_url.rstrip("/") + "/id/")
    g = Graph()
    for prefix, ns in (
        ("cpsv", CPSV),
        ("cv", CV),
        ("dct", DCTERMS),
        ("skos", SKOS),
        ("dcat", DCAT),
        ("foaf", FOAF),
        ("eli", ELI),
        ("gg", base),
    ):
        g.bind(prefix, ns)

    publisher = base["agent/district-government"]
    g.add((publisher, RDF.type, FOAF.Agent))
    g.add((publisher, DCTERMS.identifier, Literal("district-government")))
    g.add((publisher, DCTERMS.title, _zh("区人民政府")))
    dataset = base["dataset/service-catalogue"]
    g.add((dataset, RDF.type, DCAT.Dataset))
    g.add((dataset, DCTERMS.title, _zh("政务服务事项实施清单")))
    g.add((dataset, DCTERMS.description, _zh("本区已发布的政务服务事项实施清单（CPSV-AP 3.2.0）")))
    g.add((dataset, DCTERMS.publisher, publisher))

    entries = session.exec(
        select(ImplementationEntry)
        .where(ImplementationEntry.status == EntryStatus.PUBLISHED.value, col(ImplementationEntry.applicable))
        .order_by(ImplementationEntry.task_code)
    ).all()
    ids = [e.id for e in entries]
    departments = {d.id: d for d in session.exec(select(Department)).all()}
    divisions = {d.code: d for d in session.exec(select(Division)).all()}
    materials: dict[int, list[Material]] = defaultdict(list)
    fees: dict[int, list[Fee]] = defaultdict(list)
    for chunk in _chunks(ids, 500):
        for m in session.exec(select(Material).where(col(Material.entry_id).in_(chunk))).all():
            materials[m.entry_id].append(m)
        for f in session.exec(select(Fee).where(col(Fee.entry_id).in_(chunk))).all():
            fees[f.entry_id].append(f)

    def location(code: str) -> URIRef:
        iri = base[f"division/{code}"]
        if (iri, RDF.type, DCTERMS.Location) not in g:
            g.add((iri, RDF.type, DCTERMS.Location))
            div = divisions.get(code)
            g.add((iri, DCTERMS.identifier, Literal(code)))
            if div is not None:
                g.add((iri, SKOS.prefLabel, _zh(div.name)))
        return iri

    def organisation(dept: Department) -> URIRef:
        iri = base[f"organisation/{dept.uscc}"]
        if (iri, RDF.type, CV.PublicOrganisation) not in g:
            g.add((iri, RDF.type, CV.PublicOrganisation))
            g.add((iri, SKOS.prefLabel, _zh(dept.name)))
            g.add((iri, DCTERMS.identifier, Literal(dept.uscc)))
            g.add((iri, DCTERMS.spatial, location(dept.division_code)))
        return iri

    service_iri: dict[int, URIRef] = {}
    for entry in entries:
        entry_id = id_of(entry)
        dept = departments[entry.department_id]
        s = base[f"service/{entry.task_code}"]
        service_iri[entry_id] = s
        g.add((dataset, DCTERMS.hasPart, s))
        g.add((s, RDF.type, CPSV.PublicService))
        g.add((s, DCTERMS.identifier, Literal(entry.task_code)))
        g.add((s, DCTERMS.title, _zh(entry.name)))
        description = (entry.accept_conditions or "").strip() or f"{entry.name}（{dept.name}实施）"
        g.add((s, DCTERMS.description, _zh(description)))
        g.add((s, CV.hasCompetentAuthority, organisation(dept)))
        g.add((s, DCTERMS.spatial, location(entry.division_code)))
        g.add(
            (
                s,
                DCTERMS.type,
                _concept(
                    g,
                    base[f"concept/task-type/{entry.task_type}"],
                    TASK_TYPES.get(entry.task_type, entry.task_type),
                ),
            )
        )
        g.add((s, DCTERMS.isPartOf, dataset))
        if entry.promise_days is not None:
            g.add((s, CV.processingTime, Literal(f"P{entry.promise_days}D", datatype=XSD.duration)))
        if entry.legal_basis.strip():
            law = base[f"legal-basis/{entry.catalog_code}"]
            g.add((law, RDF.type, ELI.LegalResource))
            g.add((law, DCTERMS.description, _zh(entry.legal_basis.strip())))
            g.add((s, CV.hasLegalResource, law))
        for kind in _channels(entry):
            ch = base[f"service/{entry.task_code}/channel/{kind}"]
            g.add((ch, RDF.type, CV.Channel))
            g.add((ch, DCTERMS.identifier, Literal(f"{entry.task_code}-{kind}")))
            g.add((ch, DCTERMS.type, _concept(g, base[f"concept/channel/{kind}"], CHANNELS[kind])))
            g.add((s, CV.hasChannel, ch))
        for fee in fees.get(entry_id, []):
            cost = base[f"service/{entry.task_code}/cost/{fee.id}"]
            g.add((cost, RDF.type, CV.Cost))
            g.add((cost, DCTERMS.identifier, Literal(f"{entry.task_code}-cost-{fee.id}")))
            g.add((cost, DCTERMS.description, _zh(fee.name)))
            g.add((cost, CV.hasValue, Literal(fee.amount_fen / 100, datatype=XSD.double)))
            g.add((cost, CV.currency, _concept(g, CNY, "人民币")))
            g.add((s, CV.hasCost, cost))
        for m in materials.get(entry_id, []):
            ev = base[f"service/{entry.task_code}/evidence/{m.id}"]
            g.add((ev, RDF.type, CV.Evidence))
            g.add((ev, DCTERMS.identifier, Literal(f"{entry.task_code}-evidence-{m.id}")))
            g.add((ev, DCTERMS.title, _zh(m.name)))
            if m.accept_standard:
                g.add((ev, DCTERMS.description, _zh(m.accept_standard)))
            g.add((s, CPSV.hasInput, ev))
        _add_elements(g, base, s, entry)
        for code, name in extras.outputs.get(entry_id, []):
            out = base[f"output/{code}"]
            g.add((out, RDF.type, CV.Output))
            g.add((out, DCTERMS.identifier, Literal(code)))
            g.add((out, DCTERMS.title, _zh(name)))
            g.add((s, CPSV.produces, out))
        if entry.phone or entry.opening_hours:
            cp = base[f"service/{entry.task_code}/contact"]
            g.add((cp, RDF.type, CV.ContactPoint))
            if entry.phone:
                g.add((cp, CV.telephone, Literal(entry.phone)))
            g.add((s, CV.contactPoint, cp))

    for event_id, title, description, entry_ids in extras.events:
        ev = base[f"event/{event_id}"]
        g.add((ev, RDF.type, CV.LifeEvent))
        g.add((ev, RDF.type, CV.Event))
        g.add((ev, DCTERMS.identifier, Literal(str(event_id))))
        g.add((ev, DCTERMS.title, _zh(title)))
        if description:
            g.add((ev, DCTERMS.description, _zh(description)))
        for entry_id in entry_ids:
            if entry_id in service_iri:
                g.add((ev, CV.hasRelatedService, service_iri[entry_id]))
                g.add((service_iri[entry_id], CV.isGroupedBy, ev))
    return g


def _add_elements(g: Graph, base: Namespace, s: URIRef, entry: ImplementationEntry) -> None:
    """The national elements that CPSV-AP has a place for; an element not recorded adds nothing."""
    if entry.accept_conditions and entry.accept_conditions.strip():
        req = base[f"service/{entry.task_code}/requirement/accept"]
        g.add((req, RDF.type, CV.Requirement))
        g.add((req, DCTERMS.identifier, Literal(f"{entry.task_code}-requirement")))
        g.add((req, DCTERMS.title, _zh("受理条件")))
        g.add((req, DCTERMS.description, _zh(entry.accept_conditions.strip())))
        g.add((s, CV.holdsRequirement, req))
    if entry.result_name:
        out = base[f"service/{entry.task_code}/output/result"]
        g.add((out, RDF.type, CV.Output))
        g.add((out, DCTERMS.identifier, Literal(f"{entry.task_code}-result")))
        g.add((out, DCTERMS.title, _zh(entry.result_name)))
        if entry.result_type:
            concept = base[f"concept/result-type/{entry.result_type}"]
            label = RESULT_TYPES.get(entry.result_type, entry.result_type)
            g.add((out, DCTERMS.type, _concept(g, concept, label)))
        g.add((s, CPSV.produces, out))
    if entry.complaint_phone:
        cp = base[f"service/{entry.task_code}/contact/complaint"]
        g.add((cp, RDF.type, CV.ContactPoint))
        g.add((cp, CV.telephone, Literal(entry.complaint_phone)))
        g.add((s, CV.contactPoint, cp))


def _channels(entry: ImplementationEntry) -> list[str]:
    """The channels the entry records; none recorded gives none (not an assumed window)."""
    kinds = []
    depth = set(filter(None, (entry.online_depth or "").split(",")))
    if depth & {"2", "3", "4", "5"} or entry.online_url:
        kinds.append("online")
    if entry.mobile_url:
        kinds.append("mobile")
    if (entry.visits is not None and entry.visits > 0) or entry.window_address:
        kinds.append("window")
    if "post" in (entry.result_delivery or "").split(","):
        kinds.append("post")
    return kinds


def _chunks(values: list[int | None], size: int) -> Iterable[list[int | None]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


JSONLD_CONTEXT = {
    "cpsv": str(CPSV),
    "cv": str(CV),
    "dct": str(DCTERMS),
    "skos": str(SKOS),
    "dcat": str(DCAT),
    "foaf": str(FOAF),
    "eli": str(ELI),
    "xsd": str(XSD),
}


def serialise(g: Graph, fmt: str) -> str:
    if fmt == "ttl":
        return g.serialize(format="turtle")
    return g.serialize(format="json-ld", context=JSONLD_CONTEXT, auto_compact=True)


def licence_outputs(session: Session) -> dict[int, list[tuple[str, str]]]:
    """entry id -> [(证照类型代码, name)] of the licence types each published entry produces."""
    from licenses.models import LicenceType, LicenceTypeEntry

    rows = session.exec(
        select(ImplementationEntry.id, LicenceType.code, LicenceType.name)
        .join(LicenceTypeEntry, col(LicenceTypeEntry.task_code) == ImplementationEntry.task_code)
        .join(LicenceType, col(LicenceType.id) == LicenceTypeEntry.licence_type_id)
        .where(LicenceTypeEntry.role == "produces")
        .order_by(col(ImplementationEntry.id), col(LicenceType.code))
    ).all()
    outputs: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for entry_id, code, name in rows:
        if entry_id is not None:
            outputs[entry_id].append((code, name))
    return dict(outputs)
