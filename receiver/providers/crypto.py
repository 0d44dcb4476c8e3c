"""Public-key helpers for the RSA and ECDSA providers (DANA, Paddle Classic, PayPal, Amazon).

A key setting may hold several keys for rotation: concatenated PEM blocks, or bare base64
SubjectPublicKeyInfo values separated by commas or whitespace. ``\\n`` escapes (common in
environment files) are accepted.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)

PublicKey = Any  # rsa.RSAPublicKey or ec.EllipticCurvePublicKey


def _normalise(text: str) -> str:
    return text.replace("\\n", "\n").strip()


def load_public_keys(text: str) -> tuple[PublicKey, ...]:
    """Every public key in ``text``; ValueError when one of them is not a key."""
    text = _normalise(text)
    if not text:
        return ()
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(text)]
    if not blocks:
        blocks = [
            "-----BEGIN PUBLIC KEY-----\n" + part + "\n-----END PUBLIC KEY-----"
            for part in re.split(r"[\s,]+", text)
            if part
        ]
    keys = []
    for block in blocks:
        if "CERTIFICATE" in block.split("\n", 1)[0]:
            from cryptography import x509

            keys.append(x509.load_pem_x509_certificate(block.encode()).public_key())
        else:
            keys.append(serialization.load_pem_public_key(block.encode()))
    return tuple(keys)


def load_private_key(text: str) -> Any:
    """A PEM private key (the simulator's signing key); ValueError when it is not one."""
    text = _normalise(text)
    if not text:
        raise ValueError("no private key configured")
    if "-----BEGIN" not in text:
        text = "-----BEGIN PRIVATE KEY-----\n" + text + "\n-----END PRIVATE KEY-----"
    return serialization.load_pem_private_key(text.encode(), password=None)


def b64decode_strict(value: str) -> bytes | None:
    """Standard base64 (padding required), or None."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def rsa_verifies(keys: Iterable[PublicKey], signature: bytes, message: bytes, digest: str) -> bool:
    """RSASSA-PKCS1-v1_5 with ``digest`` ("sha256" or "sha1"), any key."""
    algorithm = hashes.SHA256() if digest == "sha256" else hashes.SHA1()
    for key in keys:
        if not isinstance(key, rsa.RSAPublicKey):
            continue
        try:
            key.verify(signature, message, padding.PKCS1v15(), algorithm)
            return True
        except InvalidSignature:
            continue
    return False


def rsa_sign(private_key_pem: str, message: bytes, digest: str) -> bytes:
    key = load_private_key(private_key_pem)
    algorithm = hashes.SHA256() if digest == "sha256" else hashes.SHA1()
    return key.sign(message, padding.PKCS1v15(), algorithm)


def ec_p384_from_jwk(jwk: dict[str, Any]) -> ec.EllipticCurvePublicKey | None:
    """An EC P-384 key from a JWK (x and y of 48 bytes each), or None when it is not one."""
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-384":
        return None
    try:
        x, y = (base64.urlsafe_b64decode(str(jwk[c]) + "=" * (-len(str(jwk[c])) % 4)) for c in ("x", "y"))
    except (KeyError, binascii.Error, ValueError):
        return None
    if len(x) != 48 or len(y) != 48:
        return None
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP384R1()
    )
    try:
        return numbers.public_key()
    except ValueError:
        return None


def ecdsa_sha384_verifies(key: ec.EllipticCurvePublicKey, der_signature: bytes, message: bytes) -> bool:
    try:
        key.verify(der_signature, message, ec.ECDSA(hashes.SHA384()))
        return True
    except (InvalidSignature, ValueError):
        return False
