"""Hash notations and DB ``ca`` values, with vectors from Nix 2.8 (``nix hash to-sri``,
``nix-hash --to-base32``) and from a real store DB."""

from __future__ import annotations

import hashlib

import pytest

from sbomgen.nix.hashes import SIZES, ContentAddress, Hash, parse_ca, parse_hash

# digests of "abc": hex, `nix-hash --to-base32`, `nix hash to-sri`
ABC = {
    "md5": ("900150983cd24fb0d6963f7d28e17f72", "3jgzhjhz9zjvbb0kyj7jc500ch", "kAFQmDzST7DWlj99KOF/cg=="),
    "sha1": (
        "a9993e364706816aba3e25717850c26c9cd0d89d",
        "kpcd173cq987hw957sx6m0868wv3x6d9",
        "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=",
    ),
    "sha256": (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s",
        "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
    ),
    "sha512": (
        (
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        ),
        "2gs8k559z4rlahfx0y688s49m2vvszylcikrfinm30ly9rak69236nkam5ydvly1ai7xac99vxfc4ii84hawjbk876blyk1jfhkbbyx",
        "3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==",
    ),
}

# ValidPaths rows (path, hash, ca) of a Nix 2.8 store: a fetchurl-style flat fixed output
# (of "foo"), a recursive one (an empty directory), a source added with a path literal and
# a .drv (text hashing: the sha256 of the file, test_derivation.SRC; checked there)
FLAT_CA = "fixed:sha256:1bp7cri8hplaz6hbz0v4f0nl44rl84q1sg25kgwqzipzd1mv89ic"
RECURSIVE_CA = "fixed:r:sha256:0sjjj9z1dhilhpc8pq4154czrb79z9cm044jvn75kxcjv6v5l2m5"
EMPTY_DIR_NAR = "a50a5ab6d992f5598edd92105059fae9acfc192981e08bd88534c2167e92526a"
SETUP_SH_HASH = "sha256:1a6a9938b012651400b02412f857d40bd5ca4268d88a7960f40ec7eff24a122e"
SETUP_SH_CA = "fixed:r:sha256:0bhj9brfziqfyih7k2nqd11cmm8bsibzh4i4n0018r8jn0w9jshs"
SRC_DRV_CA = "text:sha256:1yyls03vhqlv89fxlaym12sbn4bk2ija7fkvyysl9g25kp29c5q2"


@pytest.mark.parametrize("algo", sorted(ABC))
def test_every_notation_of_every_algorithm(algo):
    hex_digest, b32, b64 = ABC[algo]
    expected = Hash(algo, bytes.fromhex(hex_digest))
    notations = [
        (f"{algo}:{hex_digest}", None),
        (f"{algo}:{hex_digest.upper()}", None),
        (f"{algo}:{b32}", None),
        (f"{algo}:{b64}", None),
        (f"{algo}-{b64}", None),  # SRI
        (hex_digest, algo),  # a .drv output: hashAlgo and hash apart
        (hex_digest, f"r:{algo}"),
        (hex_digest, f"text:{algo}"),
        (b32, algo),
        (b64, algo),
        (f"{algo}:{b32}", algo),
        (f"{algo}-{b64}", algo),
    ]
    for text, given in notations:
        assert parse_hash(text, given) == expected, (text, given)
    assert len(expected.digest) == SIZES[algo]


@pytest.mark.parametrize("algo", sorted(ABC))
def test_renderings(algo):
    hex_digest, b32, b64 = ABC[algo]
    parsed = parse_hash(f"{algo}:{hex_digest}")
    assert parsed.hex == hex_digest
    assert parsed.base32 == b32
    assert parsed.sri == f"{algo}-{b64}"
    assert str(parsed) == f"{algo}:{b32}"
    assert parse_hash(str(parsed)) == parsed and parse_hash(parsed.sri) == parsed


def test_hash_is_a_frozen_value():
    one, two = parse_hash("sha1:" + ABC["sha1"][0]), parse_hash("sha1-" + ABC["sha1"][2])
    assert one == two and hash(one) == hash(two) and len({one, two}) == 1
    with pytest.raises(AttributeError):
        one.algo = "md5"  # type: ignore[misc]


def test_db_hash_column_is_hex_and_agrees_with_ca():
    """``ValidPaths.hash`` is ``sha256:<hex>`` (Nix 2.8); a recursive ``ca`` is that same NAR hash."""
    nar = parse_hash(SETUP_SH_HASH)
    ca = parse_ca(SETUP_SH_CA)
    assert ca == ContentAddress("recursive", nar)


def test_ca_forms():
    flat = parse_ca(FLAT_CA)
    assert flat.method == "flat"
    assert flat.hash == Hash("sha256", hashlib.sha256(b"foo").digest())
    recursive = parse_ca(RECURSIVE_CA)
    assert recursive.method == "recursive" and recursive.hash.hex == EMPTY_DIR_NAR
    text = parse_ca(SRC_DRV_CA)
    assert text.method == "text" and text.hash.algo == "sha256"
    assert text.hash.hex == "021796c49d45bc44b5f77bbaa364147311bbb408d52bda5d429b62b807d0d4fb"
    assert parse_ca("fixed:sha1:" + ABC["sha1"][1]).hash.hex == ABC["sha1"][0]
    assert parse_ca("fixed:r:sha512:" + ABC["sha512"][1]).hash.algo == "sha512"


@pytest.mark.parametrize("algo", sorted(SIZES))
def test_wrong_lengths(algo):
    hex_digest, b32, b64 = ABC[algo]
    for body in (hex_digest[:-1], hex_digest + "0", hex_digest[:-2], b32[:-1], b32 + "0", b64[:-1], b64 + "=", ""):
        with pytest.raises(ValueError, match=f"invalid {algo} hash .* characters"):
            parse_hash(f"{algo}:{body}")
        with pytest.raises(ValueError):
            parse_hash(body, algo)


@pytest.mark.parametrize(
    "text,algo,message",
    [
        ("sha256:" + "g" * 64, None, "bad hex"),
        ("sha256:" + "0" * 63 + " ", None, "bad hex"),
        ("sha256:" + "e" * 52, None, "bad base32"),
        ("sha256:" + "2" + "0" * 51, None, "bad base32"),  # bits beyond 32 bytes
        ("sha256:" + "!" * 44, None, "bad base64"),
        ("sha256:" + "A" * 43 + "!", None, "bad base64"),
        ("sha256-" + ABC["sha256"][0], None, "must be base64"),  # SRI with a hex digest
        ("sha256-" + ABC["sha256"][1], None, "must be base64"),
        ("md7:" + "0" * 32, None, "unknown hash algorithm 'md7'"),
        ("blake3-" + "A" * 44, None, "unknown hash algorithm 'blake3'"),
        (":" + ABC["sha256"][0], None, "unknown hash algorithm ''"),
        (ABC["sha256"][0], "blake3", "unknown hash algorithm 'blake3'"),
        (ABC["sha256"][0], None, "does not say its algorithm"),
        (ABC["sha256"][0], "", "does not say its algorithm"),
        ("sha256:" + ABC["sha256"][0], "sha1", "is sha256, expected sha1"),
        ("sha256-" + ABC["sha256"][2], "r:sha512", "is sha256, expected sha512"),
        ("sha1:" + ABC["sha1"][0], "md7", "unknown hash algorithm 'md7'"),
    ],
)
def test_bad_hashes(text, algo, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_hash(text, algo)
    assert repr(text) in str(info.value) or text in str(info.value)


@pytest.mark.parametrize(
    "ca,message",
    [
        ("floating:sha256:" + ABC["sha256"][1], "unknown content address"),
        ("sha256:" + ABC["sha256"][1], "unknown content address"),
        ("", "unknown content address"),
        ("fixed:", "no 'algo:digest'"),
        ("text:", "no 'algo:digest'"),
        ("fixed:r:", "no 'algo:digest'"),
        ("fixed:" + ABC["sha256"][1], "no 'algo:digest'"),
        ("fixed:git:sha1:" + ABC["sha1"][1], "unknown hash algorithm 'git'"),
        ("fixed:sha256:abc", "3 characters"),
        ("text:sha256:" + "e" * 52, "bad base32"),
    ],
)
def test_bad_content_addresses(ca, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_ca(ca)
    assert repr(ca) in str(info.value)
