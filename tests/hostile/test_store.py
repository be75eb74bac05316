"""Hostile input on the local-store side: unusual but real derivations, tampered ``.drv``
files, hashes sbomgen cannot read, broken store databases, a read-only WAL database, and
targets that loop or block.

Every case runs the real CLI (``sbomgen``, ``provenance``, ``sbomgen check``) on a real
store built by Nix from ``fixtures/hostile.nix`` and damaged by the test, with a timeout
(a FIFO or ``/dev/zero`` must not be read forever), and asserts the documented exit code,
one error line naming the culprit, and that a canary beside the input is unchanged.  The
property-based tests at the end feed the ATerm parser, the hash and base32 decoders and the
store-path checks random and mutated input: only the documented error may escape.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sbomgen.errors import DerivationError, InvalidStorePathError, StoreDatabaseError
from sbomgen.formats.provenance import path_of_uri
from sbomgen.nix import base32
from sbomgen.nix import store as store_module
from sbomgen.nix.derivation import check_store_paths, parse_derivation, read_derivation
from sbomgen.nix.hashes import parse_ca, parse_hash
from sbomgen.nix.store import NixStore
from sbomgen.nix.storepath import is_store_name, is_store_path
from tests.conftest import REPO, make_store, require_nix
from tests.helpers import Run, cdx_components, cdx_property, load_json
from tests.hostile.common import assert_one_line_error, make_canary, snapshot

pytestmark = pytest.mark.nix

HOSTILE = REPO / "fixtures" / "hostile.nix"
POLICY = REPO / "fixtures" / "policy.toml"

#: a command that reads /dev/zero or waits on a FIFO never ends; these end in seconds
TIMEOUT = 60


def run_cli(*args: str, env: dict[str, str], prog: str = "sbomgen", cwd: Path | None = None) -> Run:
    """The real CLI (``sbomgen`` or ``provenance``) in a subprocess, with a timeout."""
    module = "sbomgen" if prog == "sbomgen" else "sbomgen.cli.provenance"
    full_env = {**os.environ, **env}
    full_env.pop("SBOMGEN_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], env=full_env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


class Hostile:
    """A private store with fixtures/hostile.nix instantiated (and ``drvref`` built)."""

    def __init__(self, root: Path, build: bool = True):
        self.nix = make_store(root)
        self.store_dir = self.nix.store_dir
        self.env = self.nix.env
        self.tool_drv = self.nix.run("nix-instantiate", str(HOSTILE), "-A", "tool").strip()
        self.drvref_drv = self.nix.run("nix-instantiate", str(HOSTILE), "-A", "drvref").strip()
        self.tool = parse_derivation(Path(self.tool_drv).read_text(), self.tool_drv)
        self.src_drv = next(iter(self.tool.input_drvs))
        self.result = root / "result"
        if build:
            self.nix.run("nix-build", str(HOSTILE), "-A", "drvref", "-o", str(self.result))

    def rewrite(self, drv_path: str, old: str, new: str) -> None:
        """Edit a .drv in the store in place (it stays registered as valid)."""
        path = Path(drv_path)
        text = path.read_text()
        assert old in text, (old, text)
        os.chmod(path, 0o644)
        path.write_text(text.replace(old, new))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Hostile:
    """Shared, never damaged: for the tests that only read."""
    require_nix()
    return Hostile(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def instantiated(tmp_path_factory) -> Hostile:
    require_nix()
    return Hostile(tmp_path_factory.mktemp("damaged") / "nix", build=False)


@pytest.fixture
def damaged(instantiated):
    """``instantiated`` (the .drv files only: nothing is built), to damage: every .drv file
    is put back, and everything added to the store removed, after the test."""
    store_dir = instantiated.store_dir
    before = set(os.listdir(store_dir))
    saved = {p: (p.read_bytes(), p.stat().st_mode) for p in store_dir.iterdir() if p.name.endswith(".drv")}
    yield instantiated
    for name in set(os.listdir(store_dir)) - before:
        path = store_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    for path, (data, mode) in saved.items():
        if path.read_bytes() != data:
            os.chmod(path, 0o644)
            path.write_bytes(data)
        os.chmod(path, stat.S_IMODE(mode))


# -- a .drv in inputSrcs (builtins.unsafeDiscardOutputDependency) -----------------------------


def test_fixture_really_puts_a_drv_in_input_srcs(hostile):
    drvref = read_derivation(hostile.drvref_drv, str(hostile.store_dir))
    assert drvref.input_srcs == (hostile.tool_drv,) and not drvref.input_drvs


def test_buildtime_sbom_of_a_drv_in_input_srcs(hostile, tmp_path):
    out = tmp_path / "b.cdx.json"
    run = run_cli(str(hostile.result), "--buildtime", "--cdx", str(out), env=hostile.env)
    assert run.code == 0, run.stderr
    components = {c["bom-ref"]: c for c in cdx_components(load_json(out))}
    # as nix-store -qR drvref.drv: the .drv (as its output) and everything the .drv file needs
    expected = hostile.nix.query_requisites(hostile.drvref_drv) - {hostile.drvref_drv}
    assert {cdx_property(c, "nix:store_path") for c in components.values()} - {
        os.path.realpath(hostile.result)
    } == expected
    tool = components[os.path.basename(hostile.tool_drv)]
    assert tool["name"] == "tool" and tool["version"] == "1.0" and tool["type"] == "file"
    assert cdx_property(tool, "nix:derivation_file")
    assert tool["hashes"][0]["alg"] == "SHA-256"  # the NAR hash of the .drv file, from the DB
    # the derivation file's own closure is walked (its fetch's .drv and its source), its outputs are not
    deps = {d["ref"]: set(d.get("dependsOn", [])) for d in load_json(out)["dependencies"]}
    assert deps[os.path.basename(hostile.tool_drv)] == {os.path.basename(hostile.src_drv), *(
        os.path.basename(s) for s in hostile.tool.input_srcs)}


def test_runtime_sbom_of_an_output_that_refers_to_a_drv(hostile, tmp_path):
    out = tmp_path / "r.cdx.json"
    run = run_cli(str(hostile.result), "--cdx", str(out), env=hostile.env)
    assert run.code == 0, run.stderr
    components = cdx_components(load_json(out))
    assert {cdx_property(c, "nix:store_path") for c in components} == hostile.nix.query_requisites(hostile.result)
    tool = next(c for c in components if c["bom-ref"] == os.path.basename(hostile.tool_drv))
    assert (tool["name"], tool["version"]) == ("tool", "1.0") and cdx_property(tool, "nix:derivation_file")


def test_provenance_and_verify_of_a_drv_in_input_srcs(hostile, tmp_path):
    statement = tmp_path / "s.json"
    run = run_cli("--recursive", str(hostile.result), "-o", str(statement), env=hostile.env, prog="provenance")
    assert run.code == 0, run.stderr
    # uris are file: URIs since issue 15 (item 6): compare the paths they name
    uris = {path_of_uri(d["uri"]) for d in load_json(statement)["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert hostile.tool_drv in uris
    run = run_cli("verify", str(statement), env=hostile.env, prog="provenance")
    assert run.code == 0, run.stderr


def test_check_of_a_drv_in_input_srcs(hostile, tmp_path):
    run = run_cli("check", "--policy", str(POLICY), "--buildtime", str(hostile.result), env=hostile.env)
    assert run.code == 0, (run.stdout, run.stderr)


# -- tampered .drv files -----------------------------------------------------------------------


def _tampered_cases(h: Hostile, tmp: Path) -> dict[str, tuple[str, str, str]]:
    """name -> (drv to edit, text to replace, replacement): inputs that are not store paths of
    this store, or store paths that are not regular files."""
    fifo = h.store_dir / ("0" * 32 + "-fifo.drv")
    os.mkfifo(fifo)
    link = h.store_dir / ("1" * 32 + "-zero.drv")
    link.symlink_to("/dev/zero")
    big = h.store_dir / ("2" * 32 + "-big.drv")
    with open(big, "wb") as handle:
        handle.truncate(65 << 20)  # sparse: costs nothing on disk
    setup = h.tool.input_srcs[0]
    return {
        "input-drv-dev-zero": (h.tool_drv, h.src_drv, "/dev/zero"),
        "input-drv-fifo": (h.tool_drv, h.src_drv, str(fifo)),
        "input-drv-symlink": (h.tool_drv, h.src_drv, str(link)),
        "input-drv-huge": (h.tool_drv, h.src_drv, str(big)),
        "input-drv-passwd": (h.tool_drv, h.src_drv, "/etc/passwd"),
        "input-drv-dotdot": (h.tool_drv, h.src_drv, f"{h.store_dir}/../../etc/x.drv"),
        "input-drv-canary": (h.tool_drv, h.src_drv, str(tmp / "canary" / "secret.txt")),
        "input-src-dev-zero": (h.tool_drv, setup, "/dev/zero"),
        "input-src-inside": (h.tool_drv, setup, f"{setup}/../../../../etc/passwd"),
        "input-src-newline": (h.tool_drv, setup, f"{setup}\\n"),
        "output-elsewhere": (h.tool_drv, f'("out","{h.tool.outputs["out"].path}"', '("out","/tmp/out"'),
        "drvref-input-src-fifo": (h.drvref_drv, h.tool_drv, str(fifo)),
    }


TAMPERED = {
    "input-drv-dev-zero": "'/dev/zero'",
    "input-drv-fifo": "FIFO",
    "input-drv-symlink": "symlink",
    "input-drv-huge": "64 MiB",
    "input-drv-passwd": "'/etc/passwd'",
    "input-drv-dotdot": "../../etc/x.drv",
    "input-drv-canary": "secret.txt",
    "input-src-dev-zero": "'/dev/zero'",
    "input-src-inside": "etc/passwd",
    "input-src-newline": "not a store path",
    "output-elsewhere": "'/tmp/out'",
    "drvref-input-src-fifo": "fifo.drv' is not a valid path",
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_tampered_drv_is_refused_promptly(damaged, tmp_path, case):
    canary = make_canary(tmp_path)
    before = snapshot(canary)
    drv, old, new = _tampered_cases(damaged, tmp_path)[case]
    damaged.rewrite(drv, old, new)
    target = damaged.drvref_drv if case.startswith("drvref") else damaged.tool_drv
    line = assert_one_line_error(run_cli(target, "--buildtime", "--cdx", "-", env=damaged.env), 6, TAMPERED[case])
    assert os.path.basename(drv) in line  # the .drv that names it
    assert snapshot(canary) == before


def test_tampered_drv_in_provenance_and_check(damaged, tmp_path):
    damaged.rewrite(damaged.tool_drv, damaged.src_drv, "/dev/zero")
    run = run_cli(damaged.tool_drv, env=damaged.env, prog="provenance")
    assert_one_line_error(run, 6, os.path.basename(damaged.tool_drv), "'/dev/zero'", prog="provenance")
    run = run_cli("check", "--policy", str(POLICY), "--buildtime", damaged.tool_drv, env=damaged.env)
    assert_one_line_error(run, 2, "'/dev/zero'")  # check: every bad input is 2


def test_target_drv_that_is_a_fifo_or_huge(damaged):
    fifo = damaged.store_dir / ("3" * 32 + "-target.drv")
    os.mkfifo(fifo)
    assert_one_line_error(run_cli(str(fifo), "--buildtime", "--cdx", "-", env=damaged.env), 5, "not a valid path")
    store = NixStore(str(damaged.store_dir), str(damaged.nix.state_dir))
    with pytest.raises(DerivationError, match="FIFO"):
        store.derivation(str(fifo))
    with pytest.raises(DerivationError, match="not a derivation in the store"):
        store.derivation("/dev/zero")


@pytest.mark.parametrize(
    "text,message",
    [
        ('Derive([],[],[],"s","b",[],[])', "no outputs"),
        ('Derive([("o/x","","","")],[],[],"s","b",[],[])', "not an output name"),
        ('Derive([("out","","","")],[("S/' + "a" * 32 + '-x.drv",["../out"])],[],"s","b",[],[])', "not an output name"),
        ('Derive([("out","","","")],[("S/' + "a" * 32 + '-x",["out"])],[],"s","b",[],[])', "not a .drv"),
        ('Derive([("out","S/' + "a" * 32 + '-x/y","","")],[],[],"s","b",[],[])', "not a store path"),
    ],
)
def test_malformed_drv_structure(text, message):
    with pytest.raises(DerivationError, match=message):
        check_store_paths(parse_derivation(text.replace("S/", "/s/"), "/s/x.drv"), "/s")


def test_drv_with_bytes_that_are_not_utf8(damaged, tmp_path):
    os.chmod(damaged.tool_drv, 0o644)
    data = Path(damaged.tool_drv).read_bytes().replace(b'"tool-1.0"', b'"tool\xff-1.0"', 1)
    Path(damaged.tool_drv).write_bytes(data)
    out = tmp_path / "o.cdx.json"
    run = run_cli(damaged.tool_drv, "--buildtime", "--cdx", str(out), "--spdx", str(tmp_path / "o.spdx.json"),
                  env=damaged.env)
    assert run.code == 0, run.stderr
    assert load_json(out)["metadata"]["component"]["name"] == "tool\ufffd"


def test_built_output_whose_drv_has_bytes_that_are_not_utf8(tmp_path):
    """provenance copies the builder's args into the statement: JSON holds no lone surrogates."""
    require_nix()
    h = Hostile(tmp_path / "nix")
    drv = Path(h.drvref_drv)
    os.chmod(drv, 0o644)
    drv.write_bytes(drv.read_bytes().replace(b"mkdir -p $out", b"mkdir -p \xff$out", 1))
    statement = tmp_path / "s.json"
    run = run_cli(str(h.result), "-o", str(statement), env=h.env, prog="provenance")
    assert run.code == 0, run.stderr
    assert "mkdir -p \ufffd$out" in load_json(statement)["predicate"]["buildDefinition"]["internalParameters"]["args"][1]


# -- hash algorithms and notations ---------------------------------------------------------------

SRC_HEX = None  # filled in by the test from the real .drv


def _b64(hex_digest: str) -> str:
    import base64

    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


@pytest.mark.parametrize(
    "algo,notation,readable",
    [
        ("sha256", "hex", True),
        ("sha256", "nix32", True),
        ("sha256", "base64", True),
        ("sha256", "sri", True),
        ("r:sha256", "hex", True),
        ("text:sha256", "hex", True),
        ("git:sha1", "sha1", True),
        ("sha512", "sha512", True),
        ("md5", "md5", True),
        ("blake3", "hex", False),
        ("r:blake3", "hex", False),
        ("foo:sha256", "hex", False),
        ("sha256", "garbage", False),
        ("sha256", "empty-sri", False),
    ],
)
def test_fixed_output_hash_algorithms(damaged, tmp_path, algo, notation, readable):
    src = read_derivation(damaged.src_drv)
    out = src.outputs["out"]
    digest = out.hash
    body = {
        "hex": digest,
        "nix32": base32.encode(bytes.fromhex(digest)),
        "base64": _b64(digest),
        "sri": "sha256-" + _b64(digest),
        "sha1": "a9993e364706816aba3e25717850c26c9cd0d89d",
        "sha512": "ab" * 64,
        "md5": "900150983cd24fb0d6963f7d28e17f72",
        "garbage": "zz" * 32,
        "empty-sri": "sha256-",
    }[notation]
    damaged.rewrite(damaged.src_drv, f'"{out.hash_algo}","{digest}"', f'"{algo}","{body}"')
    cdx, spdx = tmp_path / "o.cdx.json", tmp_path / "o.spdx.json"
    # the fetch as a dependency (its build-time SBOM as a target takes the same path)
    run = run_cli(damaged.tool_drv, "--buildtime", "--cdx", str(cdx), "--spdx", str(spdx), env=damaged.env)
    assert run.code == 0, (algo, notation, run.stderr)
    fetch = next(c for c in cdx_components(load_json(cdx)) if c["bom-ref"] == os.path.basename(out.path))
    declared = cdx_property(fetch, "nix:fixed_output_hash")
    if readable:
        assert declared and declared.split(":", 1)[0] == algo.rpartition(":")[2], (declared, fetch)
        assert cdx_property(fetch, "nix:fixed_output_unsupported") is None
        if notation in ("hex", "nix32", "base64", "sri"):
            assert declared.endswith(digest)
    else:
        assert declared is None
        assert cdx_property(fetch, "nix:fixed_output_unsupported") == f"{algo}:{body}"


@pytest.mark.parametrize(
    "ca,fixed",
    [
        ("fixed:git:sha1:a9993e364706816aba3e25717850c26c9cd0d89d", "sha1:a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("fixed:blake3:" + "ab" * 32, None),
        ("fixed:r:blake3:" + "ab" * 32, None),
        ("fixed:sha256:zz", None),
        ("fixed:", None),
    ],
)
def test_store_db_content_addresses(tmp_path, ca, fixed):
    """A built fetch whose deriver is gone: described from the DB's ``ca`` column."""
    require_nix()
    h = Hostile(tmp_path / "nix", build=False)
    fetch = h.nix.run("nix-store", "--realise", h.src_drv).strip()
    conn = sqlite3.connect(h.nix.db_path)
    with conn:
        conn.execute("UPDATE ValidPaths SET ca = ?, deriver = NULL WHERE path = ?", (ca, fetch))
    conn.close()
    out = tmp_path / "o.cdx.json"
    run = run_cli(fetch, "--cdx", str(out), env=h.env)
    assert run.code == 0, run.stderr
    component = load_json(out)["metadata"]["component"]
    assert cdx_property(component, "nix:fixed_output_hash") == fixed
    assert cdx_property(component, "nix:fixed_output_unsupported") == (None if fixed else ca)


# -- store databases -------------------------------------------------------------------------------


def _copy_state(hostile: Hostile, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The environment of a copy of ``hostile``'s state dir (same store), and its DB path."""
    state = tmp_path / "state"
    (state / "db").mkdir(parents=True)
    src = sqlite3.connect(hostile.nix.db_path)
    dst = sqlite3.connect(state / "db" / "db.sqlite")
    src.backup(dst)
    src.close()
    dst.execute("PRAGMA journal_mode=DELETE")
    dst.close()
    return {**hostile.env, "NIX_STATE_DIR": str(state)}, state / "db" / "db.sqlite"


def _sql(db: Path, *statements: str) -> None:
    conn = sqlite3.connect(db)
    with conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()


def _result_id(hostile: Hostile) -> str:
    return f"(SELECT id FROM ValidPaths WHERE path = '{os.path.realpath(hostile.result)}')"


def _loose(db: Path, *statements: str) -> None:
    """ValidPaths without its constraints (NOT NULL, integer id), then ``statements``."""
    _sql(db, "CREATE TABLE VP AS SELECT * FROM ValidPaths", "DROP TABLE ValidPaths",
         "ALTER TABLE VP RENAME TO ValidPaths", *statements)


BROKEN_DBS = {
    # name -> (damage, exit code, fragment)
    "not-sqlite": (lambda db, h: db.write_bytes(b"this is not a database\n" * 100), 7, "not a database"),
    "empty-file": (lambda db, h: db.write_bytes(b""), 7, "missing tables"),
    "no-nix-tables": (lambda db, h: (db.unlink(), _sql(db, "CREATE TABLE t(x)")), 7, "missing tables"),
    "truncated": (lambda db, h: db.write_bytes(db.read_bytes()[:5000]), 7, "cannot read"),
    "null-hash": (lambda db, h: _loose(db, f"UPDATE ValidPaths SET hash = NULL WHERE id = {_result_id(h)}"), 7, "hash None"),
    "null-path-reference": (lambda db, h: _loose(db, "UPDATE ValidPaths SET path = NULL WHERE path LIKE '%-tool-1.0.drv'"), 7, "reference None"),
    "text-id": (lambda db, h: _loose(db, f"UPDATE ValidPaths SET id = 'x' || id WHERE id = {_result_id(h)}"), 0, ""),
    "md5-hash": (lambda db, h: _sql(db, f"UPDATE ValidPaths SET hash = 'md5:' || substr(hash, 8, 32) WHERE id = {_result_id(h)}"), 7, "md5 NAR hash"),
    "bad-hex-hash": (lambda db, h: _sql(db, f"UPDATE ValidPaths SET hash = 'sha256:' || replace(substr(hash, 8), '0', 'g') || 'g' WHERE id = {_result_id(h)}"), 7, "bad NAR hash"),
    "blake3-hash": (lambda db, h: _sql(db, f"UPDATE ValidPaths SET hash = 'blake3:' || substr(hash, 8) WHERE id = {_result_id(h)}"), 7, "bad NAR hash"),
    "sha256-empty": (lambda db, h: _sql(db, f"UPDATE ValidPaths SET hash = 'sha256:' WHERE id = {_result_id(h)}"), 7, "bad NAR hash"),
    "negative-narsize": (lambda db, h: _sql(db, f"UPDATE ValidPaths SET narSize = -5 WHERE id = {_result_id(h)}"), 7, "narSize -5"),
    "text-narsize": (lambda db, h: _sql(db, f"UPDATE ValidPaths SET narSize = 'big' WHERE id = {_result_id(h)}"), 7, "narSize 'big'"),
    "text-regtime": (lambda db, h: _sql(db, f"UPDATE ValidPaths SET registrationTime = 'x' WHERE id = {_result_id(h)}"), 7, "registrationTime"),
    "deriver-dev-zero": (lambda db, h: _sql(db, f"UPDATE ValidPaths SET deriver = '/dev/zero' WHERE id = {_result_id(h)}"), 7, "'/dev/zero'"),
    "reference-outside": (
        lambda db, h: _sql(
            db,
            "INSERT INTO ValidPaths (path, hash, registrationTime, narSize) VALUES ('/etc/passwd', 'sha256:' || hex(zeroblob(32)), 1, 1)",
            f"INSERT INTO Refs (referrer, reference) SELECT {_result_id(h)}, id FROM ValidPaths WHERE path = '/etc/passwd'",
        ),
        7,
        "'/etc/passwd'",
    ),
    "reference-to-missing-id": (lambda db, h: _sql(db, "PRAGMA foreign_keys = OFF", f"INSERT INTO Refs VALUES ({_result_id(h)}, 99999)"), 0, ""),
    "reference-cycle": (
        lambda db, h: _sql(
            db,
            "INSERT INTO Refs (referrer, reference) SELECT v.id, "
            f"{_result_id(h)} FROM ValidPaths v WHERE v.path LIKE '%-tool-1.0.drv'",
        ),
        0,
        "",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_DBS))
def test_broken_store_database(hostile, tmp_path, case):
    damage, code, fragment = BROKEN_DBS[case]
    env, db = _copy_state(hostile, tmp_path)
    damage(db, hostile)
    run = run_cli(str(hostile.result), "--cdx", "-", env=env)
    if code == 0:
        assert run.code == 0, run.stderr
    else:
        assert_one_line_error(run, code, fragment)


@pytest.mark.parametrize("case", ["null-hash", "deriver-dev-zero", "reference-cycle"])
def test_broken_store_database_in_buildtime_and_provenance(hostile, tmp_path, case):
    damage, code, fragment = BROKEN_DBS[case]
    env, db = _copy_state(hostile, tmp_path)
    damage(db, hostile)
    for args, prog in (([str(hostile.result), "--buildtime", "--cdx", "-"], "sbomgen"), ([str(hostile.result)], "provenance")):
        run = run_cli(*args, env=env, prog=prog)
        if code == 0:
            assert run.code == 0, (args, run.stderr)
        else:
            assert_one_line_error(run, code, fragment, prog=prog)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory", "symlink-loop"])
def test_store_database_that_is_not_a_file(hostile, tmp_path, kind):
    db = tmp_path / "db.sqlite"
    if kind == "fifo":
        os.mkfifo(db)
    elif kind == "dev-zero":
        db.symlink_to("/dev/zero")
    elif kind == "directory":
        db.mkdir()
    else:
        db.symlink_to(db)
    run = run_cli(str(hostile.result), "--db", str(db), "--cdx", "-", env=hostile.env)
    assert_one_line_error(run, 7, str(db))


def test_store_database_with_uri_characters_in_its_path(hostile, tmp_path):
    """``?``, ``#`` and ``%`` in the DB path are file name characters, not URI syntax."""
    env, db = _copy_state(hostile, tmp_path)
    odd = tmp_path / "a?mode=rwc#%41"
    odd.mkdir()
    shutil.copy(db, odd / "db.sqlite")
    run = run_cli(str(hostile.result), "--db", str(odd / "db.sqlite"), "--cdx", "-", env=hostile.env)
    assert run.code == 0, run.stderr


def test_store_database_locked_by_a_writer(hostile, tmp_path, monkeypatch):
    env, db = _copy_state(hostile, tmp_path)
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT", 0.2)
    try:
        store = NixStore(str(hostile.store_dir), db_path=str(db))
        with pytest.raises(StoreDatabaseError, match="locked.*write lock"):
            store.closure([os.path.realpath(hostile.result)])
    finally:
        writer.execute("ROLLBACK")
        writer.close()


# -- a read-only WAL database, as a user who cannot write its directory ----------------------


def _unprivileged() -> list[str]:
    """A prefix that runs a command as a user the file permissions apply to.

    ``nobody`` when it can run this interpreter; otherwise (the interpreter is under a 0700
    home, e.g. pyenv in /root) uid 0 without any capability: without CAP_DAC_OVERRIDE the
    kernel checks file permissions for it as for any user, so it cannot write a 0555 dir.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is needed to drop privileges")
    if os.geteuid() != 0:
        return []
    nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run([*nobody, sys.executable, "-c", "import sbomgen.cli.main"], capture_output=True,
                           cwd="/", env={**os.environ, "PYTHONPATH": str(REPO)})
    if probe.returncode == 0:
        return nobody
    return [setpriv, "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all"]


@pytest.fixture
def wal_store():
    """``hostile`` built in a world-readable directory, its DB in WAL mode with no -wal/-shm."""
    require_nix()
    base = Path(tempfile.mkdtemp(prefix="sbomgen-wal-"))
    os.chmod(base, 0o755)
    try:
        h = Hostile(base / "nix")
        db = h.nix.db_path
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()  # the last connection removes -wal and -shm, as an idle nix-daemon does
        for suffix in ("-wal", "-shm"):
            if os.path.exists(f"{db}{suffix}"):
                os.unlink(f"{db}{suffix}")
        yield h
    finally:
        for dirpath, _dirs, _files in os.walk(base):
            os.chmod(dirpath, 0o755)
        subprocess.run(["chmod", "-R", "u+w", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)


def _run_unprivileged(h: Hostile, *args: str) -> Run:
    env = {**os.environ, **h.env, "PYTHONPATH": str(REPO), "HOME": "/tmp"}
    env.pop("SBOMGEN_DEBUG", None)
    proc = subprocess.run([*_unprivileged(), sys.executable, "-m", "sbomgen", *args], env=env, cwd="/",
                          capture_output=True, text=True, timeout=TIMEOUT)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def test_read_only_wal_database_is_read_immutable(wal_store):
    db_dir = wal_store.nix.db_path.parent
    os.chmod(db_dir, 0o555)
    before = sorted(os.listdir(db_dir))
    run = _run_unprivileged(wal_store, str(wal_store.result), "--cdx", "-")
    assert run.code == 0, run.stderr
    assert "attempt to write a readonly database" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sbomgen: warning: ") and "immutable" in lines[0], run.stderr
    bom = json.loads(run.stdout)
    assert {cdx_property(c, "nix:store_path") for c in cdx_components(bom)} == wal_store.nix.query_requisites(wal_store.result)
    assert sorted(os.listdir(db_dir)) == before  # nothing created beside the DB


def test_read_only_wal_database_with_pending_writes_is_explained(wal_store):
    """A -wal file with writes not yet in the main file: an immutable read would miss them."""
    db = wal_store.nix.db_path
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("UPDATE ValidPaths SET registrationTime = registrationTime + 1")
    conn.commit()
    shutil.copy(f"{db}-wal", f"{db}-wal.pending")
    conn.close()
    os.rename(f"{db}-wal.pending", f"{db}-wal")
    if os.path.exists(f"{db}-shm"):
        os.unlink(f"{db}-shm")
    os.chmod(db.parent, 0o555)
    run = _run_unprivileged(wal_store, str(wal_store.result), "--cdx", "-")
    assert_one_line_error(run, 7, str(db), "WAL mode", "writable")


# -- targets ---------------------------------------------------------------------------------


def test_target_symlink_loop(hostile, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.symlink_to(b)
    b.symlink_to(a)
    assert_one_line_error(run_cli(str(a), "--cdx", "-", env=hostile.env), 3, "symlink loop")


def test_target_fifo_outside_and_inside_the_store(hostile, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert_one_line_error(run_cli(str(fifo), "--cdx", "-", env=hostile.env), 4, "not inside the Nix store")
    inside = hostile.store_dir / ("4" * 32 + "-fifo")
    os.mkfifo(inside)
    try:
        assert_one_line_error(run_cli(str(inside), "--cdx", "-", env=hostile.env), 5, "not a valid path")
    finally:
        inside.unlink()


def test_target_escaping_the_store_with_dotdot(hostile, tmp_path):
    escaping = f"{os.path.realpath(hostile.result)}/../../.."
    assert_one_line_error(run_cli(escaping, "--cdx", "-", env=hostile.env), 4, "not inside the Nix store")


def test_target_with_bytes_that_are_not_utf8(hostile, tmp_path):
    odd = os.fsencode(tmp_path) + b"/caf\xe9"
    os.symlink(os.fsencode(os.path.realpath(hostile.result)), odd)
    proc = subprocess.run([sys.executable, "-m", "sbomgen", odd, "--cdx", "-"], env={**os.environ, **hostile.env},
                          capture_output=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "sbomgen", os.fsencode(tmp_path) + b"/gone\xff", "--cdx", "-"],
                          env={**os.environ, **hostile.env}, capture_output=True, timeout=TIMEOUT)
    assert_one_line_error(Run(proc.returncode, "", proc.stderr.decode("utf-8", "replace")), 3, "no such file")


# -- property-based: nothing but the documented error escapes ----------------------------------------

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

REAL_DRVS: list[str] = []


def _real_drvs() -> list[str]:
    """The text of every .drv fixtures/weather.nix and fixtures/hostile.nix produce (read once)."""
    if not REAL_DRVS:
        require_nix()
        with tempfile.TemporaryDirectory() as tmp:
            h = Hostile(Path(tmp) / "nix", build=False)
            h.nix.run("nix-instantiate", str(REPO / "fixtures" / "weather.nix"), "-A", "app")
            for path in sorted(h.store_dir.iterdir()):
                if path.name.endswith(".drv"):
                    REAL_DRVS.append(path.read_text())
    return REAL_DRVS


ATERM_PIECES = st.sampled_from(
    ['Derive(', 'DrvWithVersion("xp-dyn-drv",', '[', ']', '(', ')', ',', '"', '\\', '\\"', '"out"',
     '"/nix/store/' + "a" * 32 + '-x"', '""', '"r:sha256"', "\n", "é", "\udcff", "\0"]
)


def _parse_only_derivation_errors(text: str) -> None:
    try:
        drv = parse_derivation(text, "/s/fuzz.drv")
    except DerivationError as exc:
        assert "\n" not in str(exc)
        return
    try:
        check_store_paths(drv, "/nix/store")
    except DerivationError:
        pass
    drv.output_names, drv.is_fixed_output, drv.name  # noqa: B018 - the properties must not raise
    for output in drv.outputs.values():
        output.mode, output.algo, output.is_fixed  # noqa: B018


@FUZZ
@given(st.lists(ATERM_PIECES, max_size=60).map("".join))
def test_fuzz_aterm_from_pieces(text):
    _parse_only_derivation_errors(text)


@FUZZ
@given(st.text(max_size=300))
def test_fuzz_aterm_random_text(text):
    _parse_only_derivation_errors(text)


@FUZZ
@given(st.data())
def test_fuzz_aterm_mutations_of_real_drvs(data):
    texts = _real_drvs()
    text = data.draw(st.sampled_from(texts))
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["delete", "insert", "replace", "truncate", "duplicate"]))
        at = data.draw(st.integers(0, len(text)))
        if kind == "delete":
            text = text[:at] + text[at + data.draw(st.integers(1, 20)) :]
        elif kind == "insert":
            text = text[:at] + data.draw(ATERM_PIECES) + text[at:]
        elif kind == "replace":
            text = text[:at] + data.draw(st.text(max_size=3)) + text[at + 1 :]
        elif kind == "truncate":
            text = text[:at]
        else:
            end = min(len(text), at + data.draw(st.integers(1, 80)))
            text = text[:end] + text[at:end] + text[end:]
    _parse_only_derivation_errors(text)


def test_deeply_nested_dynamic_derivation_is_an_error_not_a_crash():
    """xp-dyn-drv inputs nest; a file nesting them 100,000 deep must not exhaust the stack."""
    depth = 100_000
    text = 'DrvWithVersion("xp-dyn-drv",[("out","","","")],[("/s/a.drv",' + '([],[("o",' * depth
    with pytest.raises(DerivationError):
        parse_derivation(text + ")])" * depth + ")],[],\"s\",\"b\",[],[])")


HASH_TEXT = st.one_of(
    st.text(max_size=140),
    st.builds(
        lambda algo, sep, body: f"{algo}{sep}{body}",
        st.sampled_from(["sha256", "sha1", "sha512", "md5", "blake3", "r:sha256", "", "SHA256"]),
        st.sampled_from([":", "-", ""]),
        st.text(alphabet="0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/=_-!é\0", max_size=130),
    ),
)


@FUZZ
@given(HASH_TEXT, st.one_of(st.none(), st.sampled_from(["sha256", "r:sha256", "text:sha1", "git:sha1", "blake3", ""])))
def test_fuzz_hashes(text, algo):
    for parse in (lambda: parse_hash(text, algo), lambda: parse_ca(text), lambda: parse_ca("fixed:" + text)):
        try:
            parse()
        except ValueError:
            pass


@FUZZ
@given(st.one_of(st.text(max_size=120), st.text(alphabet=base32.ALPHABET + "eotu!", max_size=120)))
def test_fuzz_base32(text):
    try:
        decoded = base32.decode(text)
    except ValueError:
        return
    assert base32.encode(decoded) == text


@FUZZ
@given(st.one_of(st.text(max_size=80), st.builds(lambda s: "/s/" + s, st.text(max_size=80))))
def test_fuzz_store_paths(text):
    if is_store_path(text, "/s"):
        name = text[3:]
        assert "/" not in name and "\n" not in name and name not in (".", "..") and is_store_name(name)
        assert os.path.normpath(text) == text


PATHLIKE = st.one_of(
    st.builds(lambda h, n: f"/s/{h}-{n}",
              st.one_of(st.just("0" * 32), st.text(alphabet=base32.ALPHABET + "e/", min_size=31, max_size=33)),
              st.one_of(st.text(alphabet="abc.-_+?=", min_size=1, max_size=6),
                        st.text(alphabet="abc.-_+?=/\n\0é", min_size=0, max_size=6))),
    st.text(max_size=40),
)


@FUZZ
@given(st.lists(PATHLIKE, min_size=1, max_size=6))
def test_fuzz_all_paths_of_a_drv_at_once(paths):
    """The one-call check of all the paths of a .drv says what checking each one says."""
    from sbomgen.nix.storepath import store_paths_matcher

    assert bool(store_paths_matcher("/s")("\n".join(paths))) == all(is_store_path(p, "/s") for p in paths)


def test_store_path_checks():
    good = "/s/" + "a" * 32 + "-x-1.0"
    assert is_store_path(good, "/s") and is_store_path(good, "/s/")
    for bad in (good + "/bin", good + "\n", "/s/../" + "a" * 32 + "-x", "/dev/zero", "/s/" + "a" * 31 + "-x",
                "/s/" + "e" * 32 + "-x", "/s2/" + "a" * 32 + "-x", None, 5):
        assert not is_store_path(bad, "/s"), bad


def test_store_errors_are_store_errors(tmp_path):
    """In process: a path that is not valid, a DB that is not there."""
    store = NixStore(str(tmp_path), db_path=str(tmp_path / "nothing.sqlite"))
    with pytest.raises(StoreDatabaseError, match="not found"):
        store.is_valid("/x")
    _ = InvalidStorePathError


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["name", "pname", "version", "meta", "description", "homepage", "maintainers", "email",
                         "github", "identifiers", "cpe", "cpeParts", "vendor", "product", "update", "x"]),
        children, max_size=6),
    max_leaves=30,
)


@FUZZ
@given(st.dictionaries(st.text(max_size=10), JSON, max_size=4))
@example({"a": {"name": "x", "meta": {"identifiers": {"cpeParts": {"vendor": 5, "product": "p"}}}}})
@example({"a": {"name": "x", "meta": {"maintainers": [{"name": ["n"], "email": 3}]}}})
def test_fuzz_meta_file(tmp_path_factory, data):
    """A --meta file of any shape: read, or a MetadataError; never another exception.

    Licences are left out: their parsing is the policy/licence code's, fuzzed there."""
    from sbomgen.errors import MetadataError
    from sbomgen.graph.meta import load_meta

    def no_license(value):
        if isinstance(value, dict):
            return {k: no_license(v) for k, v in value.items() if k != "license"}
        if isinstance(value, list):
            return [no_license(v) for v in value]
        return value

    path = tmp_path_factory.mktemp("meta") / "meta.json"
    path.write_text(json.dumps(no_license(data)))
    try:
        index = load_meta(path)
    except MetadataError:
        return
    for name in list(index.by_name)[:3]:
        index.lookup(name, name)


DB_VALUES = st.one_of(
    st.none(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=True), st.text(max_size=70), st.binary(max_size=40),
    st.sampled_from(["sha256:", "md5:" + "0" * 32, "sha256:" + "g" * 64, "fixed:git:sha1:" + "0" * 40,
                     "fixed:blake3:" + "0" * 64, "/dev/zero", "/etc/passwd", "out"]),
)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from(["ValidPaths", "Refs", "DerivationOutputs"]), st.integers(0, 30),
                          st.integers(0, 8), DB_VALUES), min_size=1, max_size=4))
def test_fuzz_store_database_rows(hostile, tmp_path_factory, edits):
    """Any value in any column of the store DB: the walks end in a StoreDatabaseError, another
    documented SbomgenError, or a graph; never another exception."""
    from sbomgen.errors import SbomgenError
    from sbomgen.graph.closure import buildtime_graph, runtime_graph

    db = tmp_path_factory.mktemp("db") / "db.sqlite"
    src = sqlite3.connect(hostile.nix.db_path)
    conn = sqlite3.connect(db)
    src.backup(conn)
    src.close()
    for table, row, column, value in edits:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        rowids = [r[0] for r in conn.execute(f"SELECT rowid FROM {table}")]
        if rowids:
            try:
                conn.execute(f"UPDATE {table} SET {columns[column % len(columns)]} = ? WHERE rowid = ?",
                             (value, rowids[row % len(rowids)]))
            except sqlite3.IntegrityError:  # NOT NULL, UNIQUE: the DB refuses it, so can Nix's
                pass
    conn.commit()
    conn.close()
    target = os.path.realpath(hostile.result)
    for walk, root in ((runtime_graph, target), (buildtime_graph, target), (buildtime_graph, hostile.drvref_drv)):
        store = NixStore(str(hostile.store_dir), db_path=str(db))
        try:
            store.require_valid(root)
            graph = walk(store, root)
            for component in graph.components.values():
                component.digest  # noqa: B018 - must not raise
        except SbomgenError:
            pass
        finally:
            store.close()
