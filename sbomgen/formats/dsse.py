"""DSSE envelopes (Dead Simple Signing Envelope, v1) around in-toto statements.

The signature covers the pre-authentication encoding
``PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` (lengths in ASCII
decimal), never the raw payload, exactly as the DSSE specification defines it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from sbomgen.errors import MalformedAttestationError
from sbomgen.keys import SigningKey, VerifyKey

PAYLOAD_TYPE = "application/vnd.in-toto+json"


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


@dataclass(frozen=True)
class Envelope:
    payload: bytes
    payload_type: str
    signatures: tuple[tuple[str, bytes], ...]  # (keyid, signature)

    def verified_by(self, key: VerifyKey) -> bool:
        message = pae(self.payload_type, self.payload)
        return any(key.verify(sig, message) for _keyid, sig in self.signatures)


def is_envelope(data: object) -> bool:
    return isinstance(data, dict) and "payload" in data and "signatures" in data


def parse_envelope(data: dict, source: str) -> Envelope:
    """Check the envelope's shape and decode it; :class:`MalformedAttestationError` if it is off."""
    try:
        payload = base64.b64decode(data["payload"], validate=True)
        payload_type = data["payloadType"]
        signatures = tuple((s.get("keyid", ""), base64.b64decode(s["sig"], validate=True)) for s in data["signatures"])
    except (KeyError, TypeError, AttributeError, binascii.Error, ValueError) as exc:
        raise MalformedAttestationError(f"{source}: not a well-formed DSSE envelope ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload_type, str) or not signatures:
        raise MalformedAttestationError(f"{source}: DSSE envelope has no payloadType or no signatures")
    return Envelope(payload, payload_type, signatures)


def render_envelope(envelope: dict) -> str:
    return json.dumps(envelope, indent=2) + "\n"
