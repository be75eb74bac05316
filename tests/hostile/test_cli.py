"""The CLI against hostile input and hostile surroundings: one error boundary (bugs exit 70, a
broken pipe is not success, signals clean up), outputs that never destroy, and every string
from an input escaped for its sink (rich, the terminal, JUnit XML, DOT)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.helpers import REPO, Run
from tests.hostile.common import assert_one_line_error, make_canary, snapshot

ESC = "\x1b"

#: names an attacker puts in an image tag or an SBOM: rich markup, emoji codes, terminal
#: escapes (colour, window title, bell), a bidi override, a trailing backslash, XML-illegal controls
HOSTILE = [
    "[link=http://evil.example]click[/link]",
    "[/x]",
    "[bold red]loud",
    ":smile:",
    "red\x1b[31mX\x1b]0;pwned\x07",
    "rtl\u202eexe.txt",
    "trail\\",
    "ctl\x01\x08\x0b\x0c",
]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "400"}
    env.pop("SBOMGEN_DEBUG", None)
    return {**env, **(extra or {})}


def _run(*args: str, prog: str = "sbomgen", env: dict[str, str] | None = None, cwd: str | Path | None = None, **kwargs) -> Run:
    module = "sbomgen" if prog == "sbomgen" else "sbomgen.cli.provenance"
    proc = subprocess.run([sys.executable, "-m", module, *args], env=_env(env), cwd=cwd, capture_output=True, text=True,
                          timeout=300, **kwargs)
    return Run(proc.returncode, proc.stdout, proc.stderr)


#: run the real CLI with one service function replaced by one that raises: a stand-in for a bug
INJECT = """
import importlib, sys
target, exc = sys.argv[1], sys.argv[2]
module, _, attr = target.rpartition(".")
def boom(*args, **kwargs):
    raise eval(exc)
setattr(importlib.import_module(module), attr, boom)
sys.argv = ["sbomgen", *sys.argv[3:]]
from sbomgen.cli.main import main
main()
"""


def _inject(target: str, exc: str, *args: str, env: dict[str, str] | None = None, cwd=None) -> Run:
    proc = subprocess.run([sys.executable, "-c", INJECT, target, exc, *args], env=_env(env), cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def _two_dirs(tmp_path: Path, same: bool = False) -> tuple[Path, Path]:
    left, right = tmp_path / "left", tmp_path / "right"
    for root, text in ((left, "one\n"), (right, "one\n" if same else "two\n")):
        root.mkdir()
        for i in range(50):
            (root / f"file{i}.txt").write_text(text * (i + 1))
    return left, right


# ---------------------------------------------------------------------------------------------
# the error boundary


# a bug in each command that uses 1 as a verdict must not read as that verdict
@pytest.mark.parametrize(
    ("command", "target"),
    [
        (["diff", "A", "B"], "sbomgen.verify.dispatch.compare"),
        (["validate", "A"], "sbomgen.gate.validate.validate_file"),
        (["check", "--policy", "A", "B"], "sbomgen.gate.policy.load_policy"),
        (["why", "A", "glibc"], "sbomgen.sbom.load_graph"),
        (["A"], "sbomgen.sbom.load_graph"),
    ],
)
def test_a_bug_exits_70_on_one_escaped_line(tmp_path, command, target):
    args = [str(tmp_path) if a in ("A", "B") else a for a in command]
    run = _inject(target, 'RuntimeError("boom \\x1b[31m\\nsecond line [/x]")', *args, cwd=tmp_path)
    assert run.code == 70, (run.code, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("sbomgen: internal error: RuntimeError: boom \\x1b[31m second line [/x]"), lines[0]
    assert ESC not in run.stderr and "Traceback" not in run.stderr
    assert run.stdout == ""


def test_debug_shows_the_traceback_and_still_exits_70(tmp_path):
    for how in (["--debug"], []):
        env = {} if how else {"SBOMGEN_DEBUG": "1"}
        run = _inject("sbomgen.verify.dispatch.compare", 'KeyError("k\\x1b")', "diff", str(tmp_path), str(tmp_path), *how, env=env)
        assert run.code == 70, run.stderr
        assert "Traceback (most recent call last)" in run.stderr and "in boom" in run.stderr
        assert run.stderr.strip().splitlines()[-1].startswith("sbomgen: internal error: KeyError: 'k\\x1b'")
        assert ESC not in run.stderr
    # before the command name too, and on the provenance CLI
    run = _inject("sbomgen.verify.dispatch.compare", "RuntimeError('x')", "--debug", "diff", str(tmp_path), str(tmp_path))
    assert run.code == 70 and "Traceback" in run.stderr
    assert "--debug" in _run("verify", "--help", prog="provenance").stdout
    for command in ("sbom", "build", "diff", "rebuild", "image", "validate", "check", "graph", "why"):
        assert "--debug" in _run(command, "--help").stdout, command


def test_os_errors_that_mean_cannot_write_exit_9(tmp_path):
    run = _inject("sbomgen.sbom.load_graph", "OSError(28, 'No space left on device')", str(tmp_path))
    assert_one_line_error(run, 9, "cannot write a temporary file: No space left on device")
    run = _inject("sbomgen.sbom.load_graph", "OSError(30, 'Read-only file system', '/out/x\\x1b')", str(tmp_path))
    assert_one_line_error(run, 9, "cannot write /out/x\\x1b: Read-only file system")
    # diff keeps its own convention: anything that is not a verdict is 2
    run = _inject("sbomgen.verify.dispatch.compare", "OSError(122, 'Disk quota exceeded')", "diff", str(tmp_path), str(tmp_path))
    assert_one_line_error(run, 2, "Disk quota exceeded")


@pytest.mark.nix
def test_a_full_disk_is_exit_9(nix_store, tmp_path):
    """/dev/full: every write fails with ENOSPC (and it must stay the device it is)."""
    before = os.stat("/dev/full")
    run = _run(str(nix_store.results["app"]), "--spdx", "/dev/full", "--spdx-format", "json", "--cdx", str(tmp_path / "c.json"), env=nix_store.env)
    assert_one_line_error(run, 9, "cannot write /dev/full", "No space left on device")
    after = os.stat("/dev/full")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


def test_error_lines_escape_control_characters(tmp_path):
    name = str(tmp_path / "no\x1b]0;pwned\x07such\x9b31m\u202efile\nsecond")
    run = _run("diff", name, str(tmp_path))
    line = assert_one_line_error(run, 2)
    assert "no\\x1b]0;pwned\\x07such\\x9b31m\\u202efile second" in line
    run = _run(name)
    assert_one_line_error(run, 3, "\\x1b]0;pwned\\x07")
    assert ESC not in run.stderr and "\x07" not in run.stderr and "\x9b" not in run.stderr


def test_undecodable_file_names_are_printed_escaped(tmp_path):
    """A file name that is not UTF-8 (surrogate-escaped by Python) must not crash the printing."""
    left, right = tmp_path / b"l".decode(), tmp_path / "r"
    left.mkdir()
    right.mkdir()
    raw = os.path.join(os.fsencode(left), b"bad\xff\x1bname")
    with open(raw, "wb") as handle:
        handle.write(b"x")
    with open(os.path.join(os.fsencode(right), b"bad\xff\x1bname"), "wb") as handle:
        handle.write(b"y")
    proc = subprocess.run([sys.executable, "-m", "sbomgen", "diff", str(left), str(right)], env=_env(), capture_output=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert b"bad\\xff\\x1bname" in proc.stdout and b"\x1b" not in proc.stdout and proc.stderr == b""


@pytest.mark.parametrize(
    "args",
    [
        ["diff", "--max-bytes", "lots", "a", "b"],
        ["diff", "--max-bytes", "0", "a", "b"],
        ["check", "--max-members", "0", "x"],
        ["validate", "--max-manifests", "many", "x"],
        ["sbom", "--no-such-option", "x"],
        ["diff", "only-one"],
    ],
)
def test_usage_errors_exit_2(args):
    run = _run(*args)
    assert run.code == 2, (run.code, run.stderr)
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr


def test_limit_flags_reach_the_limits_before_the_service_runs(tmp_path):
    probe = "SbomgenError(repr(__import__('sbomgen.limits', fromlist=['x']).current()))"
    run = _inject("sbomgen.verify.dispatch.compare", f"__import__('sbomgen.errors', fromlist=['x']).{probe}",
                  "diff", "--max-bytes", "64M", "--max-members", "7", "--max-manifests", "3", str(tmp_path), str(tmp_path))
    line = assert_one_line_error(run, 2)
    assert f"max_bytes={64 << 20}" in line and "max_members=7" in line and "max_manifests=3" in line
    for command in ("sbom", "check", "diff", "validate", "graph", "why"):
        help_text = _run(command, "--help").stdout
        assert all(flag in help_text for flag in ("--max-bytes", "--max-members", "--max-manifests")), command


# ---------------------------------------------------------------------------------------------
# a broken pipe is not success


def _closed_pipe_run(*args: str, env: dict[str, str] | None = None) -> tuple[int, bytes]:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte, like `| head -0`
    try:
        proc = subprocess.run([sys.executable, "-m", "sbomgen", *args], stdout=write, stderr=subprocess.PIPE,
                              env=_env(env), timeout=120)
    finally:
        os.close(write)
    return proc.returncode, proc.stderr


@pytest.mark.parametrize("same", [True, False], ids=["identical", "different"])
@pytest.mark.parametrize("json_out", [False, True], ids=["text", "json"])
def test_diff_into_a_closed_pipe_is_not_a_verdict(tmp_path, same, json_out):
    left, right = _two_dirs(tmp_path, same)
    code, stderr = _closed_pipe_run("diff", str(left), str(right), *(["--json", "-"] if json_out else []))
    assert code == 141, (code, stderr)
    assert stderr == b""  # no "Exception ignored ... BrokenPipeError"


def test_head_reads_part_of_a_diff(tmp_path):
    """The real thing: `sbomgen diff a b | head -1`, with output longer than a pipe buffer."""
    left, right = _two_dirs(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "sbomgen", "diff", "--max-differences", "100000", str(left), str(right)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    first = proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 141, stderr
    assert first.startswith(b"DIFFERENT") and stderr == b""


def test_help_into_a_closed_pipe():
    code, stderr = _closed_pipe_run("--help")
    assert code == 141 and stderr == b""


# ---------------------------------------------------------------------------------------------
# signals: temp files removed, 143 / 130


def _big_store_path(store, tmp_path: Path, megabytes: int = 96) -> str:
    """A store path of incompressible files, big enough that packing it takes seconds."""
    source = tmp_path / "big"
    source.mkdir()
    for i in range(megabytes // 8):
        (source / f"blob{i:02}").write_bytes(os.urandom(8 << 20))
    path = store.run("nix-store", "--add", str(source)).strip()
    assert path.startswith(str(store.store_dir))
    return path


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


@pytest.mark.nix
@pytest.mark.parametrize(("signum", "code", "word"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")])
def test_a_signal_mid_image_removes_every_temp_file(scratch_store, tmp_path, signum, code, word):
    path = _big_store_path(scratch_store, tmp_path)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    canary = make_canary(out_dir)
    before = snapshot(out_dir)
    proc = subprocess.Popen([sys.executable, "-m", "sbomgen", "image", path, "-o", str(out_dir / "img.oci")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env({**scratch_store.env, "TMPDIR": str(tmpdir)}))
    # mid-work: a layer is being compressed into the scratch directory
    _wait_for(lambda: any(name.startswith(".layer-") for _d, _s, files in os.walk(tmpdir) for name in files))
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, (proc.returncode, stderr)
    assert stderr.strip().splitlines() == [f"sbomgen: error: {'terminated' if word == 'SIGTERM' else 'interrupted'} ({word})"]
    assert list(tmpdir.iterdir()) == []
    assert snapshot(out_dir) == before and canary.is_dir()


@pytest.mark.nix
def test_sigterm_while_reading_a_compressed_image_removes_every_temp_file(scratch_store, tmp_path):
    """Reading an image from elsewhere: whatever the reader unpacks or spools into $TMPDIR is
    gone after SIGTERM (the boundary removes what a service's own cleanup did not reach)."""
    path = _big_store_path(scratch_store, tmp_path)
    archive = tmp_path / "img.tar"
    run = _run("image", path, "-o", str(archive), "--format", "oci-archive", env=scratch_store.env)
    assert run.code == 0, run.stderr
    subprocess.run(["gzip", "-1", str(archive)], check=True)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "sbomgen", f"oci-archive:{archive}.gz", "--cdx", "-", "--spdx", "/dev/null",
                             "--spdx-format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env({**scratch_store.env, "TMPDIR": str(tmpdir)}))
    deadline = time.monotonic() + 2.0  # the reader may stream and spool nothing: then mid-read by time
    while not any(files or dirs for _root, dirs, files in os.walk(tmpdir)) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, (proc.returncode, stderr)
    assert list(tmpdir.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# outputs never destroy


def _image(store, output: Path | str, *args: str, cwd=None) -> Run:
    return _run("image", str(store.results["app"]), "-o", str(output), *args, env=store.env, cwd=cwd)


@pytest.mark.nix
def test_image_onto_a_non_empty_directory_is_refused(nix_store, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    canary = make_canary(work)
    before = snapshot(tmp_path)
    for output, cwd in ((canary, None), (".", canary), ("..", canary), (work, None), (tmp_path, None), ("canary", work)):
        for force in ([], ["--force"]):
            run = _image(nix_store, output, *force, cwd=cwd)
            assert_one_line_error(run, 9, "exists and is not empty", "not an image sbomgen wrote", "nothing was changed")
            assert snapshot(tmp_path) == before, (output, force)
    run = _image(nix_store, canary / "secret.txt")
    assert_one_line_error(run, 9, "exists and is not a directory")
    assert snapshot(tmp_path) == before


@pytest.mark.nix
def test_image_over_its_own_previous_layout_needs_force(nix_store, tmp_path):
    out = tmp_path / "img.oci"
    assert _image(nix_store, out).code == 0
    index = json.loads((out / "index.json").read_text())
    assert index["annotations"]["dev.sbomgen.image.layout"] == "sbomgen"
    before = snapshot(out)
    run = _image(nix_store, out, "--tag", "v2")
    assert_one_line_error(run, 9, "holds an image sbomgen wrote before", "--force")
    assert snapshot(out) == before
    inode = out.stat().st_ino
    # a blob of the old layout the new one shares, tampered with: not kept as it is
    layer = json.loads((out / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_text())["layers"][0]["digest"][7:]
    (out / "blobs" / "sha256" / layer).write_bytes(b"tampered")
    run = _image(nix_store, out, "--tag", "v2", "--force")
    assert run.code == 0, run.stderr
    assert hashlib.sha256((out / "blobs" / "sha256" / layer).read_bytes()).hexdigest() == layer
    assert out.stat().st_ino == inode  # updated in place, not deleted and recreated
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v2"
    # exactly the blobs the new image needs: the old manifest and config are gone, layers shared
    assert _referenced(out) == {p.name for p in (out / "blobs" / "sha256").iterdir()}
    run = _run(f"oci:{out}", "--spdx", str(tmp_path / "s.json"), "--cdx", str(tmp_path / "c.json"), env=nix_store.env)
    assert run.code == 0, run.stderr
    # a layout with the marker but anything else in it is not sbomgen's to replace
    (out / "notes.txt").write_text("mine")
    before = snapshot(out)
    run = _image(nix_store, out, "--force")
    assert_one_line_error(run, 9, "not an image sbomgen wrote")
    assert snapshot(out) == before


def _referenced(layout: Path) -> set[str]:
    seen: set[str] = set()
    queue = [d["digest"] for d in json.loads((layout / "index.json").read_text())["manifests"]]
    while queue:
        digest = queue.pop()
        seen.add(digest[7:])
        data = json.loads((layout / "blobs" / "sha256" / digest[7:]).read_bytes())
        queue += [d["digest"] for d in data.get("manifests", [])]
        seen |= {d["digest"][7:] for d in [data.get("config"), *data.get("layers", [])] if d}
    return seen


@pytest.mark.nix
def test_image_into_an_empty_directory_and_through_a_symlink(nix_store, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    run = _image(nix_store, ".", cwd=empty)
    assert run.code == 0, run.stderr
    assert sorted(p.name for p in empty.iterdir()) == ["blobs", "index.json", "oci-layout"]
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link.oci"
    link.symlink_to(real)
    assert _image(nix_store, link).code == 0
    assert link.is_symlink() and (real / "index.json").is_file()


def _fifo_reader(path: Path) -> tuple[threading.Thread, list[bytes]]:
    got: list[bytes] = []

    def read() -> None:
        with open(path, "rb") as handle:
            got.append(handle.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, got


@pytest.mark.nix
def test_fifos_devices_and_stdout_are_written_to_not_replaced(nix_store, tmp_path):
    app = str(nix_store.results["app"])
    env = {**nix_store.env, "SOURCE_DATE_EPOCH": "1700000000"}
    assert _run(app, "--spdx", str(tmp_path / "ref.json"), "--cdx", str(tmp_path / "ref.cdx.json"), env=env).code == 0
    reference = (tmp_path / "ref.json").read_bytes()
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    thread, got = _fifo_reader(fifo)
    run = _run(app, "--spdx", str(fifo), "--spdx-format", "json", "--cdx", "/dev/null", "--cdx-format", "json", env=env)
    thread.join(timeout=60)
    assert run.code == 0, run.stderr
    assert got == [reference]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    # a device node of our own (as root): what the old rename replaced with a regular file
    if os.geteuid() == 0:
        null = tmp_path / "null"
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        run = _run(app, "--spdx", str(null), "--spdx-format", "json", "--cdx", str(tmp_path / "c.json"), env=env)
        assert run.code == 0, run.stderr
        assert stat.S_ISCHR(null.lstat().st_mode)
    # /dev/stdout is our stdout (a pipe here): the document arrives there
    run = _run(app, "--spdx", "/dev/stdout", "--spdx-format", "json", "--cdx", str(tmp_path / "c2.json"), env=env)
    assert run.code == 0, run.stderr
    assert run.stdout.encode() == reference  # and the summary stays off it, as for -
    # an image archive streams into a FIFO too
    fifo2 = tmp_path / "img.fifo"
    os.mkfifo(fifo2)
    thread, got = _fifo_reader(fifo2)
    run = _image(nix_store, fifo2, "--format", "oci-archive")
    thread.join(timeout=60)
    assert run.code == 0, run.stderr
    assert stat.S_ISFIFO(fifo2.lstat().st_mode) and got and got[0][257:262] == b"ustar"


@pytest.mark.nix
def test_symlinked_and_existing_outputs(nix_store, tmp_path):
    app = str(nix_store.results["app"])
    target = tmp_path / "elsewhere" / "real.json"
    target.parent.mkdir()
    target.write_text("old")
    os.chmod(target, 0o640)
    link = tmp_path / "sbom.json"
    link.symlink_to(target)
    run = _run(app, "--spdx", str(link), "--cdx", str(tmp_path / "c.json"), env=nix_store.env)
    assert run.code == 0, run.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text())["spdxVersion"] == "SPDX-2.3"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the replaced file keeps its mode
    assert sorted(p.name for p in target.parent.iterdir()) == ["real.json"]  # no temp file left
    # a directory named as an output file is an error, and untouched
    canary = make_canary(tmp_path / "d")
    before = snapshot(canary)
    run = _run(app, "--spdx", str(canary), "--spdx-format", "json", env=nix_store.env)
    assert_one_line_error(run, 9, "is a directory")
    assert snapshot(canary) == before


# ---------------------------------------------------------------------------------------------
# every string from an input escaped for its sink


def _hostile_cdx(path: Path) -> Path:
    doc = {
        "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
        "metadata": {"component": {"type": "application", "name": "root[/b]", "version": "1", "bom-ref": "root"}},
        "components": [{"type": "library", "name": name, "version": "1.0", "bom-ref": f"c{i}"} for i, name in enumerate(HOSTILE)],
    }
    path.write_text(json.dumps(doc))
    return path


def _assert_terminal_safe(text: str) -> None:
    for char in (ESC, "\x07", "\x08", "\x0b", "\x0c", "\x01", "\u202e", "\r"):
        assert char not in text, (char, text)
    assert "😄" not in text


def test_check_prints_hostile_names_literally_and_reports_parse(tmp_path):
    sbom = _hostile_cdx(tmp_path / "h.cdx.json")
    policy = tmp_path / "p.toml"
    policy.write_text("".join(f"[[deny]]\nname = {json.dumps(name)}\nversions = \">=0.1\"\n\n" for name in HOSTILE))
    junit, sarif = tmp_path / "j.xml", tmp_path / "s.sarif"
    run = _run("check", "--policy", str(policy), str(sbom), "--junit", str(junit), "--sarif", str(sarif))
    assert run.code == 1, run.stderr  # the verdict: violated, not a crash after the reports
    assert run.stderr == ""
    _assert_terminal_safe(run.stdout)
    for shown in ("[link=http://evil.example]click[/link]", "[/x]", "[bold red]loud", ":smile:", "red\\x1b[31mX\\x1b]0;pwned\\x07",
                  "rtl\\u202eexe.txt", "trail\\", "ctl\\x01\\x08\\x0b\\x0c"):
        assert shown in run.stdout, shown
    cases = {c.get("name"): c for c in ElementTree.parse(junit).getroot().iter("testcase")}
    assert len(cases) == len(HOSTILE)
    assert "deny.package (red\\x1b[31mX\\x1b]0;pwned\\x07 >=0.1)" in cases
    assert "deny.package (ctl\\x01\\x08\\x0b\\x0c >=0.1)" in cases
    import junitparser

    assert sum(1 for suite in junitparser.JUnitXml.fromfile(str(junit)) for _case in suite) == len(HOSTILE)
    # SARIF is JSON: the names arrive byte for byte (JSON escapes them), for the consumer to escape
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    assert {r["locations"][0]["logicalLocations"][0]["name"] for r in results} == {f"{name}@1.0" for name in HOSTILE}


def test_validate_and_diff_print_hostile_paths_literally(tmp_path):
    # "[/x]" through a directory named "[": file names cannot hold a slash
    name = "x][link=http:e]a:smile:\x1b[2J\u202e"
    (tmp_path / "[").mkdir()
    bad = tmp_path / "[" / f"{name}.cdx.json"
    bad.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "version": "one"}))
    run = _run("validate", str(bad))
    assert run.code == 1, run.stderr
    _assert_terminal_safe(run.stdout + run.stderr)
    assert "[/x][link=http:e]a:smile:\\x1b[2J\\u202e.cdx.json" in run.stdout
    left, right = tmp_path / "l", tmp_path / "r"
    for root, text in ((left, "a"), (right, "b")):
        (root / "[").mkdir(parents=True)
        (root / "[" / name).write_text(text + "\x1b[31m\n")
    run = _run("diff", str(left), str(right))
    assert run.code == 1, run.stderr
    _assert_terminal_safe(run.stdout + run.stderr)
    assert "[/x][link=http:e]a:smile:\\x1b[2J\\u202e" in run.stdout


@pytest.fixture(scope="module")
def hostile_image(nix_store, tmp_path_factory) -> Path:
    """An image whose name and tag (what the image's SBOM names its root after) are hostile."""
    out = tmp_path_factory.mktemp("hostile-image") / "img.oci"
    run = _run("image", str(nix_store.results["app"]), "-o", str(out), "--name", "[link=http://e]n[/link]:smile:\x1b[31m",
               "--tag", "v[/x]\u202e\\", "--contents", str(nix_store.results["cacert"]), env=nix_store.env)
    assert run.code == 0, run.stderr
    _assert_terminal_safe(run.stdout)
    return out


@pytest.mark.nix
def test_image_sbom_summary_and_table_with_a_hostile_tag(nix_store, hostile_image, tmp_path):
    run = _run(f"oci:{hostile_image}", "--spdx", str(tmp_path / "s.json"), "--cdx", str(tmp_path / "c.json"), env=nix_store.env)
    assert run.code == 0, run.stderr
    _assert_terminal_safe(run.stdout)
    assert "[link=http://e]n[/link]:smile:\\x1b[31m" in run.stdout
    run = _run(f"oci:{hostile_image}", "--format", "table", env=nix_store.env)
    assert run.code == 0, run.stderr
    _assert_terminal_safe(run.stdout)
    assert "[link=http://e]n[/link]:smile:\\x1b[31m" in run.stdout


@pytest.mark.nix
def test_graph_of_a_hostile_image_is_valid_dot(nix_store, hostile_image, tmp_path):
    out = tmp_path / "g.dot"
    run = _run("graph", f"oci:{hostile_image}", "-o", str(out), env=nix_store.env)
    assert run.code == 0, run.stderr
    source = out.read_text()
    assert ESC not in source
    svg = subprocess.run(["dot", "-Tsvg"], input=source.encode(), capture_output=True, timeout=60)
    assert svg.returncode == 0 and svg.stderr == b"", svg.stderr
    root = ElementTree.fromstring(svg.stdout)
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert any("[link=http://e]n[/link]:smile:\\x1b[31m" in t for t in texts), texts
    assert any(t.endswith("v[/x]\u202e\\") for t in texts), texts  # the trailing backslash, literally
    run = _run("graph", f"oci:{hostile_image}", "-o", str(tmp_path / "g.svg"), env=nix_store.env)
    assert run.code == 0, run.stderr


@pytest.mark.nix
def test_why_on_a_hostile_image(nix_store, hostile_image):
    run = _run("why", f"oci:{hostile_image}", "cacert", env=nix_store.env)
    assert run.code == 0, run.stderr
    _assert_terminal_safe(run.stdout)
    assert "[link=http://e]n[/link]:smile:\\x1b[31m" in run.stdout
    run = _run("why", f"oci:{hostile_image}", "no-such\x1b[31m", env=nix_store.env)
    assert run.code == 1 and "no-such\\x1b[31m is not in" in run.stdout
    _assert_terminal_safe(run.stdout)


def test_provenance_verify_prints_hostile_entries_escaped(tmp_path):
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "evil\x1b[31m[/x]:smile:", "digest": {"sha256": "0" * 64}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://sbomgen.dev/nix/v1", "externalParameters": {},
                "resolvedDependencies": [{"uri": "/nix/store/\x1b]0;x\x07aaaa-dep", "name": "dep\x1b[2J", "digest": {"sha256": "0" * 64}}],
            },
            "runDetails": {"builder": {"id": "https://example.com/builder"}},
        },
    }
    path = tmp_path / "evil\x1b[31m.intoto.json"
    path.write_text(json.dumps(statement))
    run = _run("verify", str(path), prog="provenance")
    assert run.code not in (0, 1, 70), (run.code, run.stderr)  # a documented verdict or malformed, never a crash
    _assert_terminal_safe(run.stdout + run.stderr)
    assert "\\x1b]0;x\\x07" in run.stdout + run.stderr


# ---------------------------------------------------------------------------------------------
# the escaping functions, for any string (property-based)

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

#: any code point, lone surrogates (undecodable file names) included, biased towards the
#: characters that matter here
_NASTY = st.text(st.one_of(st.characters(codec=None, exclude_categories=()), st.sampled_from(list('[]/\\:<>&"\'\x1b\x07\r\n\x00\x9b\u202e\udcff'))),
                 max_size=60)


@settings(max_examples=200, deadline=None)
@given(_NASTY)
def test_printable_leaves_no_control_character(text):
    from sbomgen.cli.common import printable

    shown = printable(text)
    assert not any((ord(c) < 0x20 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF
                   or c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029" for c in shown), repr(shown)
    assert "\n" not in printable(text, newlines=False)
    shown.encode("utf-8")  # printable on any UTF-8 terminal


@settings(max_examples=200, deadline=None)
@given(_NASTY.filter(lambda t: "\t" not in t))
def test_rich_prints_markup_safe_text_literally(text):
    import io

    from rich.console import Console

    from sbomgen.cli.common import markup_safe, printable

    for template in ("{}", "[bold]{}", "[red]x[/red] {} y"):
        buffer = io.StringIO()
        Console(file=buffer, highlight=False, soft_wrap=True, emoji=False, width=100_000, color_system=None).print(
            template.format(markup_safe(text)), end="")
        assert buffer.getvalue() == template.replace("[bold]", "").replace("[red]", "").replace("[/red]", "").format(printable(text))


@settings(max_examples=200, deadline=None)
@given(_NASTY)
def test_junit_text_always_parses(text):
    from sbomgen.gate.reports import xml_text

    element = ElementTree.Element("testcase", name=xml_text(text))
    element.text = xml_text(text)
    parsed = ElementTree.fromstring(ElementTree.tostring(element, encoding="unicode").encode("utf-8"))
    assert parsed.get("name") == xml_text(text)
    assert (parsed.text or "") == xml_text(text).replace("\r\n", "\n").replace("\r", "\n")


@settings(max_examples=40, deadline=None)
@given(st.lists(_NASTY, min_size=1, max_size=3))
def test_dot_labels_always_parse(lines):
    import graphviz

    from sbomgen.formats.dot import _label

    graph = graphviz.Digraph()
    graph.node("n0", _label(*lines), tooltip=_label(lines[0]))
    graph.attr(label=_label(lines[-1]))
    proc = subprocess.run(["dot", "-Tsvg"], input=graph.source.encode("utf-8"), capture_output=True, timeout=60)
    assert proc.returncode == 0 and b"syntax error" not in proc.stderr, (graph.source, proc.stderr)
