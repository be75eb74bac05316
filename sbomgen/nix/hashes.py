"""Hashes in the notations Nix writes them: ``algo:base32``, ``algo:hex``, SRI, DB ``ca`` fields."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from sbomgen.nix import base32

SIZES = {"md5": 16, "sha1": 20, "sha256": 32, "sha512": 64}


@dataclass(frozen=True, slots=True)
class Hash:
    algo: str
    digest: bytes

    @property
    def hex(self) -> str:
        return self.digest.hex()

    @property
    def base32(self) -> str:
        return base32.encode(self.digest)

    @property
    def sri(self) -> str:
        return f"{self.algo}-{base64.b64encode(self.digest).decode()}"

    def __str__(self) -> str:
        return f"{self.algo}:{self.base32}"


def _decode(text: str, algo: str) -> bytes:
    size = SIZES[algo]
    try:
        if len(text) == size * 2:
            return bytes.fromhex(text)
        if len(text) == base32.encoded_length(size):
            return base32.decode(text)
        if len(text) == len(base64.b64encode(bytes(size))):
            digest = base64.b64decode(text, validate=True)
            if len(digest) == size:
                return digest
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"invalid {algo} hash {text!r}: {exc}") from None
    raise ValueError(f"invalid {algo} hash {text!r}: wrong length {len(text)} for hex, base32 or base64")


def parse_hash(text: str, algo: str | None = None) -> Hash:
    """``sha256:<hex|base32|base64>``, SRI ``sha256-<base64>``, or a bare digest with ``algo``."""
    if ":" in text:
        prefix, _, body = text.partition(":")
    elif "-" in text and text.split("-", 1)[0] in SIZES:
        prefix, _, body = text.partition("-")
        digest = _decode(body, prefix)
        return Hash(prefix, digest)
    else:
        prefix, body = algo or "", text
    if algo and prefix != algo:
        raise ValueError(f"hash {text!r} is {prefix}, expected {algo}")
    if prefix not in SIZES:
        raise ValueError(f"unknown hash algorithm {prefix!r} in {text!r}")
    return Hash(prefix, _decode(body, prefix))


@dataclass(frozen=True, slots=True)
class ContentAddress:
    method: str  # "text" | "flat" | "recursive"
    hash: Hash


def parse_ca(text: str) -> ContentAddress:
    """The DB ``ca`` column: ``text:sha256:…``, ``fixed:sha256:…`` or ``fixed:r:sha256:…``."""
    kind, _, rest = text.partition(":")
    if kind == "text":
        return ContentAddress("text", parse_hash(rest))
    if kind == "fixed":
        if rest.startswith("r:"):
            return ContentAddress("recursive", parse_hash(rest[2:]))
        return ContentAddress("flat", parse_hash(rest))
    raise ValueError(f"unknown content address {text!r}")
