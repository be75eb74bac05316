"""Signing keys in PEM: Ed25519 and ECDSA P-256, through ``cryptography``.

Private keys are PKCS#8 PEM (optionally encrypted: the password comes from
``$SBOMGEN_KEY_PASSWORD``), public keys SubjectPublicKeyInfo PEM.  A key's id is the SHA-256
of its public key in DER, as hex: the same for a private key and its public half.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from sbomgen.errors import LimitExceededError, SigningKeyError
from sbomgen.fsutil import read_bounded, write_atomic

KEY_TYPES = ("ed25519", "ecdsa-p256")
#: a PEM key file is under 1 KiB (an encrypted one a little more); nothing larger is read
MAX_KEY_BYTES = 64 * 1024


def _key_id(public_key) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _check_supported(key, path: str) -> None:
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) and isinstance(key.curve, ec.SECP256R1):
        return
    raise SigningKeyError(f"{path}: unsupported key type {type(key).__name__} (use Ed25519 or ECDSA P-256)")


@dataclass(frozen=True)
class SigningKey:
    key: object
    keyid: str

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(data)
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))


@dataclass(frozen=True)
class VerifyKey:
    key: object
    keyid: str

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            if isinstance(self.key, ed25519.Ed25519PublicKey):
                self.key.verify(signature, data)
            else:
                self.key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True


def _read(path: str) -> bytes:
    """A key file's bytes: a regular file of at most :data:`MAX_KEY_BYTES` (never a device,
    a fifo or a directory, which could be read forever or not at all)."""
    try:
        return read_bounded(path, MAX_KEY_BYTES, SigningKeyError, f"key {path}")
    except LimitExceededError:
        raise SigningKeyError(f"{path} is not a PEM key: larger than {MAX_KEY_BYTES} bytes") from None


def load_signing_key(path: str) -> SigningKey:
    data = _read(path)
    password = os.environ.get("SBOMGEN_KEY_PASSWORD")
    try:
        key = serialization.load_pem_private_key(data, password.encode() if password else None)
    except TypeError as exc:
        raise SigningKeyError(f"{path}: {exc} (set SBOMGEN_KEY_PASSWORD for an encrypted key)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise SigningKeyError(f"{path} is not a PEM private key (or the password is wrong)") from None
    _check_supported(key, path)
    return SigningKey(key, _key_id(key.public_key()))


def load_verify_key(path: str) -> VerifyKey:
    """A public key; a private key file is accepted too (its public half is used)."""
    data = _read(path)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        try:
            key = serialization.load_pem_private_key(data, None).public_key()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise SigningKeyError(f"{path} is not a PEM public key") from None
    _check_supported(key, path)
    return VerifyKey(key, _key_id(key))


def generate(key_type: str, private_path: str, public_path: str) -> str:
    """Write a new key pair; returns its key id.  The private key file is mode 0600."""
    if key_type == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif key_type == "ecdsa-p256":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise SigningKeyError(f"unknown key type {key_type!r} (choose from: {', '.join(KEY_TYPES)})")
    password = os.environ.get("SBOMGEN_KEY_PASSWORD")
    encryption = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    write_atomic(private_path, private.decode(), mode=0o600)
    write_atomic(public_path, public.decode())
    return _key_id(key.public_key())
