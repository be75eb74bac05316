"""Nix base32 against vectors printed by Nix 2.8 itself (``nix-hash --to-base32``/``--to-base16``)."""

from __future__ import annotations

import random

import pytest

from sbomgen.nix import base32

# (hex, `nix-hash --to-base32 --type ALGO HEX`)
VECTORS = [
    ("900150983cd24fb0d6963f7d28e17f72", "3jgzhjhz9zjvbb0kyj7jc500ch"),  # md5("abc")
    ("a9993e364706816aba3e25717850c26c9cd0d89d", "kpcd173cq987hw957sx6m0868wv3x6d9"),  # sha1("abc")
    (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",  # sha256("abc")
        "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s",
    ),
    (
        (
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"  # sha512("abc")
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        ),
        "2gs8k559z4rlahfx0y688s49m2vvszylcikrfinm30ly9rak69236nkam5ydvly1ai7xac99vxfc4ii84hawjbk876blyk1jfhkbbyx",
    ),
    ("d41d8cd98f00b204e9800998ecf8427e", "3y8bwfr609h3lh9ch0izcqq7fl"),  # md5("")
    ("da39a3ee5e6b4b0d3255bfef95601890afd80709", "143xibwh31h9bvxzalr0sjvbbvpa6ffs"),  # sha1("")
    (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # sha256("")
        "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73",
    ),
    ("0123456789abcdef0123456789abcdef01234567", "cx2j60ggrnmqjrs54c0yzkdbi5kla8q1"),
    # the bit order: the first byte's low bit is the last character, the last byte's high bit the first
    ("01" + "00" * 31, "0" * 51 + "1"),
    ("00" * 31 + "80", "1" + "0" * 51),
    ("ff" * 32, "1" + "z" * 51),
]

# store path hash parts (20 bytes) and `nix-hash --to-base16 --type sha1` of them
STORE_PATH_HASHES = [
    ("1w7dz2vw568gb5mppg3aqaav1jj2wpq6", "065f2ea40c5b29acc6bbb796f590297c8bdf0e0f"),
    ("5isq45j0x6ihzk4vjhglsfcfkp5n91jk", "538664cb9d8e394d1f949bcc0fa3e9401682752c"),
    ("1rz4g4znpzjwh1xymhjpm42vipw92pr7", "275f91f88d5b907a25acbe07c8e5bff693477e0e"),
]


@pytest.mark.parametrize("hex_digest,expected", VECTORS)
def test_encode_matches_nix(hex_digest, expected):
    assert base32.encode(bytes.fromhex(hex_digest)) == expected


@pytest.mark.parametrize("hex_digest,text", VECTORS)
def test_decode_matches_nix(hex_digest, text):
    assert base32.decode(text).hex() == hex_digest


@pytest.mark.parametrize("text,hex_digest", STORE_PATH_HASHES)
def test_store_path_hashes_round_trip(text, hex_digest):
    digest = base32.decode(text)
    assert len(digest) == 20
    assert digest.hex() == hex_digest
    assert base32.encode(digest) == text


def test_empty():
    assert base32.encode(b"") == ""
    assert base32.decode("") == b""


def test_lengths_are_ceil_of_8n_over_5():
    for size in range(130):
        text = base32.encode(b"\xff" * size)
        assert len(text) == -(-size * 8 // 5) == base32.encoded_length(size), size
    assert base32.encoded_length(20) == 32 and base32.encoded_length(32) == 52
    assert base32.encoded_length(64) == 103


def test_round_trip_random_bytes():
    rng = random.Random(20240525)
    for size in list(range(70)) + [128, 255, 1000]:
        for _ in range(20):
            data = rng.randbytes(size)
            text = base32.encode(data)
            assert set(text) <= set(base32.ALPHABET)
            assert base32.decode(text) == data, (size, data)


def test_round_trip_random_strings():
    """Every string of a valid length whose first digit holds no excess bits decodes and re-encodes."""
    rng = random.Random(7)
    for length in (32, 52):
        spare = length * 5 - (length * 5 // 8) * 8  # high bits of the first digit beyond the bytes
        for _ in range(200):
            first = base32.ALPHABET[rng.randrange(1 << (5 - spare))]
            text = first + "".join(rng.choice(base32.ALPHABET) for _ in range(length - 1))
            assert base32.encode(base32.decode(text)) == text


@pytest.mark.parametrize(
    "bad",
    [
        "e" * 32,  # e, o, t, u are not digits in Nix's alphabet
        "o" * 32,
        "t" * 32,
        "u" * 32,
        "1B8M03R63ZQHNJF7L5WNLDHH7C134AP5VPJ0850YMKQ1IYZICY5S",  # upper case
        " " * 32,
        "_" * 32,
        "+" + "0" * 31,
        "0" * 31 + "\n",
        "é" * 32,
        "١" * 32,  # a digit to int(), not to Nix
    ],
)
def test_rejects_characters(bad):
    with pytest.raises(ValueError, match="invalid character"):
        base32.decode(bad)


@pytest.mark.parametrize("length", [1, 3, 6, 9, 11, 51, 54])
def test_rejects_lengths_no_bytes_encode_to(length):
    with pytest.raises(ValueError, match="length"):
        base32.decode("0" * length)


# 52 characters hold 260 bits for 32 bytes: the first may only be 0 or 1.  `nix-hash
# --to-base16 --type sha256` says "invalid base-32 hash" for both of these.
@pytest.mark.parametrize("bad", ["zb8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s", "2" + "0" * 51])
def test_rejects_bits_beyond_the_last_byte(bad):
    with pytest.raises(ValueError, match="bits set beyond"):
        base32.decode(bad)


def test_thirty_two_characters_have_no_spare_bits():
    assert base32.decode("z" * 32) == b"\xff" * 20
