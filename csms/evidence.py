"""Meter evidence: parse and verify a session's OCMF records (DESIGN.md, "Meter evidence: OCMF").

An independent reader of what stations sign: the ECDSA secp256r1 SHA-256 signature over the
exact payload bytes against the meter key registered for the station, then pairing (one
Begin first, one End last, Intermediate records between, pagination strictly increasing, one
meter, both registers in every record, registers and clock never going backwards).

Bad evidence is a result, not an exception: :func:`check_evidence` always returns an
:class:`EvidenceCheck` saying why, so a session is flagged for review and nothing is lost.
Only the registration of a malformed meter key raises (:class:`MeterKeyError`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from csms.errors import ConfigError
from csms.numbers import NumberOutOfBounds, bounded_decimal, bounded_int, within_wh

REGISTER_IMPORT = "01-00:B2.08.00*FF"
REGISTER_EXPORT = "01-00:C2.08.00*FF"
SIGNATURE_ALGORITHM = "ECDSA-secp256r1-SHA256"
PUBLIC_KEY_PREFIX = "oca:base16:asn1:"
NATURES = {"B": "Begin", "C": "Intermediate", "E": "End"}
_PAGE = re.compile(r"^([A-Z])(\d+)$")
_UNIT_WH = {"kWh": Decimal(1000), "Wh": Decimal(1)}


class MeterKeyError(ConfigError):
    """A meter public key given for registration is not an ECDSA P-256 key."""


class _Bad(Exception):
    """Internal: evidence failed a check (code + human reason); turned into a result."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RecordDigest:
    """What the ledger keeps of one raw record: its kind and the SHA-256 of its exact text."""

    nature: str  # Begin | Intermediate | End | Unknown (unparseable)
    sha256: str


@dataclass(frozen=True, slots=True)
class MeterSnapshot:
    """Both registers (Wh) at one signed instant."""

    at: datetime
    nature: str
    import_wh: int
    export_wh: int
    page: int


@dataclass(frozen=True, slots=True)
class EvidenceCheck:
    """The verdict on a session's records; ``code``/``reason`` say why when not ``ok``."""

    ok: bool
    code: str | None
    reason: str | None
    snapshots: tuple[MeterSnapshot, ...]
    records: tuple[RecordDigest, ...]
    meter_key_sha256: str


@dataclass(frozen=True, slots=True)
class _Parsed:
    text: str
    payload_text: str
    payload: dict[str, Any]
    signature: dict[str, Any]
    sha256: str


def parse_public_key(value: str | bytes) -> ec.EllipticCurvePublicKey:
    """Read a meter key: ``oca:base16:asn1:<hex>`` (plain or Base64, as in OCPP), PEM or DER."""
    raw = value.encode("ascii", "replace") if isinstance(value, str) else value
    text = raw.strip()
    try:
        if not text.startswith(b"oca:") and not text.startswith(b"-----"):
            try:
                decoded = base64.b64decode(text, validate=True)
                if decoded.startswith(b"oca:"):
                    text = decoded
            except binascii.Error:
                pass
        if text.startswith(PUBLIC_KEY_PREFIX.encode()):
            der = bytes.fromhex(text[len(PUBLIC_KEY_PREFIX) :].decode("ascii"))
            key = serialization.load_der_public_key(der)
        elif text.startswith(b"-----"):
            key = serialization.load_pem_public_key(text)
        else:
            key = serialization.load_der_public_key(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MeterKeyError(f"not a meter public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise MeterKeyError("expected an ECDSA secp256r1 (P-256) public key")
    return key


_KEY_FORMATS = "a P-256 public key as PEM, DER or oca:base16:asn1:<hex>"


def _is_private_key(data: bytes) -> bool:
    if b"PRIVATE KEY-----" in data:
        return True
    try:
        serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError):
        return False
    return True


def load_meter_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """Read a meter public key file (PEM, DER or the ``oca:base16:asn1:`` text) to register.

    Only a P-256 public key passes: a private key is refused (it must never be stored, and
    the message says to register the public half), and so is anything else, binary or text.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MeterKeyError(f"{path}: cannot read meter key: {exc.strerror}") from exc
    return read_meter_public_key(data, str(path))


def read_meter_public_key(data: bytes, source: str) -> ec.EllipticCurvePublicKey:
    """A meter public key to register from ``data`` (a file's bytes or inline text), with
    the checks of ``load_meter_public_key``; errors name ``source``."""
    if len(data) > 64 * 1024:
        raise MeterKeyError(f"{source}: not a meter key (expected {_KEY_FORMATS})")
    if _is_private_key(data):
        raise MeterKeyError(
            f"{source}: this is a private key; register the meter's public key only "
            "(e.g. the FILE.pub.pem written beside the key)"
        )
    try:
        return parse_public_key(data)
    except MeterKeyError as exc:
        detail = str(exc) if "P-256" in str(exc) else f"not a meter key (expected {_KEY_FORMATS})"
        raise MeterKeyError(f"{source}: {detail}") from exc


def public_key_pem(key: ec.EllipticCurvePublicKey) -> str:
    """The key as the PEM text the registry stores."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def key_fingerprint(key: ec.EllipticCurvePublicKey) -> str:
    """SHA-256 (hex) of the key's DER SubjectPublicKeyInfo: what goes on-chain."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def decode_signed_meter_data(signed_meter_data: str) -> str:
    """The OCMF text inside an OCPP ``signedMeterData`` (Base64); raises ValueError if not."""
    try:
        return base64.b64decode(signed_meter_data, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"signedMeterData is not Base64 of UTF-8 text: {exc}") from exc


def check_evidence(
    records: Sequence[str],
    meter_key: ec.EllipticCurvePublicKey,
    *,
    expected_id: str | None = None,
    carried_keys: Sequence[str] = (),
    window: tuple[datetime, datetime] | None = None,
) -> EvidenceCheck:
    """Verify a session's OCMF records against the station's registered meter key.

    ``records`` are the record texts in any order (exact duplicates, e.g. a resent event,
    count once). ``expected_id`` is the session's idToken, compared with each record's ``ID``.
    ``carried_keys`` are the ``publicKey`` values that came with the records; each must be the
    registered key. ``window`` (earliest, latest) bounds the reading times, so records of an
    earlier session of the same token cannot be passed off as this one's.
    """
    fingerprint = key_fingerprint(meter_key)
    unique = list(dict.fromkeys(records))
    parsed: list[_Parsed] = []
    unparsed: list[RecordDigest] = []
    failure: _Bad | None = None
    for index, text in enumerate(unique):
        sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
        try:
            parsed.append(_parse(text, sha, index))
        except _Bad as bad:
            failure = failure or bad
            unparsed.append(RecordDigest(nature="Unknown", sha256=sha))
    snapshots: list[MeterSnapshot] = []
    if failure is None:
        try:
            _check_carried_keys(carried_keys, meter_key)
            for record in parsed:
                _verify_signature(record, meter_key)
            snapshots = _snapshots(parsed, expected_id)
            _check_window(snapshots, window)
        except _Bad as bad:
            failure = bad
    ordered = sorted(parsed, key=_page_key)
    digests = [RecordDigest(nature=_nature_of(r), sha256=r.sha256) for r in ordered] + unparsed
    return EvidenceCheck(
        ok=failure is None,
        code=None if failure is None else failure.code,
        reason=None if failure is None else failure.reason,
        snapshots=tuple(snapshots),
        records=tuple(digests),
        meter_key_sha256=fingerprint,
    )


@dataclass(frozen=True, slots=True)
class RecordCheck:
    """One record on its own, for a reviewer's table: what it reads and whether it checks.

    ``problem`` is None when the record parses, its signature verifies against the key and
    its readings are well formed (the checks across records are :func:`check_evidence`'s).
    """

    sha256: str
    nature: str
    page: int | None
    at: datetime | None
    import_wh: int | None
    export_wh: int | None
    signature: str  # the signature value (SD) as sent, hex
    problem: str | None


def record_checks(
    records: Sequence[str],
    meter_key: ec.EllipticCurvePublicKey,
    *,
    expected_id: str | None = None,
    limit: int | None = None,
) -> tuple[RecordCheck, ...]:
    """Each distinct record checked alone, in page order (unparseable records last).

    With ``limit``, only the first and last ``limit // 2`` records are checked and returned
    (the rest are only parsed, to be ordered): a reviewer's table stays bounded however many
    records a station sent.
    """
    parsed: list[tuple[tuple[int, str], _Parsed | None, str, str | None]] = []
    for index, text in enumerate(dict.fromkeys(records)):
        sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
        try:
            record = _parse(text, sha, index)
            parsed.append((_page_key(record), record, sha, None))
        except _Bad as bad:
            parsed.append(((1 << 62, sha), None, sha, bad.reason))
    parsed.sort(key=lambda item: item[0])
    if limit is not None and len(parsed) > limit:
        parsed = parsed[: limit // 2] + parsed[len(parsed) - (limit - limit // 2) :]
    return tuple(_check_alone(r, sha, bad, meter_key, expected_id) for _, r, sha, bad in parsed)


def _check_alone(
    record: _Parsed | None,
    sha: str,
    unparsed: str | None,
    meter_key: ec.EllipticCurvePublicKey,
    expected_id: str | None,
) -> RecordCheck:
    if record is None:
        return RecordCheck(sha, "Unknown", None, None, None, None, "", unparsed)
    problem: str | None = None
    snapshot: MeterSnapshot | None = None
    try:
        _verify_signature(record, meter_key)
    except _Bad as bad:
        problem = bad.reason
    try:
        snapshot = _snapshot(record, expected_id)
    except _Bad as bad:
        problem = problem or bad.reason
    return RecordCheck(
        sha256=sha,
        nature=_nature_of(record),
        page=snapshot.page if snapshot else None,
        at=snapshot.at if snapshot else None,
        import_wh=snapshot.import_wh if snapshot else None,
        export_wh=snapshot.export_wh if snapshot else None,
        signature=str(record.signature.get("SD", "")),
        problem=problem,
    )


def _parse(text: str, sha: str, index: int) -> _Parsed:
    if not text.startswith("OCMF|"):
        raise _Bad("malformed", f"record {index + 1} does not start with 'OCMF|'")
    body = text[len("OCMF|") :]
    cut = body.rfind("|")
    if cut < 0:
        raise _Bad("malformed", f"record {index + 1} has no signature section")
    payload_text, signature_text = body[:cut], body[cut + 1 :]
    try:
        payload = json.loads(payload_text, parse_float=bounded_decimal, parse_int=bounded_int)
        signature = json.loads(signature_text)
    except NumberOutOfBounds as exc:
        raise _Bad("out_of_range", f"record {index + 1}: {exc}") from exc
    except ValueError as exc:
        raise _Bad("malformed", f"record {index + 1} is not OCMF JSON: {exc}") from exc
    if not isinstance(payload, dict) or not isinstance(signature, dict):
        raise _Bad("malformed", f"record {index + 1}: payload and signature must be objects")
    return _Parsed(text, payload_text, payload, signature, sha)


def _verify_signature(record: _Parsed, key: ec.EllipticCurvePublicKey) -> None:
    algorithm = record.signature.get("SA", SIGNATURE_ALGORITHM)
    encoding = record.signature.get("SE", "hex")
    if algorithm != SIGNATURE_ALGORITHM or encoding != "hex":
        raise _Bad("unsupported_algorithm", f"signature {algorithm}/{encoding} is not supported")
    try:
        der = bytes.fromhex(str(record.signature.get("SD", "")))
        key.verify(der, record.payload_text.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    except (ValueError, InvalidSignature) as exc:
        page = record.payload.get("PG", "?")
        raise _Bad(
            "bad_signature", f"record {page} ({record.sha256[:12]}): signature does not verify"
        ) from exc


def _check_carried_keys(carried: Sequence[str], key: ec.EllipticCurvePublicKey) -> None:
    expected = key_fingerprint(key)
    for value in carried:
        try:
            same = key_fingerprint(parse_public_key(value)) == expected
        except MeterKeyError:
            same = False
        if not same:
            raise _Bad("wrong_meter_key", "a record came with a key other than the registered one")


def _page_key(record: _Parsed) -> tuple[int, str]:
    match = _PAGE.match(str(record.payload.get("PG", "")))
    return (int(match.group(2)), record.sha256) if match else (-1, record.sha256)


def _series(record: _Parsed) -> str:
    match = _PAGE.match(str(record.payload.get("PG", "")))
    return match[1] if match else ""


def _nature_of(record: _Parsed) -> str:
    readings = record.payload.get("RD")
    if isinstance(readings, list) and readings and isinstance(readings[0], dict):
        return NATURES.get(str(readings[0].get("TX")), "Unknown")
    return "Unknown"


def _snapshots(parsed: list[_Parsed], expected_id: str | None) -> list[MeterSnapshot]:
    if not parsed:
        raise _Bad("empty", "no signed meter records")
    ordered = sorted(parsed, key=_page_key)
    snapshots = [_snapshot(record, expected_id) for record in ordered]
    first = ordered[0].payload
    for record in ordered[1:]:
        for field in ("MS", "GS"):
            if record.payload.get(field) != first.get(field):
                raise _Bad("meter_mismatch", f"records come from different meters ({field})")
        if _series(record) != _series(ordered[0]):
            raise _Bad("pagination", "records mix pagination series")
    for before, after in itertools.pairwise(snapshots):
        if after.page <= before.page:
            raise _Bad("pagination", f"pagination does not increase at {after.page}")
        if after.at < before.at:
            raise _Bad("time_backwards", f"record {after.page} is older than record {before.page}")
        for name in ("import_wh", "export_wh"):
            if getattr(after, name) < getattr(before, name):
                register = REGISTER_IMPORT if name == "import_wh" else REGISTER_EXPORT
                raise _Bad(
                    "register_backwards",
                    f"register {register} goes back from {getattr(before, name)} Wh "
                    f"to {getattr(after, name)} Wh at record {after.page}",
                )
    natures = [s.nature for s in snapshots]
    if natures[0] != "Begin":
        raise _Bad("missing_begin", "the first record is not a Begin reading")
    if natures[-1] != "End" or len(natures) < 2:
        raise _Bad("missing_end", "the last record is not an End reading")
    if any(n != "Intermediate" for n in natures[1:-1]):
        raise _Bad("misplaced_reading", "a Begin or End record sits inside the session")
    return snapshots


def _check_window(snapshots: list[MeterSnapshot], window: tuple[datetime, datetime] | None) -> None:
    if window is None:
        return
    earliest, latest = window
    for snapshot in snapshots:
        if not earliest <= snapshot.at <= latest:
            raise _Bad(
                "outside_session",
                f"record {snapshot.page} was read at {snapshot.at.isoformat()}, "
                "outside the transaction",
            )


def _snapshot(record: _Parsed, expected_id: str | None) -> MeterSnapshot:
    payload = record.payload
    page_match = _PAGE.match(str(payload.get("PG", "")))
    if page_match is None:
        raise _Bad("pagination", f"record {record.sha256[:12]} has no valid PG")
    page = int(page_match[2])
    if expected_id is not None and payload.get("ID") != expected_id:
        raise _Bad("identification_mismatch", f"record {page} names another idToken")
    readings = payload.get("RD")
    if not isinstance(readings, list) or not readings:
        raise _Bad("malformed", f"record {page} has no readings")
    values: dict[str, int] = {}
    times: set[datetime] = set()
    kinds: set[str] = set()
    time_text: Any = None
    kind: Any = None
    for reading in readings:
        if not isinstance(reading, dict):
            raise _Bad("malformed", f"record {page}: a reading is not an object")
        time_text = reading.get("TM", time_text)  # OCMF lets later readings inherit TM/TX
        kind = reading.get("TX", kind)
        register = reading.get("RI")
        if register not in (REGISTER_IMPORT, REGISTER_EXPORT):
            continue  # other registers are not settled on
        if register in values:
            raise _Bad("malformed", f"record {page} repeats register {register}")
        if reading.get("ST", "G") != "G":
            raise _Bad(
                "reading_error", f"record {page}: register {register} status {reading['ST']}"
            )
        values[register] = _wh(reading, page)
        times.add(_time(time_text, page))
        kinds.add(str(kind))
    for register in (REGISTER_IMPORT, REGISTER_EXPORT):
        if register not in values:
            raise _Bad("missing_register", f"record {page} lacks register {register}")
    if len(times) != 1 or len(kinds) != 1:
        raise _Bad("malformed", f"record {page} mixes reading times or kinds")
    (tx,) = kinds
    if tx not in NATURES:
        raise _Bad("bad_reading_type", f"record {page} has reading type {tx!r}")
    return MeterSnapshot(
        at=times.pop(),
        nature=NATURES[tx],
        import_wh=values[REGISTER_IMPORT],
        export_wh=values[REGISTER_EXPORT],
        page=page,
    )


def _wh(reading: dict[str, Any], page: int) -> int:
    unit = reading.get("RU")
    value = reading.get("RV")
    if unit not in _UNIT_WH:
        raise _Bad("bad_unit", f"record {page}: unit {unit!r} is not kWh or Wh")
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise _Bad("malformed", f"record {page}: register value {value!r} is not a number")
    try:
        wh = Decimal(value) * _UNIT_WH[unit]
    except InvalidOperation as exc:
        raise _Bad("malformed", f"record {page}: bad register value") from exc
    if wh != wh.to_integral_value() or wh < 0:
        raise _Bad("bad_unit", f"record {page}: register value {value} {unit} is not whole Wh")
    if not within_wh(int(wh)):
        raise _Bad("out_of_range", f"record {page}: register value is beyond 64-bit Wh")
    return int(wh)


def _time(text: Any, page: int) -> datetime:
    if not isinstance(text, str):
        raise _Bad("malformed", f"record {page}: reading has no time")
    stamp = text.split(" ")[0]
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S,%f%z")
    except ValueError as exc:
        raise _Bad("malformed", f"record {page}: bad reading time {text!r}") from exc
