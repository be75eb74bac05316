"""CycloneDX through cyclonedx-python-lib's object model: the XML output.

JSON is written directly (:mod:`sbomgen.formats.cyclonedx`) with the same data; this module is
imported only when XML is asked for.
"""

from __future__ import annotations

import json

from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component as CdxComponent
from cyclonedx.model.component import ComponentType
from cyclonedx.model.contact import OrganizationalContact, OrganizationalEntity
from cyclonedx.model.dependency import Dependency
from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
from cyclonedx.model.lifecycle import LifecyclePhase, PredefinedLifecycle
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion
from packageurl import PackageURL

from sbomgen.errors import OutputFormatError
from sbomgen.formats.context import TOOL_NAME, DocumentContext, Supplier, supplier_of, version_of
from sbomgen.formats.cyclonedx import DEFAULT_VERSION, FORMATS, VERSIONS, _property_pairs, compositions, licence_choice, source_reference, supplier_entity
from sbomgen.graph.model import Component, DependencyGraph, GraphKind, Role

_SCHEMA_VERSIONS = {"1.5": SchemaVersion.V1_5, "1.6": SchemaVersion.V1_6, "1.7": SchemaVersion.V1_7}
_HASH_ALGOS = {"sha256": HashAlgorithm.SHA_256, "sha512": HashAlgorithm.SHA_512, "sha1": HashAlgorithm.SHA_1, "md5": HashAlgorithm.MD5}


def _properties(component: Component, supplier: Supplier | None = None) -> list[Property]:
    return [Property(name=name, value=value) for name, value in _property_pairs(component, supplier)]


def _licenses(component: Component) -> list:
    choice = licence_choice(component)
    if choice is None:
        return []
    what, value = choice
    if what == "expression":
        return [LicenseExpression(value["expression"])]
    if what == "id":
        return [DisjunctiveLicense(id=value["id"])]
    return [DisjunctiveLicense(name=value["name"], url=XsUri(value["url"]) if value.get("url") else None)]


def _supplier(supplier: Supplier | None, component: Component) -> OrganizationalEntity | None:
    entity = supplier_entity(supplier, component)
    if entity is None:
        return None
    return OrganizationalEntity(
        name=entity["name"],
        urls=[XsUri(url) for url in entity.get("url", [])],
        contacts=[OrganizationalContact(name=c.get("name"), email=c.get("email")) for c in entity.get("contact", [])],
    )


def _external_refs(component: Component, version: str) -> list[ExternalReference]:
    refs = []
    fixed = component.fixed_output
    source_type, source_comment = source_reference(version)
    for url in component.download_urls:
        hashes = []
        if fixed and fixed.mode == "flat" and fixed.algo in _HASH_ALGOS:
            hashes.append(HashType(alg=_HASH_ALGOS[fixed.algo], content=fixed.hash_hex))
        refs.append(
            ExternalReference(type=ExternalReferenceType(source_type), url=XsUri(url), comment=source_comment, hashes=hashes)
        )
    meta = component.meta
    if meta and meta.homepage:
        refs.append(ExternalReference(type=ExternalReferenceType.WEBSITE, url=XsUri(meta.homepage)))
    return refs


_TYPE = {Role.APPLICATION: ComponentType.APPLICATION, Role.SOURCE: ComponentType.FILE, Role.LIBRARY: ComponentType.LIBRARY}


def _component(component: Component, role: Role, version: str, supplier: Supplier | None = None) -> CdxComponent:
    meta = component.meta
    return CdxComponent(
        name=component.name,
        version=version_of(component)[0],
        type=_TYPE[role],
        bom_ref=component.ref,
        supplier=_supplier(supplier, component),
        purl=PackageURL.from_string(component.purl),
        hashes=[HashType(alg=_HASH_ALGOS[algo], content=value) for algo, value in component.checksums if algo in _HASH_ALGOS],
        licenses=_licenses(component),
        cpe=meta.cpe if meta else None,
        description=meta.description if meta else None,
        external_references=_external_refs(component, version),
        properties=_properties(component, supplier),
    )


def build_cyclonedx(graph: DependencyGraph, context: DocumentContext, version: str = DEFAULT_VERSION) -> Bom:
    """The CycloneDX BOM for ``graph``, to be rendered in ``version``."""
    components = graph.sorted_components()
    cdx = {c.store_path: _component(c, graph.role(c), version, supplier_of(graph, c, context)) for c in components}
    if graph.kind is GraphKind.IMAGE:
        cdx[graph.root].type = ComponentType.CONTAINER
    tool = CdxComponent(name=TOOL_NAME, version=context.tool_version, type=ComponentType.APPLICATION)
    phase = LifecyclePhase.BUILD if graph.kind is GraphKind.BUILDTIME else LifecyclePhase.POST_BUILD
    bom = Bom(
        serial_number=context.document_uuid,
        metadata=BomMetaData(
            tools=ToolRepository(components=[tool]),
            component=cdx[graph.root],
            timestamp=context.created,
            lifecycles=[PredefinedLifecycle(phase)],
            properties=[
                Property(name="nix:closure", value=graph.kind.value),
                Property(name="nix:store_dir", value=graph.store_dir),
                *([Property(name="nix:depth_limit", value=str(graph.depth))] if graph.depth is not None else []),
            ],
        ),
        components=[cdx[c.store_path] for c in components[1:]],
        # Built directly: Bom.register_dependency scans all dependencies per call (quadratic).
        dependencies=[
            Dependency(
                ref=cdx[c.store_path].bom_ref,
                dependencies=[Dependency(ref=cdx[d].bom_ref) for d in graph.dependencies(c.store_path)],
            )
            for c in components
        ],
    )
    _index_dependencies(bom)
    return bom


def _index_dependencies(bom: Bom) -> None:
    """Give this BOM a ``register_dependency`` that looks refs up in a dict.

    cyclonedx-python-lib's outputter calls the deprecated ``Bom.validate()``, which calls
    ``register_dependency`` once per component, and that scans every dependency each time:
    100 s of a 10,000-component render. Same semantics, one dict lookup instead.
    """
    index = {dependency.ref.value: dependency for dependency in bom.dependencies}

    def register_dependency(target, depends_on=None) -> None:
        entry = index.get(target.bom_ref.value)
        if entry is None:
            entry = Dependency(ref=target.bom_ref, dependencies=[Dependency(ref=d.bom_ref) for d in depends_on or ()])
            bom.dependencies.add(entry)
            index[target.bom_ref.value] = entry
        elif depends_on:
            entry.dependencies.update(Dependency(ref=d.bom_ref) for d in depends_on)
        for dependency in depends_on or ():
            register_dependency(dependency)

    bom.register_dependency = register_dependency  # type: ignore[method-assign]


def render_cyclonedx(bom: Bom, fmt: str = "json", version: str = DEFAULT_VERSION, graph: DependencyGraph | None = None) -> str:
    """The library's JSON or XML of ``bom``; with ``graph``, its ``compositions`` added (the
    library has no model of them), the same as the JSON writer's."""
    if version not in VERSIONS:
        raise OutputFormatError(f"unsupported CycloneDX version {version!r} (choose from: {', '.join(VERSIONS)})")
    if fmt not in FORMATS:
        raise OutputFormatError(f"unknown CycloneDX format {fmt!r} (choose from: {', '.join(FORMATS)})")
    output_format = OutputFormat.JSON if fmt == "json" else OutputFormat.XML
    text = make_outputter(bom, output_format, _SCHEMA_VERSIONS[version]).output_as_string(indent=2)
    if graph is not None:
        groups = compositions(graph, graph.sorted_components())
        text = _with_compositions_xml(text, groups) if fmt == "xml" else _with_compositions_json(text, groups)
    return text if text.endswith("\n") else text + "\n"


def _with_compositions_json(text: str, groups: list[tuple[str, list[str]]]) -> str:
    data = json.loads(text)
    data["compositions"] = [{"aggregate": aggregate, "dependencies": refs} for aggregate, refs in groups]
    return json.dumps(data, indent=2, ensure_ascii=False)


#: what follows ``compositions`` in a CycloneDX ``bom`` (XSD sequence, 1.5 to 1.7)
_AFTER_COMPOSITIONS = (
    "properties", "vulnerabilities", "annotations", "formulation", "declarations", "definitions", "citations", "signature",
)


def _with_compositions_xml(text: str, groups: list[tuple[str, list[str]]]) -> str:
    """``<compositions>`` put where the XSD's sequence wants it: after ``dependencies``."""
    from lxml import etree

    root = etree.fromstring(text.encode("utf-8"), etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True))
    ns = etree.QName(root).namespace
    element = etree.Element(f"{{{ns}}}compositions")
    for aggregate, refs in groups:
        composition = etree.SubElement(element, f"{{{ns}}}composition")
        etree.SubElement(composition, f"{{{ns}}}aggregate").text = aggregate
        dependencies = etree.SubElement(composition, f"{{{ns}}}dependencies")
        for ref in refs:
            etree.SubElement(dependencies, f"{{{ns}}}dependency", ref=ref)
    following = [child for child in root if isinstance(child.tag, str) and etree.QName(child).localname in _AFTER_COMPOSITIONS]
    if following:
        following[0].addprevious(element)
    else:
        root.append(element)
    etree.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(root, encoding="unicode")
