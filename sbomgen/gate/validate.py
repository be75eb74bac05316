"""``sbomgen validate``: schema and semantic validation of supply-chain documents, and the
NTIA minimum elements of each SBOM component."""

from __future__ import annotations

from dataclasses import dataclass, field

from sbomgen.gate.documents import Document, DocumentError, detect, dsse_payload, from_document
from sbomgen.schemas import cyclonedx_xml_errors, schema_errors

SUPPORTED = {"spdx": ("2.3",), "cyclonedx": ("1.4", "1.5", "1.6", "1.7")}
NTIA = ("supplier", "name", "version", "unique id", "dependency relationship", "author", "timestamp")


@dataclass(slots=True)
class Finding:
    pointer: str
    message: str


@dataclass(slots=True)
class Validation:
    path: str
    kind: str
    version: str
    encoding: str
    errors: list[Finding] = field(default_factory=list)
    ntia_missing: dict[str, int] = field(default_factory=dict)  # element -> components lacking it
    components: int = 0

    @property
    def valid(self) -> bool:
        return not self.errors

    def as_json(self) -> dict:
        return {
            "file": self.path, "kind": self.kind, "version": self.version, "encoding": self.encoding, "valid": self.valid,
            "errors": [{"pointer": e.pointer, "message": e.message} for e in self.errors],
            "components": self.components, "ntia_missing": self.ntia_missing,
        }


def _split(message: str) -> Finding:
    pointer, _, text = message.partition(": ")
    return Finding(pointer, text)


def _validate_spdx(doc: Document, result: Validation) -> None:
    from spdx_tools.spdx.parser.error import SPDXParsingError
    from spdx_tools.spdx.parser.json import json_parser
    from spdx_tools.spdx.parser.tagvalue import tagvalue_parser

    from sbomgen.formats.spdx import validate_spdx

    if doc.encoding == "json":
        result.errors += [_split(e) for e in schema_errors("spdx-2.3", doc.data)]
    try:
        if doc.encoding == "json":
            document = json_parser.JsonLikeDictParser().parse(doc.data)
        else:
            document = tagvalue_parser.Parser().parse(doc.text)
    except SPDXParsingError as exc:
        result.errors += [Finding("", f"spdx-tools: {m}") for m in exc.get_messages()]
        return
    result.errors += [Finding("", f"spdx-tools: {m}") for m in validate_spdx(document)]


def _validate_cyclonedx(doc: Document, result: Validation) -> None:
    if doc.encoding == "xml":
        result.errors += [_split(e) for e in cyclonedx_xml_errors(doc.version, doc.text.encode())]
        return
    result.errors += [_split(e) for e in schema_errors(f"cyclonedx-{doc.version}", doc.data)]
    from sbomgen.formats.cyclonedx import reference_errors

    result.errors += [_split(e) for e in reference_errors(doc.data)]


def _validate_statement(statement: dict, result: Validation, prefix: str = "") -> None:
    kind = "slsa-provenance-v1" if statement.get("predicateType") == "https://slsa.dev/provenance/v1" else "in-toto-statement-v1"
    result.errors += [Finding(prefix + f.pointer, f.message) for f in map(_split, schema_errors(kind, statement))]


def _ntia(doc: Document, result: Validation) -> None:
    inventory = from_document(doc)
    items = [inventory.root, *inventory.items]
    result.components = len(items)
    missing = {element: 0 for element in NTIA}
    for item in items:
        missing["supplier"] += not item.supplier
        missing["name"] += not item.name
        missing["version"] += not item.version
        missing["unique id"] += not (item.purl or item.cpe)
    if not inventory.dependency_edges:
        missing["dependency relationship"] = len(items)
    if not inventory.authors:
        missing["author"] = 1
    if not inventory.timestamp:
        missing["timestamp"] = 1
    result.ntia_missing = {k: v for k, v in missing.items() if v}


def validate_file(path: str) -> Validation:
    """Validate one file; :class:`DocumentError` when it cannot be read or its kind is unknown."""
    doc = detect(path)
    result = Validation(path, doc.kind, doc.version, doc.encoding)
    if doc.kind in SUPPORTED and doc.version not in SUPPORTED[doc.kind]:
        raise DocumentError(f"{path}: {doc.kind} version {doc.version} is not supported (supported: {', '.join(SUPPORTED[doc.kind])})")
    if doc.kind == "spdx":
        _validate_spdx(doc, result)
    elif doc.kind == "cyclonedx":
        _validate_cyclonedx(doc, result)
    elif doc.kind == "in-toto":
        _validate_statement(doc.data, result)
    else:
        envelope = doc.data
        if not isinstance(envelope.get("payloadType"), str) or not envelope.get("signatures"):
            result.errors.append(Finding("/", "DSSE envelope needs payloadType and at least one signature"))
        for index, sig in enumerate(envelope.get("signatures") or []):
            if not isinstance(sig, dict) or not isinstance(sig.get("sig"), str):
                result.errors.append(Finding(f"/signatures/{index}", "signature without a base64 'sig'"))
        _validate_statement(dsse_payload(doc), result, "payload:")
    if doc.kind in ("spdx", "cyclonedx") and doc.encoding == "json":
        _ntia(doc, result)
    return result


__all__ = ["DocumentError", "Validation", "validate_file"]
