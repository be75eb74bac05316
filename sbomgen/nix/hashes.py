"""Hashes in the notations Nix writes them, parsed to ``(algo, digest)``.

* ``sha256:<digest>``: the store DB's ``ValidPaths.hash`` column, ``nix-hash``'s output;
* ``sha256-<base64>``: SRI, as in ``nix hash`` and flakes;
* a bare digest with its algorithm given apart: a ``.drv`` fixed output (``hashAlgo``
  ``sha256``, ``r:sha256`` or ``text:sha256``; ``hash`` in hex);
* the DB ``ca`` column: ``fixed:sha256:…``, ``fixed:r:sha256:…``, ``text:sha256:…``.

The digest is hex, Nix base32 or base64: for a known algorithm the three have different
lengths, so the length decides, as in Nix itself.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from sbomgen.nix import base32

SIZES: dict[str, int] = {"md5": 16, "sha1": 20, "sha256": 32, "sha512": 64}
"""Digest size in bytes of each algorithm Nix knows."""

# length of the text -> encoding, per algorithm (hex, Nix base32, padded base64)
_ENCODINGS: dict[str, dict[int, str]] = {
    algo: {2 * size: "hex", base32.encoded_length(size): "base32", (size + 2) // 3 * 4: "base64"}
    for algo, size in SIZES.items()
}


@dataclass(frozen=True, slots=True)
class Hash:
    """A digest and the algorithm that made it; ``str()`` is Nix's ``algo:base32``."""

    algo: str
    digest: bytes

    @property
    def hex(self) -> str:
        """The digest in lower-case hex."""
        return self.digest.hex()

    @property
    def base32(self) -> str:
        """The digest in Nix base32."""
        return base32.encode(self.digest)

    @property
    def sri(self) -> str:
        """Subresource Integrity form, ``algo-<base64>``."""
        return f"{self.algo}-{base64.b64encode(self.digest).decode('ascii')}"

    def __str__(self) -> str:
        return f"{self.algo}:{base32.encode(self.digest)}"


def _digest(body: str, algo: str, text: str) -> bytes:
    """Decode ``body``, the digest part of ``text``, for ``algo`` (a key of :data:`SIZES`)."""
    encoding = _ENCODINGS[algo].get(len(body))
    if encoding is None:
        raise ValueError(
            f"invalid {algo} hash {text!r}: a digest of {len(body)} characters is not hex, "
            f"Nix base32 or base64 ({', '.join(map(str, _ENCODINGS[algo]))} expected)"
        )
    try:
        if encoding == "hex":
            digest = bytes.fromhex(body)  # skips whitespace: the size check below catches it
        elif encoding == "base32":
            digest = base32.decode(body)
        else:
            digest = base64.b64decode(body, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"invalid {algo} hash {text!r}: bad {encoding}: {exc}") from None
    if len(digest) != SIZES[algo]:
        raise ValueError(f"invalid {algo} hash {text!r}: bad {encoding}")
    return digest


def _algorithm(name: str, text: str) -> str:
    if name not in SIZES:
        raise ValueError(f"unknown hash algorithm {name!r} in {text!r} (known: {', '.join(SIZES)})")
    return name


def parse_hash(text: str, algo: str | None = None) -> Hash:
    """Parse ``algo:<digest>``, SRI ``algo-<base64>``, or a bare digest of type ``algo``.

    ``algo`` may be written as a ``.drv`` output's ``hashAlgo`` (``r:sha256``, ``text:sha256``):
    the method prefix is ignored.  When ``text`` names its algorithm too they must agree.
    Raises :class:`ValueError` on an unknown algorithm, a digest of the wrong length for it,
    or characters outside its encoding.
    """
    expected = algo.rpartition(":")[2] if algo else None
    colon = text.find(":")
    dash = text.find("-")
    if colon >= 0:
        name, body = text[:colon], text[colon + 1 :]
    elif dash >= 0:  # "-" is in no digest alphabet: SRI
        name, body = text[:dash], text[dash + 1 :]
        if (encoding := _ENCODINGS.get(name, {}).get(len(body))) and encoding != "base64":
            raise ValueError(f"invalid SRI hash {text!r}: the digest must be base64")
    elif expected is None:
        raise ValueError(f"hash {text!r} does not say its algorithm (write it as 'sha256:{text}')")
    else:
        name, body = expected, text
    _algorithm(name, text)
    if expected is not None and name != expected:
        raise ValueError(f"hash {text!r} is {name}, expected {_algorithm(expected, text)}")
    return Hash(name, _digest(body, name, text))


@dataclass(frozen=True, slots=True)
class ContentAddress:
    """A store DB ``ca`` value: how the path was hashed, and the hash."""

    method: str
    """``"text"`` (``builtins.toFile``, .drv files), ``"flat"`` (the file's bytes) or
    ``"recursive"`` (the NAR serialisation)."""
    hash: Hash


def parse_ca(ca: str) -> ContentAddress:
    """Parse the DB ``ca`` column: ``text:sha256:…``, ``fixed:sha256:…`` or ``fixed:r:sha256:…``.

    Raises :class:`ValueError` on another method (e.g. ``fixed:git:``) or a bad hash.
    """
    kind, _, rest = ca.partition(":")
    if kind == "text":
        method = "text"
    elif kind == "fixed":
        method = "flat"
        if rest.startswith("r:"):
            method, rest = "recursive", rest[2:]
    else:
        raise ValueError(f"unknown content address {ca!r} (expected 'text:…' or 'fixed:…')")
    if ":" not in rest:
        raise ValueError(f"invalid content address {ca!r}: no 'algo:digest' after {kind!r}")
    try:
        return ContentAddress(method, parse_hash(rest))
    except ValueError as exc:
        raise ValueError(f"invalid content address {ca!r}: {exc}") from None


__all__ = ["SIZES", "ContentAddress", "Hash", "parse_ca", "parse_hash"]
