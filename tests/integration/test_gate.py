"""sbomgen validate / check: real documents, real fixtures, every rule failing once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin
from xml.etree import ElementTree

import pytest

from tests.helpers import run_sbomgen, schema_errors

pytestmark = pytest.mark.nix

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
REPRO = FIXTURES / "repro.nix"


@pytest.fixture(scope="module")
def docs(nix_store, tmp_path_factory):
    """Every kind of document sbomgen writes, for the app."""
    tmp = tmp_path_factory.mktemp("docs")
    app = str(nix_store.results["app"])
    paths = {name: tmp / name for name in ("s.spdx.json", "c.cdx.json", "c.cdx.xml", "s.spdx", "p.json", "p.dsse.json")}
    run = run_sbomgen(app, "--spdx", str(paths["s.spdx.json"]), "--cdx", str(paths["c.cdx.json"]), "--meta", str(FIXTURES / "meta.json"), "--meta-match-names", env=nix_store.env)
    assert run.code == 0, run.stderr
    assert run_sbomgen(app, "--spdx", str(paths["s.spdx"]), "--cdx", str(paths["c.cdx.xml"]), env=nix_store.env).code == 0
    prov = [sys.executable, "-m", "sbomgen.cli.provenance"]
    env = {**os.environ, **nix_store.env}
    subprocess.run([*prov, "-r", app, "-o", str(paths["p.json"])], env=env, check=True, capture_output=True)
    subprocess.run([*prov, "keygen", "-o", str(tmp / "k.pem")], env=env, check=True, capture_output=True)
    subprocess.run([*prov, "-r", app, "--sign-key", str(tmp / "k.pem"), "-o", str(paths["p.dsse.json"])], env=env, check=True, capture_output=True)
    return paths


def test_validate_every_kind(nix_store, docs):
    run = run_sbomgen("validate", *map(str, docs.values()), "--json", "-", env=nix_store.env)
    assert run.code == 0, run.stdout + run.stderr
    results = {Path(r["file"]).name: r for r in json.loads(run.stdout)}
    assert {n: (r["kind"], r["encoding"]) for n, r in results.items()} == {
        "s.spdx.json": ("spdx", "json"), "c.cdx.json": ("cyclonedx", "json"), "c.cdx.xml": ("cyclonedx", "xml"),
        "s.spdx": ("spdx", "tag-value"), "p.json": ("in-toto", "json"), "p.dsse.json": ("dsse", "json"),
    }
    assert all(r["valid"] for r in results.values())
    # NTIA (issue 13): nixpkgs-described components have the nixpkgs supplier; tzdata the store hash as version
    assert results["c.cdx.json"]["ntia_missing"] == {}


def _edit(src: Path, dest: Path, change) -> Path:
    data = json.loads(src.read_text())
    change(data)
    dest.write_text(json.dumps(data))
    return dest


def test_validate_reports_pointer_and_message(nix_store, docs, tmp_path):
    def add_dangling(data):
        entry = next(d for d in data["dependencies"] if d.get("dependsOn"))
        entry["dependsOn"].append("nope")

    dangling = _edit(docs["c.cdx.json"], tmp_path / "dangling.json", add_dangling)
    duplicate = _edit(docs["c.cdx.json"], tmp_path / "dup.json", lambda d: d["components"][1].__setitem__("bom-ref", d["components"][0]["bom-ref"]))
    spdx = _edit(docs["s.spdx.json"], tmp_path / "bad.spdx.json", lambda d: d["packages"][0].pop("downloadLocation"))
    run = run_sbomgen("validate", str(dangling), str(duplicate), str(spdx), env=nix_store.env)
    assert run.code == 1
    assert f"{dangling}:/dependencies/" in run.stdout and "dangling reference 'nope'" in run.stdout
    assert f"{duplicate}:/components/1/bom-ref: duplicate bom-ref" in run.stdout
    assert f'{spdx}:/packages/0: "downloadLocation" is a required property' in run.stdout


@pytest.mark.parametrize(
    "content,fragment",
    [
        ('{"hello": 1}', "not SPDX, CycloneDX"),
        ('{"bomFormat": "CycloneDX", "specVersion": "1.2"}', "version 1.2 is not supported"),
        ("plain words", "not JSON, XML or SPDX tag-value"),
    ],
)
def test_validate_unknown_kinds(nix_store, tmp_path, content, fragment):
    path = tmp_path / "x.json"
    path.write_text(content)
    run = run_sbomgen("validate", str(path), env=nix_store.env)
    assert run.code == 2 and fragment in run.stderr and run.stderr.count("\n") == 1


def test_validate_unreadable(nix_store, tmp_path):
    run = run_sbomgen("validate", str(tmp_path / "missing.json"), env=nix_store.env)
    assert run.code == 2 and "cannot read" in run.stderr


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


def _check(store, target, policy: Path, *extra: str) -> tuple[int, dict]:
    run = run_sbomgen("check", "--policy", str(policy), str(target), "--json", "-", *extra, env=store.env)
    assert run.code in (0, 1), run.stderr
    return run.code, json.loads(run.stdout)


def _failed(report: dict) -> dict[str, list[str]]:
    return {r["rule"]: [v["message"] for v in r["violations"]] for r in report["rules"] if r["violations"]}


def test_example_policy_passes(nix_store):
    code, report = _check(nix_store, nix_store.results["app"], FIXTURES / "policy.toml", "--meta", str(FIXTURES / "meta.json"), "--meta-match-names")
    assert code == 0 and report["passed"]
    assert set(_failed(report)) == set()  # issue 13: suppliers are written now (was a require.supplier warning)


def test_licence_rules(nix_store, tmp_path):
    meta = ["--meta", str(FIXTURES / "meta.json"), "--meta-match-names"]
    code, report = _check(nix_store, nix_store.results["app"], _policy(tmp_path, '[licenses]\nallow = ["MIT", "MPL-2.0"]\n'), *meta)
    assert code == 1
    messages = _failed(report)["licenses.allow"]
    assert any(m.startswith("glibc 2.40-66: licence LGPL-2.1-or-later") for m in messages)
    code, report = _check(nix_store, nix_store.results["app"], _policy(tmp_path, '[licenses]\ndeny = ["blessing"]\nlevel = "warning"\n'), *meta)
    assert code == 0 and _failed(report)["licenses.deny"] == ["sqlite 3.46.0: licence blessing requires a denied licence"]


def _cdx(tmp_path: Path, components: list[dict]) -> Path:
    doc = {
        "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
        "metadata": {"component": {"type": "application", "name": "app", "version": "1", "bom-ref": "app", "purl": "pkg:nix/app@1",
                                   "hashes": [{"alg": "SHA-256", "content": "a" * 64}], "licenses": [{"license": {"id": "MIT"}}]}},
        "components": components,
        "dependencies": [{"ref": "app", "dependsOn": [c["bom-ref"] for c in components]}],
    }
    path = tmp_path / "sbom.cdx.json"
    path.write_text(json.dumps(doc))
    return path


def test_licence_expressions_and_or(nix_store, tmp_path):
    policy = _policy(tmp_path, '[licenses]\nallow = ["MIT", "Apache-2.0"]\ndeny = ["GPL-3.0-only"]\n')
    either = {"type": "library", "name": "dual", "version": "1", "bom-ref": "dual", "licenses": [{"expression": "MIT OR GPL-3.0-only"}]}
    code, report = _check(nix_store, _cdx(tmp_path, [either]), policy)
    assert code == 0, report
    both = {"type": "library", "name": "both", "version": "1", "bom-ref": "both", "licenses": [{"expression": "MIT AND GPL-3.0-only"}]}
    code, report = _check(nix_store, _cdx(tmp_path, [both]), policy)
    assert code == 1 and set(_failed(report)) == {"licenses.allow", "licenses.deny"}


def test_denied_packages_by_version_range(nix_store, tmp_path):
    policy = _policy(tmp_path, '[[deny]]\nname = "sqlite"\nversions = ">=3.40, <3.47"\nreason = "test"\n[[deny]]\nname = "glibc"\nversions = "<2.40"\n')
    code, report = _check(nix_store, nix_store.results["app"], policy)
    assert code == 1
    assert _failed(report)["deny.package"] == ["sqlite 3.46.0 is denied: sqlite >=3.40, <3.47 (test)"]


def test_required_fields(nix_store, tmp_path):
    policy = _policy(tmp_path, '[require]\ndigest = "error"\npurl = "error"\nlicense = "error"\nsupplier = "error"\n')
    bare = {"type": "library", "name": "bare", "version": "1", "bom-ref": "bare"}
    code, report = _check(nix_store, _cdx(tmp_path, [bare]), policy)
    failed = _failed(report)
    assert code == 1 and set(failed) == {"require.digest", "require.purl", "require.license", "require.supplier"}
    assert failed["require.digest"] == ["bare 1 has no digest"]
    # our own SBOM of the fixture has every digest and purl
    code, report = _check(nix_store, nix_store.results["app"], _policy(tmp_path, '[require]\ndigest = "error"\npurl = "error"\n'))
    assert code == 0


def test_closure_size(nix_store, tmp_path):
    code, report = _check(nix_store, nix_store.results["app"], _policy(tmp_path, "[closure]\nmax_components = 3\n"))
    assert code == 1 and _failed(report)["closure.max_components"] == ["5 components, more than the 3 allowed"]


def test_provenance_rules(nix_store, docs, tmp_path):
    policy = _policy(tmp_path, "[provenance]\nrequired = true\n")
    code, report = _check(nix_store, nix_store.results["app"], policy, "--provenance", str(docs["p.json"]))
    assert code == 0, _failed(report)
    # a DSSE envelope is trusted only with the key that signed it (issue 12: no key = not verified)
    key = docs["p.dsse.json"].parent / "k.pub.pem"
    code, report = _check(nix_store, nix_store.results["app"], policy, "--provenance", str(docs["p.dsse.json"]), "--key", str(key))
    assert code == 0, _failed(report)
    code, report = _check(nix_store, nix_store.results["app"], policy, "--provenance", str(docs["p.dsse.json"]))
    assert code == 1 and set(_failed(report)) == {"provenance.signature", "provenance.subject", "provenance.dependencies"}
    assert "pass --key" in _failed(report)["provenance.signature"][0]
    code, report = _check(nix_store, docs["c.cdx.json"], policy, "--provenance", str(docs["p.json"]))
    assert code == 0, _failed(report)  # the SBOM file's root digest and store paths are compared too

    def tamper(data):
        data["subject"][0]["digest"]["sha256"] = "0" * 64
        glibc = next(d for d in data["predicate"]["buildDefinition"]["resolvedDependencies"] if d["name"] == "glibc-2.40-66")
        glibc["digest"]["sha256"] = "1" * 64

    bad = _edit(docs["p.json"], tmp_path / "bad.json", tamper)
    code, report = _check(nix_store, nix_store.results["app"], policy, "--provenance", str(bad))
    failed = _failed(report)
    assert code == 1 and set(failed) == {"provenance.subject", "provenance.dependencies"}
    assert failed["provenance.dependencies"][0].startswith("glibc-2.40-66: provenance sha256 1111")
    code, report = _check(nix_store, nix_store.results["app"], policy)
    assert code == 1 and "provenance.exists" in _failed(report)


def test_reproducible_rule(nix_store, docs, scratch_store, tmp_path):
    policy = _policy(tmp_path, "[reproducible]\nrequired = true\n")
    code, report = _check(nix_store, nix_store.results["tzdata"], policy)
    assert code == 0, _failed(report)
    code, report = _check(nix_store, docs["c.cdx.json"], policy)
    assert code == 1 and "not a store path" in _failed(report)["reproducible"][0]
    scratch_store.run("nix-build", str(REPRO), "-A", "stamp", "-o", str(scratch_store.root / "stamp"))
    code, report = _check(scratch_store, scratch_store.root / "stamp", policy)
    assert code == 1 and "does not rebuild bit for bit: differs" in _failed(report)["reproducible"][0]


def test_unpinned_fetch(scratch_store, tmp_path):
    scratch_store.run("nix-build", str(REPRO), "-A", "unpinned", "-o", str(scratch_store.root / "unpinned"))
    policy = _policy(tmp_path, "[fetches]\nrequire_fixed_hash = true\n")
    code, report = _check(scratch_store, scratch_store.root / "unpinned", policy)
    assert code == 1
    assert _failed(report)["fetches.fixed_hash"] == ["vendor-blob fetches https://example.org/vendor-blob.tar.gz without a fixed hash"]


def test_the_weather_fixture_pins_every_fetch(nix_store, tmp_path):
    code, report = _check(nix_store, nix_store.results["app"], _policy(tmp_path, "[fetches]\nrequire_fixed_hash = true\n"))
    assert code == 0


def test_sarif_and_junit(nix_store, tmp_path):
    policy = _policy(tmp_path, '[licenses]\nallow = ["MIT"]\n[closure]\nmax_components = 3\nlevel = "warning"\n[[deny]]\nname = "tzdata"\n')
    sarif, junit = tmp_path / "out.sarif", tmp_path / "out.xml"
    run = run_sbomgen("check", "--policy", str(policy), str(nix_store.results["app"]), "--meta", str(FIXTURES / "meta.json"), "--meta-match-names",
                      "--sarif", str(sarif), "--junit", str(junit), env=nix_store.env)
    assert run.code == 1
    assert "policy violated" in run.stdout
    data = json.loads(sarif.read_text())
    assert schema_errors("sarif-2.1.0", data) == []
    results = data["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"licenses.allow", "closure.max_components", "deny.package"}
    assert {r["level"] for r in results if r["ruleId"] == "closure.max_components"} == {"warning"}
    # issue 15: locations are relative to %SRCROOT% (SARIF1004), which together name the target
    base = data["runs"][0]["originalUriBaseIds"]["SRCROOT"]["uri"]
    where = {urljoin(base, r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]) for r in results}
    assert where == {"file://" + str(nix_store.results["app"])}
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"licenses.allow", "closure.max_components", "deny.package (tzdata)"}
    assert cases["licenses.allow"].find("failure") is not None and cases["deny.package (tzdata)"].find("failure") is not None
    assert cases["closure.max_components"].find("failure") is None  # a warning
    assert suite.get("failures") == "2" and suite.get("tests") == "3"


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("[licenses\nallow = []\n", "line 1"),
        ('[licenses]\nallow = ["MIT"]\nlevle = "error"\n', "line 3: unknown key licenses.levle"),
        ('[closure]\n\nmax_components = "ten"\n', "line 3: closure.max_components must be a int"),
        ('[require]\ndigest = "fatal"\n', "line 2: require.digest must be \"error\" or \"warning\""),
        ('[[deny]]\nname = "x"\nversions = "~1.0"\n', "line 3: bad version range"),
        ("[colsure]\nmax_components = 1\n", "line 1: unknown table [colsure]"),
        ('[licenses]\nallow = ["NotALicence-9"]\n', "line 2: licenses.allow: 'NotALicence-9' is not an SPDX licence id"),
    ],
)
def test_malformed_policy(nix_store, tmp_path, text, fragment):
    run = run_sbomgen("check", "--policy", str(_policy(tmp_path, text)), str(nix_store.results["app"]), env=nix_store.env)
    assert run.code == 2, run.stdout
    assert fragment in run.stderr, run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
