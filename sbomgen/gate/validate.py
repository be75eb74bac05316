"""``sbomgen validate``: schema and semantic validation of supply-chain documents, and the
NTIA minimum elements of each SBOM component."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from sbomgen.gate.documents import Document, DocumentError, detect, dsse_payload, from_document, spdx_tag_value_problems
from sbomgen.graph import licensing
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


def _brief(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _licence_finding(pointer: str, expression: object, defined: set[str] | None = None) -> Finding | None:
    """A finding when ``expression`` is not an SPDX licence expression (sbomgen's one parser,
    :mod:`sbomgen.graph.licensing`), or uses a ``LicenseRef-`` the document does not define
    (``defined`` given: SPDX)."""
    if not isinstance(expression, str) or expression.strip() in ("NOASSERTION", "NONE"):
        return None
    try:
        tree = licensing.parse(expression)
    except licensing.LicenceExpressionError:
        return Finding(pointer, licensing.problem(expression))
    if defined is not None:
        for leaf in licensing.leaves(tree):
            if leaf.is_ref and ":" not in leaf.id and leaf.id not in defined:
                return Finding(pointer, f"{leaf.id!r} is neither on the SPDX licence list nor defined in hasExtractedLicensingInfos")
    return None


def _spdx_licence_findings(data: object) -> list[Finding]:
    """Every licence field of an SPDX document (as JSON data) read by the one SPDX parser."""
    if not isinstance(data, dict):
        return []
    infos = data.get("hasExtractedLicensingInfos")
    defined = {i.get("licenseId") for i in infos if isinstance(i, dict) and isinstance(i.get("licenseId"), str)} if isinstance(infos, list) else set()
    findings = []
    fields = {"packages": ("licenseConcluded", "licenseDeclared", "licenseInfoFromFiles"),
              "files": ("licenseConcluded", "licenseInfoInFiles"), "snippets": ("licenseConcluded", "licenseInfoInSnippets")}
    for table, keys in fields.items():
        elements = data.get(table)
        for index, element in enumerate(elements if isinstance(elements, list) else []):
            if not isinstance(element, dict):
                continue
            for key in keys:
                value = element.get(key)
                values = enumerate(value) if isinstance(value, list) else [(None, value)]
                for position, expression in values:
                    pointer = f"/{table}/{index}/{key}" + ("" if position is None else f"/{position}")
                    finding = _licence_finding(pointer, expression, defined)
                    if finding:
                        findings.append(finding)
    return findings


def _cdx_licence_findings(data: object) -> list[Finding]:
    """Every ``licenses[].expression`` of a CycloneDX document (as JSON data), nested
    components included, read by the one SPDX parser."""
    findings: list[Finding] = []
    if not isinstance(data, dict):
        return findings
    pending: list[tuple[object, str]] = [(data.get("components"), "/components")]
    metadata = data.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("component"), dict):
        pending.append(([metadata["component"]], "/metadata/component"))
    while pending:
        components, pointer = pending.pop()
        for index, component in enumerate(components if isinstance(components, list) else []):
            if not isinstance(component, dict):
                continue
            here = pointer if pointer == "/metadata/component" else f"{pointer}/{index}"
            licences = component.get("licenses")
            for j, entry in enumerate(licences if isinstance(licences, list) else []):
                if isinstance(entry, dict) and "expression" in entry:
                    finding = _licence_finding(f"{here}/licenses/{j}/expression", entry["expression"])
                    if finding:
                        findings.append(finding)
            pending.append((component.get("components"), f"{here}/components"))
    return findings


def _validate_spdx(doc: Document, result: Validation) -> None:
    from spdx_tools.spdx.parser.error import SPDXParsingError
    from spdx_tools.spdx.parser.json import json_parser

    from sbomgen.formats.spdx import validate_spdx

    if doc.encoding == "json":
        result.errors += [_split(e) for e in schema_errors("spdx-2.3", doc.data)]
        try:
            document = json_parser.JsonLikeDictParser().parse(copy.deepcopy(doc.data))
        except SPDXParsingError as exc:
            result.errors += [Finding("", f"spdx-tools: {_brief(m)}") for m in exc.get_messages()]
            document = None
        except Exception as exc:  # noqa: BLE001 - a third-party parser on hostile input
            result.errors.append(Finding("", f"spdx-tools cannot read it ({type(exc).__name__}: {_brief(exc)})"))
            document = None
    else:
        problems = spdx_tag_value_problems(doc)
        result.errors += [Finding("", f"spdx-tools: {m}") for m in problems]
        document = doc.parsed
    result.errors += _spdx_licence_findings(doc.data)
    if document is None:
        return
    try:
        result.errors += [Finding("", f"spdx-tools: {_brief(m)}") for m in validate_spdx(document)]
    except Exception as exc:  # noqa: BLE001 - a third-party validator on hostile input
        result.errors.append(Finding("", f"spdx-tools cannot validate it ({type(exc).__name__}: {_brief(exc)})"))


def _validate_cyclonedx(doc: Document, result: Validation) -> None:
    if doc.encoding == "xml":
        from sbomgen.gate.cdx_xml import cyclonedx_xml_data

        result.errors += [_split(e) for e in cyclonedx_xml_errors(doc.version, doc.xml)]
        result.errors += _cdx_licence_findings(cyclonedx_xml_data(doc))
        return
    result.errors += [_split(e) for e in schema_errors(f"cyclonedx-{doc.version}", doc.data)]
    from sbomgen.formats.cyclonedx import reference_errors

    try:
        result.errors += [_split(e) for e in reference_errors(doc.data)]
    except (AttributeError, TypeError):  # a field of the wrong type, which the schema names
        if not result.errors:
            result.errors.append(Finding("", "bom-refs cannot be followed: a component or dependency is not an object"))
    result.errors += _cdx_licence_findings(doc.data)


def _validate_statement(statement: dict, result: Validation, prefix: str = "") -> None:
    kind = "slsa-provenance-v1" if statement.get("predicateType") == "https://slsa.dev/provenance/v1" else "in-toto-statement-v1"
    result.errors += [Finding(prefix + f.pointer, f.message) for f in map(_split, schema_errors(kind, statement))]


def _ntia(doc: Document, result: Validation) -> None:
    try:
        inventory = from_document(doc)
    except DocumentError as exc:  # a field of the wrong type: the schema says which, if it can
        if not result.errors:
            result.errors.append(Finding("", str(exc).removeprefix(f"{doc.path}:")))
        return
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
        signatures = envelope.get("signatures")
        if not isinstance(envelope.get("payloadType"), str) or not signatures or not isinstance(signatures, list):
            result.errors.append(Finding("/", "DSSE envelope needs payloadType and at least one signature"))
        for index, sig in enumerate(signatures if isinstance(signatures, list) else []):
            if not isinstance(sig, dict) or not isinstance(sig.get("sig"), str):
                result.errors.append(Finding(f"/signatures/{index}", "signature without a base64 'sig'"))
        try:  # the shared decoder names the first field that is off
            payload = dsse_payload(doc)
        except DocumentError as exc:
            result.errors.append(Finding("/", str(exc).removeprefix(f"{path}: ")))
        else:
            _validate_statement(payload, result, "payload:")
    if doc.kind in ("spdx", "cyclonedx") and (doc.encoding != "tag-value" or isinstance(doc.data, dict)):
        _ntia(doc, result)
    return result


__all__ = ["DocumentError", "Validation", "validate_file"]
