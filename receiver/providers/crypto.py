"""Signature helpers for the RSA and ECDSA providers (DANA, Paddle Classic, PayPal, Amazon).

Keys are parsed by the core (``tenrusl/providers/keys.py``), so every process checks a key setting
the same way; verifying and signing with them happens here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from tenrusl.providers.keys import load_private_key


def b64decode_strict(value: str) -> bytes | None:
    """Standard base64 (padding required), or None."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def rsa_verifies(keys: Iterable[PublicKeyTypes], signature: bytes, message: bytes, digest: str) -> bool:
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
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the signing key must be an RSA private key")
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
