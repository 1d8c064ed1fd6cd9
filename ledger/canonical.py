"""The one canonical encoding for every byte the ledger hashes or signs.

JSON with sorted keys, no whitespace, UTF-8, and integers only: a float anywhere is an
error, so that no signed value depends on how a platform prints numbers. Bytes are
carried as lowercase hex strings. Signed messages are wrapped with a domain tag and the
chain id (``signing_bytes``), so a signature made for one purpose or one chain can never
be replayed as another.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ledger.errors import EncodingError

# Domain tags: one per kind of signed or hashed message.
DOMAIN_TX = "v2g/tx/v1"
DOMAIN_VOTE = "v2g/vote/v1"
DOMAIN_HEADER = "v2g/header/v1"
DOMAIN_STATE = "v2g/state/v1"
DOMAIN_COMMIT = "v2g/commit/v1"
DOMAIN_VALIDATORS = "v2g/validators/v1"
DOMAIN_GENESIS = "v2g/genesis/v1"


def _check(value: Any, path: str) -> None:
    """Reject anything that has no single canonical JSON form."""
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        raise EncodingError(f"{path}: floats are not allowed in canonical data, got {value!r}")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodingError(f"{path}: object keys must be strings, got {key!r}")
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    raise EncodingError(f"{path}: cannot encode {type(value).__name__}")


def encode(value: Any) -> bytes:
    """Canonical bytes of a JSON-like value (dicts, lists, str, int, bool, None)."""
    _check(value, "$")
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def _reject_float(text: str) -> Any:
    raise EncodingError(f"floats are not allowed in canonical data, got {text}")


def _reject_constant(text: str) -> Any:
    raise EncodingError(f"{text} is not allowed in canonical data")


def decode(data: bytes) -> Any:
    """Parse canonical bytes; raise ``EncodingError`` unless they are exactly canonical."""
    try:
        value = json.loads(
            data.decode("utf-8"), parse_float=_reject_float, parse_constant=_reject_constant
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise EncodingError(f"not canonical JSON: {exc}") from exc
    if encode(value) != data:
        raise EncodingError("bytes are valid JSON but not in canonical form")
    return value


def signing_bytes(domain: str, chain_id: str, payload: Any) -> bytes:
    """The bytes a signature covers: domain tag, chain id and payload, canonically encoded."""
    return encode({"chain_id": chain_id, "domain": domain, "payload": payload})


def digest(domain: str, payload: Any) -> bytes:
    """SHA-256 of a domain-tagged canonical payload (for hashes that are not signed)."""
    return hashlib.sha256(encode({"domain": domain, "payload": payload})).digest()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def to_hex(data: bytes) -> str:
    return data.hex()


def from_hex(text: Any, *, field: str = "value", length: int | None = None) -> bytes:
    """Parse a lowercase hex string (the only form bytes take in canonical data)."""
    if not isinstance(text, str):
        raise EncodingError(f"{field}: expected a hex string, got {type(text).__name__}")
    if text != text.lower():
        raise EncodingError(f"{field}: hex must be lowercase")
    try:
        data = bytes.fromhex(text)
    except ValueError as exc:
        raise EncodingError(f"{field}: not hex: {text[:40]!r}") from exc
    if len(data) * 2 != len(text):
        raise EncodingError(f"{field}: hex must have no spaces")
    if length is not None and len(data) != length:
        raise EncodingError(f"{field}: expected {length} bytes, got {len(data)}")
    return data
