"""base32, hash notations, NAR serialisation: vectors captured from Nix 2.8 itself."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from sbomgen.errors import NarError
from sbomgen.nix import base32
from sbomgen.nix.hashes import parse_ca, parse_hash
from sbomgen.nix.nar import dump, nar_hash, nar_sha256_hex

# sha256("abc") and sha1("abc") with `nix-hash --to-base32` of them
SHA256_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
SHA256_ABC_B32 = "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"
SHA1_ABC = "a9993e364706816aba3e25717850c26c9cd0d89d"
SHA1_ABC_B32 = "kpcd173cq987hw957sx6m0868wv3x6d9"


def test_base32_vectors():
    assert base32.encode(bytes.fromhex(SHA256_ABC)) == SHA256_ABC_B32
    assert base32.encode(bytes.fromhex(SHA1_ABC)) == SHA1_ABC_B32
    assert base32.decode(SHA256_ABC_B32).hex() == SHA256_ABC
    assert base32.encode(b"") == ""
    # a store path hash is 20 bytes -> 32 characters
    assert len(base32.encode(bytes(20))) == 32


def test_base32_round_trip():
    import random

    rng = random.Random(7)
    for size in (1, 5, 16, 20, 32, 64):
        for _ in range(50):
            data = bytes(rng.randrange(256) for _ in range(size))
            assert base32.decode(base32.encode(data)) == data


@pytest.mark.parametrize("bad", ["e" * 52, SHA256_ABC_B32[:-1], "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"])
def test_base32_rejects(bad):
    with pytest.raises(ValueError):
        base32.decode(bad)


def test_parse_hash_notations():
    import base64

    b64 = base64.b64encode(bytes.fromhex(SHA256_ABC)).decode()
    for text in (f"sha256:{SHA256_ABC}", f"sha256:{SHA256_ABC_B32}", f"sha256-{b64}", f"sha256:{b64}"):
        assert parse_hash(text).hex == SHA256_ABC, text
    assert parse_hash(SHA256_ABC, "sha256").base32 == SHA256_ABC_B32
    assert parse_hash(SHA1_ABC_B32, "sha1").hex == SHA1_ABC
    assert parse_hash(f"sha256:{SHA256_ABC}").sri == f"sha256-{b64}"
    assert str(parse_hash(f"sha256:{SHA256_ABC}")) == f"sha256:{SHA256_ABC_B32}"


@pytest.mark.parametrize("bad", ["sha256:abc", "md7:" + "0" * 32, "sha256:" + "g" * 64, SHA1_ABC + "00"])
def test_parse_hash_rejects(bad):
    with pytest.raises(ValueError):
        parse_hash(bad, None if ":" in bad else "sha1")


def test_parse_ca_forms():
    flat = parse_ca("fixed:sha256:1907vvsqmwd697ihyxz17b4baj5rrfqabfkcv8jss3hympykrr60")
    assert flat.method == "flat" and flat.hash.hex == "c0e43cfdad1e0ead25da6cbaa5b0cbb948b5c83ae1770fe349a6f18af5de07a4"
    assert parse_ca("fixed:r:sha256:" + SHA256_ABC_B32).method == "recursive"
    assert parse_ca("text:sha256:" + SHA256_ABC_B32).method == "text"
    with pytest.raises(ValueError):
        parse_ca("floating:sha256:" + SHA256_ABC_B32)


@pytest.fixture
def tree(tmp_path):
    """The tree whose NAR hashes below were taken with `nix-store --dump | sha256sum`."""
    t = tmp_path / "t"
    (t / "empty").mkdir(parents=True)
    (t / "a" / "b").mkdir(parents=True)
    (t / "file").write_bytes(b"hello\n")
    (t / "emptyfile").write_bytes(b"")
    (t / "exe").write_bytes(b"#!/bin/sh\n")
    (t / "a" / "b" / "deep").write_bytes(b"x")
    (t / "B").write_bytes(b"B")
    (t / "a_").write_bytes(b"a")
    (t / os.fsdecode(b"caf\xc3\xa9")).write_bytes(b"x")
    os.symlink("file", t / "link")
    os.symlink("/does/not/exist", t / "dangling")
    for path in (t / "file", t / "emptyfile", t / "a" / "b" / "deep", t / "B", t / "a_", t / "café"):
        os.chmod(path, 0o644)
    os.chmod(t / "exe", 0o755)
    return t


def test_nar_hash_of_tree_matches_nix(tree):
    assert nar_sha256_hex(tree) == "2783804af3e4fe36ab8a16e306cc07b4367923c9285256a680d908fa03457fe4"


def test_nar_hash_of_single_entries_matches_nix(tree):
    assert nar_sha256_hex(tree / "file") == "1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13"
    assert nar_sha256_hex(tree / "exe") == "6283c1668260f903d1a895c0cd6b822fa4b68762bb0b17cedef2d39d97e26554"
    assert nar_sha256_hex(tree / "link") == "6b867ee22b9f71ae8654855e521aab72fa15b2e779e25c81c7cc7c78e1c4bd07"
    assert nar_sha256_hex(tree / "empty") == "a50a5ab6d992f5598edd92105059fae9acfc192981e08bd88534c2167e92526a"


def test_only_owner_execute_bit_matters(tree):
    before = nar_sha256_hex(tree / "file")
    os.chmod(tree / "file", 0o600)
    assert nar_sha256_hex(tree / "file") == before
    os.chmod(tree / "file", 0o744)
    assert nar_sha256_hex(tree / "file") != before


def test_nar_size_and_streaming(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(os.urandom(3 * (1 << 20) + 5))
    chunks = []
    dump(big, chunks.append)
    digest, size = nar_hash(big)
    assert size == sum(map(len, chunks)) and size % 8 == 0
    assert max(map(len, chunks)) <= 1 << 20 + 64  # never the whole file at once


def test_nar_rejects_fifo(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(NarError, match="pipe"):
        nar_hash(tmp_path)


def test_nar_unreadable_path(tmp_path):
    with pytest.raises(NarError, match="cannot read"):
        nar_hash(tmp_path / "missing")


@pytest.mark.nix
def test_dump_bytes_equal_nix_store_dump(tree):
    if shutil.which("nix-store") is None:
        pytest.skip("nix-store not installed")
    ours = bytearray()
    dump(tree, ours.extend)
    theirs = subprocess.run(["nix-store", "--dump", str(tree)], capture_output=True, check=True).stdout
    assert bytes(ours) == theirs
