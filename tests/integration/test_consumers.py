"""Outside consumers read what sbomgen writes (issue 15, items 1, 2 and 7).

* Every CycloneDX version sbomgen offers, in JSON and XML, for every kind of closure, is
  accepted by the official schemas (jsonschema-rs and python-jsonschema, lxml with the XSDs)
  and by cyclonedx-python-lib's own validators; JSON and XML carry the same reference types
  and compositions.
* SPDX JSON written by spdx-tools' own writer passes ``sbomgen validate`` (the reference
  library writes ``PACKAGE_MANAGER``), and sbomgen's own output still does.
* ``--depth`` cut-offs are said in the documents: CycloneDX ``compositions``, SPDX annotations
  and document comment, judged against the full graph (``nix-store --references`` for runtime
  closures, the unlimited build-time graph for build-time ones).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from cyclonedx.validation.xml import XmlValidator
from lxml import etree

from sbomgen.formats import cyclonedx
from sbomgen.formats.context import DocumentContext
from sbomgen.formats.spdx import _ID_UNSAFE, build_spdx, render_spdx, render_spdx_json
from sbomgen.graph.closure import buildtime_graph, runtime_graph
from sbomgen.nix.store import NixStore
from sbomgen.schemas import cyclonedx_xml_errors
from tests.helpers import cdx_components, cdx_property, load_json, run_sbomgen, schema_errors

pytestmark = pytest.mark.nix

#: closure kind -> the arguments that ask for it (the target is filled in by ``targets``)
KINDS = ("runtime", "buildtime", "buildtime-meta", "image", "runtime-depth-0", "buildtime-depth-1")
META = Path(__file__).resolve().parents[2] / "fixtures" / "meta.json"


@pytest.fixture(scope="module")
def targets(nix_store, tmp_path_factory) -> dict[str, list[str]]:
    app = os.path.realpath(nix_store.results["app"])
    layout = tmp_path_factory.mktemp("image") / "weather.oci"
    run = run_sbomgen("image", app, "--name", "weather", "--tag", "v1", "--contents", str(nix_store.results["cacert"]),
                      "-o", str(layout), env=nix_store.env)
    assert run.code == 0, run.stderr
    return {
        "runtime": [app],
        "buildtime": ["--buildtime", app],
        "buildtime-meta": ["--buildtime", "--meta", str(META), "--meta-match-names", app],  # licences, homepages, CPEs
        "image": [f"oci:{layout}"],
        "runtime-depth-0": ["--depth=0", app],
        "buildtime-depth-1": ["--buildtime", "--depth=1", app],
    }


def _cdx(nix_store, tmp_path: Path, args: list[str], version: str, fmt: str) -> bytes:
    out = tmp_path / f"bom-{version}.{fmt}"
    run = run_sbomgen(*args, "--cdx", str(out), "--cdx-version", version, env=nix_store.env)
    assert run.code == 0, run.stderr
    return out.read_bytes()


def _json_refs(bom: dict) -> set[tuple]:
    return {
        (c["bom-ref"], r["type"], r["url"], r.get("comment"), tuple((h["alg"], h["content"]) for h in r.get("hashes", [])))
        for c in cdx_components(bom)
        for r in c.get("externalReferences", [])
    }


def _xml_refs(root, ns: str) -> set[tuple]:
    found = set()
    components = [*root.findall(f"{ns}metadata/{ns}component"), *root.findall(f"{ns}components/{ns}component")]
    for component in components:
        for ref in component.findall(f"{ns}externalReferences/{ns}reference"):
            comment = ref.findtext(f"{ns}comment")
            hashes = tuple((h.get("alg"), h.text) for h in ref.findall(f"{ns}hashes/{ns}hash"))
            found.add((component.get("bom-ref"), ref.get("type"), ref.findtext(f"{ns}url"), comment, hashes))
    return found


def _json_compositions(bom: dict) -> list[tuple[str, list[str]]]:
    return [(c["aggregate"], c.get("dependencies", [])) for c in bom.get("compositions", [])]


def _xml_compositions(root, ns: str) -> list[tuple[str, list[str]]]:
    return [
        (c.findtext(f"{ns}aggregate"), [d.get("ref") for d in c.findall(f"{ns}dependencies/{ns}dependency")])
        for c in root.findall(f"{ns}compositions/{ns}composition")
    ]


@pytest.mark.parametrize("version", cyclonedx.VERSIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_version_and_closure_is_accepted_by_cyclonedx_validators(nix_store, targets, tmp_path, kind, version):
    text = _cdx(nix_store, tmp_path, targets[kind], version, "json")
    xml = _cdx(nix_store, tmp_path, targets[kind], version, "xml")
    bom = json.loads(text)
    assert bom["specVersion"] == version
    assert schema_errors(f"cyclonedx-{version}", bom) == []
    assert JsonStrictValidator(SchemaVersion.from_version(version)).validate_str(text.decode()) is None
    assert cyclonedx_xml_errors(version, xml) == []
    assert XmlValidator(SchemaVersion.from_version(version)).validate_str(xml.decode()) is None

    ns = f"{{http://cyclonedx.org/schema/bom/{version}}}"
    root = etree.fromstring(xml)
    assert root.tag == f"{ns}bom"
    refs = _json_refs(bom)
    assert refs == _xml_refs(root, ns)  # the same types, URLs, comments and hashes in both encodings
    assert _json_compositions(bom) == _xml_compositions(root, ns)
    assert {aggregate for aggregate, _ in _json_compositions(bom)} <= {"complete", "incomplete", "unknown"}
    assert sorted(r for _, refs in _json_compositions(bom) for r in refs) == sorted(c["bom-ref"] for c in cdx_components(bom))

    # the rule of docs/sbom.md: a source download is source-distribution from 1.6 on, and
    # distribution with a comment in 1.5; nothing is silently turned into "other"
    fetch_type = "distribution" if version == "1.5" else "source-distribution"
    fetches = [r for r in refs if r[1] != "website"]
    assert all(r[1] == fetch_type for r in fetches)
    assert all((r[3] is not None) == (version == "1.5") for r in fetches)
    if kind.startswith("buildtime") and "depth" not in kind:
        fetched = {r[2].rsplit("/", 1)[-1] for r in fetches}
        assert "sqlite-autoconf-3460000.tar.gz" in fetched
    if kind == "buildtime-meta":
        assert any(r[1] == "website" for r in refs) and any("licenses" in c for c in cdx_components(bom))


# --- SPDX: what the reference library writes is valid ---------------------------------------


@pytest.mark.parametrize("kind", ["runtime", "buildtime", "image", "buildtime-depth-1"])
def test_spdx_tools_writer_output_passes_sbomgen_validate(nix_env, targets, tmp_path, kind):
    from spdx_tools.spdx.writer.json.json_writer import write_document_to_file

    from sbomgen.sbom import load_graph

    args = targets[kind]
    depth = next((int(a.split("=", 1)[1]) for a in args if a.startswith("--depth=")), None)
    graph = load_graph(args[-1], buildtime="--buildtime" in args, depth=depth).graph
    written = tmp_path / "spdx-tools.spdx.json"
    write_document_to_file(build_spdx(graph, DocumentContext.for_graph(graph)), str(written), validate=True)
    data = load_json(written)
    categories = {r["referenceCategory"] for p in data["packages"] for r in p.get("externalRefs", [])}
    assert "PACKAGE_MANAGER" in categories  # the spelling the published 2.3.1 schema added
    run = run_sbomgen("validate", str(written), env=nix_env.env)
    assert run.code == 0, run.stdout + run.stderr
    assert run.stdout.startswith("VALID")

    ours = tmp_path / "sbomgen.spdx.json"
    run = run_sbomgen(*args, "--spdx", str(ours), env=nix_env.env)
    assert run.code == 0, run.stderr
    assert "PACKAGE-MANAGER" in ours.read_text()  # sbomgen keeps the spelling of the 2.3 text
    run = run_sbomgen("validate", str(ours), env=nix_env.env)
    assert run.code == 0, run.stdout + run.stderr
    assert schema_errors("spdx-2.3", load_json(ours)) == []


def test_published_schema_still_rejects_unknown_categories():
    document = {
        "SPDXID": "SPDXRef-DOCUMENT", "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "name": "x",
        "documentNamespace": "https://example.org/x",
        "creationInfo": {"created": "2024-01-01T00:00:00Z", "creators": ["Tool: t"]},
        "packages": [{"SPDXID": "SPDXRef-a", "name": "a", "downloadLocation": "NOASSERTION",
                      "externalRefs": [{"referenceCategory": "PACKAGE MANAGER", "referenceLocator": "pkg:nix/a",
                                        "referenceType": "purl"}]}],
    }
    assert schema_errors("spdx-2.3", document)
    for category in ("PACKAGE-MANAGER", "PACKAGE_MANAGER", "PERSISTENT_ID", "PERSISTENT-ID"):
        document["packages"][0]["externalRefs"][0]["referenceCategory"] = category
        assert schema_errors("spdx-2.3", document) == []
    del document["documentNamespace"]  # required by the 2.3 text, and by the 2.3.1 schema
    assert schema_errors("spdx-2.3", document)


# --- --depth: the documents say which dependencies are missing --------------------------------


def _composition_of(bom: dict) -> dict[str, str]:
    return {ref: aggregate for aggregate, refs in _json_compositions(bom) for ref in refs}


def _sboms(nix_store, tmp_path: Path, *args: str) -> tuple[dict, dict]:
    spdx_out, cdx_out = tmp_path / "s.spdx.json", tmp_path / "c.cdx.json"
    run = run_sbomgen(*args, "--spdx", str(spdx_out), "--cdx", str(cdx_out), env=nix_store.env)
    assert run.code == 0, run.stderr
    return load_json(spdx_out), load_json(cdx_out)


def _annotated(spdx: dict) -> dict[str, str]:
    return {p["SPDXID"]: p["annotations"][0]["comment"] for p in spdx["packages"] if p.get("annotations")}


def _spdx_id(ref: str) -> str:
    return "SPDXRef-" + _ID_UNSAFE.sub("-", ref)


def _full_runtime_deps(nix_store, paths) -> dict[str, set[str]]:
    return {p: set(nix_store.run("nix-store", "-q", "--references", p).split()) - {p} for p in paths}


def _check_cut_offs(bom: dict, spdx: dict, cut: set[str], depth: int) -> None:
    """``cut``: the bom-refs whose dependencies the full graph has and this document lacks."""
    aggregates = _composition_of(bom)
    refs = {c["bom-ref"] for c in cdx_components(bom)}
    assert set(aggregates) == refs
    frontier = {c["bom-ref"] for c in cdx_components(bom) if int(cdx_property(c, "nix:depth")) == depth}
    assert cut <= frontier
    never_complete = {r for r, a in aggregates.items() if a != "complete"}
    # the walk records exactly whose dependencies it cut (DependencyGraph.cut_off)
    assert {r for r, a in aggregates.items() if a == "incomplete"} == cut
    assert never_complete == cut
    annotated = _annotated(spdx)
    assert set(annotated) == {_spdx_id(r) for r in never_complete}
    assert all(f"--depth {depth}" in note for note in annotated.values())
    if never_complete:
        assert spdx["comment"].startswith("Dependency graph ") and not spdx["comment"].startswith("Dependency graph complete")
        assert f"--depth {depth}" in spdx["comment"]
    else:  # nothing reached the limit: the walk was complete
        assert spdx["comment"].startswith("Dependency graph complete:")


def test_complete_graphs_say_so(nix_store, targets, tmp_path):
    for kind in ("runtime", "buildtime", "image"):
        spdx, bom = _sboms(nix_store, tmp_path, *targets[kind])
        assert _json_compositions(bom) == [("complete", [c["bom-ref"] for c in cdx_components(bom)])]
        assert spdx["comment"].startswith("Dependency graph complete:")
        assert _annotated(spdx) == {}


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_runtime_depth_marks_what_was_cut(nix_store, tmp_path, depth):
    app = os.path.realpath(nix_store.results["app"])
    spdx, bom = _sboms(nix_store, tmp_path, app, f"--depth={depth}")
    paths = {cdx_property(c, "nix:store_path"): c["bom-ref"] for c in cdx_components(bom)}
    full = _full_runtime_deps(nix_store, paths)
    cut = {paths[p] for p, deps in full.items() if not deps <= set(paths)}
    if depth == 0:
        assert cut == {bom["metadata"]["component"]["bom-ref"]}  # the app has dependencies
    _check_cut_offs(bom, spdx, cut, depth)


@pytest.mark.parametrize("depth", [1, 2])
def test_buildtime_depth_marks_what_was_cut(nix_store, tmp_path, depth):
    app = str(nix_store.results["app"])
    _, full_bom = _sboms(nix_store, tmp_path, "--buildtime", app)
    full = {d["ref"]: set(d.get("dependsOn", [])) for d in full_bom["dependencies"]}
    spdx, bom = _sboms(nix_store, tmp_path, "--buildtime", f"--depth={depth}", app)
    kept = {c["bom-ref"] for c in cdx_components(bom)}
    cut = {ref for ref in kept if not full[ref] <= kept}
    if depth == 1:
        assert cut  # the fixture's direct build inputs have inputs of their own
    _check_cut_offs(bom, spdx, cut, depth)


@pytest.mark.parametrize(("walk", "depth"), [(runtime_graph, 0), (buildtime_graph, 1)])
def test_direct_spdx_writer_equals_spdx_tools_with_cut_offs(nix_store, walk, depth):
    store = NixStore(str(nix_store.store_dir), str(nix_store.state_dir))
    graph = walk(store, os.path.realpath(nix_store.results["app"]), depth)  # both cut something
    context = DocumentContext.for_graph(graph)
    data = render_spdx_json(graph, context)
    assert data == render_spdx(build_spdx(graph, context), "json").encode()
    assert b'"annotations"' in data


@pytest.mark.parametrize("version", cyclonedx.VERSIONS)
def test_a_graph_that_knows_its_cuts_marks_exactly_them(nix_store, version):
    store = NixStore(str(nix_store.store_dir), str(nix_store.state_dir))
    app = os.path.realpath(nix_store.results["app"])
    full = buildtime_graph(store, app, None)
    for depth in (0, 1):
        graph = buildtime_graph(store, app, depth)
        cut = {p for p in graph.components if not set(full.dependencies(p)) <= set(graph.components)}
        frontier = {p for p, c in graph.components.items() if c.depth == depth}
        assert cut and cut <= frontier and (depth == 0 or cut != frontier)  # some inputs at the limit are leaves
        assert graph.cut_off == cut  # the walk itself knows
        context = DocumentContext.for_graph(graph)
        bom = cyclonedx.cyclonedx_json_document(graph, context, version)
        assert schema_errors(f"cyclonedx-{version}", bom) == []
        refs = {p: graph.components[p].ref for p in graph.components}
        assert _composition_of(bom) == {refs[p]: "incomplete" if p in cut else "complete" for p in graph.components}
        xml = cyclonedx.render_cyclonedx(cyclonedx.build_cyclonedx(graph, context), "xml", version)
        assert XmlValidator(SchemaVersion.from_version(version)).validate_str(xml) is None
        ns = f"{{http://cyclonedx.org/schema/bom/{version}}}"
        assert _xml_compositions(etree.fromstring(xml.encode()), ns) == _json_compositions(bom)
        library_json = cyclonedx.render_cyclonedx(cyclonedx.build_cyclonedx(graph, context), "json", version)
        assert JsonStrictValidator(SchemaVersion.from_version(version)).validate_str(library_json) is None
        assert _json_compositions(json.loads(library_json)) == _json_compositions(bom)
        data = render_spdx_json(graph, context)
        assert data == render_spdx(build_spdx(graph, context), "json").encode()
        spdx = json.loads(data)
        assert set(_annotated(spdx)) == {_spdx_id(refs[p]) for p in cut}
        assert all(note.startswith("Dependencies cut off by --depth") for note in _annotated(spdx).values())
        assert spdx["comment"].startswith(f"Dependency graph incomplete: --depth {depth} cut off dependencies of {len(cut)} ")


def test_validate_finds_compositions_naming_no_component(nix_store, targets, tmp_path):
    text = _cdx(nix_store, tmp_path, targets["runtime-depth-0"], "1.6", "json")
    bom = json.loads(text)
    for broken in ("no-such-ref", 7, {"x": 1}):
        bom["compositions"][0]["dependencies"].append(broken)
        path = tmp_path / "broken.cdx.json"
        path.write_text(json.dumps(bom))
        run = run_sbomgen("validate", str(path), env=nix_store.env)
        assert run.code == 1, run.stdout + run.stderr
        assert "/compositions/0/dependencies/1" in run.stdout
        bom["compositions"][0]["dependencies"].pop()
    assert cyclonedx.reference_errors(bom) == []
