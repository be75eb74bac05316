"""The linear replacements for quadratic library paths give the same verdicts as the originals."""

from __future__ import annotations

from datetime import UTC

import jsonschema
import pytest

from tests.helpers import schema_errors


@pytest.mark.parametrize(
    "items,unique",
    [
        ([1, 2, 3], True),
        ([1, 1.0], False),  # JSON Schema: equal numbers
        ([True, 1], True),  # booleans are not numbers
        ([{"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}], False),  # key order does not matter
        ([[1, 2], [2, 1]], True),  # list order does
        ([{"a": 1}, {"a": 2}], True),
    ],
)
def test_unique_items_agrees_with_jsonschema(items, unique):
    """jsonschema-rs, which validates our documents, and python-jsonschema agree on equality."""
    import jsonschema_rs

    assert jsonschema.Draft7Validator({"uniqueItems": True}).is_valid(items) is unique
    assert jsonschema_rs.validator_for({"uniqueItems": True}).is_valid(items) is unique


def test_duplicate_components_rejected_by_real_schema():
    component = {"type": "library", "name": "x"}
    doc = {"bomFormat": "CycloneDX", "specVersion": "1.6"}
    assert schema_errors("cyclonedx-1.6", {**doc, "components": [component, dict(component)]})
    assert not schema_errors("cyclonedx-1.6", {**doc, "components": [component, {"type": "library", "name": "y"}]})


def test_spdx_validation_still_reports_dangling_relationships():
    from datetime import datetime

    from spdx_tools.spdx.model import Actor, ActorType, CreationInfo, Document, Package, Relationship, RelationshipType, SpdxNoAssertion

    from sbomgen.formats.spdx import validate_spdx

    doc = Document(
        CreationInfo("SPDX-2.3", "SPDXRef-DOCUMENT", "t", "https://example.org/t", [Actor(ActorType.TOOL, "t")], datetime.now(UTC)),
        packages=[Package("SPDXRef-a", "a", SpdxNoAssertion(), files_analyzed=False)],
        relationships=[
            Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, "SPDXRef-a"),
            Relationship("SPDXRef-a", RelationshipType.DEPENDS_ON, "SPDXRef-missing"),
        ],
    )
    messages = validate_spdx(doc)
    assert any("SPDXRef-missing" in m for m in messages)
    # and the library's own lookups are restored afterwards
    from spdx_tools.spdx.validation import spdx_id_validators

    assert spdx_id_validators.get_list_of_all_spdx_ids.__module__ == "spdx_tools.spdx.validation.spdx_id_validators"
