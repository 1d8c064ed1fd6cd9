"""The one canonical encoding for every byte the ledger hashes or signs.

JSON with sorted keys, no whitespace, UTF-8, and integers only: a float anywhere is an
error, so that no signed value depends on how a platform prints numbers. Bytes are
carried as lowercase hex strings. Signed messages are wrapped with a domain tag and the
chain id (``signing_bytes``), so a signature made for one purpose or one chain can never
be replayed as another.

The bytes are those of Python's ``json`` with ``sort_keys`` and ``ensure_ascii=False``; the
work is done by ``orjson`` (the same bytes for every value the ledger encodes, 5-10 times
faster: every transaction is parsed and checked canonical on every validator), and by
``json`` where ``orjson`` cannot (integers past 64 bits, lone surrogates), so the rules
above are one and the same whichever library runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import orjson

from ledger.errors import EncodingError

# Domain tags: one per kind of signed or hashed message.
DOMAIN_TX = "v2g/tx/v1"
DOMAIN_VOTE = "v2g/vote/v1"
DOMAIN_HEADER = "v2g/header/v1"
DOMAIN_STATE = "v2g/state/v1"
DOMAIN_COMMIT = "v2g/commit/v1"
DOMAIN_VALIDATORS = "v2g/validators/v1"
DOMAIN_GENESIS = "v2g/genesis/v1"


def _find_problem(value: Any, path: str) -> str | None:
    """Where and why ``value`` has no canonical JSON form (None if it has one)."""
    if value is None or isinstance(value, bool | str | int):
        return None
    if isinstance(value, float):
        return f"{path}: floats are not allowed in canonical data, got {value!r}"
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path}: object keys must be strings, got {key!r}"
            problem = _find_problem(item, f"{path}.{key}")
            if problem:
                return problem
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = _find_problem(item, f"{path}[{index}]")
            if problem:
                return problem
        return None
    return f"{path}: cannot encode {type(value).__name__}"


def _is_plain(value: Any) -> bool:
    """Fast check for the common case: only dict, list, str, int, bool and None."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return True
    if t is dict:
        return all(type(k) is str and _is_plain(v) for k, v in value.items())
    if t is list or t is tuple:
        return all(_is_plain(v) for v in value)
    return False


def _check(value: Any, path: str) -> None:
    """Reject anything that has no single canonical JSON form."""
    if _is_plain(value):
        return
    problem = _find_problem(value, path)
    if problem:
        raise EncodingError(problem)


def encode(value: Any) -> bytes:
    """Canonical bytes of a JSON-like value (dicts, lists, str, int, bool, None)."""
    _check(value, "$")
    return encode_decoded(value)


# orjson's own serialisation of dataclasses and datetimes is refused, as json refuses them
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
)


def encode_decoded(value: Any) -> bytes:
    """``encode`` without the type walk, for values that ``decode`` produced (or parts of them).

    Such values can hold no float or foreign type, so the walk would only cost time.
    """
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:  # an integer past 64 bits, a lone surrogate, ...
        return _stdlib_encode(value)


def _stdlib_encode(value: Any) -> bytes:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def _reject_float(text: str) -> Any:
    raise EncodingError(f"floats are not allowed in canonical data, got {text}")


def _reject_constant(text: str) -> Any:
    raise EncodingError(f"{text} is not allowed in canonical data")


_SCANNER = json.JSONDecoder(parse_float=_reject_float, parse_constant=_reject_constant)


def scan(text: str, pos: int) -> tuple[Any, int]:
    """Parse the one JSON value that starts at ``text[pos]``; return it and where it ends.

    For splitting canonical data into parts without re-encoding them; whether each part is
    canonical is the caller's to check. Raises ``EncodingError``.
    """
    try:
        return _SCANNER.raw_decode(text, pos)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise EncodingError(f"not canonical JSON: {exc}") from exc


def decode(data: bytes, *, typed: bool = False) -> Any:
    """Parse canonical bytes; raise ``EncodingError`` unless they are exactly canonical.

    ``typed``: the caller checks the type of every number in the value (a schema of
    integers), so a float is left for it to refuse rather than looked for here.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return _stdlib_decode(data)  # it says why (or reads what orjson cannot)
    if is_canonical(value, data, typed=typed):
        return value
    return _stdlib_decode(data)


def is_canonical(value: Any, data: bytes, *, typed: bool = False) -> bool:
    """Whether ``data`` is the canonical encoding of ``value``, a value parsed from ``data``
    (so it holds only JSON types, floats perhaps among them: see ``decode`` for ``typed``)."""
    try:
        if encode_decoded(value) != data:
            return False
    except (UnicodeError, RecursionError, ValueError):  # no UTF-8 form: a lone surrogate
        return False
    return typed or not (_may_hold_float(data) and _holds_float(value))


def _may_hold_float(data: bytes) -> bool:
    """Whether canonical ``data`` may hold a float: its encoding has a '.' or a signed
    exponent (``1.5``, ``1e+16``, ``1e-07``), which a string may hold too."""
    return b"." in data or b"e+" in data or b"e-" in data


def _holds_float(value: Any) -> bool:
    if type(value) is float:
        return True
    stack = [value]
    while stack:
        container = stack.pop()
        kind = type(container)
        if kind is not dict and kind is not list:
            continue
        for item in container.values() if kind is dict else container:
            if type(item) is float:
                return True
            stack.append(item)
    return False


def _stdlib_decode(data: bytes) -> Any:
    try:
        value = _SCANNER.decode(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise EncodingError(f"not canonical JSON: {exc}") from exc
    try:
        canonical = _stdlib_encode(value) == data
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form
        canonical = False
    if not canonical:
        raise EncodingError("bytes are valid JSON but not in canonical form")
    return value


def signing_bytes(domain: str, chain_id: str, payload: Any, *, decoded: bool = False) -> bytes:
    """The bytes a signature covers: domain tag, chain id and payload, canonically encoded.

    ``decoded=True`` says ``payload`` came from ``decode`` and skips the type walk.
    """
    wrapped = {"chain_id": chain_id, "domain": domain, "payload": payload}
    return encode_decoded(wrapped) if decoded else encode(wrapped)


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
