"""Hostile statements, envelopes and keys: ``provenance verify`` and ``sbomgen check`` hash only
the store, call nothing verified that was not re-hashed, trust no signature they did not verify,
and answer every malformed input with one line and its exit code.

Most cases use a small store of our own (``NIX_STORE_DIR`` pointing at a directory of
store-path-named entries, hashed by the real NAR code: verify reads no database), so each
case is cheap; the ``check`` cases use the real nix-built fixtures.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sbomgen.errors import SbomgenError
from sbomgen.nix.nar import nar_sha256_hex
from tests.helpers import Run, run_sbomgen
from tests.hostile.common import assert_one_line_error, make_canary, snapshot

PROVENANCE = [sys.executable, "-m", "sbomgen.cli.provenance"]
PAYLOAD_TYPE = "application/vnd.in-toto+json"

H1, H2, H3, H4, H5, H6, H7 = (c * 32 for c in "1234567")  # valid Nix base32 hash parts


def run_provenance(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Run:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("SBOMGEN_DEBUG", None)
    proc = subprocess.run([*PROVENANCE, *args], env=full_env, capture_output=True, text=True, timeout=timeout)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def verify_in_process(path: Path, store_dir: Path, key: Path | None = None) -> tuple[int, str]:
    """What ``provenance verify PATH [--key KEY]`` does, in this process (the CLI itself is run
    for representative cases; this covers every case cheaply): (exit code, error or report)."""
    from sbomgen import provenance
    from sbomgen.keys import load_verify_key

    saved = os.environ.get("NIX_STORE_DIR")
    os.environ["NIX_STORE_DIR"] = str(store_dir)
    try:
        found, report = provenance.load_attestation(str(path), load_verify_key(str(key)) if key else None)
        if found:
            provenance.verify_statement(found, report)
        return report.exit_code, "; ".join(p.line() for p in report.problems)
    except SbomgenError as exc:
        message = str(exc)
        assert "\n" not in message, message
        return exc.exit_code, message
    finally:
        if saved is None:
            os.environ.pop("NIX_STORE_DIR", None)
        else:
            os.environ["NIX_STORE_DIR"] = saved


def statement(subjects: list, dependencies: list | None = None) -> dict:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subjects,
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://sbomgen.dev/buildtypes/nix-derivation/v1",
                "externalParameters": {},
                "resolvedDependencies": dependencies or [],
            },
            "runDetails": {"builder": {"id": "https://sbomgen.dev/builders/nix-local/v1"}},
        },
    }


def sign(data: dict | bytes, key: Path) -> dict:
    """A DSSE envelope made by sbomgen's own signer with a key from ``provenance keygen``."""
    from sbomgen.formats import dsse
    from sbomgen.keys import load_signing_key

    payload = data if isinstance(data, bytes) else json.dumps(data).encode()
    return dsse.sign(payload, load_signing_key(str(key)))


class Store:
    """A small store of our own: a file, a directory, and hostile entries, plus a canary."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "nix" / "store"
        self.dir.mkdir(parents=True)
        self.hello = self.dir / f"{H1}-hello"
        self.hello.write_text("hello\n")
        self.lib = self.dir / f"{H2}-lib"
        (self.lib / "lib").mkdir(parents=True)
        (self.lib / "lib" / "libx.so").write_bytes(b"\x7fELF" + bytes(100))
        (self.lib / "share").symlink_to("lib")
        self.canary = make_canary(root)
        self.env = {"NIX_STORE_DIR": str(self.dir)}

    def subject(self, path: Path | str, **extra) -> dict:
        entry = {"name": os.path.basename(str(path))[33:], "uri": str(path), "digest": {"sha256": nar_sha256_hex(str(path))}}
        entry.update(extra)
        return entry

    def good(self) -> dict:
        return statement([self.subject(self.hello)], [self.subject(self.lib)])

    def write(self, name: str, data: dict | str | bytes) -> Path:
        path = self.root / name
        if isinstance(data, dict):
            data = json.dumps(data)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return path


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("keys")
    for kind in ("ed25519", "ecdsa-p256"):
        run = run_provenance("keygen", "--type", kind, "-o", str(tmp / f"{kind}.pem"))
        assert run.code == 0, run.stderr
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp / "rsa.pub.pem").write_bytes(rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    p384 = ec.generate_private_key(ec.SECP384R1())
    (tmp / "p384.pub.pem").write_bytes(p384.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return tmp


def _canary_leaked(store: Store, run: Run) -> bool:
    text = run.stdout + run.stderr
    secret = (store.canary / "secret.txt").read_bytes()
    digests = {hashlib.sha256(secret).hexdigest(), nar_sha256_hex(str(store.canary / "secret.txt")), nar_sha256_hex(str(store.canary))}
    return "canary secret" in text or any(d in text for d in digests)


# -- the baseline: what is well-formed verifies -----------------------------------------------------


def test_good_statement_verifies_and_says_what_was_rehashed(store, keys):
    run = run_provenance("verify", str(store.write("s.json", store.good())), "--json", env=store.env)
    assert run.code == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["verified"] and report["rehashed"] == {"subjects": 1, "dependencies": 1}
    assert [(e["kind"], e["status"], e["rehashed"]) for e in report["entries"]] == [
        ("subject", "verified", ["sha256"]), ("dependency", "verified", ["sha256"]),
    ]
    # the file: URI form of a store path (RFC 8089), and a store path that is a symlink to another
    alias = store.dir / f"{H5}-alias"
    alias.symlink_to(store.hello.name)
    data = statement([store.subject(store.hello, uri=f"file://{store.hello}")], [store.subject(alias)])
    envelope = store.write("s.dsse.json", sign(data, keys / "ed25519.pem"))
    run = run_provenance("verify", str(envelope), "--key", str(keys / "ed25519.pub.pem"), env=store.env)
    assert run.code == 0, run.stderr
    assert "verified: signature OK" in run.stdout and "1 subject(s), 1 dependencies" in run.stdout


# -- class: "hashes anything provenance verify is told to" --------------------------------------------

OUTSIDE = [
    "/etc/shadow",
    "/usr",
    "/dev/zero",
    "../../etc/passwd",
    "etc/passwd",
    "file:///etc/passwd",
    "file://evil.example{store}/" + H1 + "-hello",
    "file:{store}/" + H1 + "-hello#x",
    "https://example.com/artifact",
    "pkg:nix/hello@1",
    "{store}/../../../etc/passwd",
    "{store}/" + H1 + "-hello/../../../../etc/passwd",
    "{store}//" + H1 + "-hello",
    "{store}",
    "{store}/",
    "{store}/.links/abc",
    "{store}/not-a-store-path",
    "{canary}/secret.txt",
    "{canary}",
    "{store}/" + H1 + "-hello\x00/etc/passwd",
]


def _with_uri(store: Store, uri: str, where: str) -> dict:
    entry = {"name": "evil\x1b[31m", "uri": uri.format(store=store.dir, canary=store.canary), "digest": {"sha256": "0" * 64}}
    return statement([entry], [store.subject(store.lib)]) if where == "subject" else statement([store.subject(store.hello)], [entry])


def test_uri_outside_the_store_is_malformed(store):
    before = snapshot(store.canary)
    for uri in OUTSIDE:
        for where in ("subject", "dependency"):
            code, message = verify_in_process(store.write("s.json", _with_uri(store, uri, where)), store.dir)
            assert code == 24 and f"{where} 0 ('evil\\x1b[31m'): uri" in message, (uri, where, code, message)
    assert snapshot(store.canary) == before


@pytest.mark.parametrize("uri", ["/etc/shadow", "/dev/zero", "../../etc/passwd", "file:///etc/passwd", "{canary}/secret.txt",
                                 "{store}/" + H1 + "-hello/../../../../etc/passwd"])
def test_uri_outside_the_store_cli(store, uri):
    before = snapshot(store.canary)
    for where in ("subject", "dependency"):
        run = run_provenance("verify", str(store.write("s.json", _with_uri(store, uri, where))), "--json", env=store.env)
        line = assert_one_line_error(run, 24, where, "uri", prog="provenance")
        assert "\x1b" not in run.stderr and "\\x1b" in line  # the entry is named, escaped
        assert run.stdout == "" and not _canary_leaked(store, run)
    assert snapshot(store.canary) == before


def test_symlinks_out_of_the_store_are_not_followed(store, keys):
    evil = store.dir / f"{H3}-evil"
    evil.symlink_to(store.canary)
    etc = store.dir / f"{H4}-etc"
    etc.symlink_to("/etc")
    before = snapshot(store.canary)
    for uri in (f"{evil}/secret.txt", f"{evil}/sub/data.bin", str(evil), f"{etc}/passwd", str(etc)):
        data = statement([store.subject(store.hello)], [{"name": "x", "uri": uri, "digest": {"sha256": "0" * 64}}])
        envelope = store.write("s.dsse.json", sign(data, keys / "ed25519.pem"))  # a valid signature does not help
        run = run_provenance("verify", str(envelope), "--key", str(keys / "ed25519.pub.pem"), "--json", env=store.env)
        assert_one_line_error(run, 24, "resolves to", "outside the Nix store", prog="provenance")
        assert not _canary_leaked(store, run)
    assert snapshot(store.canary) == before


def test_nix_drv_path_outside_the_store_is_malformed(store):
    dep = store.subject(store.lib)
    dep["digest"]["nixDrvSha256"] = "0" * 64
    for drv in ("/dev/zero", f"{store.canary}/secret.txt", "../x.drv", 7):
        dep["annotations"] = {"nixDrvPath": drv}
        run = run_provenance("verify", str(store.write("s.json", statement([store.subject(store.hello)], [dep]))), env=store.env)
        assert_one_line_error(run, 24, "nixDrvPath", prog="provenance")
        assert not _canary_leaked(store, run)


def test_fifos_are_refused_promptly(store):
    inside = store.dir / f"{H6}-fifo"
    os.mkfifo(inside)
    outside = store.root / "outside.fifo"
    os.mkfifo(outside)
    for uri, fragment in ((str(inside), "not a regular file, directory or symlink"), (str(outside), "not in the Nix store")):
        data = statement([store.subject(store.hello)], [{"name": "f", "uri": uri, "digest": {"sha256": "0" * 64}}])
        started = time.monotonic()
        run = run_provenance("verify", str(store.write("s.json", data)), env=store.env, timeout=60)
        assert time.monotonic() - started < 30
        assert_one_line_error(run, 24, fragment, prog="provenance")
    # below a file is simply not there
    data = statement([store.subject(store.hello)], [{"name": "f", "uri": f"{store.hello}/x", "digest": {"sha256": "0" * 64}}])
    run = run_provenance("verify", str(store.write("s.json", data)), env=store.env)
    assert run.code == 23 and "FAIL dependency f" in run.stderr and "not in the store" in run.stderr
    # the attestation itself may be a fifo with no writer, a directory or a device: never a hang
    for path in (outside, store.root, "/dev/zero"):
        run = run_provenance("verify", str(path), env=store.env, timeout=60)
        assert_one_line_error(run, 24, prog="provenance")


# -- class: "verified" only when re-hashed -----------------------------------------------------------


def test_subject_naming_no_store_path_is_not_verified(store, keys):
    sha = nar_sha256_hex(str(store.hello))
    cases = [
        ({"name": "app.tar.gz", "digest": {"sha256": sha}}, "names no store path"),
        ({"name": "hello", "uri": str(store.hello), "digest": {"sha512": "a" * 128}}, "no digest sbomgen can re-hash"),
        ({"name": "hello", "uri": str(store.hello), "digest": {"gitCommit": "a" * 40, "md5": "b" * 32}}, "no digest sbomgen can re-hash"),
    ]
    for subject, message in cases:
        envelope = store.write("s.dsse.json", sign(statement([subject], [store.subject(store.lib)]), keys / "ed25519.pem"))
        run = run_provenance("verify", str(envelope), "--key", str(keys / "ed25519.pub.pem"), env=store.env)
        assert run.code == 21, (run.code, run.stderr)
        assert ": verified:" not in run.stdout and "NOT verified" in run.stdout and message in run.stderr
        report = json.loads(run_provenance("verify", str(envelope), "--key", str(keys / "ed25519.pub.pem"), "--json", env=store.env).stdout)
        assert not report["verified"] and report["rehashed"]["subjects"] == 0
    # a dependency without a checkable digest is counted and named, not silently passed
    dep = {"name": "src", "uri": str(store.lib), "digest": {"sha512": "a" * 128}}
    run = run_provenance("verify", str(store.write("s.json", statement([store.subject(store.hello)], [dep]))), "--json", env=store.env)
    report = json.loads(run.stdout)
    assert run.code == 0 and report["skipped"] == 1 and report["rehashed"] == {"subjects": 1, "dependencies": 0}
    assert report["entries"][1]["status"] == "not checkable" and "sha512" in report["entries"][1]["reason"]


# -- hostile envelopes and statements ---------------------------------------------------------------


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def _envelope(**changes) -> dict:
    """An envelope with a well-formed (but not verifying) signature, one field changed: the
    decoder must refuse it before any signature is checked."""
    envelope = {"payload": _b64(json.dumps(statement([{"name": "x", "digest": {"sha256": "0" * 64}}]))),
                "payloadType": PAYLOAD_TYPE, "signatures": [{"keyid": "k", "sig": _b64(b"\x01" * 64)}]}
    envelope.update(changes)
    return envelope


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


#: envelopes whose shape is wrong: exit 24 with or without a key
ENVELOPES = {
    "payload-int": (_envelope(payload=5), "payload is not a string"),
    "payload-not-base64": (_envelope(payload="!!!not base64"), "payload is not base64"),
    "payload-type-wrong": (_envelope(payloadType="text/plain"), "payloadType is 'text/plain'"),
    "payload-type-int": (_envelope(payloadType=5), "payloadType is not a string"),
    "no-payload-type": ({"payload": "e30=", "signatures": [{"sig": "AA=="}]}, "no payloadType"),
    "signatures-string": (_envelope(signatures="abc"), "signatures is not a list"),
    "signatures-object": (_envelope(signatures={"sig": "AA=="}), "signatures is not a list"),
    "signatures-empty": (_envelope(signatures=[]), "no signatures"),
    "signature-int": (_envelope(signatures=[5]), "signatures[0] is not an object"),
    "sig-int": (_envelope(signatures=[{"sig": 5}]), "signatures[0].sig is not a string"),
    "sig-missing": (_envelope(signatures=[{"keyid": "k"}]), "signatures[0].sig is not a string"),
    "keyid-int": (_envelope(signatures=[{"sig": "AA==", "keyid": 7}]), "signatures[0].keyid is not a string"),
    "sig-not-base64": (_envelope(signatures=[{"sig": "***"}]), "signatures[0].sig is not base64"),
    "sig-huge": (_envelope(signatures=[{"sig": _b64(bytes(1 << 20))}]), "not a signature"),
    "many-signatures": (_envelope(signatures=[{"sig": "AA=="}] * 10_000), "more than the 32"),
}

#: documents that are wrong as a bare statement and as the (validly signed) payload of an envelope
DOCUMENTS = {
    "not-json": (b"\x00\xff{", 24, "not valid JSON"),
    "not-utf8": (b'{"_type": "\xff"}', 24, "not UTF-8"),
    "truncated": ('{"_type": "https://in-toto.io/Statement/v1", "subject"', 24, "not valid JSON"),
    "nan": ('{"_type": NaN}', 24, "not valid JSON"),
    "huge-int": ('{"n": ' + "9" * 5000 + "}", 24, "not valid JSON"),
    "array": ("[1, 2]", 24, "not an SLSA provenance v1 statement"),
    "deep": (_deep(100_000), 17, "nested more than"),
    "deep-65": ('{"_type": ' + _deep(65) + "}", 17, "nested more than 64"),
    "subject-object": (json.dumps(statement({"name": "x"})), 24, "invalid statement"),  # type: ignore[arg-type]
    "digest-list": (json.dumps(statement([{"name": "x", "digest": ["sha256"]}])), 24, "invalid statement"),
    "digest-not-hex": (json.dumps(statement([{"name": "x", "digest": {"sha256": "Z" * 64}}])), 24, "invalid statement"),
    "file-sha-not-hex": (json.dumps(statement([{"name": "x", "digest": {"fileSha256": "zz"}}])), 24, "fileSha256 is not 64 hex digits"),
    "uri-int": (json.dumps(statement([{"name": "x", "uri": 5, "digest": {"sha256": "0" * 64}}])), 24, "invalid statement"),
    "deps-object": (json.dumps({**statement([{"name": "x", "digest": {"sha256": "0" * 64}}]),
                                "predicate": {"buildDefinition": {"resolvedDependencies": {}}}}), 24, "invalid statement"),
}


def _bytes(content: str | bytes) -> bytes:
    return content if isinstance(content, bytes) else content.encode()


def test_hostile_envelopes(store, keys):
    for case, (envelope, fragment) in ENVELOPES.items():
        path = store.write("a.json", json.dumps(envelope))
        for key in (None, keys / "ed25519.pub.pem"):
            code, message = verify_in_process(path, store.dir, key)
            assert code == 24 and fragment in message, (case, code, message)


def test_hostile_statements(store, keys):
    for case, (content, expected, fragment) in DOCUMENTS.items():
        code, message = verify_in_process(store.write("a.json", _bytes(content)), store.dir)
        assert code == expected and fragment in message, (case, code, message)
        # the same document as the payload of an envelope whose signature verifies
        signed_doc = store.write("a.dsse.json", sign(_bytes(content), keys / "ed25519.pem"))
        code, message = verify_in_process(signed_doc, store.dir, keys / "ed25519.pub.pem")
        assert code == expected and fragment in message and "payload" in message, (case, code, message)


@pytest.mark.parametrize("case", ["envelope:signatures-string", "envelope:many-signatures", "envelope:payload-type-wrong",
                                  "document:not-json", "document:deep", "document:digest-list"])
def test_hostile_attestation_cli(store, keys, case):
    kind, name = case.split(":")
    if kind == "envelope":
        path, code, fragment = store.write("a.json", json.dumps(ENVELOPES[name][0])), 24, ENVELOPES[name][1]
    else:
        content, code, fragment = DOCUMENTS[name]
        assert_one_line_error(run_provenance("verify", str(store.write("a.json", _bytes(content))), env=store.env), code, fragment, prog="provenance")
        path = store.write("a.dsse.json", sign(_bytes(content), keys / "ed25519.pem"))
    run = run_provenance("verify", str(path), "--key", str(keys / "ed25519.pub.pem"), env=store.env)
    assert_one_line_error(run, code, fragment, prog="provenance")


def test_too_big_is_a_limit(store, keys):
    from sbomgen import limits

    saved = limits.current()
    limits.configure(max_document_bytes=1 << 20)  # the default (1 GiB) is too big to write in a test
    try:
        path = store.write("big.json", '{"pad": "' + "x" * (1 << 20) + '"}')
        assert verify_in_process(path, store.dir) == (17, f"attestation {path}: more than 1048576 bytes ({os.path.getsize(path)})")
        envelope = store.write("big.dsse.json", sign(b'{"pad": "' + b"x" * (1 << 20) + b'"}', keys / "ed25519.pem"))
        code, message = verify_in_process(envelope, store.dir, keys / "ed25519.pub.pem")
        assert code == 17 and "more than 1048576 bytes" in message, message
    finally:
        limits.configure(**dataclasses.asdict(saved))


# -- hostile keys ---------------------------------------------------------------------------------------


def test_hostile_keys(store, keys):
    envelope = store.write("s.dsse.json", sign(store.good(), keys / "ed25519.pem"))
    fifo = store.root / "key.fifo"
    os.mkfifo(fifo)
    garbage = store.write("garbage.pem", "-----BEGIN PUBLIC KEY-----\nAAAA!!!!\n-----END PUBLIC KEY-----\n")
    empty = store.write("empty.pem", "")
    big = store.write("big.pem", "A" * (1 << 20))
    cases = [
        (store.root / "missing.pem", "cannot read key"),
        (store.root, "it is a directory"),
        ("/dev/zero", "not a regular file"),
        (fifo, "not a regular file"),
        (garbage, "is not a PEM public key"),
        (empty, "is not a PEM public key"),
        (big, "larger than"),
        (keys / "rsa.pub.pem", "unsupported key type"),
        (keys / "p384.pub.pem", "unsupported key type"),
    ]
    for key, fragment in cases:
        started = time.monotonic()
        run = run_provenance("verify", str(envelope), "--key", str(key), env=store.env, timeout=60)
        assert time.monotonic() - started < 30
        assert_one_line_error(run, 14, fragment, prog="provenance")
    # a public key where a private one is needed
    run = run_provenance(str(store.hello), "--sign-key", str(keys / "ed25519.pub.pem"), env=store.env)
    assert_one_line_error(run, 14, "not a PEM private key", prog="provenance")
    run = run_provenance(str(store.hello), "--sign-key", "/dev/zero", env=store.env, timeout=60)
    assert_one_line_error(run, 14, "not a regular file", prog="provenance")


# -- check: the provenance rule trusts only what it verified ------------------------------------------------


@pytest.fixture(scope="module")
def signed(nix_store, keys, tmp_path_factory):
    """The app's statement, bare and signed, from the real fixtures."""
    tmp = tmp_path_factory.mktemp("prov")
    app = str(nix_store.results["app"])
    run = run_provenance("-r", app, "-o", str(tmp / "p.json"), env=nix_store.env)
    assert run.code == 0, run.stderr
    run = run_provenance("-r", app, "--sign-key", str(keys / "ed25519.pem"), "-o", str(tmp / "p.dsse.json"), env=nix_store.env)
    assert run.code == 0, run.stderr
    return tmp


def _check(nix_store, policy: Path, attestation: Path, *extra: str) -> tuple[Run, dict]:
    run = run_sbomgen("check", "--policy", str(policy), str(nix_store.results["app"]), "--provenance", str(attestation), "--json", "-", *extra, env=nix_store.env)
    assert run.code in (0, 1) and run.stderr == "", (run.code, run.stderr)
    return run, {r["rule"]: r for r in json.loads(run.stdout)["rules"] if r["rule"].startswith("provenance.")}


def _failed(rules: dict) -> set[str]:
    return {name for name, rule in rules.items() if rule["violations"]}


def _policy(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "policy.toml"
    path.write_text("[provenance]\nrequired = true\n" + extra)
    return path


def test_check_rejects_a_garbage_signature(nix_store, signed, keys, tmp_path):
    envelope = json.loads((signed / "p.dsse.json").read_text())
    envelope["signatures"] = [{"keyid": "x", "sig": _b64(os.urandom(64))}]
    garbage = tmp_path / "garbage.dsse.json"
    garbage.write_text(json.dumps(envelope))
    policy = _policy(tmp_path)
    run, rules = _check(nix_store, policy, garbage, "--key", str(keys / "ed25519.pub.pem"))
    assert run.code == 1 and _failed(rules) == {"provenance.signature", "provenance.subject", "provenance.dependencies"}
    assert "no signature verifies" in rules["provenance.signature"]["violations"][0]["message"]
    assert not rules["provenance.subject"]["checked"]
    # the same envelope with a good signature passes; with the wrong key it fails
    run, rules = _check(nix_store, policy, signed / "p.dsse.json", "--key", str(keys / "ed25519.pub.pem"))
    assert run.code == 0, rules
    assert "signature verified" in rules["provenance.signature"]["note"]
    run, rules = _check(nix_store, policy, signed / "p.dsse.json", "--key", str(keys / "ecdsa-p256.pub.pem"))
    assert run.code == 1 and "provenance.signature" in _failed(rules)
    # either of several keys may sign
    run, rules = _check(nix_store, policy, signed / "p.dsse.json", "--key", str(keys / "ecdsa-p256.pub.pem"), "--key", str(keys / "ed25519.pub.pem"))
    assert run.code == 0, rules


def test_check_payload_swapped_under_a_good_signature(nix_store, signed, keys, tmp_path):
    envelope = json.loads((signed / "p.dsse.json").read_text())
    data = json.loads(base64.b64decode(envelope["payload"]))
    data["subject"][0]["digest"]["sha256"] = "0" * 64
    envelope["payload"] = _b64(json.dumps(data))
    swapped = tmp_path / "swapped.dsse.json"
    swapped.write_text(json.dumps(envelope))
    run, rules = _check(nix_store, _policy(tmp_path), swapped, "--key", str(keys / "ed25519.pub.pem"))
    assert run.code == 1 and "provenance.signature" in _failed(rules)


def test_check_envelope_without_key_and_key_in_policy(nix_store, signed, keys, tmp_path):
    run, rules = _check(nix_store, _policy(tmp_path), signed / "p.dsse.json")
    assert run.code == 1 and "pass --key" in rules["provenance.signature"]["violations"][0]["message"]
    # key = "..." in [provenance], relative to the policy file
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "k.pub.pem").write_bytes((keys / "ed25519.pub.pem").read_bytes())
    run, rules = _check(nix_store, _policy(tmp_path, 'key = "keys/k.pub.pem"\n'), signed / "p.dsse.json")
    assert run.code == 0, rules
    # a key makes a signature required: a bare statement fails
    run, rules = _check(nix_store, _policy(tmp_path, 'key = "keys/k.pub.pem"\n'), signed / "p.json")
    assert run.code == 1 and "is not signed" in rules["provenance.signature"]["violations"][0]["message"]
    run, rules = _check(nix_store, _policy(tmp_path, "require_signature = true\n"), signed / "p.json")
    assert run.code == 1 and "provenance.signature" in _failed(rules)
    # saying outright that signatures are not required accepts both, and says the signature was not verified
    run, rules = _check(nix_store, _policy(tmp_path, "require_signature = false\n"), signed / "p.dsse.json")
    assert run.code == 0 and "NOT verified" in rules["provenance.signature"]["note"]
    run, rules = _check(nix_store, _policy(tmp_path), signed / "p.json")
    assert run.code == 0 and "unsigned" in rules["provenance.signature"]["note"]


@pytest.mark.parametrize("case", ["envelope:payload-not-base64", "envelope:signatures-string", "envelope:sig-int", "envelope:many-signatures",
                                  "envelope:payload-type-wrong", "document:not-json", "document:array", "document:deep",
                                  "document:subject-object", "document:digest-list", "document:deps-object"])
def test_check_hostile_attestation_fails_the_rule(nix_store, keys, tmp_path, case):
    kind, name = case.split(":")
    path = tmp_path / "a.json"
    if kind == "envelope":
        path.write_text(json.dumps(ENVELOPES[name][0]))
    else:  # validly signed, so that the payload is what is wrong
        path.write_text(json.dumps(sign(_bytes(DOCUMENTS[name][0]), keys / "ed25519.pem")))
    run, rules = _check(nix_store, _policy(tmp_path), path, "--key", str(keys / "ed25519.pub.pem"))
    assert run.code == 1 and _failed(rules) == {"provenance.exists", "provenance.signature", "provenance.subject", "provenance.dependencies"}
    assert "cannot be checked" in rules["provenance.subject"]["violations"][0]["message"]


def test_check_bad_key_is_bad_input(nix_store, signed, tmp_path):
    (tmp_path / "bad.pem").write_text("not a key")
    for key in (tmp_path / "bad.pem", "/dev/zero", tmp_path):
        run = run_sbomgen("check", "--policy", str(_policy(tmp_path)), str(nix_store.results["app"]), "--provenance", str(signed / "p.dsse.json"), "--key", str(key), env=nix_store.env)
        assert_one_line_error(run, 2, str(key))
    run = run_sbomgen("check", "--policy", str(_policy(tmp_path, 'key = "nope.pem"\n')), str(nix_store.results["app"]), "--provenance", str(signed / "p.dsse.json"), env=nix_store.env)
    assert_one_line_error(run, 2, "cannot read key")
    run = run_sbomgen("check", "--policy", str(_policy(tmp_path, "key = 5\n")), str(nix_store.results["app"]), env=nix_store.env)
    assert_one_line_error(run, 2, "provenance.key must be a str")


# -- interoperability: another DSSE implementation accepts our envelopes --------------------------------------


def test_securesystemslib_verifies_our_envelopes(store, keys):
    import securesystemslib.dsse as ssl_dsse
    import securesystemslib.signer as signer

    for kind, scheme in (("ed25519", "ed25519"), ("ecdsa-p256", "ecdsa-sha2-nistp256")):
        envelope = sign(store.good(), keys / f"{kind}.pem")
        public = serialization.load_pem_public_key((keys / f"{kind}.pub.pem").read_bytes())
        key = signer.SSlibKey.from_crypto(public, keyid=envelope["signatures"][0]["keyid"], scheme=scheme)
        parsed = ssl_dsse.Envelope.from_dict(envelope)
        verified = parsed.verify([key], 1)
        assert set(verified) == {key.keyid}
        assert json.loads(parsed.payload) == store.good()


# -- property-based: no mutation of a statement or an envelope ends in anything but a SbomgenError ----------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _replace(value, path, new):
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    return [*value[:head], _replace(value[head], rest, new), *value[head + 1 :]]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_statements_and_envelopes(store, keys, data):
    from sbomgen import provenance
    from sbomgen.keys import load_verify_key

    good = store.good()
    good["subject"].append({"name": "x", "uri": f"{store.dir}/{H7}-gone", "digest": {"sha256": "0" * 64, "fileSha256": "1" * 64}})
    good["predicate"]["buildDefinition"]["resolvedDependencies"][0]["annotations"] = {"nixDrvPath": f"{store.dir}/{H7}-x.drv"}
    signed_doc = sign(good, keys / "ed25519.pem")
    mutated = data.draw(st.sampled_from([good, signed_doc, {**signed_doc, "payload": good}]))
    for _ in range(data.draw(st.integers(1, 3))):
        paths = list(_paths(mutated))
        mutated = _replace(mutated, data.draw(st.sampled_from(paths)), data.draw(_JSON | st.sampled_from(
            ["/etc/passwd", "/dev/zero", f"file://{store.hello}", f"{store.dir}/{H1}-hello/..", "", "!!", 10**30])))
    if isinstance(mutated, dict) and "payload" in mutated and isinstance(mutated["payload"], (dict, list)):
        mutated = {**mutated, "payload": _b64(json.dumps(mutated["payload"]))}
    path = store.write("fuzz.json", json.dumps(mutated))
    key = load_verify_key(str(keys / "ed25519.pub.pem"))
    saved = os.environ.get("NIX_STORE_DIR")
    os.environ["NIX_STORE_DIR"] = str(store.dir)
    try:
        for attempt in (key, None):
            try:
                found, report = provenance.load_attestation(str(path), attempt)
                if found:
                    provenance.verify_statement(found, report)
            except SbomgenError:
                pass
        for keys_given, required in (([key], None), ([], False)):
            try:
                provenance.trusted_statement(str(path), keys_given, required)
            except SbomgenError:
                pass
    finally:
        if saved is None:
            os.environ.pop("NIX_STORE_DIR", None)
        else:
            os.environ["NIX_STORE_DIR"] = saved


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["payload", "payloadType", "signatures", "x"]), _JSON | st.text(alphabet="AZaz09+/=-_", max_size=12), max_size=4))
def test_fuzz_dsse_decoder(envelope):
    from sbomgen.formats import dsse

    try:
        dsse.decode_envelope(envelope, "fuzz").statement("fuzz")
    except SbomgenError:
        pass


def test_a_path_named_many_times_is_hashed_once(store, monkeypatch):
    """A statement that names one store path 20,000 times costs one hash of it, not 20,000."""
    from sbomgen import provenance

    calls = []
    real = provenance.nar_sha256_hex
    monkeypatch.setattr(provenance, "nar_sha256_hex", lambda path: calls.append(path) or real(path))
    data = statement([store.subject(store.hello)], [store.subject(store.lib)] * 20_000)
    started = time.monotonic()
    assert verify_in_process(store.write("s.json", data), store.dir) == (0, "")
    assert sorted(calls) == sorted([str(store.hello), str(store.lib)]) and time.monotonic() - started < 60
