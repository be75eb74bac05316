"""Nix's base32: the alphabet of store path hashes, with Nix's own bit order.

Nix encodes the last bits first: character ``i`` (from the left) holds bits
``5*(n-1-i)`` .. of the little-endian bit string of the bytes.
"""

from __future__ import annotations

ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}


def encoded_length(size: int) -> int:
    return (size * 8 - 1) // 5 + 1 if size else 0


def encode(data: bytes) -> str:
    number = int.from_bytes(data, "little")
    length = encoded_length(len(data))
    return "".join(ALPHABET[(number >> (5 * n)) & 31] for n in range(length - 1, -1, -1))


def decode(text: str) -> bytes:
    """Decode Nix base32; the size in bytes is the largest whose encoding has this length."""
    size = len(text) * 5 // 8
    if encoded_length(size) != len(text):
        raise ValueError(f"invalid Nix base32 length {len(text)}")
    number = 0
    for char in text:
        value = _INDEX.get(char)
        if value is None:
            raise ValueError(f"invalid character {char!r} in Nix base32 string")
        number = (number << 5) | value
    if number >> (size * 8):
        raise ValueError("invalid Nix base32 string (excess bits set)")
    return number.to_bytes(size, "little")
