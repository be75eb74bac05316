"""provenance: statements of real nix-built fixtures, DSSE signing, verification, tampering."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from sbomgen.formats.provenance import path_of_uri, store_uri
from tests.helpers import Run, db_nar_hashes, run_sbomgen, schema_errors

pytestmark = pytest.mark.nix


def run_provenance(*args: str, env: dict[str, str] | None = None, cwd: str | Path | None = None) -> Run:
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "sbomgen.cli.provenance", *args], env=full_env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def _statement(store, *args: str) -> dict:
    run = run_provenance(*args, env=store.env)
    assert run.code == 0, run.stderr
    statement = json.loads(run.stdout)
    assert schema_errors("slsa-provenance-v1", statement) == []
    return statement


def _deps(statement: dict) -> list[dict]:
    return statement["predicate"]["buildDefinition"]["resolvedDependencies"]


def _path(descriptor: dict) -> str:
    """The store path a descriptor names: its uri is the path's file: URI (RFC 8089), and the path is kept as nixStorePath."""
    path = path_of_uri(descriptor["uri"])
    assert descriptor["uri"] == store_uri(path) and descriptor["uri"].startswith("file:///")
    assert descriptor["annotations"]["nixStorePath"] == path
    return path


def _dep_drv_or_source(dep: dict) -> str:
    return dep["annotations"].get("nixDrvPath") if not dep["annotations"].get("nixSource") else _path(dep)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("keys")
    for kind in ("ed25519", "ecdsa-p256"):
        run = run_provenance("keygen", "--type", kind, "-o", str(tmp / f"{kind}.pem"))
        assert run.code == 0, run.stderr
        assert oct((tmp / f"{kind}.pem").stat().st_mode & 0o777) == "0o600"
    return tmp


def test_direct_inputs(nix_store):
    app = os.path.realpath(nix_store.results["app"])
    statement = _statement(nix_store, str(nix_store.results["app"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    db = db_nar_hashes(nix_store.db_path)
    assert statement["subject"] == [
        {"name": "weather-0.0.1", "uri": f"file://{app}", "digest": {"sha256": db[app]}, "annotations": {"nixStorePath": app}}
    ]
    drv = nix_store.query_deriver(app)
    direct = set(nix_store.run("nix-store", "-q", "--references", drv).split())
    assert {_dep_drv_or_source(d) for d in _deps(statement)} == direct
    definition = statement["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["derivation"] == drv
    assert definition["internalParameters"]["system"] and definition["internalParameters"]["builder"] == "/bin/sh"
    assert definition["internalParameters"]["timeSource"] == "store-registration"
    run_details = statement["predicate"]["runDetails"]
    assert "startedOn" not in run_details["metadata"] and run_details["metadata"]["finishedOn"].endswith("Z")
    assert _path(run_details["byproducts"][0]) == drv and run_details["byproducts"][0]["digest"]["sha256"] == db[drv]


def test_recursive_is_the_build_closure(nix_store):
    app = os.path.realpath(nix_store.results["app"])
    statement = _statement(nix_store, "--recursive", app)
    drv = nix_store.query_deriver(app)
    closure = nix_store.query_requisites(drv) - {drv}
    deps = _deps(statement)
    assert {_dep_drv_or_source(d) for d in deps} == closure
    db = db_nar_hashes(nix_store.db_path)
    for dep in deps:  # everything was built here: every digest is the DB's narHash
        assert dep["digest"]["sha256"] == db[_path(dep)], dep["name"]
    fetches = {d["name"]: d for d in deps if "nixFixedOutputHash" in d["annotations"]}
    sqlite_src = fetches["sqlite-autoconf-3460000.tar.gz"]
    assert sqlite_src["downloadLocation"] == "https://www.sqlite.org/2024/sqlite-autoconf-3460000.tar.gz"
    assert sqlite_src["digest"]["fileSha256"] == sqlite_src["annotations"]["nixFixedOutputHash"].split(":")[1]
    assert hashlib.sha256(Path(_path(sqlite_src)).read_bytes()).hexdigest() == sqlite_src["digest"]["fileSha256"]
    nss = fetches["nss-3.107.tar.gz"]
    assert nss["downloadLocation"].startswith("https://ftp.mozilla.org/") and nss["annotations"]["mirrors"][0].startswith("https://archive.mozilla.org/")
    assert fetches["weather-0.0.1-go-modules"]["annotations"]["nixFixedOutputMode"] == "recursive"


def test_depth_limits_dependencies(nix_store):
    app = str(nix_store.results["app"])
    one = {_path(d) for d in _deps(_statement(nix_store, app))}
    two = {_path(d) for d in _deps(_statement(nix_store, "--depth=2", app))}
    everything = {_path(d) for d in _deps(_statement(nix_store, "-r", app))}
    assert one < two <= everything


def test_drv_target_has_every_built_output_as_subject(nix_store):
    glibc = os.path.realpath(nix_store.results["glibc"])
    drv = nix_store.query_deriver(glibc)
    statement = _statement(nix_store, drv)
    outputs = set(nix_store.run("nix-store", "-q", "--outputs", drv).split())
    assert {_path(s) for s in statement["subject"]} == outputs and len(outputs) == 3


def test_regular_file_subject_gets_file_digest(nix_store):
    entry = os.path.realpath(nix_store.results["entrypoint"])
    statement = _statement(nix_store, entry)
    digest = statement["subject"][0]["digest"]
    # issue 13: sha256 is what standard verifiers compute (the file's bytes); the NAR hash is kept
    assert digest == {
        "sha256": hashlib.sha256(Path(entry).read_bytes()).hexdigest(),
        "nixNarSha256": db_nar_hashes(nix_store.db_path)[entry],
    }


def test_deterministic(nix_store):
    env = {**nix_store.env, "SOURCE_DATE_EPOCH": "1700000000"}
    first = run_provenance("-r", str(nix_store.results["app"]), env=env)
    second = run_provenance("-r", str(nix_store.results["app"]), env=env)
    assert first.code == 0 and first.stdout == second.stdout


def test_sign_and_verify(nix_store, keys, tmp_path):
    for kind in ("ed25519", "ecdsa-p256"):
        out = tmp_path / f"{kind}.dsse.json"
        run = run_provenance("-r", str(nix_store.results["app"]), "--sign-key", str(keys / f"{kind}.pem"), "-o", str(out), env=nix_store.env)
        assert run.code == 0, run.stderr
        envelope = json.loads(out.read_text())
        assert envelope["payloadType"] == "application/vnd.in-toto+json"
        statement = json.loads(base64.b64decode(envelope["payload"]))
        assert schema_errors("slsa-provenance-v1", statement) == []
        run = run_provenance("verify", str(out), "--key", str(keys / f"{kind}.pub.pem"), env=nix_store.env)
        assert run.code == 0, run.stderr
        assert "verified: signature OK" in run.stdout and "18 re-hashed" in run.stdout


def test_wrong_key_fails(nix_store, keys, tmp_path):
    out = tmp_path / "s.json"
    assert run_provenance(str(nix_store.results["app"]), "--sign-key", str(keys / "ed25519.pem"), "-o", str(out), env=nix_store.env).code == 0
    run = run_provenance("verify", str(out), "--key", str(keys / "ecdsa-p256.pub.pem"), env=nix_store.env)
    assert run.code == 20 and "no signature verifies" in run.stderr
    unsigned = tmp_path / "u.json"
    assert run_provenance(str(nix_store.results["app"]), "-o", str(unsigned), env=nix_store.env).code == 0
    run = run_provenance("verify", str(unsigned), "--key", str(keys / "ed25519.pub.pem"), env=nix_store.env)
    assert run.code == 20 and "not signed" in run.stderr


def test_signature_covers_payload(nix_store, keys, tmp_path):
    """Changing one digest inside a signed payload breaks the signature, not just the digest check."""
    out = tmp_path / "s.json"
    assert run_provenance(str(nix_store.results["app"]), "--sign-key", str(keys / "ed25519.pem"), "-o", str(out), env=nix_store.env).code == 0
    envelope = json.loads(out.read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    out.write_text(json.dumps(envelope))
    run = run_provenance("verify", str(out), "--key", str(keys / "ed25519.pub.pem"), env=nix_store.env)
    assert run.code == 20


@pytest.mark.parametrize(
    "content",
    [
        "{",
        '{"payload": "!!!not base64", "payloadType": "application/vnd.in-toto+json", "signatures": [{"sig": "AA=="}]}',
        '{"payload": "e30=", "payloadType": "application/vnd.in-toto+json", "signatures": []}',
        '{"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://example.org/other", "subject": []}',
        '{"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://slsa.dev/provenance/v1", "subject": [], "predicate": {}}',
        "[1, 2]",
    ],
)
def test_malformed_input(nix_store, tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    run = run_provenance("verify", str(path), env=nix_store.env)
    assert run.code == 24, (run.code, run.stderr)
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("provenance: error: ") and "Traceback" not in run.stderr


def test_truncated_envelope(nix_store, keys, tmp_path):
    out = tmp_path / "s.json"
    assert run_provenance(str(nix_store.results["app"]), "--sign-key", str(keys / "ed25519.pem"), "-o", str(out), env=nix_store.env).code == 0
    out.write_text(out.read_text()[:150])
    run = run_provenance("verify", str(out), "--key", str(keys / "ed25519.pub.pem"), env=nix_store.env)
    assert run.code == 24 and "not valid JSON" in run.stderr


def test_envelope_without_key_is_a_usage_error(nix_store, keys, tmp_path):
    out = tmp_path / "s.json"
    assert run_provenance(str(nix_store.results["app"]), "--sign-key", str(keys / "ed25519.pem"), "-o", str(out), env=nix_store.env).code == 0
    run = run_provenance("verify", str(out), env=nix_store.env)
    assert run.code == 2 and "pass --key" in run.stderr


def test_bad_key_files(nix_store, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    out = tmp_path / "s.json"
    run = run_provenance(str(nix_store.results["app"]), "--sign-key", str(bad), "-o", str(out), env=nix_store.env)
    assert run.code == 14 and "not a PEM private key" in run.stderr and not out.exists()
    run = run_provenance(str(nix_store.results["app"]), "--sign-key", str(tmp_path / "missing.pem"), env=nix_store.env)
    assert run.code == 14 and "cannot read key" in run.stderr


def test_encrypted_key(nix_store, tmp_path):
    env = {**nix_store.env, "SBOMGEN_KEY_PASSWORD": "s3cret"}
    assert run_provenance("keygen", "-o", str(tmp_path / "k.pem"), env=env).code == 0
    assert b"ENCRYPTED" in (tmp_path / "k.pem").read_bytes()
    out = tmp_path / "s.json"
    assert run_provenance(str(nix_store.results["app"]), "--sign-key", str(tmp_path / "k.pem"), "-o", str(out), env=env).code == 0
    run = run_provenance(str(nix_store.results["app"]), "--sign-key", str(tmp_path / "k.pem"), env=nix_store.env)
    assert run.code == 14 and "SBOMGEN_KEY_PASSWORD" in run.stderr


def _writable(path: Path) -> None:
    for parent in (path.parent, path):
        os.chmod(parent, os.stat(parent).st_mode | 0o200)


def test_tampered_dependency_is_named(scratch_store, tmp_path):
    result = scratch_store.build("app", "result")
    statement = tmp_path / "w.intoto.json"
    assert run_provenance("-r", str(result), "-o", str(statement), env=scratch_store.env).code == 0
    assert run_provenance("verify", str(statement), env=scratch_store.env).code == 0
    glibc = next(Path(_path(d)) for d in _deps(json.loads(statement.read_text())) if d["name"] == "glibc-2.40-66")
    libc = glibc / "lib" / "libc.so.6"
    _writable(libc)
    data = bytearray(libc.read_bytes())
    data[3] ^= 0x01  # flip one bit of one byte
    libc.write_bytes(bytes(data))
    run = run_provenance("verify", str(statement), env=scratch_store.env)
    assert run.code == 22, run.stderr
    assert f"FAIL dependency glibc-2.40-66 ({glibc}): sha256 is" in run.stderr
    assert run.stderr.count("FAIL") == 1
    report = json.loads(run_provenance("verify", str(statement), "--json", env=scratch_store.env).stdout)
    assert [(p["kind"], p["name"], p["path"]) for p in report["problems"]] == [("dependency", "glibc-2.40-66", str(glibc))]


def test_missing_dependency_and_tampered_subject(scratch_store, tmp_path):
    result = scratch_store.build("app", "result")
    statement = tmp_path / "w.intoto.json"
    assert run_provenance("-r", str(result), "-o", str(statement), env=scratch_store.env).code == 0
    tz = next(Path(_path(d)) for d in _deps(json.loads(statement.read_text())) if d["name"] == "tzdata")
    os.rename(tz, tz.with_name(tz.name + "-moved"))
    run = run_provenance("verify", str(statement), env=scratch_store.env)
    assert run.code == 23 and f"FAIL dependency tzdata ({tz}): not in the store" in run.stderr
    weather = Path(os.path.realpath(result)) / "bin" / "weather"
    _writable(weather)
    weather.write_text(weather.read_text() + "# tampered\n")
    run = run_provenance("verify", str(statement), env=scratch_store.env)
    assert run.code == 21, run.stderr  # the subject outranks the dependency problems
    assert "FAIL subject weather-0.0.1" in run.stderr and "FAIL dependency tzdata" in run.stderr


def test_sbomgen_build_records_real_times(scratch_store, keys):
    root = scratch_store.root
    weather = Path(__file__).resolve().parents[2] / "fixtures" / "weather.nix"
    run = run_sbomgen("build", str(weather), "-A", "entrypoint", "--sign-key", str(keys / "ed25519.pem"), env=scratch_store.env, cwd=root)
    assert run.code == 0, run.stderr
    envelope = json.loads((root / "result.intoto.dsse.json").read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    metadata = statement["predicate"]["runDetails"]["metadata"]
    started = datetime.fromisoformat(metadata["startedOn"].replace("Z", "+00:00"))
    finished = datetime.fromisoformat(metadata["finishedOn"].replace("Z", "+00:00"))
    assert started <= finished and (finished - started).total_seconds() < 300
    assert metadata["invocationId"]
    definition = statement["predicate"]["buildDefinition"]
    assert definition["internalParameters"]["timeSource"] == "observed-build"
    assert definition["internalParameters"]["nixVersion"].startswith("2.")
    assert definition["externalParameters"]["attributes"] == ["entrypoint"]
    assert _path(statement["subject"][0]) == os.path.realpath(root / "result")
    run = run_provenance("verify", str(root / "result.intoto.dsse.json"), "--key", str(keys / "ed25519.pub.pem"), env=scratch_store.env)
    assert run.code == 0, run.stderr


def test_sbomgen_build_failure(scratch_store, tmp_path):
    bad = tmp_path / "bad.nix"
    bad.write_text('derivation { name = "bad"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "exit 3"]; }')
    run = run_sbomgen("build", str(bad), env=scratch_store.env, cwd=tmp_path)
    assert run.code == 13 and "nix-build" in run.stderr and "failed" in run.stderr
    assert not (tmp_path / "result.intoto.json").exists()
