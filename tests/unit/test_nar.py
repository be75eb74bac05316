"""NAR serialisation against digests and sizes taken with ``nix-store --dump PATH | sha256sum``
(Nix 2.8) of the very trees built here; the ``nix`` test compares the bytes themselves."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from sbomgen.errors import NarError
from sbomgen.nix.nar import dump, nar_hash, nar_sha256_hex

NON_UTF8 = os.fsdecode(b"latin1-\xe9\xff")

# `nix-store --dump PATH | sha256sum` and `| wc -c` of each path of make_tree()
TREE_NARS = {
    ".": ("b2e22d6790d4c8e3613f7f74ccb22aa0341edffed08fc7464a7e520d137e085a", 4192),
    "regular": ("e1fc03261627558a72a1114b25c5008a2e95815baa8e411af67a88642514ca5b", 128),
    "empty": ("77ac62e2629d8e45f624589c0c8bf99e24b3a722349bf1e79bc186008534e246", 112),
    "exe": ("5e0accf02cedede5e4119ffa15e79e79a5fb1fb9bc43c3d434f33227a14477a0", 168),
    "eight-bytes": ("22d63223426447e64aa20d76d506b3e062a2d242bb797536dbf3ee681be3f53c", 120),
    "empty-dir": ("a50a5ab6d992f5598edd92105059fae9acfc192981e08bd88534c2167e92526a", 96),
    "link": ("a1338bdedeec1305d5de0d7288b9cc5ee3dc075c086b6730dbd663639976090c", 120),
    "dangling": ("1e9ce1753f6122bb8f69cc8bd3c63825198d3eabd19e0bf67cbf1b527ef19d73", 136),
    "nested": ("c876e30c112140c6170ec43c3bb53caa37834a6baaa801fe74a4ca592fb39c49", 1264),
}
# "hello, world\n" as an executable (any mode with the owner-execute bit)
EXECUTABLE_HELLO = "e63d9013da5c6c27751df48b808975181158025bbc755667315435a13433d8e3"
# big_file(): 2 MiB + 4 bytes
BIG_NAR = ("3affd0bb34c628154a69b328f76e2db77afa98eeee68006b4d198026b621c79a", 2097272)
# many_files(): 3000 small files and 30 symlinks in one directory
MANY_NAR = ("973925bdeef09306cc3b8215e3a72e03169546ca1ab28bdc6e582094c3e5a34e", 921072)
# medium_files(): 40 files of 50,000 bytes, each under the size that is streamed on its own
MEDIUM_NAR = ("ceaee2904d44e8064cc10b79c6c4e8e38c305f6e3004e74a1a6cccf38ad5bfe6", 2007456)


def make_tree(root: Path) -> Path:
    """Every kind of entry a NAR holds, with explicit modes (only owner-execute counts)."""
    tree = root / "tree"
    (tree / "empty-dir").mkdir(parents=True)
    (tree / "nested" / "deeper" / "deepest").mkdir(parents=True)
    files = {
        "regular": b"hello, world\n",
        "empty": b"",
        "exe": b"#!/bin/sh\necho hi\n",
        "eight-bytes": b"12345678",  # no padding
        "nested/a": b"a" * 9,
        "nested/deeper/deepest/leaf": bytes(range(256)),
        # as bytes: "B" < "Z" < "_" < "a" < "z" < "\xc3\xa9"; a locale puts "é" and "a" first
        "B": b"B",
        "Z": b"Z",
        "_": b"_",
        "a": b"a",
        "z": b"z",
        "é": b"e-acute",
        NON_UTF8: b"not utf-8",
    }
    for name, data in files.items():
        (tree / name).write_bytes(data)
        os.chmod(tree / name, 0o644)
    os.chmod(tree / "exe", 0o755)
    os.chmod(tree / NON_UTF8, 0o600)
    os.symlink("regular", tree / "link")
    os.symlink("/nonexistent/target", tree / "dangling")
    os.symlink("../exe", tree / "nested" / "up")
    return tree


def big_file(root: Path) -> Path:
    path = root / "big"
    path.write_bytes(bytes(range(256)) * 4096 * 2 + b"tail")
    os.chmod(path, 0o644)
    return path


def many_files(root: Path) -> Path:
    many = root / "many"
    many.mkdir()
    for i in range(3000):
        path = many / f"f{i:04d}"
        path.write_bytes(f"{i}\n".encode() * (i % 50))
        os.chmod(path, 0o755 if i % 7 == 0 else 0o644)
        if i % 100 == 0:
            os.symlink(f"f{i:04d}", many / f"l{i:04d}")
    return many


def medium_files(root: Path) -> Path:
    medium = root / "medium"
    medium.mkdir()
    for i in range(40):
        (medium / f"{i:02d}").write_bytes(bytes([i]) * 50_000)
        os.chmod(medium / f"{i:02d}", 0o644)
    return medium


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path)


def nar_bytes(path: Path) -> bytes:
    pieces: list[bytes] = []
    dump(path, pieces.append)
    assert all(type(piece) is bytes for piece in pieces)
    return b"".join(pieces)


def nar_string(data: bytes) -> bytes:
    return len(data).to_bytes(8, "little") + data + b"\0" * (-len(data) % 8)


@pytest.mark.parametrize("name", sorted(TREE_NARS))
def test_digests_and_sizes_match_nix(tree, name):
    digest, size = nar_hash(tree / name)
    assert (digest.hex(), size) == TREE_NARS[name]
    assert nar_sha256_hex(tree / name) == TREE_NARS[name][0]


def test_dump_is_what_nar_hash_hashes(tree):
    data = nar_bytes(tree)
    assert (hashlib.sha256(data).hexdigest(), len(data)) == TREE_NARS["."]
    assert data.startswith(nar_string(b"nix-archive-1") + nar_string(b"("))
    assert len(data) % 8 == 0


def test_a_regular_file_exactly(tmp_path):
    """The bytes of a file's NAR, spelled out: strings, lengths and padding."""
    path = tmp_path / "f"
    path.write_bytes(b"hello, world\n")
    os.chmod(path, 0o700)
    strings = (b"nix-archive-1", b"(", b"type", b"regular", b"executable", b"", b"contents", b"hello, world\n", b")")
    assert nar_bytes(path) == b"".join(map(nar_string, strings))


def test_entries_are_sorted_as_bytes(tree):
    data = nar_bytes(tree)
    names = [b"B", b"Z", b"_", b"a", b"dangling", b"eight-bytes", b"empty", b"empty-dir", b"exe"]
    names += [b"latin1-\xe9\xff", b"link", b"nested", b"regular", b"z", "é".encode()]
    positions = [data.index(nar_string(b"name") + nar_string(name)) for name in names]
    assert positions == sorted(positions)


def test_non_utf8_name_and_symlink_targets_are_raw_bytes(tree):
    data = nar_bytes(tree)
    assert nar_string(b"latin1-\xe9\xff") in data
    assert nar_string(b"/nonexistent/target") in data and nar_string(b"../exe") in data


def test_symlinks_are_recorded_not_followed(tree):
    assert nar_sha256_hex(tree / "link") != nar_sha256_hex(tree / "regular")
    assert nar_bytes(tree / "link").endswith(nar_string(b"target") + nar_string(b"regular") + nar_string(b")"))


@pytest.mark.parametrize("mode", [0o744, 0o700, 0o100, 0o500])
def test_owner_execute_bit_makes_an_executable(tmp_path, mode):
    path = tmp_path / "f"
    path.write_bytes(b"hello, world\n")
    os.chmod(path, mode)
    assert nar_sha256_hex(path) == EXECUTABLE_HELLO


@pytest.mark.parametrize("mode", [0o644, 0o600, 0o677, 0o611, 0o400, 0o000])
def test_other_mode_bits_do_not_count(tmp_path, mode):
    if mode == 0o000 and os.geteuid() != 0:
        pytest.skip("only root reads a file of mode 000")
    path = tmp_path / "f"
    path.write_bytes(b"hello, world\n")
    os.chmod(path, mode)
    assert nar_sha256_hex(path) == TREE_NARS["regular"][0]


def test_big_file_is_streamed(tmp_path):
    path = big_file(tmp_path)
    pieces: list[bytes] = []
    dump(path, pieces.append)
    assert (hashlib.sha256(b"".join(pieces)).hexdigest(), sum(map(len, pieces))) == BIG_NAR
    assert max(map(len, pieces)) <= 1 << 20  # never the whole file at once
    assert nar_hash(path) == (bytes.fromhex(BIG_NAR[0]), BIG_NAR[1])


def test_many_small_files_are_batched(tmp_path):
    many = many_files(tmp_path)
    pieces: list[bytes] = []
    dump(many, pieces.append)
    assert (hashlib.sha256(b"".join(pieces)).hexdigest(), sum(map(len, pieces))) == MANY_NAR
    assert len(pieces) <= 3  # ~900 KB of headers and files, in about 1 MiB pieces
    assert nar_hash(many) == (bytes.fromhex(MANY_NAR[0]), MANY_NAR[1])


@pytest.fixture
def deep_tree(tmp_path: Path):
    """Make ``tmp_path/deep/d/d/.../d/leaf``, and remove it afterwards.

    Both by hand: ``os.makedirs`` and ``shutil.rmtree`` (pytest's clean-up of old temporary
    directories included) recurse, and fail on a tree this deep.
    """
    chain: list[Path] = []

    def make(depth: int) -> Path:
        chain.append(tmp_path / "deep")
        chain[-1].mkdir()
        for _ in range(depth):
            chain.append(chain[-1] / "d")
            chain[-1].mkdir()
        (chain[-1] / "leaf").write_bytes(b"bottom\n")
        os.chmod(chain[-1] / "leaf", 0o644)
        return chain[0]

    yield make
    if chain:
        (chain[-1] / "leaf").unlink()
        for directory in reversed(chain):
            directory.rmdir()


def test_gathered_small_files_are_handed_on_about_every_mib(tmp_path):
    medium = medium_files(tmp_path)
    pieces: list[bytes] = []
    dump(medium, pieces.append)
    assert (hashlib.sha256(b"".join(pieces)).hexdigest(), sum(map(len, pieces))) == MEDIUM_NAR
    assert len(pieces) == 2 and max(map(len, pieces)) < (1 << 20) + 50_000 + 200


def test_depth_is_not_limited_by_the_python_stack(deep_tree):
    data = nar_bytes(deep_tree(1100))
    directory = nar_string(b"(") + nar_string(b"type") + nar_string(b"directory")
    assert data.count(directory) == 1101
    assert data.endswith(nar_string(b")") * (3 + 2 * 1100))  # leaf, its entry, then each level


def test_fifo_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(NarError, match=r"pipe in a NAR: it is a fifo"):
        nar_hash(tmp_path)
    with pytest.raises(NarError, match="fifo"):
        nar_hash(tmp_path / "pipe")


def test_socket_is_refused(tmp_path):
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "sock"))
    except OSError as exc:  # e.g. a path over the 108-byte limit
        pytest.skip(f"cannot make a socket here: {exc}")
    try:
        with pytest.raises(NarError, match=r"sock in a NAR: it is a socket"):
            nar_hash(tmp_path)
    finally:
        sock.close()


def test_device_is_refused():
    if not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null")
    with pytest.raises(NarError, match="/dev/null in a NAR: it is a character device"):
        nar_hash("/dev/null")


def test_missing_path(tmp_path):
    with pytest.raises(NarError, match=re.escape(f"cannot read {tmp_path}/missing: No such file")):
        nar_hash(tmp_path / "missing")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NarError, match="Not a directory"):
        nar_hash(tmp_path / "file" / "below")


def test_unreadable_file_and_directory(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads files of any mode")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "secret").write_bytes(b"x")
    os.chmod(tmp_path / "d" / "secret", 0o000)
    with pytest.raises(NarError, match="cannot read .*secret: Permission denied"):
        nar_hash(tmp_path / "d")
    os.chmod(tmp_path / "d", 0o000)
    try:
        with pytest.raises(NarError, match="cannot list .*d: Permission denied"):
            nar_hash(tmp_path / "d")
    finally:
        os.chmod(tmp_path / "d", 0o755)


def test_error_messages_are_one_line_and_exit_12(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(NarError) as info:
        nar_hash(tmp_path)
    assert "\n" not in str(info.value) and info.value.exit_code == 12


def test_accepts_str_bytes_and_pathlike(tree):
    expected = TREE_NARS["nested"][0]
    for path in (tree / "nested", str(tree / "nested"), os.fsencode(tree / "nested")):
        assert nar_sha256_hex(path) == expected


@pytest.mark.nix
def test_dump_bytes_equal_nix_store_dump(tmp_path, deep_tree):
    if shutil.which("nix-store") is None:
        pytest.skip("nix-store is not installed")
    paths = [make_tree(tmp_path), big_file(tmp_path), many_files(tmp_path), medium_files(tmp_path)]
    tree = paths[0]
    paths += [tree / "link", tree / "dangling", tree / "exe", tree / "empty", tree / "empty-dir", tree / NON_UTF8]
    paths.append(deep_tree(1100))
    for path in paths:
        theirs = subprocess.run(["nix-store", "--dump", path], capture_output=True, check=True).stdout
        assert nar_bytes(path) == theirs, path
        assert nar_hash(path) == (hashlib.sha256(theirs).digest(), len(theirs)), path
