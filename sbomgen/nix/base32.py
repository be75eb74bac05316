"""Nix's base32: the alphabet of store path hashes, with Nix's own bit order.

Nix reads the bytes as one little-endian number and writes it most significant 5 bits
first, so character ``i`` of an ``n``-character string holds bits ``5*(n-1-i)`` to
``5*(n-1-i)+4`` of that number.  ``n`` is ``ceil(8 * len(data) / 5)``: 32 characters for a
20-byte store path hash, 52 for a SHA-256 digest.  This is what ``nix-hash --to-base32``
prints, and what :func:`encode` and :func:`decode` produce and accept.

Both run once per store path or hash read, so both avoid a Python step per character:
encoding looks up two digits at a time, decoding is ``int(..., 32)`` after a translation.
"""

from __future__ import annotations

ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz"
"""Nix's 32 digits, value 0 first (no ``e``, ``o``, ``t``, ``u``)."""

# two digits per lookup: every 10-bit value -> its 2 characters
_PAIRS = [ALPHABET[i >> 5] + ALPHABET[i & 31] for i in range(1024)]
# decoding goes through int(..., 32), whose digits have the same values in another alphabet;
# every other byte becomes "!", which int() rejects (it would accept "_", "+", spaces and the
# letters Nix does not use)
_TO_INT = bytes(
    b"0123456789abcdefghijklmnopqrstuv"[ALPHABET.index(chr(c))] if chr(c) in ALPHABET else ord("!") for c in range(256)
)


def encoded_length(size: int) -> int:
    """The number of characters encoding ``size`` bytes: ``ceil(size * 8 / 5)``."""
    return (size * 8 + 4) // 5


def encode(data: bytes) -> str:
    """Encode bytes in Nix base32 (what ``nix-hash --to-base32`` prints for their hex)."""
    length = (len(data) * 8 + 4) // 5
    number = int.from_bytes(data, "little")
    even = length + (length & 1)  # an odd length gets a leading "0" digit, dropped below
    pairs = _PAIRS
    text = "".join([pairs[(number >> shift) & 1023] for shift in range(5 * even - 10, -1, -10)])
    return text[even - length :]


def decode(text: str) -> bytes:
    """Decode Nix base32.

    The size in bytes is the largest whose encoding has ``len(text)`` characters.  Raises
    :class:`ValueError` on a character outside :data:`ALPHABET` (upper case included), on a
    length no byte string encodes to, and on bits set beyond the last byte (as Nix does).
    """
    size = len(text) * 5 // 8
    if (size * 8 + 4) // 5 != len(text):
        raise ValueError(f"invalid Nix base32 length {len(text)} in {text!r}")
    if not text:
        return b""
    try:
        number = int(text.encode("ascii").translate(_TO_INT), 32)
    except ValueError:  # UnicodeEncodeError included
        bad = next(c for c in text if c not in ALPHABET)
        raise ValueError(f"invalid character {bad!r} in Nix base32 string {text!r}") from None
    if number >> (size * 8):
        raise ValueError(f"invalid Nix base32 string {text!r}: bits set beyond {size} bytes")
    return number.to_bytes(size, "little")


__all__ = ["ALPHABET", "decode", "encode", "encoded_length"]
