"""Ed25519 keys: key ids, key files (PKCS#8 PEM, mode 0600), and raw sign/verify.

A key id is the first 20 bytes of SHA-256 of the raw 32-byte public key, in hex: it is a
validator's address and the ``signer`` of a transaction.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import KeyFileError

SigningKey = Ed25519PrivateKey

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


def generate_key() -> SigningKey:
    return Ed25519PrivateKey.generate()


def public_bytes(key: SigningKey) -> bytes:
    """The raw 32-byte public key of a signing key."""
    return key.public_key().public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )


def key_id(public_key: bytes) -> str:
    """The key id (address) of a raw public key: 20 bytes of its SHA-256, hex."""
    return hashlib.sha256(public_key).digest()[:20].hex()


def key_id_of(key: SigningKey) -> str:
    return key_id(public_bytes(key))


def sign(key: SigningKey, message: bytes) -> bytes:
    return key.sign(message)


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is a valid Ed25519 signature of ``message``."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        _public_key(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=1024)
def _public_key(public_key: bytes) -> Ed25519PublicKey:
    """A raw public key loaded once: the few keys a validator checks (CSMS, aggregator,
    validators) are used for every transaction and vote."""
    return Ed25519PublicKey.from_public_bytes(public_key)


def write_key_file(path: Path, key: SigningKey) -> None:
    """Write a key as unencrypted PKCS#8 PEM, created with mode 0600; never overwrite."""
    pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key") from exc
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.chmod(path, 0o600)  # in case the umask removed bits we did not ask to keep


def read_key_file(path: Path) -> SigningKey:
    """Load an Ed25519 key file written by ``write_key_file``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return key
