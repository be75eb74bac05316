"""Issue 13, facts: licences as valid SPDX expressions, NTIA minimum elements on every
component, exact CPEs, the file's SHA-256 for flat sources and file provenance subjects.

Real CLI runs on the real Nix-built fixtures; metadata comes from ``--meta`` files in the
``nix-env -qa --meta --json`` shape, written here the way nixpkgs writes them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import cdx_components, cdx_property, db_nar_hashes, run_sbomgen, schema_errors
from tests.hostile.common import assert_one_line_error

pytestmark = pytest.mark.nix

SUPPLIER = "Organization: Example Corp (sbom@example.com)"


def _lic(spdx, full, short, free=True, url=None):
    out = {"fullName": full, "shortName": short, "free": free, "deprecated": False, "redistributable": free}
    if spdx:
        out["spdxId"] = spdx
    if url:
        out["url"] = url
    return out


ASL20 = _lic("Apache-2.0", "Apache License 2.0", "asl20")
LLVM_EXC = _lic("LLVM-exception", "LLVM Exception", "llvm-exception")
GPL3PLUS = _lic("GPL-3.0-or-later", "GNU General Public License v3.0 or later", "gpl3Plus")
GCC_EXC = _lic(None, "GCC Runtime Library Exception 3.1", "gcc-exception-31", url="https://www.gnu.org/licenses/gcc-exception-3.1.html")
LGPL21PLUS = _lic("LGPL-2.1-or-later", "GNU Lesser General Public License v2.1 or later", "lgpl21Plus")
UNFREE = _lic(None, "Example Proprietary Licence", "unfreeRedistributable", free=False, url="https://example.com/licence")

META = {
    "nixpkgs.weather": {
        "name": "weather-0.0.1", "pname": "weather", "version": "0.0.1",
        "meta": {"license": [ASL20, LLVM_EXC], "description": "weather proxy",
                 "maintainers": [{"name": "Ada Lovelace", "email": "ada@example.org", "github": "ada", "githubId": 1}]},
    },
    "nixpkgs.sqlite": {
        "name": "sqlite-3.46.0", "pname": "sqlite", "version": "3.46.0",
        "meta": {"license": [GPL3PLUS, GCC_EXC], "maintainers": [{"name": "Grace Hopper", "email": "grace@example.org", "github": "grace"}],
                 "identifiers": {"cpeParts": {"part": "a", "vendor": "sqlite", "product": "sqlite", "version": "3.46.0",
                                              "update": "*", "edition": "*", "language": "*", "sw_edition": "*",
                                              "target_sw": "*", "target_hw": "*", "other": "*"}}},
    },
    "nixpkgs.glibc": {
        "name": "glibc-2.40-66", "pname": "glibc", "version": "2.40-66",
        "meta": {"license": [LGPL21PLUS, UNFREE],
                 "identifiers": {"cpeParts": {"part": "a", "vendor": "gnu", "product": "glibc", "version": "2.40",
                                              "update": "-", "target_sw": "linux+", "target_hw": "x86_64"}}},
    },
    "nixpkgs.cacert": {"name": "nss-cacert-3.107", "pname": "nss-cacert", "version": "3.107", "meta": {"license": UNFREE}},
}


@pytest.fixture(scope="module")
def meta_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("meta") / "meta.json"
    path.write_text(json.dumps(META))
    return path


def _docs(nix_store, tmp_path, *args: str, cdx: str = "c.cdx.json") -> tuple[dict, dict]:
    spdx_path, cdx_path = tmp_path / "s.spdx.json", tmp_path / cdx
    run = run_sbomgen(*args, "--spdx", str(spdx_path), "--cdx", str(cdx_path), env=nix_store.env)
    assert run.code == 0, run.stdout + run.stderr
    return json.loads(spdx_path.read_text()), json.loads(cdx_path.read_text()) if cdx.endswith(".json") else {}


def _packages(spdx: dict, name: str) -> list[dict]:
    return [p for p in spdx["packages"] if p["name"] == name]


def _components(bom: dict, name: str) -> list[dict]:
    return [c for c in [bom["metadata"]["component"], *cdx_components(bom)] if c["name"] == name]


# -- 3. licences -----------------------------------------------------------------------------


@pytest.mark.parametrize("buildtime", [False, True], ids=["runtime", "buildtime"])
def test_licence_lists_become_valid_expressions(nix_store, tmp_path, meta_file, buildtime):
    """The default run (validation on, spdx-tools too) writes exceptions WITH their licence;
    before issue 13 the exception was a licence of its own (``Apache-2.0 AND
    LicenseRef-LLVM-Exception``; exit 11 when its id reached the expression)."""
    app = str(nix_store.results["app"])
    spdx, bom = _docs(nix_store, tmp_path, app, *(["--buildtime"] if buildtime else []), "--meta", str(meta_file), "--meta-match-names", "--full-validation")
    weather = _packages(spdx, "weather")[0]
    assert weather["licenseDeclared"] == weather["licenseConcluded"] == "Apache-2.0 WITH LLVM-exception"
    # GCC's exception has no spdxId in nixpkgs: recognised by its short name
    assert {p["licenseDeclared"] for p in _packages(spdx, "sqlite")} == {"GPL-3.0-or-later WITH GCC-exception-3.1"}
    # glibc's outputs; its source tarball (build-time) is another derivation and gets nothing
    glibc = [p for p in _packages(spdx, "glibc") if p["versionInfo"] == "2.40-66"]
    assert glibc and {p["licenseDeclared"] for p in glibc} == {"LGPL-2.1-or-later AND LicenseRef-Example-Proprietary-Licence"}
    assert {p["licenseDeclared"] for p in _packages(spdx, "glibc") if p["versionInfo"] != "2.40-66"} <= {"NOASSERTION"}
    assert all("unfree licence" in p["comment"] for p in glibc)
    extracted = {e["licenseId"]: e for e in spdx["hasExtractedLicensingInfos"]}
    assert set(extracted) == {"LicenseRef-Example-Proprietary-Licence"}
    assert extracted["LicenseRef-Example-Proprietary-Licence"]["name"] == "Example Proprietary Licence"
    assert extracted["LicenseRef-Example-Proprietary-Licence"]["seeAlsos"] == ["https://example.com/licence"]
    assert "unfree" in extracted["LicenseRef-Example-Proprietary-Licence"]["extractedText"]
    # no metadata: neither declared nor concluded
    tz = _packages(spdx, "tzdata")[0]
    assert tz["licenseDeclared"] == tz["licenseConcluded"] == "NOASSERTION"
    # CycloneDX: an expression when there is one, never an exception as a licence id
    assert _components(bom, "weather")[0]["licenses"] == [{"expression": "Apache-2.0 WITH LLVM-exception"}]
    assert all(c["licenses"] == [{"expression": "GPL-3.0-or-later WITH GCC-exception-3.1"}] for c in _components(bom, "sqlite"))
    cacert = _components(bom, "nss-cacert")[0]
    assert cacert["licenses"] == [{"license": {"name": "Example Proprietary Licence", "url": "https://example.com/licence"}}]
    assert cdx_property(cacert, "nix:license_free") == "false"
    assert "LLVM-exception" not in json.dumps([c.get("licenses") for c in cdx_components(bom)]).replace("WITH LLVM-exception", "")


@pytest.mark.parametrize("version", ["1.5", "1.6", "1.7"])
def test_cyclonedx_xml_carries_the_expression(nix_store, tmp_path, meta_file, version):
    path = tmp_path / "c.cdx.xml"
    run = run_sbomgen(str(nix_store.results["app"]), "--meta", str(meta_file), "--meta-match-names", "--supplier", SUPPLIER,
                      "--cdx", str(path), "--cdx-version", version, env=nix_store.env)
    assert run.code == 0, run.stdout + run.stderr  # checked against the XSD before writing
    text = path.read_text()
    assert "<expression>Apache-2.0 WITH LLVM-exception</expression>" in text
    assert "<name>NixOS/nixpkgs contributors</name>" in text and "<email>grace@example.org</email>" in text


# -- 4. NTIA minimum elements ----------------------------------------------------------------


def _ntia(path: Path) -> dict:
    checker = shutil.which("ntia-checker")
    if checker is None:
        pytest.fail("ntia-conformance-checker is not installed (pip install ntia-conformance-checker; it is in the test extras)")
    proc = subprocess.run([checker, "-r", "json", str(path)], capture_output=True, text=True, timeout=300)
    return json.loads(proc.stdout)


@pytest.mark.parametrize("buildtime", [False, True], ids=["runtime", "buildtime"])
def test_ntia_conformance_checker_accepts_runtime_and_buildtime(nix_store, tmp_path, meta_file, buildtime):
    args = [str(nix_store.results["app"]), *(["--buildtime"] if buildtime else []), "--meta", str(meta_file), "--meta-match-names", "--supplier", SUPPLIER]
    spdx, bom = _docs(nix_store, tmp_path, *args)
    report = _ntia(tmp_path / "s.spdx.json")
    assert report["isNtiaConformant"] is True, report
    for element in ("componentNames", "componentVersions", "componentIdentifiers", "componentSuppliers"):
        assert report[element]["allProvided"] is True, (element, report[element])
    # the checker follows DESCRIBES/DEPENDS_ON/CONTAINS only and skips a build-time graph's
    # BUILD_DEPENDENCY_OF packages as "floating": check every package ourselves as well
    assert all(p["supplier"] != "NOASSERTION" and p.get("versionInfo") and p["name"] for p in spdx["packages"])
    assert len({p["SPDXID"] for p in spdx["packages"]}) == len(spdx["packages"])
    assert spdx["creationInfo"]["creators"] and spdx["creationInfo"]["created"]
    described = [p for p in spdx["packages"] if p["name"] == "weather"][0]
    assert described["supplier"] == SUPPLIER  # the user's own: the target
    # nixpkgs-described packages: the documented default; their maintainers as contacts
    assert {p["supplier"] for p in _packages(spdx, "sqlite")} == {"Organization: NixOS/nixpkgs contributors"}
    root = bom["metadata"]["component"]
    assert root["supplier"]["name"] == "Example Corp" and root["supplier"]["contact"] == [{"email": "sbom@example.com"}]
    assert cdx_property(root, "nix:supplier_source") == "user"
    sqlite = _components(bom, "sqlite")[0]
    assert sqlite["supplier"]["contact"] == [{"name": "Grace Hopper", "email": "grace@example.org"}]
    glibc = [c for c in _components(bom, "glibc") if c["version"] == "2.40-66"][0]  # an output, not the source
    assert glibc["supplier"]["url"] == ["https://github.com/NixOS/nixpkgs"]
    assert cdx_property(glibc, "nix:supplier_source") == "nixpkgs-meta"
    weather_spdx = described["comment"]
    assert "nixpkgs maintainers: Ada Lovelace <ada@example.org>" in weather_spdx
    # tzdata has no version in its name: the store hash, marked as such
    tz = _components(bom, "tzdata")[0]
    assert tz["version"] == tz["bom-ref"][:32] and cdx_property(tz, "nix:version_source") == "store-hash"
    assert all(c.get("version") and c.get("supplier") for c in cdx_components(bom))


def test_without_supplier_components_nothing_describes_have_none(nix_store, tmp_path, meta_file):
    spdx, bom = _docs(nix_store, tmp_path, str(nix_store.results["app"]), "--meta", str(meta_file), "--meta-match-names")
    assert _packages(spdx, "tzdata")[0]["supplier"] == "NOASSERTION"  # no guess
    assert _packages(spdx, "weather")[0]["supplier"] == "Organization: NixOS/nixpkgs contributors"
    assert "supplier" not in _components(bom, "tzdata")[0]


@pytest.mark.parametrize("bad", ["Example Corp", "Organization:", "Company: X", "Organization: X (a) (b)", "Person: x\ny",
                                 "Organization: X (not an email)", "Person: x\x07"])
def test_bad_supplier_is_a_usage_error(nix_store, tmp_path, bad):
    run = run_sbomgen(str(nix_store.results["app"]), "--supplier", bad, "--spdx", str(tmp_path / "s.json"), env=nix_store.env)
    assert_one_line_error(run, 2, "--supplier must be")
    assert not (tmp_path / "s.json").exists()


# -- 5. identifiers and digests --------------------------------------------------------------


def test_cpe_from_every_part_with_any_unescaped(nix_store, tmp_path, meta_file):
    spdx, bom = _docs(nix_store, tmp_path, str(nix_store.results["app"]), "--meta", str(meta_file), "--meta-match-names")
    cpes = {
        p["name"]: r["referenceLocator"] for p in spdx["packages"] for r in p["externalRefs"] if r["referenceType"] == "cpe23Type"
    }
    assert cpes["sqlite"] == "cpe:2.3:a:sqlite:sqlite:3.46.0:*:*:*:*:*:*:*"  # was …:3.46.0:\*:…
    assert cpes["glibc"] == "cpe:2.3:a:gnu:glibc:2.40:-:*:*:*:linux\\+:x86_64:*"
    assert {c.get("cpe") for c in _components(bom, "sqlite")} == {cpes["sqlite"]}


def test_flat_source_checksum_is_the_file_hash(nix_store, tmp_path):
    spdx, bom = _docs(nix_store, tmp_path, str(nix_store.results["app"]), "--buildtime")
    nar = db_nar_hashes(nix_store.db_path)
    source = _packages(spdx, "sqlite-autoconf")
    assert len(source) == 1
    path = next(line.split(": ", 1)[1] for line in source[0]["comment"].splitlines() if line.startswith("nix store path: "))
    file_sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    assert source[0]["downloadLocation"].endswith("/sqlite-autoconf-3460000.tar.gz")
    assert source[0]["checksums"] == [{"algorithm": "SHA256", "checksumValue": file_sha}]
    assert file_sha != nar[path] and f"nix NAR sha256: {nar[path]}" in source[0]["comment"]
    component = next(c for c in cdx_components(bom) if c["name"] == "sqlite-autoconf")
    assert component["hashes"] == [{"alg": "SHA-256", "content": file_sha}]
    assert cdx_property(component, "nix:digest_of") == "file" and cdx_property(component, "nix:nar_sha256") == nar[path]
    # a built package keeps its NAR hash
    weather = _packages(spdx, "weather")[0]
    assert weather["checksums"][0]["checksumValue"] == nar[os.path.realpath(nix_store.results["app"])]


def _provenance(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sbomgen.cli.provenance", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300)


def test_file_subject_sha256_is_the_file_and_verifies(nix_store, tmp_path):
    entry = os.path.realpath(nix_store.results["entrypoint"])
    statement_path = tmp_path / "p.json"
    made = _provenance(entry, "-o", str(statement_path), env=nix_store.env)
    assert made.returncode == 0, made.stderr
    statement = json.loads(statement_path.read_text())
    assert schema_errors("slsa-provenance-v1", statement) == []
    file_sha = hashlib.sha256(Path(entry).read_bytes()).hexdigest()
    nar = db_nar_hashes(nix_store.db_path)[entry]
    assert statement["subject"][0]["digest"] == {"sha256": file_sha, "nixNarSha256": nar}
    verified = _provenance("verify", str(statement_path), env=nix_store.env)
    assert verified.returncode == 0, verified.stderr
    # a statement in the old form (sha256 = NAR, fileSha256 = file) still verifies
    statement["subject"][0]["digest"] = {"sha256": nar, "fileSha256": file_sha}
    statement_path.write_text(json.dumps(statement))
    assert _provenance("verify", str(statement_path), env=nix_store.env).returncode == 0
    # a wrong file hash or a wrong NAR hash is a subject mismatch (21), each named
    for digest, key in (({"sha256": "0" * 64, "nixNarSha256": nar}, "sha256"), ({"sha256": file_sha, "nixNarSha256": "0" * 64}, "nixNarSha256")):
        statement["subject"][0]["digest"] = digest
        statement_path.write_text(json.dumps(statement))
        run = _provenance("verify", str(statement_path), env=nix_store.env)
        assert run.returncode == 21 and f"{key} is " in run.stderr, run.stderr


def test_summary_counts_licences_with_their_exceptions(nix_store, tmp_path, meta_file):
    run = run_sbomgen(str(nix_store.results["app"]), "--meta", str(meta_file), "--meta-match-names", "--json", "--spdx", str(tmp_path / "s.spdx.json"), env=nix_store.env)
    assert run.code == 0, run.stderr
    licences = json.loads(run.stdout)["licenses"]
    assert licences["Apache-2.0 WITH LLVM-exception"] >= 1 and "LLVM-exception" not in licences


def test_nix_nar_sha256_must_be_hex(nix_store, tmp_path):
    entry = os.path.realpath(nix_store.results["entrypoint"])
    statement_path = tmp_path / "p.json"
    assert _provenance(entry, "-o", str(statement_path), env=nix_store.env).returncode == 0
    statement = json.loads(statement_path.read_text())
    statement["subject"][0]["digest"]["nixNarSha256"] = "../../etc/passwd"
    statement_path.write_text(json.dumps(statement))
    run = _provenance("verify", str(statement_path), env=nix_store.env)
    assert run.returncode == 24 and "nixNarSha256 is not 64 hex digits" in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("buildtime", [False, True], ids=["runtime", "buildtime"])
def test_sboms_of_the_expression_carry_exact_facts_and_pass_every_judge(nix_store, tmp_path, buildtime):
    """Issue 13's 'done when': ``sbomgen -f fixtures/weather.nix -A app [--buildtime]``, with the
    metadata evaluated from the expression itself (no --meta), passes spdx-tools
    (--full-validation), the official schemas and ntia-conformance-checker, with exact licences,
    suppliers and versions, and nothing put on the derivations that carry no meta."""
    expression = str(Path(__file__).resolve().parents[2] / "fixtures" / "weather.nix")
    args = ["-f", expression, "-A", "app", *(["--buildtime"] if buildtime else []), "--supplier", SUPPLIER, "--full-validation"]
    spdx, bom = _docs(nix_store, tmp_path, *args)
    assert schema_errors("spdx-2.3", spdx) == [] and schema_errors("cyclonedx-1.6", bom) == []
    report = _ntia(tmp_path / "s.spdx.json")
    assert report["isNtiaConformant"] is True, report
    assert all(p["supplier"] != "NOASSERTION" and p.get("versionInfo") for p in spdx["packages"])
    components = cdx_components(bom)
    sources = {cdx_property(c, "nix:meta_source") for c in components}
    assert "evaluation" in sources and sources <= {"evaluation", None}  # evaluated, never matched by name
    glibc = [c for c in components if c["name"] == "glibc" and c["version"] == "2.40-66"]
    assert glibc and all(cdx_property(c, "nix:meta_source") == "evaluation" for c in glibc)
    assert all(c["cpe"] == "cpe:2.3:a:gnu:glibc:2.40:*:*:*:*:*:*:*" for c in glibc)
    assert all(c["supplier"]["name"] == "NixOS/nixpkgs contributors" for c in glibc)
    # no guessing onto sources or derived trees: the tarball and the vendored modules get nothing
    for c in components:
        if c["name"] in ("glibc", "weather") and c["version"] not in ("2.40-66", "0.0.1") or "go-modules" in c["name"]:
            assert cdx_property(c, "nix:meta_source") is None and "licenses" not in c and "cpe" not in c, c["name"]
    if buildtime:  # gcc lists its runtime exception as a licence, as nixpkgs does
        gcc = [p for p in spdx["packages"] if p["name"] == "gcc"]
        assert gcc and all(p["licenseDeclared"] == "GPL-3.0-or-later WITH GCC-exception-3.1" for p in gcc)
