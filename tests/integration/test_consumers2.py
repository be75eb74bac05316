"""Outside consumers read what sbomgen writes (issue 15, items 3, 4, 5, 6, 8, 9).

* in-toto: every ``uri`` is an RFC 3986 ``file:`` URI (uritools), the statement parses with
  in-toto-attestation, a signed envelope verifies with securesystemslib's own DSSE code, and
  ``provenance verify`` / ``check`` still accept old statements with plain store paths.
* SARIF: ``check --sarif`` passes Microsoft's SARIF Multitool ``validate`` with the SARIF and
  GitHub rule sets (no SARIF1004, no GH2012, ``informationUri`` present) and the vendored
  schema; its locations resolve to the target and it records the command that ran.
* Images: attached DSSE envelopes and statements have their own media types, the referrers
  tag scheme, untagged ``skopeo inspect``, real dates on attached SBOMs, umask-respecting
  layouts.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin

import pytest
import uritools

from sbomgen.formats.provenance import path_of_uri, store_uri
from tests.helpers import run_sbomgen, schema_errors

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures"

pytestmark = pytest.mark.nix


def _need(what: str, found) -> None:
    """Outside consumers are installed by .ci/run: missing in CI is a failure, locally a skip."""
    if not found:
        if os.environ.get("CI"):
            pytest.fail(f"{what} must be installed in CI (.ci/run)")
        pytest.skip(f"{what} not installed")


def _provenance(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sbomgen.cli.provenance", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300)


def _descriptors(statement: dict) -> list[dict]:
    predicate = statement["predicate"]
    return [*statement["subject"], *predicate["buildDefinition"]["resolvedDependencies"], *predicate["runDetails"]["byproducts"]]


# -- item 6: in-toto uris are RFC 3986 URIs ----------------------------------------------------------


def test_store_uri_round_trips_every_character():
    for path in ["/nix/store/abc-glibc-2.40-66", "/nix/store/abc-x?y=1+2#z", "/s t/%41/é/\t", "/a;b,c@d:e!f$g&h'(i)*~"]:
        uri = store_uri(path)
        assert uritools.isuri(uri) and uritools.urisplit(uri).scheme == "file", uri
        assert uritools.urisplit(uri).authority == ""
        assert path_of_uri(uri) == path and uritools.uridecode(uritools.urisplit(uri).path) == path
    assert path_of_uri("/nix/store/abc-old") == "/nix/store/abc-old"  # old statements: plain paths


def test_intoto_uris_are_rfc3986_and_envelope_verifies_with_securesystemslib(nix_store, tmp_path):
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from in_toto_attestation.v1.statement import Statement
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    key = tmp_path / "key.pem"
    assert _provenance("keygen", "-o", str(key), env=nix_store.env).returncode == 0
    out = tmp_path / "app.intoto.dsse.json"
    run = _provenance("--recursive", str(nix_store.results["app"]), "--sign-key", str(key), "-o", str(out), env=nix_store.env)
    assert run.returncode == 0, run.stderr
    data = json.loads(out.read_text())

    keyid = data["signatures"][0]["keyid"]
    envelope = Envelope.from_dict(json.loads(out.read_text()))  # securesystemslib's own DSSE code verifies sbomgen's signature
    public = SSlibKey.from_crypto(load_pem_public_key((tmp_path / "key.pub.pem").read_bytes()), keyid=keyid)
    assert set(envelope.verify([public], 1)) == {keyid}
    assert envelope.payload_type == "application/vnd.in-toto+json"

    statement = json.loads(base64.b64decode(data["payload"]))
    descriptors = _descriptors(statement)
    assert len(descriptors) > 10
    store = str(nix_store.store_dir)
    for rd in descriptors:
        parts = uritools.urisplit(rd["uri"])
        assert uritools.isabsuri(rd["uri"]) and parts.scheme == "file" and parts.authority == "", rd["uri"]
        path = uritools.uridecode(parts.path)
        assert path.startswith(store + "/") and os.path.lexists(path), path
        assert rd["annotations"]["nixStorePath"] == path  # the plain path is kept
        assert rd["name"] == os.path.basename(path)[33:]  # the store path name, without the hash

    # in-toto-attestation reads it back (its validate() checks every ResourceDescriptor)
    from google.protobuf import json_format
    from in_toto_attestation.v1 import statement_pb2

    parsed = Statement.copy_from_pb(json_format.ParseDict(statement, statement_pb2.Statement()))
    parsed.validate()
    assert schema_errors("slsa-provenance-v1", statement) == []

    run = _provenance("verify", str(out), "--key", str(tmp_path / "key.pub.pem"), env=nix_store.env)
    assert run.returncode == 0, run.stderr


def test_old_statements_with_plain_paths_still_verify_and_check(nix_store, tmp_path):
    """Statements written before issue 15 carry plain store paths: verify and check read both."""
    out = tmp_path / "new.intoto.json"
    assert _provenance("--recursive", str(nix_store.results["app"]), "-o", str(out), env=nix_store.env).returncode == 0
    statement = json.loads(out.read_text())
    for rd in _descriptors(statement):
        rd["uri"] = path_of_uri(rd["uri"])
        rd["annotations"].pop("nixStorePath")
        if not rd["annotations"]:
            del rd["annotations"]
    old = tmp_path / "old.intoto.json"
    old.write_text(json.dumps(statement))
    for path in (out, old):
        run = _provenance("verify", str(path), "--json", env=nix_store.env)
        assert run.returncode == 0, run.stderr
        report = json.loads(run.stdout)
        assert report["verified"] and report["rehashed"]["dependencies"] > 10
    policy = tmp_path / "policy.toml"
    for path in (out, old):
        policy.write_text(f'[provenance]\nfile = "{path}"\n')
        report = tmp_path / "report.json"
        run = run_sbomgen("check", "--policy", str(policy), str(nix_store.results["app"]), "--json", str(report), env=nix_store.env)
        rules = {r["rule"]: r for r in json.loads(report.read_text())["rules"]}
        assert rules["provenance.dependencies"]["passed"], rules["provenance.dependencies"]
        compared = int(rules["provenance.dependencies"]["note"].split()[0])
        assert compared > 0, rules["provenance.dependencies"]["note"]  # file: URIs are matched to the SBOM's paths too


# -- item 5: SARIF for GitHub code scanning --------------------------------------------------------


def _multitool() -> str | None:
    """The native SARIF Multitool of npm @microsoft/sarif-multitool (.ci/run installs it in .ci/node).

    Called directly: the npm wrapper runs it through a shell, which splits ``Sarif;Gh``."""
    found = sorted(glob.glob(str(REPO / ".ci" / "node" / "node_modules" / "@microsoft" / "sarif-multitool-*" / "Sarif.Multitool")))
    if os.environ.get("SARIF_MULTITOOL"):
        found.insert(0, os.environ["SARIF_MULTITOOL"])
    return next((f for f in found if os.access(f, os.X_OK)), None)


def _multitool_validate(sarif: Path, tmp_path: Path) -> list[dict]:
    """The Multitool's findings on ``sarif`` with the SARIF and GitHub (GH) rule sets."""
    out = tmp_path / "multitool.sarif"
    env = {**os.environ, "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT": "1", "DOTNET_CLI_TELEMETRY_OPTOUT": "1"}
    proc = subprocess.run([_multitool(), "validate", "--rule-kind", "Sarif;Gh", "-o", str(out), str(sarif)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0 and out.exists(), proc.stdout + proc.stderr
    # (the output lists only rules that found something: test_sarif_old_report_fails_the_multitool
    # shows that these options do run SARIF1004, GH2012 and SARIF2005)
    return json.loads(out.read_text())["runs"][0].get("results", [])


def _sarif_of(nix_store, tmp_path: Path, target: str, cwd: Path) -> tuple[dict, Path, list[str]]:
    policy = tmp_path / "policy with space.toml"
    policy.write_text('[licenses]\nallow = ["MIT"]\n[closure]\nmax_components = 3\nlevel = "warning"\n'
                      '[[deny]]\nname = "tzdata"\n[require]\npurl = "error"\ndigest = "error"\n')
    sarif = tmp_path / "out.sarif"
    args = ["check", "--policy", str(policy), target, "--meta", str(FIXTURES / "meta.json"), "--sarif", str(sarif)]
    run = run_sbomgen(*args, env=nix_store.env, cwd=cwd)
    assert run.code == 1, run.stderr
    return json.loads(sarif.read_text()), sarif, args


@pytest.mark.parametrize("where", ["inside", "outside"])
def test_sarif_passes_the_multitool_with_github_rules(nix_store, tmp_path, where):
    _need("SARIF Multitool (npm @microsoft/sarif-multitool in .ci/node)", _multitool())
    if where == "inside":  # ./result in the directory check runs in: relative to it
        cwd = tmp_path / "repo"
        cwd.mkdir()
        (cwd / "result").symlink_to(os.path.realpath(nix_store.results["app"]))
        target, expected = "./result", (cwd / "result").as_uri()
    else:  # a store path: relative to its own directory
        cwd, target = tmp_path, os.path.realpath(nix_store.results["app"])
        expected = Path(target).as_uri()
    data, sarif, args = _sarif_of(nix_store, tmp_path, target, cwd)
    assert schema_errors("sarif-2.1.0", data) == []

    findings = _multitool_validate(sarif, tmp_path)
    problems = [(f["ruleId"], f.get("level", "warning"), f["message"]) for f in findings]
    assert [p for p in problems if p[1] == "error"] == []
    # the one warning left: no 'region' - a finding about a whole closure or directory has no lines
    assert {p[0] for p in problems} <= {"SARIF2017"}, problems

    run = data["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["informationUri"].startswith("https://")
    for rule in driver["rules"]:
        assert rule["fullDescription"]["text"] and rule["help"]["text"] and rule["help"]["markdown"], rule["id"]
    base = run["originalUriBaseIds"]["SRCROOT"]["uri"]
    assert base.startswith("file:///") and base.endswith("/")
    for result in run["results"]:
        location = result["locations"][0]["physicalLocation"]["artifactLocation"]
        assert location["uriBaseId"] == "SRCROOT" and not location["uri"].startswith("/")
        assert urljoin(base, location["uri"]) == expected
    invocation = run["invocations"][0]
    assert shlex.split(invocation["commandLine"]) == [sys.executable, "-m", "sbomgen", *args]
    assert invocation["arguments"] == ["-m", "sbomgen", *args]
    assert invocation["workingDirectory"]["uri"] == cwd.as_uri() + "/"


def test_sarif_old_report_fails_the_multitool(tmp_path):
    """The judge can fail: the report sbomgen wrote before issue 15 is rejected for the reasons the issue gives."""
    _need("SARIF Multitool (npm @microsoft/sarif-multitool in .ci/node)", _multitool())
    old = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "sbomgen", "version": "0", "rules": [
                {"id": "licenses.allow", "name": "licenses-allow", "shortDescription": {"text": "x"}}]}},
            "results": [{"ruleId": "licenses.allow", "ruleIndex": 0, "level": "error", "message": {"text": "m"},
                         "locations": [{"physicalLocation": {"artifactLocation": {"uri": "/nix/store/abc-weather"}}}]}],
        }],
    }
    sarif = tmp_path / "old.sarif"
    sarif.write_text(json.dumps(old))
    rules = {f["ruleId"] for f in _multitool_validate(sarif, tmp_path)}
    assert {"SARIF1004", "GH2012", "SARIF2005"} <= rules


def test_every_policy_rule_has_help():
    from sbomgen.gate.reports import RULE_HELP
    from sbomgen.gate.rules import RULES

    assert set(RULE_HELP) == set(RULES)
