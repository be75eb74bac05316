"""End to end: real nix-built fixtures in a private store, the real CLI, parsed documents.

Every component set is compared with what Nix itself says (``nix-store -qR``), every digest
with the store DB's narHash, and every document with its official schema / validator.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

import pytest
from lxml import etree
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from sbomgen.schemas import schema_dir
from tests.helpers import cdx_components, cdx_property, db_nar_hashes, load_json, run_sbomgen, schema_errors

pytestmark = pytest.mark.nix


def _sbom(nix_store, tmp_path: Path, *args: str, extra_env: dict[str, str] | None = None) -> tuple[dict, dict]:
    spdx_out, cdx_out = tmp_path / "s.spdx.json", tmp_path / "c.cdx.json"
    run = run_sbomgen(*args, "--spdx", str(spdx_out), "--cdx", str(cdx_out), env={**nix_store.env, **(extra_env or {})})
    assert run.code == 0, run.stderr
    return load_json(spdx_out), load_json(cdx_out)


def _paths(bom: dict) -> set[str]:
    return {cdx_property(c, "nix:store_path") for c in cdx_components(bom)}


def _by_name(bom: dict, name: str) -> list[dict]:
    return [c for c in cdx_components(bom) if c["name"] == name]


def _references(nix_store, path: str) -> list[str]:
    return [p for p in nix_store.run("nix-store", "-q", "--references", path).split() if p != path]


def _bfs(nix_store, root: str, limit: int) -> set[str]:
    seen = {root: 0}
    queue = deque([root])
    while queue:
        node = queue.popleft()
        if seen[node] >= limit:
            continue
        for ref in _references(nix_store, node):
            if ref not in seen:
                seen[ref] = seen[node] + 1
                queue.append(ref)
    return set(seen)


@pytest.fixture(scope="module")
def app_docs(nix_store, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    return _sbom(nix_store, tmp, str(nix_store.results["app"]))


@pytest.fixture(scope="module")
def buildtime_docs(nix_store, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bt")
    return _sbom(nix_store, tmp, "--buildtime", str(nix_store.results["app"]))


def test_runtime_components_equal_nix_store_qR(nix_store, app_docs):
    spdx, bom = app_docs
    app = os.path.realpath(nix_store.results["app"])
    expected = nix_store.query_requisites(app)
    assert _paths(bom) == expected
    assert len(spdx["packages"]) == len(expected)
    assert bom["metadata"]["component"]["name"] == "weather"
    assert bom["metadata"]["component"]["version"] == "0.0.1"


def test_entrypoint_runtime_closure(nix_store, tmp_path):
    _, bom = _sbom(nix_store, tmp_path, str(nix_store.results["entrypoint"]))
    assert _paths(bom) == nix_store.query_requisites(os.path.realpath(nix_store.results["entrypoint"]))


def test_every_digest_is_the_db_nar_hash(nix_store, app_docs):
    spdx, bom = app_docs
    db = db_nar_hashes(nix_store.db_path)
    for component in cdx_components(bom):
        path = cdx_property(component, "nix:store_path")
        assert [h["content"] for h in component["hashes"]] == [db[path]], path
        assert [h["alg"] for h in component["hashes"]] == ["SHA-256"]
        assert cdx_property(component, "nix:digest_of") == "nar"
    spdx_sums = {p["name"] + p.get("versionInfo", ""): p["checksums"] for p in spdx["packages"]}
    assert all(len(sums) == 1 and sums[0]["algorithm"] == "SHA256" for sums in spdx_sums.values())
    assert {p["checksums"][0]["checksumValue"] for p in spdx["packages"]} == {
        db[path] for path in _paths(bom)
    }


def test_digest_matches_nix_store_dump(nix_store, app_docs):
    import hashlib
    import subprocess

    _, bom = app_docs
    root = bom["metadata"]["component"]
    path = cdx_property(root, "nix:store_path")
    dump = subprocess.run(["nix-store", "--dump", path], env={**os.environ, **nix_store.env}, capture_output=True, check=True).stdout
    assert root["hashes"][0]["content"] == hashlib.sha256(dump).hexdigest()


def test_buildtime_equals_drv_closure(nix_store, buildtime_docs):
    _, bom = buildtime_docs
    app_drv = nix_store.query_deriver(os.path.realpath(nix_store.results["app"]))
    expected = nix_store.query_requisites(app_drv)
    seen = set()
    for component in cdx_components(bom):
        if cdx_property(component, "nix:source") == "true":
            seen.add(cdx_property(component, "nix:store_path"))
        else:
            seen.add(cdx_property(component, "nix:drv_path"))
    assert seen == expected
    # build-only tools are in the build closure but not the runtime one
    names = {c["name"] for c in cdx_components(bom)}
    assert {"go", "gcc"} <= names
    assert any(p.endswith("setup.sh") for p in _paths(bom))


def test_buildtime_edges_follow_input_drvs(nix_store, buildtime_docs):
    _, bom = buildtime_docs
    root_ref = bom["metadata"]["component"]["bom-ref"]
    deps = {d["ref"]: set(d.get("dependsOn", [])) for d in bom["dependencies"]}
    refs = {c["bom-ref"]: c for c in cdx_components(bom)}
    direct = {refs[r]["name"] for r in deps[root_ref]}
    assert {"go", "gcc"} <= direct
    assert all(dep in refs for targets in deps.values() for dep in targets)


def test_buildtime_without_built_outputs(nix_store, tmp_path):
    """Only instantiated (never built): every component still has a digest, of the right kind."""
    drv = nix_store.instantiate("unbuilt")
    _, bom = _sbom(nix_store, tmp_path, "--buildtime", drv)
    kinds = {}
    for component in cdx_components(bom):
        assert len(component["hashes"]) == 1, component["name"]
        kinds[component["name"]] = cdx_property(component, "nix:digest_of")
    assert "derivation" in kinds.values()
    assert _paths(bom)  # non-empty
    # a flat fixed-output source is pinned by its file's hash, built or not (issue 13)
    assert all(cdx_property(c, "nix:built") == "false" for c in cdx_components(bom) if cdx_property(c, "nix:digest_of") not in ("nar", "file"))


def test_runtime_of_unbuilt_drv_is_a_clear_error(nix_store):
    drv = nix_store.instantiate("unbuilt")
    run = run_sbomgen(drv, "--spdx", "-", env=nix_store.env)
    assert run.code == 5
    assert "not built" in run.stderr and "--buildtime" in run.stderr
    assert run.stdout == ""


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_depth_limits_runtime_walk(nix_store, tmp_path, depth):
    app = os.path.realpath(nix_store.results["app"])
    _, bom = _sbom(nix_store, tmp_path, app, f"--depth={depth}")
    assert _paths(bom) == _bfs(nix_store, app, depth)
    assert all(int(cdx_property(c, "nix:depth")) <= depth for c in cdx_components(bom))


def test_depth_one_buildtime_is_direct_inputs(nix_store, tmp_path):
    _, bom = _sbom(nix_store, tmp_path, "--buildtime", "--depth=1", str(nix_store.results["app"]))
    app_drv = nix_store.query_deriver(os.path.realpath(nix_store.results["app"]))
    direct = set(nix_store.run("nix-store", "-q", "--references", app_drv).split())
    seen = set()
    for c in cdx_components(bom)[1:]:
        seen.add(cdx_property(c, "nix:store_path") if cdx_property(c, "nix:source") else cdx_property(c, "nix:drv_path"))
    assert seen == direct


def test_multi_output_components_are_separate(nix_store, buildtime_docs, app_docs):
    _, runtime = app_docs
    glibc = _by_name(runtime, "glibc")
    assert [c["version"] for c in glibc] == ["2.40-66"] * len(glibc)
    _, bom = buildtime_docs
    glibcs = [c for c in _by_name(bom, "glibc") if not cdx_property(c, "nix:fixed_output_mode")]
    outputs = {cdx_property(c, "nix:output") for c in glibcs}
    # the build uses glibc's out and dev outputs (not bin): each is its own component
    assert outputs == {"out", "dev"} and len(glibcs) == 2
    assert len({c["purl"] for c in glibcs}) == len(glibcs)
    assert len({c["hashes"][0]["content"] for c in glibcs}) == len(glibcs)
    for c in glibcs:
        assert cdx_property(c, "nix:outputs").split() == ["out", "dev", "bin"]
        if cdx_property(c, "nix:output") != "out":
            assert c["purl"].endswith(f"?output={cdx_property(c, 'nix:output')}")


def test_names_versions_and_sources(nix_store, buildtime_docs):
    spdx, bom = buildtime_docs
    tz = _by_name(bom, "tzdata")
    # issue 13: every component has a version; with none in the name it is the store hash, marked
    assert tz and tz[0]["version"] == tz[0]["bom-ref"][:32] and tz[0]["purl"] == "pkg:nix/tzdata"
    assert cdx_property(tz[0], "nix:version_source") == "store-hash"
    src = _by_name(bom, "sqlite-autoconf")
    assert len(src) == 1 and src[0]["version"] == "3460000"
    assert cdx_property(src[0], "nix:fixed_output_mode") == "flat"
    refs = src[0]["externalReferences"]
    assert refs[0]["type"] == "source-distribution" and refs[0]["url"].endswith("sqlite-autoconf-3460000.tar.gz")
    assert refs[0]["hashes"][0]["content"] == cdx_property(src[0], "nix:fixed_output_hash").split(":", 1)[1]
    pkg = next(p for p in spdx["packages"] if p["name"] == "sqlite-autoconf")
    assert pkg["downloadLocation"] == refs[0]["url"]
    assert pkg["primaryPackagePurpose"] == "SOURCE"
    vendored = [c for c in cdx_components(bom) if cdx_property(c, "nix:fixed_output_mode") == "recursive"]
    assert vendored, "the go-modules recursive fixed-output derivation is missing"
    # everything else that is not a fetch has NOASSERTION, never a made-up URL
    assert all(
        p["downloadLocation"] == "NOASSERTION"
        for p in spdx["packages"]
        if p.get("primaryPackagePurpose") != "SOURCE"
    )


def test_spdx_relationships(app_docs, buildtime_docs):
    spdx, bom = app_docs
    root_id = spdx["documentDescribes"][0] if "documentDescribes" in spdx else None
    rels = spdx["relationships"]
    describes = [r for r in rels if r["relationshipType"] == "DESCRIBES"]
    assert len(describes) == 1 and describes[0]["spdxElementId"] == "SPDXRef-DOCUMENT"
    root_id = root_id or describes[0]["relatedSpdxElement"]
    deps = {d["ref"]: d.get("dependsOn", []) for d in bom["dependencies"]}
    depends_on = [r for r in rels if r["relationshipType"] == "DEPENDS_ON"]
    assert len(depends_on) == sum(len(v) for v in deps.values())
    assert any(r["spdxElementId"] == root_id for r in depends_on)
    bt_spdx, _ = buildtime_docs
    kinds = {r["relationshipType"] for r in bt_spdx["relationships"]}
    assert kinds == {"DESCRIBES", "BUILD_DEPENDENCY_OF"}


def test_documents_validate(app_docs, buildtime_docs, tmp_path):
    for spdx, bom in (app_docs, buildtime_docs):
        assert schema_errors("spdx-2.3", spdx) == []
        assert schema_errors("cyclonedx-1.6", bom) == []
        assert bom["specVersion"] == "1.6"
        path = tmp_path / "doc.spdx.json"
        import json

        path.write_text(json.dumps(spdx))
        assert validate_full_spdx_document(parse_file(str(path))) == []


def test_cdx_xml_and_versions(nix_store, tmp_path):
    app = str(nix_store.results["app"])
    xml = tmp_path / "bom.xml"
    run = run_sbomgen(app, "--cdx", str(xml), env=nix_store.env)
    assert run.code == 0, run.stderr
    schema = etree.XMLSchema(etree.parse(str(schema_dir() / "bom-1.6.xsd")))
    doc = etree.parse(str(xml))
    assert schema.validate(doc), schema.error_log
    for version in ("1.5", "1.7"):
        out = tmp_path / f"bom-{version}.json"
        run = run_sbomgen(app, "--cdx", str(out), "--cdx-version", version, env=nix_store.env)
        assert run.code == 0, run.stderr
        bom = load_json(out)
        assert bom["specVersion"] == version
        assert schema_errors(f"cyclonedx-{version}", bom) == []


def test_tag_value_and_csv(nix_store, tmp_path):
    app = str(nix_store.results["app"])
    tv, csv_out = tmp_path / "x.spdx", tmp_path / "x.csv"
    run = run_sbomgen(app, "--spdx", str(tv), "--csv", str(csv_out), env=nix_store.env)
    assert run.code == 0, run.stderr
    document = parse_file(str(tv))
    assert validate_full_spdx_document(document) == []
    expected = nix_store.query_requisites(os.path.realpath(nix_store.results["app"]))
    assert len(document.packages) == len(expected)
    import csv

    rows = list(csv.DictReader(csv_out.open()))
    assert {r["store_path"] for r in rows} == expected
    assert all(len(r["sha256"]) == 64 for r in rows)


def test_default_outputs_and_summary(nix_store, tmp_path):
    run = run_sbomgen(str(nix_store.results["app"]), "--depth=2", env=nix_store.env, cwd=tmp_path)
    assert run.code == 0, run.stderr
    assert (tmp_path / "sbom.spdx.json").is_file() and (tmp_path / "sbom.cdx.json").is_file()
    assert "weather 0.0.1" in run.stdout and "components" in run.stdout
    assert "wrote sbom.spdx.json" in run.stdout


def test_json_summary(nix_store, tmp_path):
    import json

    run = run_sbomgen(str(nix_store.results["app"]), "--json", "--csv", str(tmp_path / "a.csv"), env=nix_store.env)
    assert run.code == 0, run.stderr
    summary = json.loads(run.stdout)
    expected = nix_store.query_requisites(os.path.realpath(nix_store.results["app"]))
    assert summary["components"] == len(expected)
    assert summary["with_digest"] == len(expected)
    assert summary["without_version"] == ["tzdata"]
    assert run.stderr == ""


def test_stdout_output(nix_store):
    import json

    run = run_sbomgen(str(nix_store.results["app"]), "--cdx", "-", env=nix_store.env)
    assert run.code == 0, run.stderr
    assert json.loads(run.stdout)["bomFormat"] == "CycloneDX"


def test_deterministic_with_source_date_epoch(nix_store, tmp_path):
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    first = tmp_path / "1"
    second = tmp_path / "2"
    first.mkdir()
    second.mkdir()
    for out in (first, second):
        run = run_sbomgen("--buildtime", str(nix_store.results["app"]), env={**nix_store.env, **env}, cwd=out)
        assert run.code == 0, run.stderr
    for name in ("sbom.spdx.json", "sbom.cdx.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    bom = load_json(first / "sbom.cdx.json")
    assert bom["metadata"]["timestamp"].startswith("2023-11-14T22:13:20")


def test_stable_except_fresh_fields(nix_store, tmp_path):
    docs = [_sbom(nix_store, tmp_path / str(i), str(nix_store.results["app"])) for i in (1, 2) if not (tmp_path / str(i)).mkdir()]
    (s1, c1), (s2, c2) = docs
    for doc in (s1, s2):
        doc.pop("documentNamespace")
        doc["creationInfo"].pop("created")
    for doc in (c1, c2):
        doc.pop("serialNumber")
        doc["metadata"].pop("timestamp")
    assert s1 == s2 and c1 == c2
    assert [c["bom-ref"] for c in cdx_components(c1)] == [c["bom-ref"] for c in cdx_components(c2)]


def test_meta_merge(nix_store, tmp_path):
    meta = Path(__file__).resolve().parents[2] / "fixtures" / "meta.json"
    spdx, bom = _sbom(nix_store, tmp_path, str(nix_store.results["app"]), "--meta", str(meta), "--meta-match-names")
    sqlite = next(c for c in cdx_components(bom) if c["name"] == "sqlite" and cdx_property(c, "nix:output") == "out")
    assert sqlite["licenses"] == [{"license": {"id": "blessing"}}]
    assert sqlite.get("cpe", "").startswith("cpe:2.3:a:sqlite:sqlite:3.46.0")
    assert any(r["type"] == "website" for r in sqlite["externalReferences"])
    pkg = next(p for p in spdx["packages"] if p["name"] == "glibc")
    assert pkg["licenseDeclared"] == "LGPL-2.1-or-later"
    assert schema_errors("spdx-2.3", spdx) == [] and schema_errors("cyclonedx-1.6", bom) == []


def test_non_default_output_as_target(nix_store, tmp_path):
    dev = os.path.realpath(nix_store.results["glibc-dev"])
    _, bom = _sbom(nix_store, tmp_path, dev)
    root = bom["metadata"]["component"]
    assert (root["name"], root["version"], cdx_property(root, "nix:output")) == ("glibc", "2.40-66", "dev")
    assert root["purl"] == "pkg:nix/glibc@2.40-66?output=dev"
    assert _paths(bom) == nix_store.query_requisites(dev)
    # build time from an output resolves its deriver and roots the graph at that output
    _, bt = _sbom(nix_store, tmp_path, "--buildtime", dev)
    assert cdx_property(bt["metadata"]["component"], "nix:store_path") == dev
    assert cdx_property(bt["metadata"]["component"], "nix:drv_path") == nix_store.query_deriver(dev)


def test_drv_target(nix_store, tmp_path):
    app = os.path.realpath(nix_store.results["app"])
    drv = nix_store.query_deriver(app)
    _, runtime = _sbom(nix_store, tmp_path, drv)
    assert _paths(runtime) == nix_store.query_requisites(app)
    _, buildtime = _sbom(nix_store, tmp_path, "--buildtime", drv)
    assert cdx_property(buildtime["metadata"]["component"], "nix:store_path") == app


def test_sqlite_drv_target_uses_default_output(nix_store, tmp_path):
    """sqlite declares outputs bin, dev, out: its default output is bin, as nix-build picks."""
    sqlite_bin = os.path.realpath(nix_store.results["sqlite-bin"])
    drv = nix_store.query_deriver(sqlite_bin)
    _, bom = _sbom(nix_store, tmp_path, drv)
    assert cdx_property(bom["metadata"]["component"], "nix:output") == "bin"


def test_path_inside_a_store_path(nix_store, tmp_path):
    inner = Path(nix_store.results["app"]) / "bin" / "weather"
    _, bom = _sbom(nix_store, tmp_path, str(inner))
    assert cdx_property(bom["metadata"]["component"], "nix:store_path") == os.path.realpath(nix_store.results["app"])


def test_sources_in_build_closure(nix_store, buildtime_docs):
    """Files added to the store from the expression (setup.sh, main.go) are source components."""
    _, bom = buildtime_docs
    sources = {c["name"]: c for c in cdx_components(bom) if cdx_property(c, "nix:source") == "true"}
    assert set(sources) == {"setup.sh", "main.go"}
    db = db_nar_hashes(nix_store.db_path)
    for component in sources.values():
        assert component["hashes"][0]["content"] == db[cdx_property(component, "nix:store_path")]
        assert "nix:drv_path" not in {p["name"] for p in component["properties"]}


def test_checks_named_in_the_summary(nix_store, tmp_path):
    """By default: schema + SPDX rules + bom-refs; spdx-tools only with --full-validation
    (and for tag-value, which spdx-tools writes); CycloneDX XML against the XSD."""
    import json

    app = str(nix_store.results["app"])
    out = {k: str(tmp_path / n) for k, n in (("spdx", "s.spdx.json"), ("cdx", "c.cdx.json"), ("tv", "s.spdx"), ("xml", "c.xml"))}

    def validated(*args: str) -> dict[str, list[str]]:
        run = run_sbomgen(app, "--json", *args, env=nix_store.env)
        assert run.code == 0, run.stderr
        return {o["path"]: o["validated"] for o in json.loads(run.stdout)["outputs"]}

    checks = validated("--spdx", out["spdx"], "--cdx", out["cdx"])
    assert checks == {out["spdx"]: ["schema spdx-2.3", "SPDX rules"], out["cdx"]: ["schema cyclonedx-1.6", "bom-refs"]}
    checks = validated("--spdx", out["spdx"], "--full-validation")
    assert checks[out["spdx"]] == ["spdx-tools", "schema spdx-2.3", "SPDX rules"]
    checks = validated("--spdx", out["tv"], "--cdx", out["xml"])
    assert checks == {out["tv"]: ["spdx-tools"], out["xml"]: ["XSD cyclonedx-1.6"]}
    assert validated("--spdx", out["spdx"], "--no-validate") == {out["spdx"]: []}


def test_invalid_document_is_never_written(nix_store, tmp_path, monkeypatch):
    """A document that fails a check is a bug: exit 11, one line naming the check, no file."""
    from sbomgen import sbom
    from sbomgen.errors import DocumentInvalidError
    from sbomgen.formats import cyclonedx
    from sbomgen.graph.closure import runtime_graph
    from sbomgen.nix.store import NixStore

    store = NixStore(str(nix_store.store_dir), str(nix_store.state_dir))
    graph = runtime_graph(store, os.path.realpath(nix_store.results["app"]))
    outputs = sbom.plan_outputs(spdx_path=None, cdx_path=str(tmp_path / "c.json"), csv_path=None)
    real = cyclonedx.cyclonedx_json_document

    def broken(*args, **kwargs):
        document = real(*args, **kwargs)
        document["components"][0]["hashes"][0]["content"] = "not-hex"
        return document

    monkeypatch.setattr(cyclonedx, "cyclonedx_json_document", broken)
    with pytest.raises(DocumentInvalidError, match="fails schema cyclonedx-1.6: /components/0/hashes/0/content"):
        sbom.render(graph, outputs)
    assert not (tmp_path / "c.json").exists()


def test_json_sboms_do_not_load_the_model_libraries(nix_store, tmp_path):
    """spdx-tools, beartype and cyclonedx-python-lib cost 0.2 s to import: a JSON SBOM, checked,
    needs none of them (they stay for tag-value, XML and --full-validation)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from sbomgen.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'spdx_tools', 'beartype', 'cyclonedx'}))\n"
    )
    app = str(nix_store.results["app"])
    args = [app, "--buildtime", "--spdx", str(tmp_path / "s.json"), "--cdx", str(tmp_path / "c.json"), "--json"]
    run = subprocess.run([sys.executable, "-c", code, *args], env={**os.environ, **nix_store.env}, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]"


def test_summary_size_says_what_it_covers(nix_store, tmp_path):
    """Unbuilt outputs have no NAR size: the summary must not call the built part a total."""
    run = run_sbomgen(str(nix_store.results["app"]), "--csv", str(tmp_path / "a.csv"), env=nix_store.env)
    assert run.code == 0, run.stderr
    assert "KiB in total" in run.stdout
    drv = nix_store.instantiate("unbuilt")
    run = run_sbomgen(drv, "--buildtime", "--csv", str(tmp_path / "b.csv"), env=nix_store.env)
    assert run.code == 0, run.stderr
    assert "outputs not built, sizes unknown" in run.stdout and "in total" not in run.stdout
