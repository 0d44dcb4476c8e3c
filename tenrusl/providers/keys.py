"""Parsing public and private keys from settings: pure, so that every process checks them alike.

A key setting may hold several keys for rotation: concatenated PEM blocks (public keys or
certificates), or bare base64 SubjectPublicKeyInfo values separated by commas or whitespace.
``\\n`` escapes (common in environment files) are accepted. The receiver verifies with the keys;
the retry runner only checks that they parse, at start-up.
"""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

__all__ = ["PrivateKeyTypes", "PublicKeyTypes", "load_private_key", "load_public_keys"]

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)


def _normalise(text: str) -> str:
    return text.replace("\\n", "\n").strip()


def load_public_keys(text: str) -> tuple[PublicKeyTypes, ...]:
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
    keys: list[PublicKeyTypes] = []
    try:
        for block in blocks:
            if "CERTIFICATE" in block.split("\n", 1)[0]:
                keys.append(x509.load_pem_x509_certificate(block.encode()).public_key())
            else:
                keys.append(serialization.load_pem_public_key(block.encode()))
    except UnsupportedAlgorithm as exc:
        raise ValueError(f"unsupported key type: {exc}") from None
    return tuple(keys)


def load_private_key(text: str) -> PrivateKeyTypes:
    """A PEM private key (the simulator's signing key); ValueError when it is not one."""
    text = _normalise(text)
    if not text:
        raise ValueError("no private key configured")
    if "-----BEGIN" not in text:
        text = "-----BEGIN PRIVATE KEY-----\n" + text + "\n-----END PRIVATE KEY-----"
    try:
        return serialization.load_pem_private_key(text.encode(), password=None)
    except UnsupportedAlgorithm as exc:
        raise ValueError(f"unsupported key type: {exc}") from None
