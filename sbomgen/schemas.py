"""The official JSON schemas in ``schemas/`` and validation of documents against them.

Installed wheels carry the schemas as ``sbomgen/_schemas``; a source checkout (editable
install, tests) reads the repository's ``schemas/`` directly.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

from sbomgen.errors import OutputFormatError
from sbomgen.text import one_line

_PACKAGE_DIR = Path(__file__).resolve().parent


def schema_dir() -> Path:
    for candidate in (_PACKAGE_DIR / "_schemas", _PACKAGE_DIR.parent / "schemas"):
        if (candidate / "spdx-2.3.schema.json").is_file():
            return candidate
    raise FileNotFoundError("sbomgen's schemas/ directory is missing from this installation")


#: document kind -> schema file name
SCHEMAS = {
    "spdx-2.3": "spdx-2.3.schema.json",
    "cyclonedx-1.4": "bom-1.4.schema.json",
    "cyclonedx-1.5": "bom-1.5.schema.json",
    "cyclonedx-1.6": "bom-1.6.schema.json",
    "cyclonedx-1.7": "bom-1.7.schema.json",
    "in-toto-statement-v1": "in-toto-statement-v1.schema.json",
    "slsa-provenance-v1": "slsa-provenance-v1.schema.json",
    "sbomgen-diff-report-v1": "sbomgen-diff-report-v1.schema.json",
    "sbomgen-rebuild-report-v1": "sbomgen-rebuild-report-v1.schema.json",
    "sarif-2.1.0": "sarif-2.1.0.schema.json",
}


@cache
def _contents(name: str) -> Any:
    """A vendored schema file, parsed once (validators, ``$ref``s and the fallback share it)."""
    return json.loads((schema_dir() / name).read_text(encoding="utf-8"))


@cache
def _by_uri() -> dict[str, str]:
    """Every vendored schema's file name by the URIs it can be referred to: its file name and
    its ``$id`` (``id`` in draft-04 schemas such as SARIF)."""
    found: dict[str, str] = {}
    for path in sorted(schema_dir().glob("*.schema.json")):
        found[path.name] = path.name
        contents = _contents(path.name)
        for key in ("$id", "id"):
            if isinstance(contents.get(key), str):
                found[contents[key].rstrip("#")] = path.name
    return found


def _retrieve(uri: str) -> Any:
    """Resolve a ``$ref`` to another schema from ``schemas/`` only: validation never goes online.
    CycloneDX refers to ``spdx.schema.json`` and ``jsf-0.82.schema.json`` relative to its own
    ``$id``, so the file name usually answers without reading every schema's ``$id``."""
    uri = uri.rstrip("#")
    base = uri.rsplit("/", 1)[-1]
    if base.endswith(".schema.json") and (schema_dir() / base).is_file():
        return _contents(base)
    name = _by_uri().get(uri)
    if name is None:
        raise ValueError(f"schema {uri} is not vendored in schemas/")
    return _contents(name)


@cache
def validator(kind: str) -> Any:
    """The compiled validator of one document kind.

    jsonschema-rs (a Rust implementation; formats are checked) validates the 40,000 components
    of a build-time CycloneDX document in 0.15 s, where python-jsonschema took 15 s; the test
    suite runs python-jsonschema over the same documents as a second opinion.
    """
    if kind not in SCHEMAS:
        raise OutputFormatError(f"no schema for document kind {kind!r} (known: {', '.join(SCHEMAS)})")
    schema = _contents(SCHEMAS[kind])
    try:
        return jsonschema_rs.validator_for(schema, validate_formats=True, retriever=_retrieve)
    except jsonschema_rs.ValidationError:
        # The schema itself fails jsonschema-rs' strict meta-check: SARIF 2.1.0's
        # ``run.language`` pattern has a stray ``]``, which ECMA-262 (Annex B) accepts.
        return reference_validator(kind)


@cache
def reference_validator(kind: str) -> _PythonValidator:
    """python-jsonschema over the same schema: the fallback above, and the second opinion the
    tests ask of every document sbomgen writes."""
    if kind not in SCHEMAS:
        raise OutputFormatError(f"no schema for document kind {kind!r} (known: {', '.join(SCHEMAS)})")
    return _PythonValidator(_contents(SCHEMAS[kind]))


class _PythonValidator:
    """python-jsonschema behind jsonschema-rs' interface, for the few (small) documents whose
    schema jsonschema-rs refuses to compile."""

    def __init__(self, schema: dict) -> None:
        from jsonschema import Draft7Validator, validators
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT7

        resources = []
        for uri, name in _by_uri().items():
            resources.append((uri, Resource.from_contents(_contents(name), default_specification=DRAFT7)))
        cls = validators.validator_for(schema, default=Draft7Validator)
        self._validator = cls(schema, registry=Registry().with_resources(resources), format_checker=cls.FORMAT_CHECKER)

    def is_valid(self, document: Any) -> bool:
        return self._validator.is_valid(document)

    def iter_errors(self, document: Any) -> Iterator[Any]:
        for error in self._validator.iter_errors(document):
            error.instance_path = list(error.absolute_path)
            yield error


def schema_errors(kind: str, document: Any) -> list[str]:
    """Every schema violation as ``/json/pointer: message``; empty when valid."""
    check = validator(kind)
    if check.is_valid(document):
        return []
    errors = sorted(check.iter_errors(document), key=lambda e: list(map(str, e.instance_path)))
    return [f"/{'/'.join(map(str, e.instance_path))}: {one_line(e.message)}" for e in errors]


@cache
def _xml_schema(version: str) -> Any:
    from lxml import etree

    return etree.XMLSchema(etree.parse(str(schema_dir() / f"bom-{version}.xsd")))


def cyclonedx_xml_errors(version: str, data: Any) -> list[str]:
    """CycloneDX XML checked against the official XSD of ``version``: ``line N: message``.

    ``data`` is the document's bytes or an lxml tree; bytes are parsed without DTDs, entity
    expansion or the network (the document may come from anywhere)."""
    from lxml import etree

    schema = _xml_schema(version)
    if isinstance(data, (bytes, str)):
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
        try:
            tree = etree.parse(io.BytesIO(data.encode() if isinstance(data, str) else data), parser)
        except etree.XMLSyntaxError as exc:
            return [f"XML: {exc}"]
    else:
        tree = data
    if schema.validate(tree):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]
