"""CycloneDX through cyclonedx-python-lib's object model: the XML output.

JSON is written directly (:mod:`sbomgen.formats.cyclonedx`) with the same data; this module is
imported only when XML is asked for.
"""

from __future__ import annotations

from cyclonedx.model import (
    ExternalReference,
    ExternalReferenceType,
    HashAlgorithm,
    HashType,
    Property,
    XsUri,
)
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component as CdxComponent
from cyclonedx.model.component import ComponentType
from cyclonedx.model.dependency import Dependency
from cyclonedx.model.license import DisjunctiveLicense
from cyclonedx.model.lifecycle import LifecyclePhase, PredefinedLifecycle
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion
from packageurl import PackageURL

from sbomgen.errors import OutputFormatError
from sbomgen.formats.context import TOOL_NAME, DocumentContext
from sbomgen.formats.cyclonedx import DEFAULT_VERSION, FORMATS, VERSIONS, _property_pairs
from sbomgen.graph.model import Component, DependencyGraph, GraphKind, Role

_SCHEMA_VERSIONS = {"1.5": SchemaVersion.V1_5, "1.6": SchemaVersion.V1_6, "1.7": SchemaVersion.V1_7}
_HASH_ALGOS = {"sha256": HashAlgorithm.SHA_256, "sha512": HashAlgorithm.SHA_512, "sha1": HashAlgorithm.SHA_1, "md5": HashAlgorithm.MD5}


def _properties(component: Component) -> list[Property]:
    return [Property(name=name, value=value) for name, value in _property_pairs(component)]


def _licenses(component: Component) -> list[DisjunctiveLicense]:
    result = []
    for lic in component.licenses:
        if lic.spdx_id:
            result.append(DisjunctiveLicense(id=lic.spdx_id))
        else:
            result.append(DisjunctiveLicense(name=lic.name, url=XsUri(lic.url) if lic.url else None))
    return result


def _external_refs(component: Component) -> list[ExternalReference]:
    refs = []
    fixed = component.fixed_output
    for url in component.download_urls:
        hashes = []
        if fixed and fixed.mode == "flat" and fixed.algo in _HASH_ALGOS:
            hashes.append(HashType(alg=_HASH_ALGOS[fixed.algo], content=fixed.hash_hex))
        refs.append(ExternalReference(type=ExternalReferenceType.SOURCE_DISTRIBUTION, url=XsUri(url), hashes=hashes))
    meta = component.meta
    if meta and meta.homepage:
        refs.append(ExternalReference(type=ExternalReferenceType.WEBSITE, url=XsUri(meta.homepage)))
    return refs


_TYPE = {Role.APPLICATION: ComponentType.APPLICATION, Role.SOURCE: ComponentType.FILE, Role.LIBRARY: ComponentType.LIBRARY}


def _component(component: Component, role: Role) -> CdxComponent:
    digest = component.digest
    meta = component.meta
    return CdxComponent(
        name=component.name,
        version=component.version or None,
        type=_TYPE[role],
        bom_ref=component.ref,
        purl=PackageURL.from_string(component.purl),
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=digest[1])] if digest else [],
        licenses=_licenses(component),
        cpe=meta.cpe if meta else None,
        description=meta.description if meta else None,
        external_references=_external_refs(component),
        properties=_properties(component),
    )


def build_cyclonedx(graph: DependencyGraph, context: DocumentContext) -> Bom:
    """The CycloneDX BOM for ``graph`` (schema version is chosen when rendering)."""
    components = graph.sorted_components()
    cdx = {c.store_path: _component(c, graph.role(c)) for c in components}
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


def render_cyclonedx(bom: Bom, fmt: str = "json", version: str = DEFAULT_VERSION) -> str:
    if version not in VERSIONS:
        raise OutputFormatError(f"unsupported CycloneDX version {version!r} (choose from: {', '.join(VERSIONS)})")
    if fmt not in FORMATS:
        raise OutputFormatError(f"unknown CycloneDX format {fmt!r} (choose from: {', '.join(FORMATS)})")
    output_format = OutputFormat.JSON if fmt == "json" else OutputFormat.XML
    text = make_outputter(bom, output_format, _SCHEMA_VERSIONS[version]).output_as_string(indent=2)
    return text if text.endswith("\n") else text + "\n"
