"""CycloneDX documents (1.6 by default; 1.5 and 1.7 on request), JSON or XML.

JSON is written directly from the graph; XML through cyclonedx-python-lib
(:mod:`sbomgen.formats.cyclonedx_model`), with the same data.  The root is
``metadata.component``; every other component is listed once with a ``bom-ref`` equal to its
store base name ``HASH-NAME`` (stable across runs and stores), SHA-256 digest, purl, CPE when
known, licences from nixpkgs meta, the fixed-output URL as a ``source-distribution`` reference
(with the declared hash; ``distribution`` in 1.5, see :func:`source_reference`), and Nix facts
as ``nix:*`` properties.  ``dependencies`` carries the runtime or build-time graph and
``compositions`` says whose dependencies are complete (all, unless ``--depth`` cut some off).

Every field written exists in every version offered (1.5 to 1.7) except the one reference type
above; both writers take the version-dependent choices from this module, so JSON and XML of one
version carry the same data.
"""

from __future__ import annotations

from sbomgen.errors import OutputFormatError
from sbomgen.formats.context import TOOL_NAME, DocumentContext, Supplier, actor_parts, completeness, extracted_licences, supplier_of, unfree_note, version_of
from sbomgen.formats.jsontext import dumps
from sbomgen.graph.model import NIXPKGS_URL, Component, DependencyGraph, DigestOf, GraphKind, Role

VERSIONS = ("1.5", "1.6", "1.7")
DEFAULT_VERSION = "1.6"
FORMATS = ("json", "xml")

#: the download of a fixed-output derivation (a source archive): ``source-distribution`` exists
#: from CycloneDX 1.6 on; 1.5's closest type is ``distribution`` ("direct or repository download
#: location", which the URL is), with a comment that says what it is.
_SOURCE_REFERENCE = {
    "1.5": ("distribution", "source archive (source-distribution in CycloneDX 1.6 and later)"),
    "1.6": ("source-distribution", None),
    "1.7": ("source-distribution", None),
}


def source_reference(version: str) -> tuple[str, str | None]:
    """The externalReference type (and comment) of a source download in CycloneDX ``version``."""
    if version not in _SOURCE_REFERENCE:
        raise OutputFormatError(f"unsupported CycloneDX version {version!r} (choose from: {', '.join(VERSIONS)})")
    return _SOURCE_REFERENCE[version]


#: the order of the compositions written (CycloneDX ``aggregate`` values)
_AGGREGATES = ("incomplete", "unknown", "complete")


def compositions(graph: DependencyGraph, components: list[Component]) -> list[tuple[str, list[str]]]:
    """(``aggregate``, bom-refs) for each completeness that occurs: the dependencies of the
    components a ``--depth`` limit cut off are ``incomplete``; of those at the limit when the
    graph cannot tell whether anything was cut, ``unknown``; of all others ``complete``.
    Plain ``incomplete`` (not ``incomplete_first_party_only`` and the like): the cut takes
    first- and third-party dependencies alike.  Supported by every version offered."""
    state = completeness(graph)
    groups: dict[str, list[str]] = {aggregate: [] for aggregate in _AGGREGATES}
    for component in components:
        groups[state.state(component.store_path)].append(component.ref)
    return [(aggregate, refs) for aggregate, refs in groups.items() if refs]


def licence_choice(component: Component) -> tuple[str, dict] | None:
    """How the component's licence is written (docs/sbom.md, "Licences"): ``("id", {id})``
    for a single SPDX-listed licence, ``("name", {name, url})`` for a single licence SPDX does
    not list, else ``("expression", {expression})`` (exceptions, several licences)."""
    expression = component.license_expression
    if not expression:
        return None
    from sbomgen.graph.licensing import Licence, parse

    tree = parse(expression)
    if isinstance(tree, Licence) and not tree.exception and not tree.or_later:
        if not tree.is_ref:
            return "id", {"id": tree.id}
        known = extracted_licences([component]).get(tree.id)
        if known is not None:
            name, url, _ = known
            return "name", {"name": name, **({"url": url} if url else {})}
    return "expression", {"expression": expression}


def supplier_entity(supplier: Supplier | None, component: Component) -> dict | None:
    """CycloneDX ``supplier`` (an organizationalEntity, 1.5 to 1.7): the name, nixpkgs' URL
    for its default, and as ``contact`` the nixpkgs maintainers of the package (or the email
    given with ``--supplier``)."""
    if supplier is None:
        return None
    _, name, email = actor_parts(supplier.actor)
    entity: dict = {"name": name}
    contacts: list[dict] = []
    if supplier.source == "nixpkgs-meta":
        entity["url"] = [NIXPKGS_URL]
        for maintainer in component.meta.maintainers if component.meta else ():
            contacts.append({"name": maintainer.name, **({"email": maintainer.email} if maintainer.email else {})})
    elif email:
        contacts.append({"email": email})
    if contacts:
        entity["contact"] = contacts
    return entity


def _property_pairs(component: Component, supplier: Supplier | None = None) -> list[tuple[str, str]]:
    """The ``nix:*`` facts of a component as (name, value) properties."""
    props = [] if component.explicit_digest else [("nix:store_path", component.store_path)]
    if component.drv_path:
        props.append(("nix:drv_path", component.drv_path))
    if component.output:
        props.append(("nix:output", component.output))
        props.append(("nix:outputs", " ".join(component.outputs)))
    if component.system:
        props.append(("nix:system", component.system))
    if component.nar_size is not None:
        props.append(("nix:nar_size", str(component.nar_size)))
    digest = component.digest
    if digest:
        props.append(("nix:digest_of", digest[0].value))
    if component.nar_hash_hex and (not digest or digest[0] is not DigestOf.NAR):
        props.append(("nix:nar_sha256", component.nar_hash_hex))
    if component.drv_nar_hash_hex:
        props.append(("nix:drv_nar_sha256", component.drv_nar_hash_hex))
    if component.is_source:
        props.append(("nix:source", "true"))
    if not component.valid:
        props.append(("nix:built", "false"))
    fixed = component.fixed_output
    if fixed:
        props.append(("nix:fixed_output_mode", fixed.mode))
        props.append(("nix:fixed_output_hash", f"{fixed.algo}:{fixed.hash_hex}"))
    props.append(("nix:depth", str(component.depth)))
    if component.meta and component.meta.attr_path:
        props.append(("nix:attr_path", component.meta.attr_path))
    version_source = version_of(component)[1]
    if version_source != "name":
        props.append(("nix:version_source", version_source))
    if supplier is not None:
        props.append(("nix:supplier_source", supplier.source))
    unfree = unfree_note(component.licenses)
    if unfree:
        props.append(("nix:license_free", "false"))
        props.append(("nix:unfree_licenses", unfree))
    if component.extra:
        props.extend(sorted(component.extra.items()))
    return props


def _json_component(
    component: Component, role: Role, image_root: bool, version: str = DEFAULT_VERSION, supplier: Supplier | None = None
) -> dict:
    """One component as CycloneDX JSON, the same data :func:`_component` gives the library."""
    kind = "container" if image_root else {Role.APPLICATION: "application", Role.SOURCE: "file", Role.LIBRARY: "library"}[role]
    out: dict = {"type": kind, "bom-ref": component.ref}
    entity = supplier_entity(supplier, component)
    if entity:
        out["supplier"] = entity
    out["name"] = component.name
    out["version"] = version_of(component)[0]
    meta = component.meta
    if meta and meta.description:
        out["description"] = meta.description
    hashes = [{"alg": _JSON_ALGOS[algo], "content": value} for algo, value in component.checksums if algo in _JSON_ALGOS]
    if hashes:
        out["hashes"] = hashes
    choice = licence_choice(component)
    if choice is not None:
        what, value = choice
        out["licenses"] = [value] if what == "expression" else [{"license": value}]
    if meta and meta.cpe:
        out["cpe"] = meta.cpe
    out["purl"] = component.purl
    refs = []
    fixed = component.fixed_output
    source_type, source_comment = source_reference(version)
    for url in component.download_urls:
        ref: dict = {"type": source_type, "url": url}
        if source_comment:
            ref["comment"] = source_comment
        if fixed and fixed.mode == "flat" and fixed.algo in _JSON_ALGOS:
            ref["hashes"] = [{"alg": _JSON_ALGOS[fixed.algo], "content": fixed.hash_hex}]
        refs.append(ref)
    if meta and meta.homepage:
        refs.append({"type": "website", "url": meta.homepage})
    if refs:
        out["externalReferences"] = refs
    out["properties"] = [{"name": name, "value": value} for name, value in _property_pairs(component, supplier)]
    return out


_JSON_ALGOS = {"sha256": "SHA-256", "sha512": "SHA-512", "sha1": "SHA-1", "md5": "MD5"}


def render_cyclonedx_json(graph: DependencyGraph, context: DocumentContext, version: str = DEFAULT_VERSION) -> bytes:
    """The CycloneDX JSON text of ``graph`` (see :func:`cyclonedx_json_document`)."""
    return dumps(cyclonedx_json_document(graph, context, version))


def cyclonedx_json_document(
    graph: DependencyGraph, context: DocumentContext, version: str = DEFAULT_VERSION, components: list[Component] | None = None
) -> dict:
    """CycloneDX JSON data built directly from the graph.

    cyclonedx-python-lib's object model costs ~2 ms and ~30 KB per component (sorted sets,
    comparison tuples, its serialiser): 70 s and 1.3 GB for a 40,000-path build closure.
    This writes the same data as plain JSON, linear and lean; every version's output is
    checked against the official schema in the tests, and XML still goes through the library.
    """
    if version not in VERSIONS:
        raise OutputFormatError(f"unsupported CycloneDX version {version!r} (choose from: {', '.join(VERSIONS)})")
    components = components or graph.sorted_components()
    refs = {c.store_path: c.ref for c in components}
    image = graph.kind is GraphKind.IMAGE
    root = _json_component(components[0], graph.role(components[0]), image, version, supplier_of(graph, components[0], context))
    phase = "build" if graph.kind is GraphKind.BUILDTIME else "post-build"
    metadata_props = [{"name": "nix:closure", "value": graph.kind.value}, {"name": "nix:store_dir", "value": graph.store_dir}]
    if graph.depth is not None:
        metadata_props.append({"name": "nix:depth_limit", "value": str(graph.depth)})
    document = {
        "$schema": f"http://cyclonedx.org/schema/bom-{version}.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": version,
        "serialNumber": context.document_uuid.urn,
        "version": 1,
        "metadata": {
            "timestamp": context.created.isoformat(),
            "lifecycles": [{"phase": phase}],
            "tools": {"components": [{"type": "application", "name": TOOL_NAME, "version": context.tool_version}]},
            "component": root,
            "properties": metadata_props,
        },
        "components": [_json_component(c, graph.role(c), False, version, supplier_of(graph, c, context)) for c in components[1:]],
        "dependencies": [
            {"ref": refs[c.store_path], **({"dependsOn": sorted(refs[d] for d in deps)} if (deps := graph.dependencies(c.store_path)) else {})}
            for c in components
        ],
        "compositions": [
            {"aggregate": aggregate, "dependencies": refs} for aggregate, refs in compositions(graph, components)
        ],
    }
    return document


class PendingBom:
    """What :func:`render_cyclonedx` builds cyclonedx-python-lib's ``Bom`` from: the version
    is known only when rendering, and the ``Bom`` depends on it (:func:`source_reference`)."""

    __slots__ = ("context", "graph")

    def __init__(self, graph: DependencyGraph, context: DocumentContext) -> None:
        self.graph, self.context = graph, context


def build_cyclonedx(graph: DependencyGraph, context: DocumentContext) -> PendingBom:
    """The XML writer's input for ``graph`` (see :mod:`sbomgen.formats.cyclonedx_model`); the
    library is imported only when it renders (0.1 s of every start otherwise)."""
    return PendingBom(graph, context)


def render_cyclonedx(bom: PendingBom, fmt: str = "json", version: str = DEFAULT_VERSION) -> str:
    """cyclonedx-python-lib's rendering of ``bom`` in ``version``, with its ``compositions``
    (which the library cannot write)."""
    from sbomgen.formats.cyclonedx_model import build_cyclonedx as build
    from sbomgen.formats.cyclonedx_model import render_cyclonedx as render

    return render(build(bom.graph, bom.context, version), fmt, version, bom.graph)


def reference_errors(document: dict) -> list[str]:
    """What the schema cannot see, as ``/json/pointer: message``: every ``bom-ref`` unique
    across the document (nested components included), and every dependency and composition
    naming one."""
    errors: list[str] = []
    refs: dict[str, str] = {}

    def walk(components: list | None, pointer: str) -> None:
        for index, component in enumerate(components or []):
            ref = component.get("bom-ref")
            here = f"{pointer}/{index}"
            if ref is not None:
                if ref in refs:
                    errors.append(f"{here}/bom-ref: duplicate bom-ref {ref!r} (also at {refs[ref]})")
                refs.setdefault(ref, here)
            walk(component.get("components"), f"{here}/components")

    metadata_component = (document.get("metadata") or {}).get("component")
    if metadata_component:
        walk([metadata_component], "/metadata/component")
    walk(document.get("components"), "/components")
    for index, dep in enumerate(document.get("dependencies", []) or []):
        if dep.get("ref") not in refs:
            errors.append(f"/dependencies/{index}/ref: dangling reference {dep.get('ref')!r}")
        for j, target in enumerate(dep.get("dependsOn", []) or []):
            if target not in refs:
                errors.append(f"/dependencies/{index}/dependsOn/{j}: dangling reference {target!r}")
    for index, composition in enumerate(document.get("compositions", []) or []):
        if not isinstance(composition, dict):
            continue
        for key in ("assemblies", "dependencies"):
            targets = composition.get(key)
            for j, target in enumerate(targets if isinstance(targets, list) else []):
                if not isinstance(target, str) or target not in refs:
                    errors.append(f"/compositions/{index}/{key}/{j}: dangling reference {target!r}")
    return errors
