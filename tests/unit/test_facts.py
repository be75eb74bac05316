"""Issue 13, facts, in-process: nixpkgs licence lists -> SPDX expressions, CPE 2.3 binding,
maintainers, suppliers and versions of components."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sbomgen.errors import SbomgenError
from sbomgen.formats.context import parse_supplier, version_of
from sbomgen.graph.identifiers import cpe23_from_parts, cpe_value, is_cpe23
from sbomgen.graph.licensing import exception_id, from_nixpkgs, parse
from sbomgen.graph.meta import load_meta
from sbomgen.graph.model import Component, License, Meta


def L(spdx=None, name=None, exception=False, free=None):
    return License(spdx_id=spdx, name=name or spdx or "x", exception=exception, free=free)


@pytest.mark.parametrize(
    ("licences", "expected"),
    [
        ([L("Apache-2.0"), L("LLVM-exception", exception=True)], "Apache-2.0 WITH LLVM-exception"),
        ([L("GPL-3.0-or-later"), L("GCC-exception-3.1", exception=True)], "GPL-3.0-or-later WITH GCC-exception-3.1"),
        # the exception before its licence attaches to the one after it
        ([L("Classpath-exception-2.0", exception=True), L("GPL-2.0-only")], "GPL-2.0-only WITH Classpath-exception-2.0"),
        # with several licences: the nearest one before it
        ([L("MIT"), L("Apache-2.0"), L("LLVM-exception", exception=True)], "MIT AND Apache-2.0 WITH LLVM-exception"),
        # two exceptions: each takes a licence of its own; one too many stands as a LicenseRef
        ([L("GPL-2.0-only"), L("Classpath-exception-2.0", exception=True), L("Font-exception-2.0", exception=True)],
         "GPL-2.0-only WITH Classpath-exception-2.0 AND LicenseRef-Font-exception-2.0"),
        ([L("LLVM-exception", exception=True)], "LicenseRef-LLVM-exception"),
        ([L("MIT"), L(None, "Unfree thing", free=False), L("MIT")], "MIT AND LicenseRef-Unfree-thing"),
        ([], None),
    ],
)
def test_from_nixpkgs(licences, expected):
    assert from_nixpkgs(licences) == expected
    if expected:
        assert str(parse(expected)) == expected


def test_exception_ids_by_spdx_id_and_nixpkgs_short_name():
    assert exception_id("llvm-exception") == "LLVM-exception"
    assert exception_id("gcc-exception-31") == "GCC-exception-3.1"
    assert exception_id("classpathException20") == "Classpath-exception-2.0"
    assert exception_id("MIT") is None and exception_id("nonsense") is None and exception_id(7) is None


_WORDS = st.sampled_from(["MIT", "Apache-2.0", "GPL-2.0-only", "LLVM-exception", "gcc-exception-31", "unfree", "free", "A B", "(", "AND", "", "x" * 300])
_ENTRY = st.one_of(
    _WORDS,
    st.text(max_size=40),
    st.fixed_dictionaries(
        {},
        optional={"spdxId": st.one_of(_WORDS, st.text(max_size=20), st.integers()), "shortName": st.one_of(_WORDS, st.text(max_size=20)),
                  "fullName": st.one_of(_WORDS, st.text(max_size=40), st.none()), "free": st.one_of(st.booleans(), st.text(max_size=3)),
                  "url": st.one_of(st.text(max_size=20), st.none())},
    ),
    st.none(), st.integers(),
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(_ENTRY, st.lists(_ENTRY, max_size=6)))
def test_any_meta_license_gives_a_valid_expression_or_an_error(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("m") / "meta.json"
    path.write_text(json.dumps({"a": {"name": "a-1", "meta": {"license": raw}}}))
    try:
        meta = load_meta(path).lookup("a-1", "a")
    except SbomgenError:
        return
    expression = meta.license_expression
    if expression is not None:
        assert str(parse(expression)) == expression


def test_cpe_binding_quotes_exactly_what_the_spec_says():
    parts = {"vendor": "sqlite", "product": "sqlite", "version": "3.46.0", "update": "*", "edition": "-"}
    assert cpe23_from_parts(parts) == "cpe:2.3:a:sqlite:sqlite:3.46.0:*:-:*:*:*:*:*"
    assert cpe_value("1.0_rc-2") == "1.0_rc-2"  # . - _ stand as they are
    assert cpe_value("c++") == "c\\+\\+" and cpe_value("a*b") == "a\\*b" and cpe_value("a\\b") == "a\\\\b"
    assert cpe_value("tab\there") is None and cpe_value("é") is None
    full = dict(zip(("part", "vendor", "product", "version", "update", "edition", "language", "sw_edition", "target_sw", "target_hw", "other"),
                    ("o", "linux", "linux_kernel", "6.1", "rc1", "e", "en", "se", "tsw", "x86", "oth"), strict=False))
    assert cpe23_from_parts(full) == "cpe:2.3:o:linux:linux_kernel:6.1:rc1:e:en:se:tsw:x86:oth"
    assert cpe23_from_parts({"vendor": "v"}) is None and cpe23_from_parts({**full, "part": "z"}) is None


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["part", "vendor", "product", "version", "update", "edition", "target_sw"]), st.text(max_size=12)))
def test_any_cpe_parts_bind_to_a_well_formed_name_or_none(parts):
    text = cpe23_from_parts(parts)
    assert text is None or is_cpe23(text)


def test_given_cpe_must_be_well_formed(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({
        "a": {"name": "a-1", "version": "1", "meta": {"identifiers": {"cpe": "cpe:2.3:a:x:y", "cpeParts": {"vendor": "x", "product": "y"}}}},
    }))
    assert load_meta(path).lookup("a-1", "a").cpe == "cpe:2.3:a:x:y:1:*:*:*:*:*:*:*"


def test_maintainers_keep_name_and_email(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"a": {"name": "a-1", "meta": {"maintainers": [{"github": "gh", "email": "e@x"}, "Plain", 7, {"email": "only@x"}]}}}))
    maintainers = load_meta(path).lookup("a-1", "a").maintainers
    assert [(m.name, m.email) for m in maintainers] == [("gh", "e@x"), ("Plain", None)]


def test_supplier_syntax():
    assert parse_supplier("Organization: Example Corp (a@b)") == "Organization: Example Corp (a@b)"
    assert parse_supplier("Person: Jane Doe") == "Person: Jane Doe"
    for bad in ("Jane", "Organization: ", "Tool: x", "Person: a (b", "Organization: x\n"):
        with pytest.raises(SbomgenError):
            parse_supplier(bad)


def test_version_fallback_is_marked():
    base = "/nix/store/" + "a" * 32
    assert version_of(Component(base + "-tzdata", "tzdata", "", "out")) == ("a" * 32, "store-hash")
    assert version_of(Component(base + "-x-1", "x", "1", "out")) == ("1", "name")


def test_unfree_licences_are_listed():
    meta = Meta(licenses=(L("MIT"), L(None, "Secret", free=False)))
    assert [lic.name for lic in meta.unfree] == ["Secret"]


def _tiny_graph():
    from sbomgen.graph.identifiers import assign_purl
    from sbomgen.graph.model import DependencyGraph, GraphKind

    root = Component("/nix/store/" + "b" * 32 + "-app-1", "app", "1", "out", nar_hash_hex="c" * 64)
    dep = Component("/nix/store/" + "d" * 32 + "-tzdata", "tzdata", "", "out", nar_hash_hex="e" * 64)
    for c in (root, dep):
        assign_purl(c)
    return DependencyGraph(GraphKind.RUNTIME, "/nix/store", root.store_path, {c.store_path: c for c in (root, dep)}, {root.store_path: (dep.store_path,)})


@settings(max_examples=150, deadline=None)
@given(st.one_of(
    st.builds(lambda kind, name, email: f"{kind}: {name}" + (f" ({email})" if email else ""),
              st.sampled_from(["Organization", "Person"]), st.text(min_size=1, max_size=20), st.one_of(st.none(), st.emails(), st.text(max_size=10))),
    st.text(max_size=40),
))
def test_any_accepted_supplier_gives_valid_documents(supplier):
    """Whatever --supplier accepts ends in documents that pass the schemas, SPDX's rules and the
    CycloneDX XSD (rendering validates); anything else is a UsageError."""
    from sbomgen.errors import UsageError
    from sbomgen.sbom import plan_outputs, render

    outputs = plan_outputs(spdx_path="s.spdx.json", cdx_path="c.cdx.json", csv_path=None)
    outputs += plan_outputs(spdx_path=None, cdx_path="c.cdx.xml", csv_path=None)
    try:
        rendered = render(_tiny_graph(), outputs, supplier=supplier)
    except UsageError:
        return
    spdx = json.loads(rendered[0].data)
    assert spdx["packages"][0]["supplier"] == supplier
