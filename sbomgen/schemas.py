"""The official JSON schemas in ``schemas/`` and validation of documents against them.

Installed wheels carry the schemas as ``sbomgen/_schemas``; a source checkout (editable
install, tests) reads the repository's ``schemas/`` directly.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, ValidationError, validators
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from sbomgen.errors import OutputFormatError

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
def _registry() -> Registry:
    resources = []
    for path in sorted(schema_dir().glob("*.schema.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resource = Resource.from_contents(contents, default_specification=DRAFT7)
        resources.append((path.name, resource))
        for key in ("$id", "id"):  # draft-04 schemas (SARIF) name themselves with "id"
            if isinstance(contents.get(key), str):
                resources.append((contents[key], resource))
    return Registry().with_resources(resources)


def _canonical(value: Any) -> str:
    """A JSON text equal for exactly the values JSON Schema calls equal (1 == 1.0, true != 1)."""

    def norm(item: Any) -> Any:
        if isinstance(item, float) and item.is_integer():
            return int(item)
        if isinstance(item, dict):
            return {k: norm(v) for k, v in item.items()}
        if isinstance(item, list):
            return [norm(v) for v in item]
        return item

    return json.dumps(norm(value), sort_keys=True, separators=(",", ":"))


def _unique_items(validator, unique: bool, instance: Any, schema: dict):
    """``uniqueItems`` by hashing a canonical form: linear, where jsonschema's is quadratic
    (25 s for the 2,000 components of a CycloneDX document)."""
    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[str] = set()
    for item in instance:
        key = _canonical(item)
        if key in seen:
            yield ValidationError(f"{instance!r} has non-unique elements")
            return
        seen.add(key)


@cache
def validator(kind: str):
    if kind not in SCHEMAS:
        raise OutputFormatError(f"no schema for document kind {kind!r} (known: {', '.join(SCHEMAS)})")
    schema = json.loads((schema_dir() / SCHEMAS[kind]).read_text(encoding="utf-8"))
    base = validators.validator_for(schema, default=Draft7Validator)
    cls = validators.extend(base, {"uniqueItems": _unique_items})
    return cls(schema, registry=_registry(), format_checker=cls.FORMAT_CHECKER)


def schema_errors(kind: str, document: Any) -> list[str]:
    """Every schema violation as ``/json/pointer: message``; empty when valid."""
    errors = sorted(validator(kind).iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    return [f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
