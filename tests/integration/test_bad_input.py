"""Bad input: one clear line on stderr, a distinct exit code, no traceback, no output file."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tests.helpers import run_sbomgen

pytestmark = pytest.mark.nix


def _assert_clean_failure(run, code: int, *fragments: str) -> None:
    assert run.code == code, (run.code, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("sbomgen: error: "), lines[0]
    assert "Traceback" not in run.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _outputs(tmp_path: Path) -> list[str]:
    return ["--spdx", str(tmp_path / "o.spdx.json"), "--cdx", str(tmp_path / "o.cdx.json")]


def _no_outputs(tmp_path: Path) -> None:
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("o.", ".o.")))
    assert leftovers == [], leftovers


def test_dangling_result(nix_store, tmp_path):
    link = tmp_path / "result"
    link.symlink_to(nix_store.store_dir / "00000000000000000000000000000000-gone")
    run = run_sbomgen(str(link), *_outputs(tmp_path), env=nix_store.env)
    _assert_clean_failure(run, 3, "dangling symlink", "garbage-collected")
    _no_outputs(tmp_path)


def test_missing_path(nix_store, tmp_path):
    run = run_sbomgen(str(tmp_path / "nothing"), *_outputs(tmp_path), env=nix_store.env)
    _assert_clean_failure(run, 3, "no such file")


def test_path_outside_store(nix_store, tmp_path):
    run = run_sbomgen(str(tmp_path), *_outputs(tmp_path), env=nix_store.env)
    _assert_clean_failure(run, 4, "not inside the Nix store")
    _no_outputs(tmp_path)


def test_store_path_not_in_db(nix_store, tmp_path):
    fake = nix_store.store_dir / ("1" * 32 + "-not-registered-1.0")
    fake.mkdir()
    try:
        run = run_sbomgen(str(fake), *_outputs(tmp_path), env=nix_store.env)
    finally:
        fake.rmdir()
    _assert_clean_failure(run, 5, "not a valid path")
    _no_outputs(tmp_path)


def test_unreadable_db(nix_store, tmp_path):
    bad = tmp_path / "db.sqlite"
    bad.write_bytes(b"this is not an SQLite database" * 100)
    run = run_sbomgen(str(nix_store.results["app"]), "--db", str(bad), *_outputs(tmp_path), env=nix_store.env)
    _assert_clean_failure(run, 7, "cannot read Nix store database")
    _no_outputs(tmp_path)


def test_missing_db(nix_store, tmp_path):
    env = {**nix_store.env, "NIX_STATE_DIR": str(tmp_path / "nostate")}
    run = run_sbomgen(str(nix_store.results["app"]), *_outputs(tmp_path), env=env)
    _assert_clean_failure(run, 7, "database not found")


def test_db_of_another_kind(nix_store, tmp_path):
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    run = run_sbomgen(str(nix_store.results["app"]), "--db", str(other), *_outputs(tmp_path), env=nix_store.env)
    _assert_clean_failure(run, 7, "not a Nix store database")


def test_corrupt_drv(scratch_store, tmp_path):
    result = scratch_store.build("tzdata", "result")
    drv = Path(scratch_store.query_deriver(os.path.realpath(result)))
    os.chmod(drv.parent, 0o755)
    os.chmod(drv, 0o644)
    drv.write_text('Derive([("out","/x","",""),garbage')
    run = run_sbomgen(str(result), "--buildtime", *_outputs(tmp_path), env=scratch_store.env)
    _assert_clean_failure(run, 6, "corrupt derivation", str(drv), "offset")
    _no_outputs(tmp_path)


def test_missing_drv_of_runtime_component_is_tolerated(scratch_store, tmp_path):
    """A deriver that was garbage-collected: the runtime SBOM still names the path from its name."""
    result = scratch_store.build("tzdata", "result")
    drv = Path(scratch_store.query_deriver(os.path.realpath(result)))
    os.chmod(drv.parent, 0o755)
    drv.unlink()
    run = run_sbomgen(str(result), "--cdx", "-", env=scratch_store.env)
    assert run.code == 0, run.stderr
    assert '"name": "tzdata"' in run.stdout
    run = run_sbomgen(str(result), "--buildtime", "--cdx", "-", env=scratch_store.env)
    _assert_clean_failure(run, 6, "derivation not found")


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--spdx", "out.pdf"], "cannot tell the SPDX format"),
        (["--cdx", "out.yaml"], "cannot tell the CycloneDX format"),
        (["--cdx", "o.json", "--cdx-version", "9.9"], "unsupported CycloneDX version"),
        (["--spdx", "-", "--cdx", "-"], "only one output"),
    ],
)
def test_unknown_output_format(nix_store, tmp_path, args, fragment):
    run = run_sbomgen(str(nix_store.results["app"]), *args, env=nix_store.env, cwd=tmp_path)
    _assert_clean_failure(run, 8, fragment)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_leaves_nothing(nix_store, tmp_path):
    target = tmp_path / "missing-dir" / "o.spdx.json"
    run = run_sbomgen(str(nix_store.results["app"]), "--spdx", str(target), env=nix_store.env)
    _assert_clean_failure(run, 9, "cannot write", "missing-dir does not exist")
    # checked before the closure is walked: the same answer for a target that is not even there
    run = run_sbomgen(str(tmp_path / "no-such-result"), "--spdx", str(target), env=nix_store.env)
    _assert_clean_failure(run, 9, "missing-dir does not exist")
    out_dir = tmp_path / "a-dir.json"
    out_dir.mkdir()
    run = run_sbomgen(str(nix_store.results["app"]), "--cdx", str(out_dir), env=nix_store.env)
    _assert_clean_failure(run, 9, "is a directory")


def test_existing_output_is_not_truncated_on_failure(nix_store, tmp_path):
    out = tmp_path / "o.spdx.json"
    out.write_text("previous")
    run = run_sbomgen(str(nix_store.results["app"]), "--spdx", str(out), "--cdx-version", "0.1", "--cdx", str(tmp_path / "c.json"), env=nix_store.env)
    assert run.code == 8
    assert out.read_text() == "previous"


def test_bad_meta(nix_store, tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text("[]")
    run = run_sbomgen(str(nix_store.results["app"]), "--meta", str(meta), *_outputs(tmp_path), env=nix_store.env)
    _assert_clean_failure(run, 10, "nix-env -qa --meta --json")
    _no_outputs(tmp_path)


def test_bad_source_date_epoch(nix_store, tmp_path):
    run = run_sbomgen(str(nix_store.results["app"]), *_outputs(tmp_path), env={**nix_store.env, "SOURCE_DATE_EPOCH": "yesterday"})
    _assert_clean_failure(run, 2, "SOURCE_DATE_EPOCH")
    _no_outputs(tmp_path)


def test_negative_depth_is_a_usage_error(nix_store):
    run = run_sbomgen(str(nix_store.results["app"]), "--depth=-1", env=nix_store.env)
    assert run.code == 2 and "Traceback" not in run.stderr


def test_help_lists_exit_codes():
    run = run_sbomgen("--help")
    assert run.code == 0
    lines = run.stdout.splitlines()
    from sbomgen.errors import EXIT_CODES

    for code, meaning in EXIT_CODES.items():
        assert any(line.split(None, 1) == [str(code), meaning] for line in lines), (code, meaning)
