"""sbomgen's SPDX rules agree with spdx-tools' full validation: on every fixture document,
and on documents broken one rule at a time (each must be rejected by both)."""

from __future__ import annotations

import copy
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from spdx_tools.spdx.parser.json import json_parser

from sbomgen.formats.context import DocumentContext
from sbomgen.formats.spdx import spdx_json_document, validate_spdx
from sbomgen.formats.spdx_rules import spdx_rule_errors
from sbomgen.graph.closure import buildtime_graph, runtime_graph
from sbomgen.graph.meta import apply_meta, load_meta
from sbomgen.nix.store import NixStore

META = Path(__file__).resolve().parents[2] / "fixtures" / "meta.json"
CONTEXT = DocumentContext(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), uuid.UUID(int=42), True)


def _spdx_tools_errors(document: dict) -> list[str]:
    return validate_spdx(json_parser.JsonLikeDictParser().parse(copy.deepcopy(document)))


@pytest.fixture(scope="module")
def documents(nix_store):
    store = NixStore(str(nix_store.store_dir), str(nix_store.state_dir))
    docs = {}
    for walk in (runtime_graph, buildtime_graph):
        for target in ("app", "glibc-dev"):
            graph = walk(store, os.path.realpath(nix_store.results[target]), None)
            apply_meta(graph, load_meta(META), match_names=True)
            docs[f"{walk.__name__}-{target}"] = spdx_json_document(graph, CONTEXT)
    return docs


@pytest.mark.nix
def test_fixture_documents_keep_both(documents):
    for name, document in documents.items():
        assert spdx_rule_errors(document) == [], name
        assert _spdx_tools_errors(document) == [], name


def _package(doc: dict, name: str) -> dict:
    return next(p for p in doc["packages"] if p["name"] == name)


BREAKS = {
    "duplicate SPDX id": lambda d: d["packages"][2].__setitem__("SPDXID", d["packages"][1]["SPDXID"]),
    "bad SPDX id": lambda d: d["packages"][1].__setitem__("SPDXID", "SPDXRef-a_b"),
    "dangling relationship": lambda d: d["relationships"][1].__setitem__("relatedSpdxElement", "SPDXRef-nope"),
    "unknown licence": lambda d: d["packages"][1].__setitem__("licenseDeclared", "Foo-License-1.0"),
    "undefined LicenseRef": lambda d: d["packages"][1].__setitem__("licenseDeclared", "MIT AND LicenseRef-undefined"),
    "short checksum": lambda d: d["packages"][1]["checksums"][0].__setitem__("checksumValue", "abc123"),
    "upper-case checksum": lambda d: d["packages"][1]["checksums"][0].__setitem__("checksumValue", "A" * 64),
    "bad purl": lambda d: d["packages"][1]["externalRefs"][0].__setitem__("referenceLocator", "nix/glibc"),
    "type outside category": lambda d: d["packages"][1]["externalRefs"][0].__setitem__("referenceType", "cpe23Type"),
    "bad download location": lambda d: d["packages"][1].__setitem__("downloadLocation", "not a url"),
    "bad homepage": lambda d: d["packages"][1].__setitem__("homepage", "nowhere"),
    "namespace with #": lambda d: d.__setitem__("documentNamespace", d["documentNamespace"] + "#x"),
    "no DESCRIBES": lambda d: d.__setitem__("relationships", [r for r in d["relationships"] if r["relationshipType"] != "DESCRIBES"]),
}


@pytest.mark.nix
@pytest.mark.parametrize("what", sorted(BREAKS))
def test_each_broken_rule_is_caught_by_both(documents, what):
    document = copy.deepcopy(documents["runtime_graph-app"])
    BREAKS[what](document)
    ours = spdx_rule_errors(document)
    assert ours, f"sbomgen's rules miss: {what}"
    assert _spdx_tools_errors(document), f"spdx-tools does not reject {what}: the rule is ours alone"


def test_patterns_are_spdx_tools_own():
    """The patterns are copied (to keep spdx-tools out of a run's imports): they must stay equal."""
    from spdx_tools.spdx.validation import external_package_ref_validator, uri_validators

    from sbomgen.formats import spdx_rules

    assert uri_validators.url_pattern == spdx_rules.URL_PATTERN
    assert uri_validators.download_location_pattern == spdx_rules.DOWNLOAD_LOCATION_PATTERN
    assert spdx_rules.TYPE_TO_REGEX == external_package_ref_validator.TYPE_TO_REGEX
