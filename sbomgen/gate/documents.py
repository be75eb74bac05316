"""Supply-chain documents found in the wild: what kind a file is, and what is in it.

Detects SPDX 2.3 (JSON, tag-value), CycloneDX 1.4-1.7 (JSON, XML), in-toto statements and DSSE
envelopes, and turns SBOMs (ours or anyone's) and graphs into one flat inventory that policies
are checked against.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field

import orjson

from sbomgen import limits
from sbomgen.errors import LimitExceededError, SbomgenError
from sbomgen.fsutil import read_bounded
from sbomgen.graph.model import NIXPKGS_SUPPLIER, DependencyGraph
from sbomgen.text import one_line


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
    data: object = None  # parsed JSON, when JSON (SPDX tag-value: its JSON form, once parsed)
    parsed: object = None  # spdx-tools' model of an SPDX tag-value document, once parsed
    xml: object = None  # the lxml tree, when XML (parsed without DTDs, entities or the network)


_CDX_XML = re.compile(r'xmlns="http://cyclonedx\.org/schema/bom/(\d\.\d)"')


def read_document(path: str, what: str = "document") -> bytes:
    """The bytes of a document file: a regular file (never a FIFO, device or directory, which
    could block or never end), at most ``limits.current().max_document_bytes`` of them."""
    return read_bounded(path, limits.current().max_document_bytes, DocumentError, f"{what} {path}")


def refuse_special_file(path: str) -> None:
    """:class:`DocumentError` when ``path`` is a FIFO, device or socket: reading one could block
    or never end, and no SBOM, image or store path is one."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return  # missing or unreadable: the reader that follows says so
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        raise DocumentError(f"cannot read {path}: not a regular file or directory")


def json_depth(value: object) -> int:
    """How deeply arrays and objects nest in a parsed JSON value (iteratively: no recursion)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def parse_json(raw: bytes | str, where: str, error: type[SbomgenError] = None) -> object:
    """JSON from elsewhere: strict (no NaN, no lone surrogates), nested at most
    ``limits.current().max_json_depth`` deep; ``error`` (default :class:`DocumentError`) with
    one line when it is not."""
    return _loads(raw, where, f"{where}: not valid JSON", error or DocumentError)


def _loads(raw: bytes | str, where: str, not_json: str, error: type[SbomgenError]) -> object:
    depth_limit = limits.current().max_json_depth
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit exceeded" in str(exc):  # orjson stops at 1024
            raise LimitExceededError(f"{where}: JSON nested more than {depth_limit} deep") from None
        raise error(f"{not_json} ({one_line(exc)})") from None
    if json_depth(data) > depth_limit:
        raise LimitExceededError(f"{where}: JSON nested more than {depth_limit} deep")
    return data


def parse_xml(raw: bytes, where: str):
    """An XML document from elsewhere, read without DTDs, entity expansion, XInclude or the
    network; :class:`DocumentError` for a DOCTYPE (a CycloneDX BOM has none) or bad XML."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, remove_pis=True)
    try:
        tree = etree.fromstring(raw, parser).getroottree()
    except etree.XMLSyntaxError as exc:
        raise DocumentError(f"{where}: not well-formed XML ({one_line(exc)})") from None
    except ValueError as exc:  # e.g. an encoding declaration lxml refuses
        raise DocumentError(f"{where}: not readable XML ({one_line(exc)})") from None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise DocumentError(f"{where}: XML with a DOCTYPE: DTDs and entities are not read in documents from elsewhere")
    return tree


def detect(path: str) -> Document:
    raw = read_document(path)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DocumentError(f"{path} is not a text document (not UTF-8)") from None
    stripped = text.lstrip()
    if stripped.startswith("<"):
        match = _CDX_XML.search(text[:4096])
        if not match:
            raise DocumentError(f"{path}: XML, but not a CycloneDX BOM (no CycloneDX namespace)")
        return Document(path, "cyclonedx", match.group(1), "xml", text, xml=parse_xml(raw, path))
    if stripped.startswith(("SPDXVersion:", "##")) and "SPDXVersion:" in text[:4096]:
        version = re.search(r"SPDXVersion:[ \t]*SPDX-(\S+)", text)
        return Document(path, "spdx", version.group(1) if version else "?", "tag-value", text)
    data = _loads(raw, path, f"{path}: not JSON, XML or SPDX tag-value", DocumentError)
    if not isinstance(data, dict):
        raise DocumentError(f"{path}: a JSON {_json_type(data)}, not a supply-chain document")
    if "spdxVersion" in data:
        return Document(path, "spdx", _version(data["spdxVersion"]).removeprefix("SPDX-"), "json", text, data)
    if data.get("bomFormat") == "CycloneDX":
        return Document(path, "cyclonedx", _version(data.get("specVersion", "?")), "json", text, data)
    if "payload" in data and "signatures" in data:
        return Document(path, "dsse", "v1", "json", text, data)
    if isinstance(data.get("_type"), str) and data["_type"].startswith("https://in-toto.io/Statement/"):
        return Document(path, "in-toto", _version(data["_type"].rsplit("/", 1)[-1]), "json", text, data)
    raise DocumentError(f"{path}: JSON, but not SPDX, CycloneDX, an in-toto statement or a DSSE envelope")


def _version(value: object) -> str:
    """A version field as text for messages: strings as they are (cut short), others by type."""
    if isinstance(value, str):
        return value if len(value) <= 40 else value[:39] + "…"
    return f"<a JSON {_json_type(value)}>"


def _json_type(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


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
            sha256=digest[1] if digest else "", license=c.license_expression or "",
            supplier=NIXPKGS_SUPPLIER if c.meta is not None else "", store_path=c.store_path, download_url=c.download_urls[0] if c.download_urls else "",
            unpinned_fetch=c.extra.get("nix:unpinned_fetch", ""),
        )

    components = graph.sorted_components()
    return Inventory(source, graph.kind.value, item(components[0]), [item(c) for c in components[1:]],
                     ["Tool: sbomgen"], "", sum(len(v) for v in graph.edges.values()))


class _Shape:
    """Reads fields of a JSON document from elsewhere, insisting on their types: a field of the
    wrong type is bad input named by its JSON pointer, never a crash."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, pointer: str, expected: str, value: object) -> DocumentError:
        return DocumentError(f"{self.path}:{pointer or '/'}: expected {expected}, not a JSON {_json_type(value)}")

    def obj(self, value: object, pointer: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(pointer, "an object", value)
        return value

    def str(self, parent: dict, key: str, pointer: str) -> str:
        value = parent.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.fail(f"{pointer}/{key}", "a string", value)
        return value

    def list(self, parent: dict, key: str, pointer: str) -> list:
        value = parent.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(f"{pointer}/{key}", "an array", value)
        return value

    def objects(self, parent: dict, key: str, pointer: str) -> list[tuple[str, dict]]:
        """``parent[key]``, an array of objects, with each one's pointer."""
        return [(f"{pointer}/{key}/{i}", self.obj(v, f"{pointer}/{key}/{i}")) for i, v in enumerate(self.list(parent, key, pointer))]


def _licence_name_ref(name: str) -> str:
    return "LicenseRef-" + (re.sub(r"[^A-Za-z0-9.-]", "-", name) or "unknown")


def _cdx_item(shape: _Shape, component: dict, here: str) -> Item:
    props = {}
    for at, prop in shape.objects(component, "properties", here):
        props[shape.str(prop, "name", at)] = shape.str(prop, "value", at)
    hashes = {}
    for at, entry in shape.objects(component, "hashes", here):
        hashes[shape.str(entry, "alg", at)] = shape.str(entry, "content", at)
    licenses = []
    for at, entry in shape.objects(component, "licenses", here):
        if "expression" in entry:
            licenses.append(shape.str(entry, "expression", at))
        elif entry.get("license") is not None:
            lic = shape.obj(entry["license"], f"{at}/license")
            licenses.append(shape.str(lic, "id", f"{at}/license") or _licence_name_ref(shape.str(lic, "name", f"{at}/license") or "unknown"))
    supplier = component.get("supplier")
    supplier_name = shape.str(shape.obj(supplier, f"{here}/supplier"), "name", f"{here}/supplier") if supplier is not None else ""
    urls = []
    for at, ref in shape.objects(component, "externalReferences", here):
        if shape.str(ref, "type", at) in ("distribution", "source-distribution"):
            urls.append(shape.str(ref, "url", at))
    name = shape.str(component, "name", here)
    return Item(
        ref=shape.str(component, "bom-ref", here) or name, name=name,
        version=shape.str(component, "version", here), purl=shape.str(component, "purl", here), cpe=shape.str(component, "cpe", here),
        sha256=hashes.get("SHA-256", ""), license=licenses[0] if len(licenses) == 1 else " AND ".join(f"({lic})" for lic in licenses),
        supplier=supplier_name,
        store_path=props.get("nix:store_path", ""), download_url=urls[0] if urls else "", unpinned_fetch=props.get("nix:unpinned_fetch", ""),
    )


def _cdx_components(shape: _Shape, parent: dict, pointer: str, out: list[Item]) -> None:
    """Every component, nested ones included (CycloneDX allows components within components),
    iteratively: nesting depth is bounded by the JSON depth limit anyway."""
    pending = [(parent, pointer)]
    while pending:
        node, here = pending.pop()
        for at, component in shape.objects(node, "components", here):
            out.append(_cdx_item(shape, component, at))
            pending.append((component, at))


def _spdx_item(shape: _Shape, package: dict, here: str) -> Item:
    sums = {}
    for at, checksum in shape.objects(package, "checksums", here):
        sums[shape.str(checksum, "algorithm", at)] = shape.str(checksum, "checksumValue", at)
    refs = {}
    for at, ref in shape.objects(package, "externalRefs", here):
        refs.setdefault(shape.str(ref, "referenceType", at), shape.str(ref, "referenceLocator", at))
    declared = shape.str(package, "licenseDeclared", here)
    concluded = shape.str(package, "licenseConcluded", here)
    license_text = next((x for x in (concluded, declared) if x and x.strip() not in ("NOASSERTION", "NONE")), "")
    comment = shape.str(package, "comment", here)
    store = re.search(r"nix store path: (\S+)", comment)
    supplier = shape.str(package, "supplier", here)
    download = shape.str(package, "downloadLocation", here)
    return Item(
        ref=shape.str(package, "SPDXID", here), name=shape.str(package, "name", here), version=shape.str(package, "versionInfo", here),
        purl=refs.get("purl", ""), cpe=refs.get("cpe23Type", ""), sha256=sums.get("SHA256", ""), license=license_text,
        supplier="" if supplier in ("", "NOASSERTION") else supplier, store_path=store.group(1) if store else "",
        download_url="" if download in ("NOASSERTION", "NONE") else download,
    )


def spdx_tag_value_data(document: Document) -> dict:
    """An SPDX tag-value document as the JSON it would be, through spdx-tools' own parser and
    converter; :class:`DocumentError` naming the first problem when spdx-tools cannot read it."""
    if isinstance(document.data, dict):
        return document.data
    problems = spdx_tag_value_problems(document)
    if problems:
        raise DocumentError(f"{document.path}: not a readable SPDX tag-value document: {problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
    return document.data


def spdx_tag_value_problems(document: Document) -> list[str]:
    """Parse an SPDX tag-value document with spdx-tools (once); its problems, or none, in which
    case ``document.data`` now holds the document as SPDX JSON data. spdx-tools' own failures
    on malformed input (any exception) are problems of the document, not crashes."""
    if isinstance(document.data, dict):
        return []
    from spdx_tools.spdx.parser.error import SPDXParsingError
    from spdx_tools.spdx.parser.tagvalue import tagvalue_parser
    from spdx_tools.spdx.writer.write_utils import convert

    try:
        parsed = tagvalue_parser.Parser().parse(document.text)
    except SPDXParsingError as exc:
        return [" ".join(str(m).split())[:500] for m in exc.get_messages()] or ["spdx-tools cannot parse it"]
    except RecursionError:
        return ["nested too deeply for spdx-tools"]
    except Exception as exc:  # noqa: BLE001 - a third-party parser on hostile input
        return [f"spdx-tools cannot parse it ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})"]
    try:
        document.data = orjson.loads(orjson.dumps(convert(parsed, None)))
    except Exception as exc:  # noqa: BLE001
        return [f"spdx-tools cannot convert it ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})"]
    document.parsed = parsed
    return []


#: versions whose components sbomgen reads (``validate`` knows fewer: those it has schemas of)
CHECKABLE = {"spdx": ("2.2", "2.3"), "cyclonedx": ("1.2", "1.3", "1.4", "1.5", "1.6", "1.7")}


def from_document(document: Document) -> Inventory:
    """The inventory of an SBOM file: SPDX (JSON, tag-value) or CycloneDX (JSON, XML).

    Every field it reads must have the type the format gives it: anything else is a
    :class:`DocumentError` naming the field's JSON pointer (bad input, exit 2 in ``check``)."""
    shape = _Shape(document.path)
    if document.kind in CHECKABLE and document.version not in CHECKABLE[document.kind]:
        raise DocumentError(f"{document.path}: {document.kind} version {document.version} is not one sbomgen can check "
                            f"(known: {', '.join(CHECKABLE[document.kind])})")
    if document.kind == "cyclonedx" and document.encoding == "xml":
        from sbomgen.gate.cdx_xml import cyclonedx_xml_data

        data = cyclonedx_xml_data(document)
    elif document.kind == "spdx" and document.encoding == "tag-value":
        data = spdx_tag_value_data(document)
    else:
        data = document.data
    if document.kind == "cyclonedx" and isinstance(data, dict):
        metadata = shape.obj(data.get("metadata") or {}, "/metadata")
        root_data = metadata.get("component")
        root = _cdx_item(shape, shape.obj(root_data, "/metadata/component"), "/metadata/component") if root_data is not None else Item(document.path, document.path)
        authors = [shape.str(a, "name", at) for at, a in shape.objects(metadata, "authors", "/metadata")]
        tools = metadata.get("tools") or []
        if isinstance(tools, dict):
            tool_list = shape.objects(tools, "components", "/metadata/tools")
        else:
            tool_list = shape.objects(metadata, "tools", "/metadata") if tools else []
        authors += [f"Tool: {shape.str(t, 'name', at)}" for at, t in tool_list]
        edges = 0
        for at, dependency in shape.objects(data, "dependencies", ""):
            edges += len(shape.list(dependency, "dependsOn", at))
        items: list[Item] = []
        _cdx_components(shape, data, "", items)
        return Inventory(document.path, "cyclonedx", root, items, authors, shape.str(metadata, "timestamp", "/metadata"), edges)
    if document.kind == "spdx" and isinstance(data, dict):
        packages = shape.objects(data, "packages", "")
        described = set()
        for index, ref in enumerate(shape.list(data, "documentDescribes", "")):
            if not isinstance(ref, str):
                raise shape.fail(f"/documentDescribes/{index}", "a string", ref)
            described.add(ref)
        relationships = shape.objects(data, "relationships", "")
        edges = 0
        for at, rel in relationships:
            kind = shape.str(rel, "relationshipType", at)
            if kind == "DESCRIBES" and shape.str(rel, "spdxElementId", at) == "SPDXRef-DOCUMENT":
                described.add(shape.str(rel, "relatedSpdxElement", at))
            elif kind != "DESCRIBES":
                edges += 1
        items = [(_spdx_item(shape, p, at), at) for at, p in packages]
        roots = [index for index, (item, _) in enumerate(items) if item.ref in described] or [0] * bool(items)
        if not roots:
            raise DocumentError(f"{document.path}: an SPDX document without packages")
        root = items[roots[0]][0]
        creation = shape.obj(data.get("creationInfo") or {}, "/creationInfo")
        creators = []
        for index, creator in enumerate(shape.list(creation, "creators", "/creationInfo")):
            if not isinstance(creator, str):
                raise shape.fail(f"/creationInfo/creators/{index}", "a string", creator)
            creators.append(creator)
        return Inventory(document.path, "spdx", root, [item for index, (item, _) in enumerate(items) if index != roots[0]],
                         creators, shape.str(creation, "created", "/creationInfo"), edges)
    raise DocumentError(f"{document.path}: a {document.kind} document is not an SBOM sbomgen can check (use SPDX or CycloneDX)")
