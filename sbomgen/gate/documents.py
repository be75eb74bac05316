"""Supply-chain documents found in the wild: what kind a file is, and what is in it.

Detects SPDX 2.3 (JSON, tag-value), CycloneDX 1.4-1.7 (JSON, XML), in-toto statements and DSSE
envelopes, and turns SBOMs (ours or anyone's) and graphs into one flat inventory that policies
are checked against.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from sbomgen.errors import SbomgenError
from sbomgen.graph.model import DependencyGraph


class DocumentError(SbomgenError):
    """Unreadable file, or a kind/version sbomgen does not know."""

    exit_code = 2


@dataclass(slots=True)
class Document:
    path: str
    kind: str  # "spdx" | "cyclonedx" | "in-toto" | "dsse"
    version: str  # "2.3", "1.6", "v1"
    encoding: str  # "json" | "xml" | "tag-value"
    text: str
    data: object = None  # parsed JSON, when JSON


_CDX_XML = re.compile(r'xmlns="http://cyclonedx\.org/schema/bom/(\d\.\d)"')


def detect(path: str) -> Document:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise DocumentError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DocumentError(f"{path} is not a text document (not UTF-8)") from None
    stripped = text.lstrip()
    if stripped.startswith("<"):
        match = _CDX_XML.search(text[:4096])
        if not match:
            raise DocumentError(f"{path}: XML, but not a CycloneDX BOM (no CycloneDX namespace)")
        return Document(path, "cyclonedx", match.group(1), "xml", text)
    if stripped.startswith(("SPDXVersion:", "##")) and "SPDXVersion:" in text[:4096]:
        version = re.search(r"SPDXVersion:\s*SPDX-(\S+)", text)
        return Document(path, "spdx", version.group(1) if version else "?", "tag-value", text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"{path}: not JSON, XML or SPDX tag-value ({exc})") from None
    if not isinstance(data, dict):
        raise DocumentError(f"{path}: a JSON {type(data).__name__}, not a supply-chain document")
    if "spdxVersion" in data:
        return Document(path, "spdx", str(data["spdxVersion"]).removeprefix("SPDX-"), "json", text, data)
    if data.get("bomFormat") == "CycloneDX":
        return Document(path, "cyclonedx", str(data.get("specVersion", "?")), "json", text, data)
    if "payload" in data and "signatures" in data:
        return Document(path, "dsse", "v1", "json", text, data)
    if str(data.get("_type", "")).startswith("https://in-toto.io/Statement/"):
        return Document(path, "in-toto", str(data["_type"]).rsplit("/", 1)[-1], "json", text, data)
    raise DocumentError(f"{path}: JSON, but not SPDX, CycloneDX, an in-toto statement or a DSSE envelope")


def dsse_payload(document: Document) -> dict:
    from sbomgen.errors import MalformedAttestationError
    from sbomgen.formats import dsse

    try:  # the one validating DSSE decoder (formats/dsse.py), bounded like every other reader
        payload = dsse.decode_envelope(document.data, document.path, payload_type=None).statement(document.path)
    except MalformedAttestationError as exc:
        raise DocumentError(str(exc)) from None
    if not isinstance(payload, dict):
        raise DocumentError(f"{document.path}: DSSE payload is not a JSON object")
    return payload


# -- inventory -------------------------------------------------------------------------------


@dataclass(slots=True)
class Item:
    """One component, as far as any SBOM can say."""

    ref: str
    name: str
    version: str = ""
    purl: str = ""
    cpe: str = ""
    sha256: str = ""
    license: str = ""  # an SPDX expression, or "" when none is declared
    supplier: str = ""
    store_path: str = ""
    download_url: str = ""
    unpinned_fetch: str = ""  # a URL fetched by a derivation that declares no fixed hash


@dataclass(slots=True)
class Inventory:
    source: str
    kind: str  # "runtime" | "buildtime" | "image" | "spdx" | "cyclonedx"
    root: Item
    items: list[Item] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    timestamp: str = ""
    dependency_edges: int = 0


def from_graph(graph: DependencyGraph, source: str) -> Inventory:
    def item(c) -> Item:
        digest = c.digest
        return Item(
            ref=c.ref, name=c.name, version=c.version, purl=c.purl, cpe=c.meta.cpe if c.meta and c.meta.cpe else "",
            sha256=digest[1] if digest else "", license=" AND ".join(dict.fromkeys(l.ref for l in c.licenses)),
            supplier="", store_path=c.store_path, download_url=c.download_urls[0] if c.download_urls else "",
            unpinned_fetch=c.extra.get("nix:unpinned_fetch", ""),
        )

    components = graph.sorted_components()
    return Inventory(source, graph.kind.value, item(components[0]), [item(c) for c in components[1:]],
                     ["Tool: sbomgen"], "", sum(len(v) for v in graph.edges.values()))


def _cdx_item(component: dict) -> Item:
    props = {p.get("name"): p.get("value", "") for p in component.get("properties", []) if isinstance(p, dict)}
    hashes = {h.get("alg"): h.get("content", "") for h in component.get("hashes", []) if isinstance(h, dict)}
    licenses = []
    for entry in component.get("licenses", []) or []:
        if "expression" in entry:
            licenses.append(f"({entry['expression']})")
        elif isinstance(entry.get("license"), dict):
            lic = entry["license"]
            licenses.append(lic.get("id") or ("LicenseRef-" + re.sub(r"[^A-Za-z0-9.-]", "-", lic.get("name", "unknown"))))
    supplier = component.get("supplier") or {}
    urls = [r.get("url", "") for r in component.get("externalReferences", []) or [] if r.get("type") in ("distribution", "source-distribution")]
    return Item(
        ref=str(component.get("bom-ref", component.get("name", ""))), name=component.get("name", ""),
        version=component.get("version", ""), purl=component.get("purl", ""), cpe=component.get("cpe", ""),
        sha256=hashes.get("SHA-256", ""), license=" AND ".join(licenses), supplier=supplier.get("name", "") if isinstance(supplier, dict) else "",
        store_path=props.get("nix:store_path", ""), download_url=urls[0] if urls else "", unpinned_fetch=props.get("nix:unpinned_fetch", ""),
    )


def _spdx_item(package: dict) -> Item:
    sums = {c.get("algorithm"): c.get("checksumValue", "") for c in package.get("checksums", []) if isinstance(c, dict)}
    refs = {r.get("referenceType"): r.get("referenceLocator", "") for r in package.get("externalRefs", []) if isinstance(r, dict)}
    declared = package.get("licenseDeclared", "")
    concluded = package.get("licenseConcluded", "")
    license_text = next((x for x in (concluded, declared) if x and x not in ("NOASSERTION", "NONE")), "")
    comment = package.get("comment", "") or ""
    store = re.search(r"nix store path: (\S+)", comment)
    supplier = package.get("supplier", "")
    download = package.get("downloadLocation", "")
    return Item(
        ref=package.get("SPDXID", ""), name=package.get("name", ""), version=package.get("versionInfo", ""),
        purl=refs.get("purl", ""), cpe=refs.get("cpe23Type", ""), sha256=sums.get("SHA256", ""), license=license_text,
        supplier="" if supplier in ("", "NOASSERTION") else supplier, store_path=store.group(1) if store else "",
        download_url="" if download in ("NOASSERTION", "NONE") else download,
    )


def from_document(document: Document) -> Inventory:
    """The inventory of an SBOM file (JSON SPDX or CycloneDX)."""
    data = document.data
    if document.kind == "cyclonedx" and isinstance(data, dict):
        metadata = data.get("metadata") or {}
        root = _cdx_item(metadata.get("component") or {"name": document.path})
        authors = [a.get("name", "") for a in metadata.get("authors", []) or []]
        tools = metadata.get("tools") or {}
        tool_list = tools.get("components", []) if isinstance(tools, dict) else tools
        authors += [f"Tool: {t.get('name', '')}" for t in tool_list if isinstance(t, dict)]
        edges = sum(len(d.get("dependsOn", [])) for d in data.get("dependencies", []) or [])
        return Inventory(document.path, "cyclonedx", root, [_cdx_item(c) for c in data.get("components", []) or []],
                         authors, metadata.get("timestamp", ""), edges)
    if document.kind == "spdx" and isinstance(data, dict):
        packages = [p for p in data.get("packages", []) if isinstance(p, dict)]
        described = set(data.get("documentDescribes", []))
        for rel in data.get("relationships", []):
            if rel.get("relationshipType") == "DESCRIBES" and rel.get("spdxElementId") == "SPDXRef-DOCUMENT":
                described.add(rel.get("relatedSpdxElement"))
        roots = [p for p in packages if p.get("SPDXID") in described] or packages[:1]
        if not roots:
            raise DocumentError(f"{document.path}: an SPDX document without packages")
        root = roots[0]
        creation = data.get("creationInfo") or {}
        edges = sum(1 for r in data.get("relationships", []) if r.get("relationshipType") != "DESCRIBES")
        return Inventory(document.path, "spdx", _spdx_item(root), [_spdx_item(p) for p in packages if p is not root],
                         list(creation.get("creators", [])), creation.get("created", ""), edges)
    raise DocumentError(f"{document.path}: a {document.kind} {document.encoding} document is not an SBOM sbomgen can check (use JSON SPDX or CycloneDX)")
