"""SPDX 2.3 documents (JSON and tag-value): JSON written directly, tag-value through spdx-tools.

* One package per component, ``SPDXRef-`` + its ``HASH-NAME``; ``filesAnalyzed`` false.
* ``SPDXRef-DOCUMENT DESCRIBES`` the root; runtime edges are ``A DEPENDS_ON B``; build-time
  edges are ``B BUILD_DEPENDENCY_OF A``; an image ``CONTAINS`` each store path in it.
* Checksum SHA256 = the component digest (NAR hash for built paths; see
  :class:`~sbomgen.graph.model.DigestOf`), stated in the package comment; for a flat
  fixed-output source, the declared hash of the file (what downloading it gives), with the
  NAR hash in the comment (``nix NAR sha256: …``).
* purl as a ``PACKAGE-MANAGER`` external ref, CPE 2.3 as ``SECURITY`` when metadata has one.
* Download location: the URL a fixed-output derivation fetches from, else NOASSERTION.
* Declared and concluded licence: the expression of nixpkgs ``meta.license``
  (:func:`sbomgen.graph.licensing.from_nixpkgs`: a list is AND, exceptions attach with WITH);
  licences SPDX does not list become ``LicenseRef-`` with their name in
  ``hasExtractedLicensingInfos``; NOASSERTION without metadata.
* Supplier (:func:`~sbomgen.formats.context.supplier_of`) and a version for every package
  (:func:`~sbomgen.formats.context.version_of`); nixpkgs maintainers, where the supplier and
  version come from, and unfree licences are stated in the package comment.
* Completeness of the dependency graph (:func:`completeness_note`): the document comment says
  whether it is complete; with ``--depth``, each package whose dependencies were cut off (or,
  when the graph cannot tell, not walked) carries an ``OTHER`` annotation saying so.
"""

from __future__ import annotations

import re
from datetime import UTC

from sbomgen.formats.context import (
    Completeness,
    DocumentContext,
    Supplier,
    completeness,
    document_name,
    extracted_licences,
    licence_text_note,
    supplier_of,
    unfree_note,
    version_of,
)
from sbomgen.formats.jsontext import dumps
from sbomgen.graph.model import Component, DependencyGraph, DigestOf, GraphKind, Role

SPDX_VERSION = "SPDX-2.3"
FORMATS = ("json", "tag-value")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]")

_DIGEST_NOTE = {
    DigestOf.NAR: "SHA256 is of the NAR serialisation of the store path (Nix narHash)",
    DigestOf.FIXED_OUTPUT: "SHA256 is the hash the fixed-output derivation declares (path not built here)",
    DigestOf.DERIVATION: "SHA256 is of the NAR of the .drv (output not built; the recipe is pinned)",
    DigestOf.OCI_MANIFEST: "SHA256 is the image's manifest digest",
    DigestOf.FILE: "SHA256 is of the file's bytes (flat fixed-output: the declared hash, which Nix checked when it fetched)",
}
#: SPDX 2.3 checksum algorithm names of the hash algorithms Nix uses
SPDX_ALGORITHMS = {"sha256": "SHA256", "sha512": "SHA512", "sha1": "SHA1", "md5": "MD5"}


def spdx_checksums(component: Component) -> list[tuple[str, str]]:
    """(SPDX algorithm, hex) of the package: :attr:`Component.checksums`."""
    return [(SPDX_ALGORITHMS[algo], value) for algo, value in component.checksums if algo in SPDX_ALGORITHMS]


def licence_fields(component: Component) -> tuple[str, str]:
    """(licenseDeclared, licenseConcluded): both the nixpkgs expression when there is
    metadata (docs/sbom.md, "Licences"), else NOASSERTION."""
    expression = component.license_expression
    return (expression, expression) if expression else ("NOASSERTION", "NOASSERTION")


def completeness_note(state: Completeness, total: int) -> str:
    """The document comment: whether the relationships list every dependency."""
    if state.complete:
        return f"Dependency graph complete: the relationships list every dependency of all {total} packages."
    if state.cut:
        return (
            f"Dependency graph incomplete: --depth {state.depth} cut off dependencies of {len(state.cut)} of the {total}"
            " packages (each carries an annotation saying so); the relationships of the others are complete."
        )
    return (
        f"Dependency graph possibly incomplete: --depth {state.depth} stopped the walk at {len(state.unwalked)} of the"
        f" {total} packages (each carries an annotation saying so), whose dependencies may be missing."
    )


def package_note(state: Completeness, store_path: str) -> str | None:
    """The annotation of one package whose dependencies are not all listed, else None."""
    aggregate = state.state(store_path)
    if aggregate == "incomplete":
        return f"Dependencies cut off by --depth {state.depth}: the relationships list only those within the depth limit."
    if aggregate == "unknown":
        return f"Dependencies not walked (--depth {state.depth} stops here): the relationships may not list them all."
    return None


def spdx_id(component: Component) -> str:
    return "SPDXRef-" + _ID_UNSAFE.sub("-", component.ref)


def _comment(component: Component, supplier: Supplier | None = None) -> str:
    lines = [] if component.explicit_digest else [f"nix store path: {component.store_path}"]
    if component.drv_path:
        lines.append(f"nix derivation: {component.drv_path}")
    if component.output:
        lines.append(f"nix output: {component.output} (outputs: {', '.join(component.outputs)})")
    if component.is_source:
        lines.append("nix source: added to the store, not built by a derivation")
    if not component.valid:
        lines.append("not built: the output is not in the store")
    fixed = component.fixed_output
    if fixed:
        lines.append(f"fixed-output derivation: {fixed.mode} {fixed.algo} {fixed.hash_hex}")
        if len(fixed.urls) > 1:
            lines.append("mirrors: " + " ".join(fixed.urls[1:]))
    digest = component.digest
    if digest:
        lines.append(_DIGEST_NOTE[digest[0]])
    if component.nar_hash_hex and (not digest or digest[0] is not DigestOf.NAR):
        lines.append(f"nix NAR sha256: {component.nar_hash_hex}")
    version, version_source = version_of(component)
    if version_source != "name":
        lines.append(f"version: none in the name; versionInfo is the {'store path hash' if version_source == 'store-hash' else 'placeholder unknown'}")
    if supplier is not None:
        lines.append("supplier: " + ("nixpkgs (the package has nixpkgs metadata)" if supplier.source == "nixpkgs-meta" else "given with --supplier"))
    meta = component.meta
    if meta and meta.maintainers:
        lines.append("nixpkgs maintainers: " + ", ".join(str(m) for m in meta.maintainers))
    unfree = unfree_note(component.licenses)
    if unfree:
        lines.append(f"unfree licence (nixpkgs meta free = false): {unfree}")
    if component.extra:
        lines.extend(f"{key}: {value}" for key, value in sorted(component.extra.items()))
    return "\n".join(lines)


_PURPOSE = {Role.APPLICATION: "APPLICATION", Role.SOURCE: "SOURCE", Role.LIBRARY: None}


def _package_json(component: Component, role: Role, package_id: str, annotation: dict | None = None, supplier: Supplier | None = None) -> dict:
    """One package as spdx-tools' converter writes it (same keys, order and omissions)."""
    package: dict = {"SPDXID": package_id}
    if annotation:
        package["annotations"] = [annotation]
    checksums = spdx_checksums(component)
    if checksums:
        package["checksums"] = [{"algorithm": algo, "checksumValue": value} for algo, value in checksums]
    package["comment"] = _comment(component, supplier)
    package["copyrightText"] = "NOASSERTION"
    urls = component.download_urls
    package["downloadLocation"] = urls[0] if urls else "NOASSERTION"
    meta = component.meta
    refs = [{"referenceCategory": "PACKAGE-MANAGER", "referenceLocator": component.purl, "referenceType": "purl"}]
    if meta and meta.cpe:
        refs.append({"referenceCategory": "SECURITY", "referenceLocator": meta.cpe, "referenceType": "cpe23Type"})
    package["externalRefs"] = refs
    package["filesAnalyzed"] = False
    if meta and meta.homepage:
        package["homepage"] = meta.homepage
    declared, concluded = licence_fields(component)
    package["licenseConcluded"] = concluded
    package["licenseDeclared"] = declared
    package["name"] = component.name
    file_name = urls[0].rsplit("/", 1)[-1] if urls else ""
    if file_name:
        package["packageFileName"] = file_name
    purpose = _PURPOSE[role]
    if purpose is not None:
        package["primaryPackagePurpose"] = purpose
    if meta and meta.description:
        package["summary"] = meta.description
    package["supplier"] = supplier.actor if supplier else "NOASSERTION"
    package["versionInfo"] = version_of(component)[0]
    return package


def render_spdx_json(graph: DependencyGraph, context: DocumentContext) -> bytes:
    """The SPDX JSON text of ``graph``: byte for byte what ``render_spdx(build_spdx(graph,
    context))`` gives (a test holds it to that)."""
    return dumps(spdx_json_document(graph, context))


def spdx_json_document(graph: DependencyGraph, context: DocumentContext, components: list[Component] | None = None) -> dict:
    """The SPDX JSON data of ``graph`` built directly, without spdx-tools' model and converter
    (5 s and 0.8 GB of the SPDX for a 40,000-path build closure). ``components`` is
    ``graph.sorted_components()``, when the caller has it already."""
    components = components or graph.sorted_components()
    ids = {c.store_path: spdx_id(c) for c in components}
    state = completeness(graph)
    created = context.created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document: dict = {
        "SPDXID": "SPDXRef-DOCUMENT",
        "comment": completeness_note(state, len(components)),
        "creationInfo": {
            "created": created,
            "creators": [f"Tool: {context.tool}"],
            "comment": f"Generated by {context.tool} from the Nix store {graph.store_dir}",
        },
        "dataLicense": "CC0-1.0",
    }
    extracted = extracted_licences(components)
    if extracted:
        document["hasExtractedLicensingInfos"] = [
            {
                "extractedText": licence_text_note(name, url, free),
                "licenseId": ref,
                "name": name,
                **({"seeAlsos": [url]} if url else {}),
            }
            for ref, (name, url, free) in sorted(extracted.items())
        ]
    document["name"] = document_name(graph)
    document["spdxVersion"] = SPDX_VERSION
    slug = _ID_UNSAFE.sub("-", graph.root_component.ref)
    document["documentNamespace"] = f"https://spdx.org/spdxdocs/sbomgen/{slug}-{context.document_uuid}"
    annotator = f"Tool: {context.tool}"

    def annotation(component: Component) -> dict | None:
        note = package_note(state, component.store_path)
        if note is None:
            return None
        return {"annotationDate": created, "annotationType": "OTHER", "annotator": annotator, "comment": note}

    document["packages"] = [
        _package_json(c, graph.role(c), ids[c.store_path], annotation(c), supplier_of(graph, c, context)) for c in components
    ]
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relatedSpdxElement": ids[graph.root], "relationshipType": "DESCRIBES"}]
    for component in components:
        source = ids[component.store_path]
        for dep in sorted(graph.dependencies(component.store_path), key=lambda p: ids[p]):
            if graph.kind is GraphKind.IMAGE and component.store_path == graph.root:
                relationships.append({"spdxElementId": source, "relatedSpdxElement": ids[dep], "relationshipType": "CONTAINS"})
            elif graph.kind in (GraphKind.RUNTIME, GraphKind.IMAGE):
                relationships.append({"spdxElementId": source, "relatedSpdxElement": ids[dep], "relationshipType": "DEPENDS_ON"})
            else:
                relationships.append({"spdxElementId": ids[dep], "relatedSpdxElement": source, "relationshipType": "BUILD_DEPENDENCY_OF"})
    document["relationships"] = relationships
    return document


# spdx-tools' model, imported only when it is needed (0.15 s of every start otherwise):
# tag-value output, --full-validation, and the tests that hold the JSON writer to it.


def build_spdx(graph: DependencyGraph, context: DocumentContext):
    from sbomgen.formats.spdx_model import build_spdx as build

    return build(graph, context)


def validate_spdx(document) -> list[str]:
    from sbomgen.formats.spdx_model import validate_spdx as validate

    return validate(document)


def render_spdx(document, fmt: str = "json") -> str:
    from sbomgen.formats.spdx_model import render_spdx as render

    return render(document, fmt)
