"""SPDX 2.3 documents (JSON and tag-value), built with spdx-tools' model and validated by it.

* One package per component, ``SPDXRef-`` + its ``HASH-NAME``; ``filesAnalyzed`` false.
* ``SPDXRef-DOCUMENT DESCRIBES`` the root; runtime edges are ``A DEPENDS_ON B``; build-time
  edges are ``B BUILD_DEPENDENCY_OF A``; an image ``CONTAINS`` each store path in it.
* Checksum SHA256 = the component digest (NAR hash for built paths; see
  :class:`~sbomgen.graph.model.DigestOf`), stated in the package comment.
* purl as a ``PACKAGE-MANAGER`` external ref, CPE 2.3 as ``SECURITY`` when metadata has one.
* Download location: the URL a fixed-output derivation fetches from, else NOASSERTION.
* Declared licence from nixpkgs meta (several licences are joined with AND: nixpkgs lists the
  licences that apply); licences SPDX does not list become ``LicenseRef-`` with their text.
"""

from __future__ import annotations

import io
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timezone
from functools import lru_cache

from license_expression import get_spdx_licensing
from spdx_tools.spdx.model import (
    Actor,
    ActorType,
    Checksum,
    ChecksumAlgorithm,
    CreationInfo,
    Document,
    ExternalPackageRef,
    ExternalPackageRefCategory,
    ExtractedLicensingInfo,
    Package,
    PackagePurpose,
    Relationship,
    RelationshipType,
    SpdxNoAssertion,
)
from spdx_tools.spdx.validation import package_validator, spdx_id_validators
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
from spdx_tools.spdx.jsonschema.document_converter import DocumentConverter
from spdx_tools.spdx.writer.tagvalue.tagvalue_writer import write_document_to_stream as write_tagvalue

from sbomgen.errors import OutputFormatError
from sbomgen.formats.context import DocumentContext, document_name
from sbomgen.formats.jsontext import dumps
from sbomgen.graph.model import Component, DependencyGraph, DigestOf, GraphKind, Role

SPDX_VERSION = "SPDX-2.3"
FORMATS = ("json", "tag-value")
_LICENSING = get_spdx_licensing()
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]")

_DIGEST_NOTE = {
    DigestOf.NAR: "SHA256 is of the NAR serialisation of the store path (Nix narHash)",
    DigestOf.FIXED_OUTPUT: "SHA256 is the hash the fixed-output derivation declares (path not built here)",
    DigestOf.DERIVATION: "SHA256 is of the NAR of the .drv (output not built; the recipe is pinned)",
    DigestOf.OCI_MANIFEST: "SHA256 is the image's manifest digest",
}


def spdx_id(component: Component) -> str:
    return "SPDXRef-" + _ID_UNSAFE.sub("-", component.ref)


def _license_expression(component: Component):
    licenses = component.licenses
    if not licenses:
        return SpdxNoAssertion()
    return _LICENSING.parse(" AND ".join(dict.fromkeys(lic.ref for lic in licenses)))


def _comment(component: Component) -> str:
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
    if component.extra:
        lines.extend(f"{key}: {value}" for key, value in sorted(component.extra.items()))
    return "\n".join(lines)


_PURPOSE = {Role.APPLICATION: PackagePurpose.APPLICATION, Role.SOURCE: PackagePurpose.SOURCE, Role.LIBRARY: None}


def _package(component: Component, role: Role) -> Package:
    digest = component.digest
    refs = [ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", component.purl)]
    meta = component.meta
    if meta and meta.cpe:
        refs.append(ExternalPackageRef(ExternalPackageRefCategory.SECURITY, "cpe23Type", meta.cpe))
    urls = component.download_urls
    return Package(
        spdx_id=spdx_id(component),
        name=component.name,
        version=component.version or None,
        file_name=urls[0].rsplit("/", 1)[-1] or None if urls else None,
        download_location=urls[0] if urls else SpdxNoAssertion(),
        files_analyzed=False,
        checksums=[Checksum(ChecksumAlgorithm.SHA256, digest[1])] if digest else [],
        homepage=meta.homepage if meta and meta.homepage else None,
        license_concluded=SpdxNoAssertion(),
        license_declared=_license_expression(component),
        copyright_text=SpdxNoAssertion(),
        summary=meta.description if meta and meta.description else None,
        comment=_comment(component),
        external_references=refs,
        primary_package_purpose=_PURPOSE[role],
        supplier=SpdxNoAssertion(),
    )


def build_spdx(graph: DependencyGraph, context: DocumentContext) -> Document:
    """The SPDX 2.3 document for ``graph``."""
    name = document_name(graph)
    slug = _ID_UNSAFE.sub("-", graph.root_component.ref)
    creation = CreationInfo(
        spdx_version=SPDX_VERSION,
        spdx_id="SPDXRef-DOCUMENT",
        name=name,
        document_namespace=f"https://spdx.org/spdxdocs/sbomgen/{slug}-{context.document_uuid}",
        creators=[Actor(ActorType.TOOL, context.tool)],
        created=context.created,
        creator_comment=f"Generated by {context.tool} from the Nix store {graph.store_dir}",
    )
    components = graph.sorted_components()
    ids = {c.store_path: spdx_id(c) for c in components}
    packages = [_package(c, graph.role(c)) for c in components]
    relationships = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, ids[graph.root])]
    for component in components:
        for dep in sorted(graph.dependencies(component.store_path), key=lambda p: ids[p]):
            if graph.kind is GraphKind.IMAGE and component.store_path == graph.root:
                relationships.append(Relationship(ids[component.store_path], RelationshipType.CONTAINS, ids[dep]))
            elif graph.kind in (GraphKind.RUNTIME, GraphKind.IMAGE):
                relationships.append(Relationship(ids[component.store_path], RelationshipType.DEPENDS_ON, ids[dep]))
            else:
                relationships.append(
                    Relationship(ids[dep], RelationshipType.BUILD_DEPENDENCY_OF, ids[component.store_path])
                )
    extracted = {}
    for component in components:
        for lic in component.licenses:
            if not lic.spdx_id and lic.ref not in extracted:
                extracted[lic.ref] = ExtractedLicensingInfo(
                    license_id=lic.ref,
                    extracted_text=f"{lic.name} (licence text not included; see {lic.url or 'nixpkgs meta'})",
                    license_name=lic.name,
                    cross_references=[lic.url] if lic.url else [],
                )
    return Document(
        creation_info=creation,
        packages=packages,
        relationships=relationships,
        extracted_licensing_info=[extracted[k] for k in sorted(extracted)],
    )


@contextmanager
def _indexed_lookups(document: Document) -> Iterator[None]:
    """Let spdx-tools' validators look ids and relationships up in indexes of ``document``.

    spdx-tools (0.8) rebuilds the list of every SPDX id for each id it checks, and filters all
    relationships for each package: quadratic, 15 s for 2,000 packages.  For the duration of
    one validation its three lookup helpers are swapped for equivalents over indexes built
    once (same results, same order); the originals are restored afterwards.
    """
    all_ids = set(spdx_id_validators.get_list_of_all_spdx_ids(document))
    by_origin: dict[tuple, list[Relationship]] = defaultdict(list)
    by_target: dict[tuple, list[Relationship]] = defaultdict(list)
    for relationship in document.relationships:
        by_origin[(relationship.relationship_type, relationship.spdx_element_id)].append(relationship)
        by_target[(relationship.relationship_type, relationship.related_spdx_element_id)].append(relationship)
    saved = (
        spdx_id_validators.get_list_of_all_spdx_ids,
        package_validator.filter_by_type_and_origin,
        package_validator.filter_by_type_and_target,
    )
    spdx_id_validators.get_list_of_all_spdx_ids = lambda doc: all_ids if doc is document else saved[0](doc)
    package_validator.filter_by_type_and_origin = (
        lambda rels, kind, origin: list(by_origin.get((kind, origin), ())) if rels is document.relationships else saved[1](rels, kind, origin)
    )
    package_validator.filter_by_type_and_target = (
        lambda rels, kind, target: list(by_target.get((kind, target), ())) if rels is document.relationships else saved[2](rels, kind, target)
    )
    try:
        yield
    finally:
        (
            spdx_id_validators.get_list_of_all_spdx_ids,
            package_validator.filter_by_type_and_origin,
            package_validator.filter_by_type_and_target,
        ) = saved


def validate_spdx(document: Document) -> list[str]:
    """spdx-tools' full validation; an empty list means valid."""
    with _indexed_lookups(document):
        messages = validate_full_spdx_document(document, SPDX_VERSION)
    return [message.validation_message for message in messages]


#: spdx-tools writes the enum names (PACKAGE_MANAGER); the SPDX 2.3 spec and its JSON schema
#: spell the reference categories with a hyphen.
_CATEGORY_SPELLING = {"PACKAGE_MANAGER": "PACKAGE-MANAGER", "PERSISTENT_ID": "PERSISTENT-ID"}


def to_json_dict(document: Document) -> dict:
    """The document as SPDX 2.3 JSON data, in the spelling the official schema requires."""
    data = DocumentConverter().convert(document)
    for package in data.get("packages", []):
        for ref in package.get("externalRefs", []):
            ref["referenceCategory"] = _CATEGORY_SPELLING.get(ref["referenceCategory"], ref["referenceCategory"])
    return data


@lru_cache(maxsize=4096)
def _license_text(expression: str) -> str:
    return str(_LICENSING.parse(expression))


def _package_json(component: Component, role: Role) -> dict:
    """One package as spdx-tools' converter writes it (same keys, order and omissions)."""
    package: dict = {"SPDXID": spdx_id(component)}
    digest = component.digest
    if digest:
        package["checksums"] = [{"algorithm": "SHA256", "checksumValue": digest[1]}]
    package["comment"] = _comment(component)
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
    package["licenseConcluded"] = "NOASSERTION"
    licenses = component.licenses
    package["licenseDeclared"] = _license_text(" AND ".join(dict.fromkeys(l.ref for l in licenses))) if licenses else "NOASSERTION"
    package["name"] = component.name
    file_name = urls[0].rsplit("/", 1)[-1] if urls else ""
    if file_name:
        package["packageFileName"] = file_name
    purpose = _PURPOSE[role]
    if purpose is not None:
        package["primaryPackagePurpose"] = purpose.name.replace("_", "-")
    if meta and meta.description:
        package["summary"] = meta.description
    package["supplier"] = "NOASSERTION"
    if component.version:
        package["versionInfo"] = component.version
    return package


def render_spdx_json(graph: DependencyGraph, context: DocumentContext) -> bytes:
    """The SPDX JSON text of ``graph``: byte for byte what ``render_spdx(build_spdx(graph,
    context))`` gives (a test holds it to that)."""
    return dumps(spdx_json_document(graph, context))


def spdx_json_document(graph: DependencyGraph, context: DocumentContext) -> dict:
    """The SPDX JSON data of ``graph`` built directly, without spdx-tools' model and converter
    (5 s and 0.8 GB of the SPDX for a 40,000-path build closure)."""
    components = graph.sorted_components()
    ids = {c.store_path: spdx_id(c) for c in components}
    document: dict = {
        "SPDXID": "SPDXRef-DOCUMENT",
        "creationInfo": {
            "created": context.created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "creators": [f"Tool: {context.tool}"],
            "comment": f"Generated by {context.tool} from the Nix store {graph.store_dir}",
        },
        "dataLicense": "CC0-1.0",
    }
    extracted = {}
    for component in components:
        for lic in component.licenses:
            if not lic.spdx_id and lic.ref not in extracted:
                entry = {
                    "extractedText": f"{lic.name} (licence text not included; see {lic.url or 'nixpkgs meta'})",
                    "licenseId": lic.ref,
                    "name": lic.name,
                }
                if lic.url:
                    entry["seeAlsos"] = [lic.url]
                extracted[lic.ref] = entry
    if extracted:
        document["hasExtractedLicensingInfos"] = [extracted[k] for k in sorted(extracted)]
    document["name"] = document_name(graph)
    document["spdxVersion"] = SPDX_VERSION
    slug = _ID_UNSAFE.sub("-", graph.root_component.ref)
    document["documentNamespace"] = f"https://spdx.org/spdxdocs/sbomgen/{slug}-{context.document_uuid}"
    document["packages"] = [_package_json(c, graph.role(c)) for c in components]
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


def render_spdx(document: Document, fmt: str = "json") -> str:
    stream = io.StringIO()
    if fmt == "json":
        return json.dumps(to_json_dict(document), indent=2, ensure_ascii=False) + "\n"
    if fmt == "tag-value":
        write_tagvalue(document, stream, validate=False)
    else:
        raise OutputFormatError(f"unknown SPDX format {fmt!r} (choose from: {', '.join(FORMATS)})")
    return stream.getvalue()
