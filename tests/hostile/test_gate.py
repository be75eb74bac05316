"""Hostile input for the CI gates: licence expressions, SBOM documents from elsewhere (SPDX JSON
and tag-value, CycloneDX JSON and XML) and policies, through the real ``sbomgen validate`` and
``sbomgen check``, plus property-based fuzzing of the licence parser, the document reader and
the policy loader.

validate: 0 valid, 1 invalid (a named finding), 2 unreadable; check: 0 pass, 1 violated, 2 bad
input. Never "internal error", never a traceback, never a pass for what cannot be read.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sbomgen.errors import SbomgenError
from sbomgen.gate import policy as policy_module
from sbomgen.gate.documents import Document, detect, from_document
from sbomgen.graph import licensing
from tests.helpers import run_sbomgen
from tests.hostile.common import assert_one_line_error, make_canary, snapshot


def _short(value) -> str | None:
    """Test ids of at most 40 characters (some cases are megabytes)."""
    return repr(value)[:40] if isinstance(value, str) else None


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# -- documents written by the tests ----------------------------------------------------------


def _component(name: str, expression: str | None = None, **extra) -> dict:
    component = {"type": "library", "name": name, "version": "1", "bom-ref": name, "purl": f"pkg:nix/{name}@1", **extra}
    if expression is not None:
        component["licenses"] = [{"expression": expression}]
    return component


def cdx_json(tmp_path: Path, components: list[dict], name: str = "sbom.cdx.json", root_licence: bool = True) -> Path:
    doc = {
        "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
        "metadata": {"timestamp": "2024-01-01T00:00:00Z", "component": {"type": "application", "name": "app", "version": "1", "bom-ref": "app",
                                                                        "purl": "pkg:nix/app@1"}},
        "components": components,
        "dependencies": [{"ref": "app", "dependsOn": [c["bom-ref"] for c in components if "bom-ref" in c]}],
    }
    if root_licence:
        doc["metadata"]["component"]["licenses"] = [{"license": {"id": "MIT"}}]
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def spdx_json(tmp_path: Path, expression: str = "MIT", name: str = "sbom.spdx.json", **package_extra) -> Path:
    doc = {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": "t",
        "documentNamespace": "https://example.org/t", "creationInfo": {"created": "2024-01-01T00:00:00Z", "creators": ["Tool: test"]},
        "packages": [
            {"SPDXID": "SPDXRef-app", "name": "app", "versionInfo": "1", "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
             "licenseConcluded": "NOASSERTION", "licenseDeclared": "MIT", "copyrightText": "NOASSERTION"},
            {"SPDXID": "SPDXRef-lib", "name": "lib", "versionInfo": "2", "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
             "licenseConcluded": "NOASSERTION", "licenseDeclared": expression, "copyrightText": "NOASSERTION", **package_extra},
        ],
        "relationships": [
            {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-app"},
            {"spdxElementId": "SPDXRef-app", "relationshipType": "DEPENDS_ON", "relatedSpdxElement": "SPDXRef-lib"},
        ],
    }
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


TAG_VALUE = """SPDXVersion: SPDX-2.3
DataLicense: CC0-1.0
SPDXID: SPDXRef-DOCUMENT
DocumentName: t
DocumentNamespace: https://example.org/t
Creator: Tool: test
Created: 2024-01-01T00:00:00Z

PackageName: app
SPDXID: SPDXRef-app
PackageVersion: 1
PackageDownloadLocation: NOASSERTION
FilesAnalyzed: false
PackageLicenseConcluded: NOASSERTION
PackageLicenseDeclared: MIT
PackageCopyrightText: NOASSERTION
ExternalRef: PACKAGE-MANAGER purl pkg:nix/app@1

PackageName: lib
SPDXID: SPDXRef-lib
PackageVersion: 2
PackageDownloadLocation: NOASSERTION
FilesAnalyzed: false
PackageLicenseConcluded: NOASSERTION
PackageLicenseDeclared: {expression}
PackageCopyrightText: NOASSERTION

Relationship: SPDXRef-DOCUMENT DESCRIBES SPDXRef-app
Relationship: SPDXRef-app DEPENDS_ON SPDXRef-lib
"""

CDX_XML = """<?xml version="1.0" encoding="UTF-8"?>
{doctype}<bom xmlns="http://cyclonedx.org/schema/bom/1.6" version="1">
  <metadata>
    <timestamp>2024-01-01T00:00:00Z</timestamp>
    <component type="application" bom-ref="app"><name>app</name><version>1</version><purl>pkg:nix/app@1</purl></component>
  </metadata>
  <components>
    <component type="library" bom-ref="lib">
      <name>{name}</name><version>2</version>
      <licenses><expression>{expression}</expression></licenses>
      <purl>pkg:nix/lib@2</purl>{extra}
    </component>
  </components>
  <dependencies><dependency ref="app"><dependency ref="lib"/></dependency><dependency ref="lib"/></dependencies>
</bom>
"""


def tag_value(tmp_path: Path, expression: str = "MIT", name: str = "sbom.spdx") -> Path:
    path = tmp_path / name
    path.write_text(TAG_VALUE.format(expression=expression))
    return path


def cdx_xml(tmp_path: Path, expression: str = "MIT", doctype: str = "", name: str = "lib", extra: str = "", file: str = "sbom.cdx.xml") -> Path:
    path = tmp_path / file
    path.write_text(CDX_XML.format(expression=expression, doctype=doctype, name=name, extra=extra))
    return path


def policy(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def check(tmp_path: Path, target: Path, policy_text: str) -> tuple[int, dict]:
    run = run_sbomgen("check", "--policy", str(policy(tmp_path, policy_text)), str(target), "--json", "-")
    assert run.code in (0, 1), run.stderr
    assert "internal error" not in run.stderr and "Traceback" not in run.stderr
    return run.code, json.loads(run.stdout)


def failed(report: dict) -> dict[str, list[str]]:
    return {r["rule"]: [v["message"] for v in r["violations"]] for r in report["rules"] if r["violations"]}


# -- licences: one parser, WITH semantics ------------------------------------------------------


@pytest.mark.parametrize(
    "text,canonical",
    [
        ("GPL-2.0-only WITH Classpath-exception-2.0", "GPL-2.0-only WITH Classpath-exception-2.0"),
        ("gpl-2.0-only with classpath-exception-2.0", "GPL-2.0-only WITH Classpath-exception-2.0"),
        ("mit", "MIT"),
        ("GPL-2.0", "GPL-2.0-only"),
        ("GPL-2.0+", "GPL-2.0-or-later"),
        ("LGPL-2.1-only+", "LGPL-2.1-or-later"),
        ("Apache-2.0+", "Apache-2.0+"),
        ("GPL-2.0-with-classpath-exception", "GPL-2.0-only WITH Classpath-exception-2.0"),
        ("LicenseRef-MIT-Bootstrap", "LicenseRef-MIT-Bootstrap"),
        ("DocumentRef-x:LicenseRef-y", "DocumentRef-x:LicenseRef-y"),
        ("MIT OR (Apache-2.0 AND BSD-3-Clause)", "MIT OR (Apache-2.0 AND BSD-3-Clause)"),
        ("((MIT OR Apache-2.0)) AND BSD-3-Clause", "(MIT OR Apache-2.0) AND BSD-3-Clause"),
    ],
)
def test_one_parser_normalises(text, canonical):
    assert licensing.normalize(text) == canonical
    assert licensing.normalize(canonical) == canonical


def test_scancode_aliases_are_not_spdx():
    """license-expression reads LicenseRef-MIT-Bootstrap as MIT and knows 'GPL': SPDX does not."""
    assert licensing.leaves(licensing.parse("LicenseRef-MIT-Bootstrap"))[0].is_ref
    assert licensing.problem("GPL") and "neither on the SPDX licence list" in licensing.problem("GPL")
    assert licensing.problem("LicenseRef-scancode-3com-microcode") is None  # a LicenseRef like any other: literal
    assert licensing.canonical_id("Classpath-exception-2.0") is None  # an exception, not a licence


UNPARSABLE = {
    "AGPL-3.0-only AND": "ends where a licence is expected",
    "MIT OR OR": "has OR where a licence is expected",
    "(MIT": "unclosed '('",
    "MIT)": "unmatched ')'",
    "MIT WITH": "WITH without an exception",
    "WITH Classpath-exception-2.0": "has WITH where a licence is expected",
    "Classpath-exception-2.0": "uses the exception Classpath-exception-2.0 as a licence",
    "MIT WITH Apache-2.0": "uses the licence Apache-2.0 as an exception",
    "NOASSERTION AND MIT": "uses NOASSERTION inside an expression",
    "MIT Apache-2.0": "where AND, OR or the end is expected",
    "(MIT OR Apache-2.0) WITH Classpath-exception-2.0": "WITH after a parenthesis",
    "MIT/Apache-2.0": "not an SPDX id",
    "(" * 100 + "MIT" + ")" * 100: "nests parentheses more than 64 deep",
}


UNPARSABLE_REASON = {
    "AGPL-3.0-only AND": "ends where a licence is expected", "MIT OR OR": "has OR where a licence is expected",
    "(MIT": "has an unclosed '('", "MIT WITH": "has WITH without an exception after it",
    "NOASSERTION AND MIT": "uses NOASSERTION inside an expression (it may only stand alone)",
    "Classpath-exception-2.0": "uses the exception Classpath-exception-2.0 as a licence (say LICENCE WITH Classpath-exception-2.0)",
}


@pytest.mark.parametrize("expression", sorted(UNPARSABLE), ids=_short)
def test_unparsable_expression_is_named(expression):
    with pytest.raises(licensing.LicenceExpressionError, match=None) as info:
        licensing.parse(expression)
    assert UNPARSABLE[expression] in str(info.value)


LICENCE_CASES = [
    # (component expression, policy, rules that must fail)
    ("GPL-2.0-only WITH Classpath-exception-2.0", 'deny = ["GPL-2.0-only"]', {"licenses.deny"}),
    ("GPL-2.0-with-classpath-exception", 'deny = ["GPL-2.0-only"]', {"licenses.deny"}),  # deprecated id = the WITH form
    ("gpl-2.0 WITH classpath-exception-2.0", 'deny = ["GPL-2.0-only"]', {"licenses.deny"}),  # case, deprecated id
    ("GPL-2.0-only WITH Classpath-exception-2.0", 'allow = ["GPL-2.0-only WITH Classpath-exception-2.0"]\ndeny = ["GPL-2.0-only"]', set()),
    ("GPL-2.0-only", 'allow = ["GPL-2.0-only WITH Classpath-exception-2.0"]\ndeny = ["GPL-2.0-only"]', {"licenses.allow", "licenses.deny"}),
    ("GPL-2.0-only WITH Classpath-exception-2.0", 'allow = ["GPL-2.0-only"]', set()),  # an exception only adds permissions
    ("GPL-2.0+", 'deny = ["GPL-2.0-or-later"]', {"licenses.deny"}),
    ("MIT OR GPL-3.0-only", 'allow = ["MIT"]\ndeny = ["GPL-3.0-only"]', set()),
    ("MIT AND GPL-3.0-only", 'allow = ["MIT", "GPL-3.0-only"]\ndeny = ["GPL-3.0-only"]', {"licenses.allow", "licenses.deny"}),
    # allowed-and-not-denied is one condition: the deny-free branch must also be the allowed one
    ("(MIT AND GPL-3.0-only) OR Apache-2.0", 'allow = ["MIT", "GPL-3.0-only"]\ndeny = ["GPL-3.0-only"]', {"licenses.allow"}),
    ("(MIT OR GPL-3.0-only) AND Apache-2.0", 'allow = ["MIT", "Apache-2.0"]\ndeny = ["GPL-3.0-only"]', set()),
    ("LicenseRef-MIT-Bootstrap", 'allow = ["MIT"]', {"licenses.allow"}),  # a LicenseRef is only itself
    ("LicenseRef-corp", 'allow = ["LicenseRef-Corp"]', {"licenses.allow"}),  # literally: case too
    ("LicenseRef-Corp", 'allow = ["LicenseRef-Corp"]', set()),
    ("mit", 'allow = ["MIT"]', set()),
    ("Foo-License-1.0", 'deny = ["AGPL-3.0-only"]', {"licenses.deny"}),  # unknown id: the gate cannot tell, fails
    ("Foo-License-1.0", 'allow = ["MIT"]', {"licenses.allow"}),
    *[(expression, 'allow = ["MIT", "AGPL-3.0-only"]\ndeny = ["AGPL-3.0-only"]', {"licenses.allow", "licenses.deny"}) for expression in sorted(UNPARSABLE)[:6]],
]


def test_licence_verdicts_through_check(tmp_path):
    """Every case through the real ``sbomgen check`` on a CycloneDX JSON SBOM (one run per policy)."""
    by_policy: dict[str, list[tuple[int, str, set[str]]]] = {}
    for index, (expression, rules, expected) in enumerate(LICENCE_CASES):
        by_policy.setdefault(rules, []).append((index, expression, expected))
    for number, (rules, cases) in enumerate(by_policy.items()):
        components = [_component(f"c{index}", expression) for index, expression, _ in cases]
        code, report = check(tmp_path, cdx_json(tmp_path, components, f"p{number}.cdx.json", root_licence=False), "[licenses]\n" + rules + "\n")
        failing: dict[str, set[str]] = {}
        for rule in report["rules"]:
            for violation in rule["violations"]:
                failing.setdefault(violation["component"], set()).add(rule["rule"])
        for index, expression, expected in cases:
            assert failing.get(f"pkg:nix/c{index}@1", set()) == expected, (expression, rules, report)
        assert code == (1 if any(expected for _, _, expected in cases) else 0)


BAD = ["AGPL-3.0-only AND", "MIT OR OR", "(MIT", "MIT WITH", "NOASSERTION AND MIT", "Classpath-exception-2.0"]


def test_unparsable_expression_fails_check_and_validate(tmp_path):
    """The issue's example: an unparsable expression passed both gates. Each expression is one
    component of a CycloneDX SBOM, and the licence of one SPDX JSON and one CycloneDX XML file."""
    cdx = cdx_json(tmp_path, [_component(f"bad{i}", expression) for i, expression in enumerate(BAD)], root_licence=False)
    spdx = [spdx_json(tmp_path, expression, name=f"bad{i}.spdx.json") for i, expression in enumerate(BAD)]
    xml = [cdx_xml(tmp_path, expression, file=f"bad{i}.cdx.xml") for i, expression in enumerate(BAD)]
    for rules, rule in (('[licenses]\ndeny = ["AGPL-3.0-only"]\n', "licenses.deny"), ('[licenses]\nallow = ["MIT"]\n', "licenses.allow"),
                        ('[require]\nlicense = "error"\n', "require.license")):
        code, report = check(tmp_path, cdx, rules)
        messages = [m for m in failed(report)[rule] if m != "app 1 has no license"]  # the root declares none
        assert code == 1 and len(messages) == len(BAD), report
        for i, expression in enumerate(BAD):
            assert any(m.startswith(f"bad{i} 1") and f"licence expression {expression!r} {UNPARSABLE_REASON[expression]}" in m for m in messages), messages
    code, report = check(tmp_path, spdx[0], '[licenses]\ndeny = ["AGPL-3.0-only"]\n')
    assert code == 1 and failed(report)["licenses.deny"] == [f"lib 2: licence expression 'AGPL-3.0-only AND' {UNPARSABLE_REASON['AGPL-3.0-only AND']}"]
    run = run_sbomgen("validate", *map(str, spdx + xml + [cdx]), "--json", "-")
    assert run.code == 1, run.stdout + run.stderr
    results = {Path(r["file"]).name: r for r in json.loads(run.stdout)}
    for i, expression in enumerate(BAD):
        for name, pointer in ((f"bad{i}.spdx.json", "/packages/1/licenseDeclared"), (f"bad{i}.cdx.xml", "/components/0/licenses/0/expression"),
                              ("sbom.cdx.json", f"/components/{i}/licenses/0/expression")):
            assert not results[name]["valid"]
            assert {"pointer": pointer, "message": f"licence expression {expression!r} {UNPARSABLE_REASON[expression]}"} in results[name]["errors"], results[name]


def test_with_exception_in_every_format(tmp_path):
    """SPDX JSON, SPDX tag-value, CycloneDX JSON and XML: deny = GPL-2.0-only fails the WITH form."""
    expression = "GPL-2.0-only WITH Classpath-exception-2.0"
    targets = [spdx_json(tmp_path, expression), tag_value(tmp_path, expression), cdx_json(tmp_path, [_component("lib", expression)]),
               cdx_xml(tmp_path, expression)]
    for target in targets:
        assert run_sbomgen("validate", str(target)).code == 0, target
        code, report = check(tmp_path, target, '[licenses]\ndeny = ["GPL-2.0-only"]\n')
        assert code == 1, (target, report)
        assert failed(report)["licenses.deny"] == [f"lib {'2' if target.suffix != '.json' or 'spdx' in target.name else '1'}: licence {expression} requires a denied licence"]


# -- hostile SBOM documents ---------------------------------------------------------------------


def _cdx_doc(**changes) -> dict:
    doc = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": [_component("a", "MIT")],
           "metadata": {"component": {"type": "application", "name": "app", "bom-ref": "app"}}}
    doc.update(changes)
    return doc


WRONG_TYPES = {
    "components not a list": (_cdx_doc(components={"a": 1}), "/components: expected an array"),
    "component a string": (_cdx_doc(components=["x"]), "/components/0: expected an object"),
    "name an int": (_cdx_doc(components=[{"type": "library", "name": 7}]), "/components/0/name: expected a string"),
    "licenses a string": (_cdx_doc(components=[{"type": "library", "name": "a", "licenses": "MIT"}]), "/components/0/licenses: expected an array"),
    "licence id a list": (_cdx_doc(components=[{"type": "library", "name": "a", "licenses": [{"license": {"id": ["MIT"]}}]}]), "/components/0/licenses/0/license/id"),
    "expression a number": (_cdx_doc(components=[{"type": "library", "name": "a", "licenses": [{"expression": 1}]}]), "/components/0/licenses/0/expression"),
    "supplier a string": (_cdx_doc(components=[{"type": "library", "name": "a", "supplier": "ACME"}]), "/components/0/supplier: expected an object"),
    "hashes of ints": (_cdx_doc(components=[{"type": "library", "name": "a", "hashes": [1, 2]}]), "/components/0/hashes/0"),
    "properties an object": (_cdx_doc(components=[{"type": "library", "name": "a", "properties": {"a": "b"}}]), "/components/0/properties"),
    "metadata a list": (_cdx_doc(metadata=[1]), "/metadata: expected an object"),
    "dependsOn a string": (_cdx_doc(dependencies=[{"ref": "app", "dependsOn": "a"}]), "/dependencies/0/dependsOn"),
    "nested components a number": (_cdx_doc(components=[{"type": "library", "name": "a", "components": 3}]), "/components/0/components"),
    "spdx packages an object": ({"spdxVersion": "SPDX-2.3", "packages": {"a": 1}}, "/packages: expected an array"),
    "spdx creators a string": ({"spdxVersion": "SPDX-2.3", "packages": [{"SPDXID": "SPDXRef-a", "name": "a"}], "creationInfo": {"creators": "me"}},
                               "/creationInfo/creators: expected an array"),
    "spdx licence a list": ({"spdxVersion": "SPDX-2.3", "packages": [{"SPDXID": "SPDXRef-a", "name": "a", "licenseDeclared": ["MIT"]}]},
                            "/packages/0/licenseDeclared: expected a string"),
    "spdx relationship a number": ({"spdxVersion": "SPDX-2.3", "packages": [{"SPDXID": "SPDXRef-a", "name": "a"}], "relationships": [5]},
                                   "/relationships/0: expected an object"),
}


@pytest.mark.parametrize("what", sorted(WRONG_TYPES))
def test_wrong_types_everywhere_check(tmp_path, what):
    doc, pointer = WRONG_TYPES[what]
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    run = run_sbomgen("check", "--policy", str(policy(tmp_path, '[licenses]\ndeny = ["AGPL-3.0-only"]\n')), str(path))
    assert_one_line_error(run, 2, pointer)


def test_wrong_types_everywhere_validate(tmp_path):
    """Invalid (exit 1) with the schema's findings, in one run over every case."""
    paths = []
    for index, what in enumerate(sorted(WRONG_TYPES)):
        paths.append(tmp_path / f"doc{index}.json")
        paths[-1].write_text(json.dumps(WRONG_TYPES[what][0]))
    run = run_sbomgen("validate", *map(str, paths), "--json", "-")
    assert run.code == 1 and run.stderr == "", run.stderr
    results = json.loads(run.stdout)
    assert len(results) == len(paths) and not any(r["valid"] for r in results)
    assert all(r["errors"] for r in results)


def test_dangling_and_duplicate_references(tmp_path):
    dangling = cdx_json(tmp_path, [_component("a", "MIT"), _component("a", "MIT")])
    data = json.loads(dangling.read_text())
    data["dependencies"][0]["dependsOn"] = ["a"]
    data["dependencies"].append({"ref": "nowhere", "dependsOn": ["nothing"]})
    dangling.write_text(json.dumps(data))
    run = run_sbomgen("validate", str(dangling))
    assert run.code == 1 and "duplicate bom-ref 'a'" in run.stdout and "dangling reference 'nowhere'" in run.stdout
    code, _ = check(tmp_path, dangling, '[licenses]\nallow = ["MIT"]\n')
    assert code == 0  # every component is still checked
    spdx = spdx_json(tmp_path, "MIT")
    data = json.loads(spdx.read_text())
    data["relationships"].append({"spdxElementId": "SPDXRef-nope", "relationshipType": "DEPENDS_ON", "relatedSpdxElement": "SPDXRef-gone"})
    data["packages"][1]["SPDXID"] = "SPDXRef-app"
    spdx.write_text(json.dumps(data))
    run = run_sbomgen("validate", str(spdx))
    assert run.code == 1 and "INVALID" in run.stdout and "Traceback" not in run.stderr
    code, report = check(tmp_path, spdx, '[licenses]\nallow = ["MIT"]\n')
    assert code == 0, report


@pytest.mark.parametrize("command", ["validate", "check"])
def test_deep_json_is_a_limit_not_a_crash(tmp_path, command):
    """Python's json raised RecursionError ("internal error") on deep nesting."""
    for depth in (100, 100_000):
        path = tmp_path / f"deep{depth}.json"
        path.write_text('{"bomFormat": "CycloneDX", "specVersion": "1.6", "x": ' + "[" * depth + "]" * depth + "}")
        args = ["--policy", str(policy(tmp_path, "[closure]\nmax_components = 1\n"))] if command == "check" else []
        assert_one_line_error(run_sbomgen(command, *args, str(path)), 2, "JSON nested more than 64 deep")


def test_too_big_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.json"
    with open(path, "wb") as handle:  # sparse: costs no disk
        handle.truncate((1 << 30) + 1)
    started = time.monotonic()
    assert_one_line_error(run_sbomgen("validate", str(path)), 2, f"document {path}: more than 1073741824 bytes (1073741825)")
    run = run_sbomgen("check", "--policy", str(path), str(cdx_json(tmp_path, [])))
    assert_one_line_error(run, 2, f"policy {path}: more than 1073741824 bytes (1073741825)")
    assert time.monotonic() - started < 30


def test_fifo_device_directory_do_not_block(tmp_path):
    fifo = tmp_path / "sbom.json"
    os.mkfifo(fifo)
    (tmp_path / "dir.json").mkdir()
    started = time.monotonic()
    for target, fragment in ((fifo, "not a regular file"), ("/dev/zero", "not a regular file"), (tmp_path / "dir.json", "a directory")):
        assert_one_line_error(run_sbomgen("validate", str(target)), 2, fragment)
        run = run_sbomgen("check", "--policy", str(target), str(cdx_json(tmp_path, [])))
        assert_one_line_error(run, 2, "cannot read policy", fragment)
    for target in (fifo, "/dev/zero"):  # as check's TARGET
        run = run_sbomgen("check", "--policy", str(policy(tmp_path, "")), str(target))
        assert_one_line_error(run, 2, "not a regular file or directory")
    assert time.monotonic() - started < 60


@pytest.mark.parametrize(
    "content,fragment",
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"name": "\\ud800"}]}', "not JSON"),
        (b'{"bomFormat": "CycloneDX", "specVersion": NaN}', "not JSON"),
        (b"[1, 2, 3]", "a JSON array, not a supply-chain document"),
        (b'{"bomFormat": "CycloneDX", "specVersion": 1.6}', "version <a JSON number> is not supported"),
        (b'{"spdxVersion": ["SPDX-2.3"]}', "version <a JSON array> is not supported"),
        (b'{"_type": 5, "x": 1}', "not SPDX, CycloneDX"),
        (b"", "not JSON, XML or SPDX tag-value"),
    ],
)
def test_unreadable_documents(tmp_path, content, fragment):
    path = tmp_path / "doc.json"
    path.write_bytes(content)
    assert_one_line_error(run_sbomgen("validate", str(path)), 2, fragment)
    assert_one_line_error(run_sbomgen("check", "--policy", str(policy(tmp_path, "")), str(path)), 2)


def test_huge_strings_stay_linear(tmp_path):
    name = "n" * 5_000_000
    expression = " AND ".join(["MIT"] * 200_000)  # 1.4 MB: over the parser's bound
    path = cdx_json(tmp_path, [_component("big", "MIT", version="1" * 100_000), {**_component("long", expression)}, _component(name, "MIT")])
    started = time.monotonic()
    code, report = check(tmp_path, path, '[licenses]\nallow = ["MIT"]\n[[deny]]\nname = "big"\nversions = ">=2"\n')
    assert time.monotonic() - started < 60
    assert code == 1 and any("is longer than 65536 characters" in m for m in failed(report)["licenses.allow"])
    assert failed(report)["deny.package"] == ["big " + "1" * 195 + "… is denied: big >=2"]  # 100,000 digits, compared without int()
    assert run_sbomgen("validate", str(path)).code == 1


def test_xml_external_entity_reads_nothing(tmp_path):
    canary = make_canary(tmp_path)
    before = snapshot(canary)
    doctype = f'<!DOCTYPE bom [<!ENTITY x SYSTEM "file://{canary}/secret.txt">]>\n'
    path = cdx_xml(tmp_path, doctype=doctype, name="&x;")
    for args in (["validate", str(path)], ["check", "--policy", str(policy(tmp_path, "")), str(path)],
                 ["validate", str(path), "--json", "-"]):
        run = run_sbomgen(*args)
        assert "canary secret" not in run.stdout + run.stderr
        assert_one_line_error(run, 2, "XML with a DOCTYPE")
    assert snapshot(canary) == before
    # no DOCTYPE: an entity reference is just undefined; XInclude is never processed
    undefined = cdx_xml(tmp_path, name="&x;", file="undefined.xml")
    assert_one_line_error(run_sbomgen("validate", str(undefined)), 2, "not well-formed XML", "Entity 'x' not defined")
    xinclude = cdx_xml(tmp_path, extra=f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{canary}/secret.txt" parse="text"/>', file="xinclude.xml")
    for args in (["validate", str(xinclude), "--json", "-"], ["check", "--policy", str(policy(tmp_path, "")), str(xinclude), "--json", "-"]):
        run = run_sbomgen(*args)
        assert run.code in (0, 1) and "canary secret" not in run.stdout + run.stderr, run.stdout + run.stderr
    assert snapshot(canary) == before


def test_billion_laughs_ends_quickly(tmp_path):
    entities = '<!ENTITY lol "lol">' + "".join(f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10))
    path = cdx_xml(tmp_path, doctype=f"<!DOCTYPE bom [{entities}]>\n", name="&lol9;")
    started = time.monotonic()
    for args in (["validate", str(path)], ["check", "--policy", str(policy(tmp_path, "")), str(path)]):
        run = run_sbomgen(*args)
        assert_one_line_error(run, 2)
    assert time.monotonic() - started < 30


def test_tag_value_spdx_tools_errors_are_findings(tmp_path):
    junk = tmp_path / "junk.spdx"
    junk.write_text("SPDXVersion: SPDX-2.3\nPackageName: x\nPackageName: y\nRelationship: a b c d e\nCreated: notadate\n\x01 garbage: ((((\n")
    run = run_sbomgen("validate", str(junk))
    assert run.code == 1 and "spdx-tools:" in run.stdout and "Traceback" not in run.stderr, run.stdout + run.stderr
    assert_one_line_error(run_sbomgen("check", "--policy", str(policy(tmp_path, "")), str(junk)), 2, "not a readable SPDX tag-value document")
    run = run_sbomgen("validate", str(tag_value(tmp_path, "MIT OR OR")))
    assert run.code == 1 and "MIT OR OR" in run.stdout


def test_dsse_envelope_of_wrong_shapes(tmp_path):
    import base64

    cases = {
        "sig.json": ({"payload": base64.b64encode(b'{"_type": "x"}').decode(), "payloadType": "x", "signatures": "abc"}, 1),
        # a detected envelope the shared DSSE decoder refuses is invalid (a finding), not unreadable
        "pay.json": ({"payload": 5, "signatures": []}, 1),
        "deep.json": ({"payload": base64.b64encode(b"[" * 200 + b"]" * 200).decode(), "payloadType": "application/vnd.in-toto+json",
                       "signatures": [{"sig": "eA=="}]}, 2),
    }
    for name, (doc, code) in cases.items():
        path = tmp_path / name
        path.write_text(json.dumps(doc))
        run = run_sbomgen("validate", str(path))
        assert run.code == code, (name, run.stdout, run.stderr)
        assert "internal error" not in run.stderr and "Traceback" not in run.stderr


# -- hostile policies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,fragments",
    [
        ("[licenses\nallow = []\n", ["line 1"]),
        ('[licenses]\ndeny = "GPL-3.0-only"\n', ["line 2: licenses.deny must be a list"]),
        ("[closure]\nmax_closure_size = \"big\"\n", ["line 2: unknown key closure.max_closure_size"]),
        ("[closure]\nmax_components = \"big\"\n", ["line 2: closure.max_components must be a int"]),
        ("[closure]\nmax_components = -1\n", ["line 2: closure.max_components must not be negative"]),
        ("[licenses.allow]\nx = 1\n", ["licenses.allow must be a list"]),
        ('licenses = ["MIT"]\n', ["[licenses] must be a table"]),
        ("deny = [1, 2]\n", ["deny must be an array of tables"]),
        ("[[deny]]\nname = 5\n", ["line 2: deny.name must be a str"]),
        ('[[deny]]\nversions = "<1"\n', ["every [[deny]] needs a name"]),
        ('[[deny]]\nname = "x"\nversions = "~1.0"\n', ["line 3: bad version range"]),
        ('[[deny]]\nname = "x"\nversions = "<"\n', ["line 3: bad version range"]),
        ('[[deny]]\nname = "x"\nlevel = ["error"]\n', ["line 3: deny.level must be a str"]),
        ('[[deny]]\nname = "x"\nlevel = "fatal"\n', ['deny.level must be "error" or "warning"']),
        ('[licenses]\nallow = ["MIT OR Apache-2.0"]\n', ["line 2: licenses.allow: 'MIT OR Apache-2.0'", "list each licence on its own"]),
        ('[licenses]\nallow = ["MIT"]\ndeny = ["Classpath-exception-2.0"]\n', ["line 3: licenses.deny", "as a licence"]),
        ('[licenses]\ndeny = ["GPL-2.0-only WITH"]\n', ["line 2: licenses.deny", "WITH without an exception"]),
        ('[licenses]\ndeny = ["GPL"]\n', ["line 2: licenses.deny: 'GPL' is not an SPDX licence id"]),
        ('[licenses]\nallow = [1]\n', ["line 2: licenses.allow must list strings"]),
        ('[licenses]\nallow = [["MIT"]]\n', ["line 2: licenses.allow must list strings"]),
        ("[require]\ndigest = true\n", ["line 2: require.digest must be a str"]),
        ("a = " + "[" * 5000 + "]" * 5000 + "\n", ["not a policy"]),
        ("\x00\x01\x02 binary", [""]),
    ],
    ids=_short,
)
def test_malformed_policies(tmp_path, text, fragments):
    target = cdx_json(tmp_path, [_component("a", "MIT")])
    run = run_sbomgen("check", "--policy", str(policy(tmp_path, text)), str(target))
    assert_one_line_error(run, 2, *fragments)


def _toml_key(key: str) -> str:
    return json.dumps(key)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


_KEYS = st.sampled_from(["licenses", "allow", "deny", "level", "require", "digest", "closure", "max_components", "provenance",
                         "required", "file", "reproducible", "fetches", "require_fixed_hash", "name", "versions", "reason", "x"])
_SCALARS = st.one_of(st.booleans(), st.integers(-10, 10**6), st.sampled_from(["error", "warning", "MIT", "GPL-2.0-only WITH Classpath-exception-2.0",
                                                                             "MIT OR", "<1.0", ">=2, <3", "~1", "", "LicenseRef-x"]),
                     st.text(max_size=20))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=12)


@st.composite
def _policies(draw) -> str:
    lines = []
    for table in draw(st.lists(_KEYS, max_size=4)):
        if draw(st.booleans()):
            lines.append(f"[[{table}]]" if table == "deny" else f"[{table}]")
            for key, value in draw(st.dictionaries(_KEYS, _VALUES, max_size=4)).items():
                lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
        else:
            lines.append(f"{_toml_key(table)} = {_toml_value(draw(_VALUES))}")
    return "\n".join(lines) + "\n"


def _load_only_clean_errors(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_bytes(data)
    try:
        loaded = policy_module.load_policy(str(path))
    except SbomgenError as exc:
        assert "\n" not in str(exc)
        return
    for rule in loaded.deny:  # what loaded must be usable
        policy_module.in_range("1.2.3", rule.versions)
    licensing.LicencePolicy.of(loaded.allow_licenses, loaded.deny_licenses)


@FUZZ
@given(text=_policies())
def test_fuzz_policy_loader_toml_shapes(tmp_path, text):
    _load_only_clean_errors(tmp_path, text.encode())


@FUZZ
@given(data=st.binary(max_size=300) | st.text(alphabet='[]="\n .,#abcdeflnowy012', max_size=200).map(str.encode))
def test_fuzz_policy_loader_bytes(tmp_path, data):
    _load_only_clean_errors(tmp_path, data)


# -- versions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a,b,expected",
    [("1.0", "1.0", 0), ("1.10", "1.9", 1), ("", "1", -1), ("1.0pre1", "1.0", -1), ("²", "1", -1), ("١٢", "3", -1),
     ("9" * 10_000, "9" * 9_999, 1), ("0" * 5000 + "1", "1", 0), ("1" * 10_000, "1" * 10_000, 0)],
    ids=_short,
)
def test_compare_versions_hostile(a, b, expected):
    assert policy_module.compare_versions(a, b) == expected
    assert policy_module.compare_versions(b, a) == -expected


def test_compare_versions_is_linear():
    long = "1." * 500_000
    started = time.monotonic()
    assert policy_module.compare_versions(long, long + "1") == -1
    assert policy_module.in_range(long, ">=1, <2, !=" + long[:1000])
    assert time.monotonic() - started < 10


@FUZZ
@given(a=st.text(max_size=40), b=st.text(max_size=40))
def test_fuzz_compare_versions(a, b):
    assert policy_module.compare_versions(a, b) == -policy_module.compare_versions(b, a)
    assert policy_module.compare_versions(a, a) == 0


# -- fuzzing the licence parser and the document reader ----------------------------------------

_WORDS = st.sampled_from(["MIT", "mit", "Apache-2.0", "GPL-2.0", "GPL-2.0+", "AND", "OR", "WITH", "and", "(", ")", "Classpath-exception-2.0",
                          "LicenseRef-x", "NOASSERTION", "Foo", "+", "DocumentRef-a:LicenseRef-b", "/", "é", "GPL-2.0-with-classpath-exception"])


@FUZZ
@given(words=st.lists(_WORDS, max_size=12), glue=st.sampled_from([" ", "", "  \t"]))
def test_fuzz_licence_parser(words, glue):
    text = glue.join(words)
    try:
        tree = licensing.parse(text)
    except licensing.LicenceExpressionError as exc:
        assert "\n" not in str(exc)
        return
    assert licensing.parse(str(tree)) == tree  # the canonical text means the same


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
                         ["components", "name", "licenses", "expression", "license", "id", "hashes", "supplier", "metadata", "component",
                          "packages", "SPDXID", "licenseDeclared", "relationships", "creationInfo", "creators", "dependencies", "dependsOn",
                          "properties", "externalReferences", "documentDescribes", "tools", "authors", "bom-ref", "version"]), inner, max_size=4),
                     max_leaves=15)


@FUZZ
@given(body=_JSON, kind=st.sampled_from(["cyclonedx", "spdx"]))
def test_fuzz_inventory_of_any_json(body, kind):
    data = {"bomFormat": "CycloneDX", "specVersion": "1.6"} if kind == "cyclonedx" else {"spdxVersion": "SPDX-2.3"}
    if isinstance(body, dict):
        data.update(body)
    else:
        data["components" if kind == "cyclonedx" else "packages"] = body
    try:
        from_document(Document("fuzz.json", kind, "1.6", "json", "", data))
    except SbomgenError as exc:
        assert "\n" not in str(exc)


def test_detect_reads_what_it_wrote(tmp_path):
    """The reader is the one check and validate use: a sanity check that the fuzzed path is it."""
    assert detect(str(cdx_json(tmp_path, []))).kind == "cyclonedx"
    assert detect(str(tag_value(tmp_path))).encoding == "tag-value"
    assert detect(str(cdx_xml(tmp_path))).encoding == "xml"


@FUZZ
@given(body=_JSON, kind=st.sampled_from(["cyclonedx", "spdx", "dsse", "in-toto"]))
def test_fuzz_validate_any_json(tmp_path, body, kind):
    """validate_file, in process, on documents of random shapes: findings or a clean error."""
    from sbomgen.gate.validate import validate_file

    data = {"cyclonedx": {"bomFormat": "CycloneDX", "specVersion": "1.6"}, "spdx": {"spdxVersion": "SPDX-2.3"},
            "dsse": {"payload": "e30=", "payloadType": "x", "signatures": []},
            "in-toto": {"_type": "https://in-toto.io/Statement/v1"}}[kind]
    if isinstance(body, dict):
        data = {**body, **data}
    else:
        data["components" if kind == "cyclonedx" else "packages" if kind == "spdx" else "signatures" if kind == "dsse" else "subject"] = body
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(data))
    try:
        result = validate_file(str(path))
    except SbomgenError as exc:
        assert "\n" not in str(exc)
        return
    json.dumps(result.as_json())


@FUZZ
@given(data=st.binary(max_size=200) | st.sampled_from([b"<", b"SPDXVersion: SPDX-2.3\n", b"{", b'<bom xmlns="http://cyclonedx.org/schema/bom/1.6">'])
       .flatmap(lambda head: st.binary(max_size=200).map(lambda tail: head + tail)))
def test_fuzz_detect_any_bytes(tmp_path, data):
    path = tmp_path / "fuzz.bin"
    path.write_bytes(data)
    try:
        document = detect(str(path))
        from_document(document)
    except SbomgenError as exc:
        assert "\n" not in str(exc)
