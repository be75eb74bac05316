"""DSSE envelopes (Dead Simple Signing Envelope, v1) around in-toto statements.

The signature covers the pre-authentication encoding
``PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` (lengths in ASCII
decimal), never the raw payload, exactly as the DSSE specification defines it.

Envelopes and statements come from anywhere, so this is the one place that reads them: every
reader (``provenance verify``, ``sbomgen check``, ``sbomgen validate``) goes through
:func:`read_json` (bounded size and nesting) and :func:`decode_envelope` (every field checked),
and anything off is a :class:`~sbomgen.errors.MalformedAttestationError` with one line.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from sbomgen import limits
from sbomgen.errors import LimitExceededError, MalformedAttestationError
from sbomgen.fsutil import read_bounded
from sbomgen.keys import SigningKey, VerifyKey

PAYLOAD_TYPE = "application/vnd.in-toto+json"

#: more signatures than this in one envelope is not a real envelope (each costs a verification)
MAX_SIGNATURES = 32
#: a signature longer than this is not one of ours or anyone's (RSA-8192 is 1 KiB)
MAX_SIGNATURE_BYTES = 2048
_KEYS = {"payload", "payloadType", "signatures"}


def pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign(payload: bytes, key: SigningKey, payload_type: str = PAYLOAD_TYPE) -> dict:
    signature = key.sign(pae(payload_type, payload))
    return {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": payload_type,
        "signatures": [{"keyid": key.keyid, "sig": base64.b64encode(signature).decode()}],
    }


def shown(value: object, limit: int = 120) -> str:
    """A value from an untrusted document as it may appear in one line of an error message:
    quoted, control characters escaped, cut at ``limit`` characters."""
    if not isinstance(value, str):
        return repr(value)[:limit] if isinstance(value, (int, float, bool)) or value is None else f"<a JSON {_json_type(value)}>"
    return repr(value[:limit]) + ("…" if len(value) > limit else "")


def _json_type(value: object) -> str:
    return {dict: "object", list: "array", str: "string"}.get(type(value), type(value).__name__)


# -- bounded JSON ---------------------------------------------------------------------------------


def _check_depth(value: object, source: str) -> None:
    """Nesting deeper than the limit is refused before a validator (or anything) recurses into it."""
    maximum = limits.current().max_json_depth
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > maximum:
            raise LimitExceededError(f"{source}: JSON nested more than {maximum} levels deep")
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values() if isinstance(child, (dict, list)))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node if isinstance(child, (dict, list)))


def parse_json(data: bytes | str, source: str) -> object:
    """JSON from an untrusted statement or envelope: bounded in size and nesting; one line
    (:class:`MalformedAttestationError`, or :class:`LimitExceededError` for a bound) if it is not."""
    maximum = limits.current().max_document_bytes
    if len(data) > maximum:
        raise LimitExceededError(f"{source}: more than {maximum} bytes of JSON")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise MalformedAttestationError(f"{source} is not valid JSON: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise LimitExceededError(f"{source}: JSON nested more than {limits.current().max_json_depth} levels deep") from None
    except (json.JSONDecodeError, ValueError) as exc:
        raise MalformedAttestationError(f"{source} is not valid JSON: {exc}") from None
    _check_depth(value, source)
    return value


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def read_json(path: str, what: str = "") -> object:
    """Read a statement or envelope file, at most ``max_document_bytes`` of it, and parse it.

    A statement is a document read whole, like an SBOM: ``provenance --recursive`` of a
    20,000-package system writes 40,000 dependencies, about 14 MB, 18 MB as an envelope, more
    than ``max_json_bytes`` (which bounds the small JSON documents inside images).

    Only a regular file (or a pipe given on purpose, like ``/dev/stdin``) is read; a directory
    or a device is refused rather than read forever."""
    label = f"{what} {path}" if what else path
    data = read_bounded(path, limits.current().max_document_bytes, MalformedAttestationError, label, allow_pipe=True)
    return parse_json(data, label)


# -- envelopes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    payload: bytes
    payload_type: str
    signatures: tuple[tuple[str, bytes], ...]  # (keyid, signature)

    def verified_by(self, key: VerifyKey) -> bool:
        message = pae(self.payload_type, self.payload)
        return any(key.verify(sig, message) for _keyid, sig in self.signatures)

    def verifying_key(self, keys: list[VerifyKey] | tuple[VerifyKey, ...]) -> VerifyKey | None:
        """The first of ``keys`` that one of the signatures verifies with, or None."""
        return next((key for key in keys if self.verified_by(key)), None)

    def statement(self, source: str) -> object:
        """The payload as JSON (bounded like the envelope itself)."""
        return parse_json(self.payload, f"{source}: the envelope's payload")


def is_envelope(data: object) -> bool:
    """Meant as a DSSE envelope (an object with ``payload``, ``payloadType`` or ``signatures``
    and no statement ``_type``): decode it with :func:`decode_envelope`, which says what is off."""
    return isinstance(data, dict) and "_type" not in data and bool(_KEYS & data.keys())


def _b64(value: str) -> bytes:
    """Standard or URL-safe base64, padded or not, as DSSE allows; nothing else."""
    if not re.fullmatch(r"[A-Za-z0-9+/\-_]*={0,2}", value) or ("-" in value or "_" in value) and ("+" in value or "/" in value):
        raise binascii.Error("characters outside the base64 alphabet")
    value = value.rstrip("=")
    if len(value) % 4 == 1:
        raise binascii.Error("bad length")
    return base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4), validate=True)


def decode_envelope(data: object, source: str, payload_type: str | None = PAYLOAD_TYPE) -> Envelope:
    """The one DSSE decoder: checks every field of the envelope and decodes it.

    ``payloadType`` must be ``payload_type`` (the in-toto type unless told otherwise; None
    accepts any string). :class:`MalformedAttestationError` names the first thing wrong."""

    def bad(what: str) -> MalformedAttestationError:
        return MalformedAttestationError(f"{source}: not a well-formed DSSE envelope: {what}")

    if not isinstance(data, dict):
        raise bad(f"a JSON {type(data).__name__}, not an object")
    missing = sorted(_KEYS - data.keys())
    if missing:
        raise bad(f"no {', '.join(missing)}")
    if not isinstance(data["payload"], str):
        raise bad("payload is not a string")
    try:
        payload = _b64(data["payload"])
    except (binascii.Error, ValueError):
        raise bad("payload is not base64") from None
    kind = data["payloadType"]
    if not isinstance(kind, str):
        raise bad("payloadType is not a string")
    if payload_type is not None and kind != payload_type:
        raise bad(f"payloadType is {shown(kind)}, expected {payload_type!r}")
    raw = data["signatures"]
    if not isinstance(raw, list):
        raise bad("signatures is not a list")
    if not raw:
        raise bad("no signatures")
    if len(raw) > MAX_SIGNATURES:
        raise bad(f"{len(raw)} signatures, more than the {MAX_SIGNATURES} any envelope needs")
    signatures = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise bad(f"signatures[{index}] is not an object")
        sig, keyid = entry.get("sig"), entry.get("keyid", "")
        if not isinstance(sig, str):
            raise bad(f"signatures[{index}].sig is not a string")
        if not isinstance(keyid, str):
            raise bad(f"signatures[{index}].keyid is not a string")
        try:
            decoded = _b64(sig)
        except (binascii.Error, ValueError):
            raise bad(f"signatures[{index}].sig is not base64") from None
        if not decoded or len(decoded) > MAX_SIGNATURE_BYTES:
            raise bad(f"signatures[{index}].sig is {len(decoded)} bytes, not a signature")
        signatures.append((keyid, decoded))
    return Envelope(payload, kind, tuple(signatures))


def parse_envelope(data: dict, source: str) -> Envelope:
    """:func:`decode_envelope` accepting any payload type (the caller checks it)."""
    return decode_envelope(data, source, payload_type=None)


def render_envelope(envelope: dict) -> str:
    return json.dumps(envelope, indent=2) + "\n"
