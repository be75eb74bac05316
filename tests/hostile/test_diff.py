"""Hostile input for ``sbomgen diff`` and ``rebuild``'s comparators (issue 12).

Every input is generated here. Each CLI test asserts the exit code (0 identical, 1 different,
2 bad input), the report or the one-line error, and where an input could reach outside, that
a canary directory beside it is unchanged.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sbomgen import limits
from sbomgen.errors import LimitExceededError, SbomgenError
from tests.helpers import REPO, run_sbomgen
from tests.hostile.common import assert_one_line_error, make_canary, snapshot

# --- generators ---------------------------------------------------------------------------


def _info(name: str, data: bytes = b"", **fields) -> tuple[tarfile.TarInfo, io.BytesIO | None]:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 1, 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        info.size = 0
    return info, (io.BytesIO(data) if info.isreg() else None)


def tar_bytes(entries, fmt=tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for entry in entries:
            tar.addfile(*entry)
    return out.getvalue()


def base_entries():
    return [_info("etc/", type=tarfile.DIRTYPE, mode=0o755), _info("etc/motd", b"hello\n"), _info("bin/tool", b"\x7fELF" + bytes(300))]


def docker_archive(created: str = "2024-01-01T00:00:00Z", extra: list | None = None) -> bytes:
    """A docker-archive as dockerTools writes it: manifest.json, config, <id>/layer.tar."""
    layer = tar_bytes(base_entries())
    layer_id = hashlib.sha256(layer).hexdigest()
    config = json.dumps({"created": created, "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_id}"]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["weather:latest"], "Layers": [f"{layer_id}/layer.tar"]}]).encode()
    entries = [_info(config_name, config), _info(f"{layer_id}/layer.tar", layer), _info("manifest.json", manifest)]
    return tar_bytes(entries + (extra or []), fmt=tarfile.USTAR_FORMAT)


def oci_layout(root: Path, annotations: dict | None = None) -> Path:
    """A minimal OCI image layout with one gzip layer."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}"

    layer = gzip.compress(tar_bytes(base_entries()), mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(layer), "size": len(layer)}],
    }).encode()
    descriptor = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(manifest), "size": len(manifest)}
    if annotations:
        descriptor["annotations"] = annotations
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [descriptor]}))
    return root


def diff_json(a, b, *extra: str):
    run = run_sbomgen("diff", str(a), str(b), "--json", "-", *extra)
    assert run.code in (0, 1), (run.code, run.stderr)
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    report = json.loads(run.stdout)
    return run.code, report, [(d["path"], d["kind"]) for d in report["differences"]]


# --- wrong verdicts -----------------------------------------------------------------------


def test_docker_archive_against_its_gzip_is_different(tmp_path):
    """The issue's example: w.tar against w.tar.gz was IDENTICAL (both read as the same image)."""
    plain = tmp_path / "w.tar"
    plain.write_bytes(docker_archive())
    packed = tmp_path / "w.tar.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes(), mtime=0))
    code, report, kinds = diff_json(plain, packed)
    assert code == 1 and not report["identical"]
    assert kinds == [(".", "compression")], kinds
    assert (report["differences"][0]["before"], report["differences"][0]["after"]) == ("tar", "gzip")


@pytest.mark.parametrize("extra", [
    [_info("extra.txt", b"not referenced by manifest.json\n")],
    [_info("repositories", b'{"weather": {"latest": "x"}}')],
])
def test_docker_archive_with_an_extra_member_is_different(tmp_path, extra):
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    a.write_bytes(docker_archive())
    b.write_bytes(docker_archive(extra=extra))
    code, _, kinds = diff_json(a, b)
    assert code == 1 and kinds == [(extra[0][0].name, "extra")], kinds
    code, _, kinds = diff_json(b, a)
    assert code == 1 and kinds == [(extra[0][0].name, "missing")], kinds


def test_docker_archive_member_metadata_is_compared(tmp_path):
    """Same image, but the archive's member mtimes differ: not identical."""
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    a.write_bytes(docker_archive())
    with tarfile.open(fileobj=io.BytesIO(a.read_bytes())) as src:
        entries = [(m, io.BytesIO(src.extractfile(m).read())) for m in src.getmembers()]
    entries[-1][0].mtime = 99
    b.write_bytes(tar_bytes(entries, fmt=tarfile.USTAR_FORMAT))
    code, _, kinds = diff_json(a, b)
    assert code == 1 and kinds == [("manifest.json", "mtime")], kinds


def test_oci_layouts_differing_only_in_a_tag_or_an_extra_file(tmp_path):
    a = oci_layout(tmp_path / "a", {"org.opencontainers.image.ref.name": "v1"})
    b = oci_layout(tmp_path / "b", {"org.opencontainers.image.ref.name": "v2"})
    code, _, kinds = diff_json(a, b)
    assert code == 1 and ("index.json:/manifests/0/annotations/org.opencontainers.image.ref.name", "json") in kinds, kinds
    c = oci_layout(tmp_path / "c", {"org.opencontainers.image.ref.name": "v1"})
    (c / "planted").write_text("not part of the image\n")
    code, _, kinds = diff_json(a, c)
    assert code == 1 and kinds == [("planted", "extra")], kinds
    d = oci_layout(tmp_path / "d", {"org.opencontainers.image.ref.name": "v1"})
    (d / "index.json").write_text(json.dumps(json.loads((d / "index.json").read_text()), indent=4))
    code, _, kinds = diff_json(a, d)
    assert code == 1 and kinds == [("index.json", "content")], kinds
    assert diff_json(a, oci_layout(tmp_path / "e", {"org.opencontainers.image.ref.name": "v1"}))[0] == 0


def _gzip_with(tar: bytes, **header) -> bytes:
    """A gzip member with chosen header fields (FNAME, FCOMMENT, FEXTRA)."""
    flags, tail = 0, b""
    if "extra" in header:
        flags |= 0x04
        tail += len(header["extra"]).to_bytes(2, "little") + header["extra"]
    if "name" in header:
        flags |= 0x08
        tail += header["name"] + b"\0"
    if "comment" in header:
        flags |= 0x10
        tail += header["comment"] + b"\0"
    deflate = gzip.compress(tar, mtime=0)[10:]  # the deflate stream and trailer of a plain member
    return b"\x1f\x8b\x08" + bytes([flags]) + b"\0\0\0\0\x00\x03" + tail + deflate


TAR = tar_bytes(base_entries())


def _variant(name: str) -> tuple[bytes, bytes, str]:
    """(left, right, suffix): two archives that differ in one way diff once normalised away."""
    entries = base_entries
    if name == "gzip-comment":
        return _gzip_with(TAR, comment=b"one"), _gzip_with(TAR, comment=b"two"), ".tar.gz"
    if name == "gzip-extra-field":
        return _gzip_with(TAR, extra=b"ab"), _gzip_with(TAR, extra=b"cd"), ".tar.gz"
    if name == "gzip-level":
        return gzip.compress(TAR, 9, mtime=0), gzip.compress(TAR, 1, mtime=0)[:8] + b"\x02" + gzip.compress(TAR, 1, mtime=0)[9:], ".tar.gz"
    if name == "bytes-after-tar-end":
        return TAR, TAR + b"hidden payload", ".tar"
    if name == "zeros-after-gzip":
        return gzip.compress(TAR, mtime=0), gzip.compress(TAR, mtime=0) + bytes(64), ".tar.gz"
    if name == "second-gzip-member":
        half = len(TAR) // 2
        return gzip.compress(TAR, mtime=0), gzip.compress(TAR[:half], mtime=0) + gzip.compress(TAR[half:], mtime=0), ".tar.gz"
    if name == "mode":
        right = entries()
        right[1][0].mode = 0o600
        return TAR, tar_bytes(right), ".tar"
    if name == "owner":
        right = entries()
        right[1][0].uid, right[1][0].uname = 1000, "eve"
        return TAR, tar_bytes(right), ".tar"
    if name == "mtime":
        right = entries()
        right[1][0].mtime = 2
        return TAR, tar_bytes(right), ".tar"
    if name == "hardlink-vs-copy":
        left = entries() + [_info("etc/motd2", b"hello\n")]
        right = entries() + [_info("etc/motd2", type=tarfile.LNKTYPE, linkname="etc/motd")]
        return tar_bytes(left), tar_bytes(right), ".tar"
    if name == "symlink-vs-file":
        left = entries() + [_info("etc/link", b"etc/motd")]
        right = entries() + [_info("etc/link", type=tarfile.SYMTYPE, linkname="etc/motd")]
        return tar_bytes(left), tar_bytes(right), ".tar"
    if name == "xattr":
        right = entries()
        right[1][0].pax_headers = {"SCHILY.xattr.security.capability": "cap_net_admin+ep"}
        return TAR, tar_bytes(right), ".tar"
    if name == "order":
        right = entries()
        right[1], right[2] = right[2], right[1]
        return TAR, tar_bytes(right), ".tar"
    if name == "duplicate-member":
        return TAR, tar_bytes(entries() + [_info("etc/motd", b"replaced\n")]), ".tar"
    if name == "format":
        return TAR, tar_bytes(entries(), fmt=tarfile.GNU_FORMAT), ".tar"
    raise AssertionError(name)


VARIANTS = ["gzip-comment", "gzip-extra-field", "gzip-level", "bytes-after-tar-end", "zeros-after-gzip", "second-gzip-member",
            "mode", "owner", "mtime", "hardlink-vs-copy", "symlink-vs-file", "xattr", "order", "duplicate-member", "format"]


@pytest.mark.parametrize("name", VARIANTS)
def test_nothing_normalised_makes_different_archives_identical(tmp_path, name):
    left, right, suffix = _variant(name)
    assert left != right
    a, b = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    a.write_bytes(left)
    b.write_bytes(right)
    code, report, kinds = diff_json(a, b)
    assert code == 1 and report["differences_total"] >= 1, (name, kinds)
    same = tmp_path / f"same{suffix}"
    same.write_bytes(left)
    assert diff_json(a, same)[0] == 0


# --- bounded memory, disk and time --------------------------------------------------------


def _peak_rss_kib(*args: str) -> tuple[int, int]:
    """Run ``sbomgen ARGS`` in a child of a fresh interpreter: (exit code, the CLI's peak RSS in KiB)."""
    probe = textwrap.dedent("""
        import resource, subprocess, sys
        code = subprocess.run([sys.executable, "-m", "sbomgen", *sys.argv[1:]], stdout=subprocess.DEVNULL).returncode
        print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    """)
    out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600).stdout.split()
    return int(out[0]), int(out[1])


def _many_members(path: Path, count: int, last: bytes) -> None:
    with gzip.GzipFile(path, "wb", compresslevel=9, mtime=0) as raw, tarfile.open(fileobj=raw, mode="w") as tar:
        data = b"a" * ((1 << 20) - 1) + last
        for index in range(count):
            info = tarfile.TarInfo(f"m{index:04d}.txt")
            info.size, info.mtime = len(data), 1
            tar.addfile(info, io.BytesIO(data))


def test_diff_of_small_tar_gz_with_many_differing_members_stays_small(tmp_path):
    """The issue's case: 415 KB .tar.gz of 1 MiB members that all differ reached 860 MB RSS
    (every differing member was read whole, all at once); now a few tens of MB."""
    a, b = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    _many_members(a, 160, b"a")
    _many_members(b, 160, b"b")
    assert a.stat().st_size < 200_000
    code, peak = _peak_rss_kib("diff", str(a), str(b))
    assert code == 1
    assert peak < 150 * 1024, f"peak RSS {peak} KiB"


def test_decompression_and_entry_limits_are_bad_input(tmp_path):
    """A gzip bomb or an archive of too many entries stops at the limit, naming the flag."""
    a, b = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    _many_members(a, 8, b"a")
    _many_members(b, 8, b"b")
    from sbomgen.verify.dispatch import compare

    saved = limits.current()
    try:
        limits.configure(max_bytes=3 << 20)
        with pytest.raises(LimitExceededError, match="--max-bytes"):
            compare(str(a), str(b))
        limits.configure(max_bytes=saved.max_bytes, max_members=5)
        with pytest.raises(LimitExceededError, match="--max-members"):
            compare(str(a), str(b))
        tree_a, tree_b = tmp_path / "ta", tmp_path / "tb"
        for tree in (tree_a, tree_b):
            tree.mkdir()
            for index in range(8):
                (tree / f"f{index}").write_text(str(index))
        with pytest.raises(LimitExceededError, match="--max-members"):
            compare(str(tree_a), str(tree_b))
    finally:
        limits.configure(max_bytes=saved.max_bytes, max_members=saved.max_members)


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd not installed")
def test_zstd_process_is_reaped_on_a_limit(tmp_path):
    big = tmp_path / "big.tar"
    big.write_bytes(tar_bytes([_info(f"f{i}", bytes(1 << 20)) for i in range(8)]))
    zst = tmp_path / "big.tar.zst"
    subprocess.run(["zstd", "-q", "-o", str(zst), str(big)], check=True)
    other = tmp_path / "other.tar.zst"
    subprocess.run(["zstd", "-q", "-19", "-o", str(other), str(big)], check=True)
    from sbomgen.verify.dispatch import compare

    saved = limits.current()
    before = set(os.listdir("/proc"))
    try:
        limits.configure(max_bytes=2 << 20)
        with pytest.raises(LimitExceededError):
            compare(str(zst), str(other))
    finally:
        limits.configure(max_bytes=saved.max_bytes)
    zombies = [p for p in set(os.listdir("/proc")) - before if p.isdigit() and _is_child_zstd(p)]
    assert zombies == []


def _is_child_zstd(pid: str) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return "(zstd)" in stat_line and stat_line.split(")")[1].split()[1] == str(os.getpid())


# --- directories: no link followed, no FIFO opened ----------------------------------------


def test_directories_compare_links_and_fifos_without_following_or_opening(tmp_path):
    canary = make_canary(tmp_path)
    before = snapshot(canary)
    fifo = tmp_path / "outside.fifo"
    os.mkfifo(fifo)
    a, b = tmp_path / "a", tmp_path / "b"
    for tree in (a, b):
        tree.mkdir()
        (tree / "secret").symlink_to(canary / "secret.txt")
        (tree / "pipe-link").symlink_to(fifo)
        (tree / "dir-link").symlink_to(canary)
        os.mkfifo(tree / "pipe")
    code, _, kinds = diff_json(a, b)  # would block forever on a FIFO that is opened
    assert code == 0 and kinds == [], kinds
    (b / "secret").unlink()
    (b / "secret").symlink_to(canary / "sub" / "data.bin")
    os.unlink(b / "pipe")
    (b / "pipe").write_text("now a file\n")
    code, _, kinds = diff_json(a, b)
    assert code == 1 and kinds == [("pipe", "type"), ("secret", "symlink-target")], kinds
    assert snapshot(canary) == before


def test_a_file_that_became_a_symlink_during_the_walk_is_not_followed(tmp_path):
    """Inside a tree, files are opened with O_NOFOLLOW: a swap for a link is an error."""
    from sbomgen.errors import ArchiveError
    from sbomgen.verify.dispatch import compare_nested
    from sbomgen.verify.files import compare_file_contents
    from sbomgen.verify.model import Comparison

    canary = make_canary(tmp_path)
    link, plain = tmp_path / "swapped", tmp_path / "plain"
    link.symlink_to(canary / "secret.txt")
    plain.write_text("something else\n")
    with pytest.raises(ArchiveError, match="symlink"):
        compare_file_contents("swapped", str(link), str(plain), follow=False)
    with pytest.raises(ArchiveError, match="symlink"):
        compare_nested(str(link), str(plain), "swapped", Comparison("a", "b", "directory"))


def test_directories_compare_full_permission_bits(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for tree in (a, b):
        tree.mkdir()
        (tree / "key").write_text("k\n")
    os.chmod(a / "key", 0o600)
    os.chmod(b / "key", 0o644)
    code, _, kinds = diff_json(a, b)
    assert code == 1 and kinds == [("key", "mode")]


def test_a_fifo_argument_is_refused_not_read(tmp_path):
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    plain = tmp_path / "x"
    plain.write_text("x")
    run = run_sbomgen("diff", str(fifo), str(plain))
    assert_one_line_error(run, 2, "not a regular file or directory")


# --- malformed input: one line, exit 2, never an internal error ---------------------------


def _malformed(name: str, tmp_path: Path) -> tuple[Path, Path]:
    good = tmp_path / "good.tar.gz"
    good.write_bytes(gzip.compress(TAR, mtime=0))
    bad = tmp_path / f"bad-{name}"
    packed = good.read_bytes()
    if name == "truncated-gzip":
        bad.write_bytes(packed[: len(packed) // 2])
    elif name == "bad-crc":
        bad.write_bytes(packed[:-8] + bytes(4) + packed[-4:])
    elif name == "gzip-trailing-garbage":
        bad.write_bytes(packed + b"garbage")
    elif name == "truncated-gzip-extra":
        bad.write_bytes(b"\x1f\x8b\x08\x04\0\0\0\0\0\x03\xff")
    elif name == "bad-tar-checksum":
        raw = bytearray(TAR)
        raw[148:156] = b"0000000\0"
        bad.write_bytes(gzip.compress(bytes(raw), mtime=0))
    elif name == "bad-tar-number":
        raw = bytearray(TAR[:512 * 3])
        raw[512 + 124:512 + 136] = b"zzzzzzzzzzz\0"  # size field of the 2nd header
        bad.write_bytes(bytes(raw))
        good = tmp_path / "good.tar"
        good.write_bytes(TAR)
    elif name in ("image-manifest-not-a-list", "image-layers-wrong-type", "image-index-wrong-type"):
        return _malformed_image(name, tmp_path)
    else:
        raise AssertionError(name)
    return bad, good


def _malformed_image(name: str, tmp_path: Path) -> tuple[Path, Path]:
    good = tmp_path / "good-image.tar"
    good.write_bytes(docker_archive())
    bad = tmp_path / "bad-image.tar"
    if name == "image-index-wrong-type":
        layout = oci_layout(tmp_path / "layout")
        (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{"digest": 5}, "x"]}))
        return layout, oci_layout(tmp_path / "layout-good")
    manifest = [{"Config": 5, "Layers": {}}] if name == "image-layers-wrong-type" else {"Config": "x"}
    bad.write_bytes(tar_bytes([_info("manifest.json", json.dumps(manifest).encode())], fmt=tarfile.USTAR_FORMAT))
    return bad, good


MALFORMED = ["truncated-gzip", "bad-crc", "gzip-trailing-garbage", "truncated-gzip-extra", "bad-tar-checksum", "bad-tar-number",
             "image-manifest-not-a-list", "image-layers-wrong-type", "image-index-wrong-type"]


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_input_is_bad_input_not_a_verdict(tmp_path, name):
    canary = make_canary(tmp_path)
    before = snapshot(canary)
    bad, good = _malformed(name, tmp_path)
    for args in ((bad, good), (good, bad)):
        run = run_sbomgen("diff", str(args[0]), str(args[1]))
        assert_one_line_error(run, 2)
    assert snapshot(canary) == before


def test_member_names_are_labels_not_paths(tmp_path):
    """``..`` and absolute names are compared as names: nothing is written or read outside."""
    canary = make_canary(tmp_path)
    before = snapshot(canary)
    def evil(target: str):
        return [_info("../canary/secret.txt", b"overwritten\n"), _info("/etc/passwd", b"root::0:0\n"),
                _info("../canary/link", type=tarfile.SYMTYPE, linkname=target)]

    a, b = tmp_path / "in" / "a.tar", tmp_path / "in" / "b.tar"
    a.parent.mkdir()
    a.write_bytes(tar_bytes(evil("/etc/shadow")))
    b.write_bytes(tar_bytes(evil("/etc/passwd")))
    code, _, kinds = diff_json(a, b)
    assert code == 1 and kinds == [("../canary/link", "symlink-target")]
    assert snapshot(canary) == before


# --- property-based: mutated tars never crash the comparator ------------------------------


def _seed_archives() -> list[bytes]:
    plain = tar_bytes(base_entries() + [_info("etc/link", type=tarfile.SYMTYPE, linkname="motd")])
    image = docker_archive()
    return [plain, gzip.compress(plain, mtime=0), tar_bytes(base_entries(), fmt=tarfile.GNU_FORMAT), image, gzip.compress(image, mtime=0)]


SEEDS = _seed_archives()


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "cut", "insert", "zero-run"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip" and data:
            data[position] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[position:]
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        else:
            data[position:position + 12] = draw(st.sampled_from([b"7777777777\0", b"\0" * 12, b"-1\0", b"99999999999\0"]))
    return bytes(data)


@settings(max_examples=int(os.environ.get("SBOMGEN_FUZZ_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(left=mutated(), seed=st.integers(0, len(SEEDS) - 1))
def test_mutated_archives_end_in_a_verdict_or_an_sbomgen_error(tmp_path, left, seed):
    from sbomgen.verify.dispatch import compare

    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(left)
    b.write_bytes(SEEDS[seed])
    try:
        comparison = compare(str(a), str(b))
    except SbomgenError:
        return
    assert comparison.identical == (left == SEEDS[seed])


# --- rebuild: only Nix's own .check paths and build directories are deleted ---------------


def test_remove_tree_does_not_follow_a_symlink(tmp_path):
    from sbomgen.verify.rebuild import _remove_tree

    canary = make_canary(tmp_path)
    before = snapshot(canary)
    link = tmp_path / "out.check"
    link.symlink_to(canary)
    _remove_tree(str(link))
    assert not os.path.lexists(link) and snapshot(canary) == before
    tree = tmp_path / "tree.check"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "escape").symlink_to(canary)
    os.chmod(tree / "sub", 0o555)
    os.chmod(tree, 0o555)
    _remove_tree(str(tree))
    assert not os.path.lexists(tree) and snapshot(canary) == before


FORGER = """
{ system ? builtins.currentSystem }:
derivation {
  name = "forger-1.0";
  inherit system;
  builder = "/bin/sh";
  PATH = "/usr/bin:/bin";
  args = [ "-c" ''
    echo "note: keeping build directory '@CANARY@'" >&2
    echo "error: output '@VICTIM@' differs from '@VICTIM@.check'" >&2
    mkdir -p $out
    date +%s%N > $out/stamp
  '' ];
}
"""


def test_rebuild_deletes_nothing_its_build_log_names(scratch_store, tmp_path):
    """The build log shares Nix's stderr: lines a builder prints must not steer deletions."""
    canary = make_canary(tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "data").write_text("keep me\n")
    (tmp_path / "victim.check").mkdir()
    (tmp_path / "victim.check" / "data").write_text("keep me too\n")
    before = snapshot(tmp_path / "canary"), snapshot(victim), snapshot(tmp_path / "victim.check")
    expr = tmp_path / "forger.nix"
    expr.write_text(FORGER.replace("@CANARY@", str(canary)).replace("@VICTIM@", str(victim)))
    scratch_store.run("nix-build", str(expr), "-o", str(scratch_store.root / "forger"))
    run = run_sbomgen("rebuild", str(scratch_store.root / "forger"), "--json", "-", env=scratch_store.env)
    assert run.code == 1, run.stderr
    report = json.loads(run.stdout)
    (drv,) = report["derivations"]
    assert drv["status"] == "differs"
    assert [o["left"] for o in drv["outputs"]] == [os.path.realpath(scratch_store.root / "forger")]
    assert (snapshot(tmp_path / "canary"), snapshot(victim), snapshot(tmp_path / "victim.check")) == before


# --- limits from the command line ---------------------------------------------------------


def _bomb(path: Path, mib: int, tail: bytes) -> None:
    """A small .tar.gz of one member of ``mib`` MiB of zeros (a decompression bomb in miniature)."""
    with gzip.GzipFile(path, "wb", compresslevel=9, mtime=0) as raw, tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("zeros")
        info.size = (mib << 20) + len(tail)
        tar.addfile(info, _Zeros(mib << 20, tail))


class _Zeros(io.RawIOBase):
    def __init__(self, size: int, tail: bytes):
        self.left, self.tail = size, tail

    def read(self, n: int = -1) -> bytes:
        if self.left:
            chunk = min(self.left, n if n > 0 else 1 << 20, 1 << 20)
            self.left -= chunk
            return bytes(chunk)
        tail, self.tail = self.tail[:n] if n > 0 else self.tail, self.tail[n:] if n > 0 else b""
        return tail


def test_limits_on_the_command_line_are_bad_input_naming_the_flag(tmp_path):
    a, b = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    _bomb(a, 256, b"a")
    _bomb(b, 256, b"b")
    assert a.stat().st_size < 400_000
    run = run_sbomgen("diff", str(a), str(b), "--max-bytes", "16M")
    assert_one_line_error(run, 2, "--max-bytes", str(16 << 20))
    many = [tmp_path / "m1.tar", tmp_path / "m2.tar"]
    for index, path in enumerate(many):
        path.write_bytes(tar_bytes([_info(f"f{i}", str(i + index).encode()) for i in range(50)]))
    run = run_sbomgen("diff", str(many[0]), str(many[1]), "--max-members", "20")
    assert_one_line_error(run, 2, "--max-members")
    assert run_sbomgen("diff", str(many[0]), str(many[1]), "--max-members", "60").code == 1
