"""Schema checks for transaction records: exact fields, exact types, integers only.

Each ``check_*`` raises ``SchemaError`` naming the field, what was expected and what was
received. Booleans are not integers here, and no field may be missing or extra.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ledger.errors import SchemaError
from ledger.tx import (
    CREDIT,
    EVIDENCE,
    KEY_AUTHORISATION,
    SCHEMA_VERSION,
    SETTLEMENT,
    TOPUP,
    VALIDATOR_UPDATE,
    CanonicalRecord,
)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")
_CURRENCY = re.compile(r"[A-Z]{3}")
NATURES = ("Begin", "Intermediate", "End")
PAYMENTS = ("invoice", "ledger")

SIGNED = ("signer", "sig")
SETTLEMENT_FIELDS = (
    "type",
    "schema",
    "settlement_id",
    "transaction_id",
    "operator",
    "evse_id",
    "ev",
    "start",
    "end",
    "energy",
    "tariff",
    "intervals",
    "amount",
    "payment",
    "evidence",
    *SIGNED,
)
CREDIT_FIELDS = (*SETTLEMENT_FIELDS, "corrects")
TOPUP_FIELDS = ("type", "schema", "topup_id", "account", "amount", *SIGNED)
VALIDATOR_UPDATE_FIELDS = ("type", "schema", "update_id", "validators", *SIGNED)
KEY_AUTHORISATION_FIELDS = ("type", "schema", "update_id", "public_key", "authorised", *SIGNED)
EVIDENCE_FIELDS = ("type", "schema", "vote_a", "vote_b")


def _fields(data: Any, fields: tuple[str, ...], where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise SchemaError(
            f"{where}: not an object", expected="object", received=type(data).__name__
        )
    keys = set(data)
    if keys != set(fields):
        raise SchemaError(
            f"{where}: wrong fields",
            expected=sorted(fields),
            received=sorted(keys),
        )
    return data


INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # every integer of a record (amounts, Wh, prices)


def _in_range(value: int) -> bool:
    return INT_MIN <= value <= INT_MAX


def _int(value: Any, where: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SchemaError(f"{where}: not an integer", expected="integer", received=value)
    if not _in_range(value):
        raise SchemaError(
            f"{where}: outside the signed 64-bit range",
            expected=f"{INT_MIN}..{INT_MAX}",
            received=f"{len(str(value))}-digit integer",
        )
    if minimum is not None and value < minimum:
        raise SchemaError(f"{where}: too small", expected=f">= {minimum}", received=value)
    return value


def _str(value: Any, where: str, *, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise SchemaError(f"{where}: not a non-empty string", expected="string", received=value)
    if pattern is not None and not pattern.fullmatch(value):
        raise SchemaError(f"{where}: bad format", expected=pattern.pattern, received=value)
    return value


def _choice(value: Any, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise SchemaError(f"{where}: not an allowed value", expected=choices, received=value)
    return str(value)


def _list(value: Any, where: str, *, min_size: int = 0) -> list[Any]:
    if not isinstance(value, list) or len(value) < min_size:
        raise SchemaError(f"{where}: not a list of at least {min_size}", received=value)
    return value


def _header(record: Mapping[str, Any], kind: str, fields: tuple[str, ...]) -> None:
    _fields(record, fields, kind)
    if _int(record["schema"], f"{kind}.schema") != SCHEMA_VERSION:
        raise SchemaError(f"{kind}.schema", expected=SCHEMA_VERSION, received=record["schema"])
    if "signer" in fields:
        _str(record["signer"], f"{kind}.signer")
        _str(record["sig"], f"{kind}.sig", pattern=_HEX128)


def _check_settlement_like(record: Mapping[str, Any], kind: str, fields: tuple[str, ...]) -> None:
    _header(record, kind, fields)
    for name in ("settlement_id", "transaction_id", "operator", "evse_id", "ev", "start", "end"):
        _str(record[name], f"{kind}.{name}")
    energy = _fields(record["energy"], ("import_wh", "export_wh"), f"{kind}.energy")
    _int(energy["import_wh"], f"{kind}.energy.import_wh", minimum=0)
    _int(energy["export_wh"], f"{kind}.energy.export_wh", minimum=0)
    tariff = _fields(record["tariff"], ("id", "sha256", "currency"), f"{kind}.tariff")
    _str(tariff["id"], f"{kind}.tariff.id")
    _str(tariff["sha256"], f"{kind}.tariff.sha256", pattern=_HEX64)
    _str(tariff["currency"], f"{kind}.tariff.currency", pattern=_CURRENCY)
    intervals = _list(record["intervals"], f"{kind}.intervals", min_size=1)
    for i, item in enumerate(intervals):
        where = f"{kind}.intervals[{i}]"
        _fields(item, ("start", "import_wh", "export_wh", "import_price", "export_price"), where)
        _str(item["start"], f"{where}.start")
        _int(item["import_wh"], f"{where}.import_wh", minimum=0)
        _int(item["export_wh"], f"{where}.export_wh", minimum=0)
        _int(item["import_price"], f"{where}.import_price")
        _int(item["export_price"], f"{where}.export_price")
    _int(record["amount"], f"{kind}.amount")
    _choice(record["payment"], PAYMENTS, f"{kind}.payment")
    evidence = _fields(record["evidence"], ("meter_key_sha256", "records"), f"{kind}.evidence")
    _str(evidence["meter_key_sha256"], f"{kind}.evidence.meter_key_sha256", pattern=_HEX64)
    for i, item in enumerate(_list(evidence["records"], f"{kind}.evidence.records")):
        where = f"{kind}.evidence.records[{i}]"
        _fields(item, ("nature", "sha256"), where)
        _choice(item["nature"], NATURES, f"{where}.nature")
        _str(item["sha256"], f"{where}.sha256", pattern=_HEX64)


_SETTLEMENT_KEYS = frozenset(SETTLEMENT_FIELDS)
_CREDIT_KEYS = frozenset(CREDIT_FIELDS)
_ENERGY_KEYS = frozenset(("import_wh", "export_wh"))
_TARIFF_KEYS = frozenset(("id", "sha256", "currency"))
_INTERVAL_KEYS = frozenset(("start", "import_wh", "export_wh", "import_price", "export_price"))
_EVIDENCE_KEYS = frozenset(("meter_key_sha256", "records"))
_RECORD_KEYS = frozenset(("nature", "sha256"))
_TEXT_FIELDS = ("settlement_id", "transaction_id", "operator", "evse_id", "ev", "start", "end")


def _text(value: Any) -> bool:
    return type(value) is str and value != ""


def _count(value: Any) -> bool:
    return type(value) is int and 0 <= value <= INT_MAX


def _int_ok(value: Any) -> bool:
    return type(value) is int and _in_range(value)


def _hex64(value: Any) -> bool:
    return type(value) is str and _HEX64.fullmatch(value) is not None


def _settlement_passes(r: Mapping[str, Any], keys: frozenset[str]) -> bool:
    """Every rule of ``_check_settlement_like`` (or stricter), with no message built: the
    common case of a valid record costs no formatting. False sends it to the full check."""
    if not isinstance(r, dict) or r.keys() != keys:
        return False
    if type(r["schema"]) is not int or r["schema"] != SCHEMA_VERSION or not _text(r["signer"]):
        return False
    if type(r["sig"]) is not str or _HEX128.fullmatch(r["sig"]) is None:
        return False
    if not all(_text(r[name]) for name in _TEXT_FIELDS):
        return False
    e, t, ev = r["energy"], r["tariff"], r["evidence"]
    if type(e) is not dict or e.keys() != _ENERGY_KEYS:
        return False
    if not (_count(e["import_wh"]) and _count(e["export_wh"])):
        return False
    if type(t) is not dict or t.keys() != _TARIFF_KEYS or not _text(t["id"]):
        return False
    currency = t["currency"]
    if not _hex64(t["sha256"]) or type(currency) is not str or not _CURRENCY.fullmatch(currency):
        return False
    intervals = r["intervals"]
    if type(intervals) is not list or not intervals:
        return False
    for i in intervals:
        if type(i) is not dict or i.keys() != _INTERVAL_KEYS or not _text(i["start"]):
            return False
        if not (_count(i["import_wh"]) and _count(i["export_wh"])):
            return False
        if not (_int_ok(i["import_price"]) and _int_ok(i["export_price"])):
            return False
    if not _int_ok(r["amount"]) or r["payment"] not in PAYMENTS:
        return False
    if type(ev) is not dict or ev.keys() != _EVIDENCE_KEYS or not _hex64(ev["meter_key_sha256"]):
        return False
    records = ev["records"]
    if type(records) is not list:
        return False
    for rec in records:
        if type(rec) is not dict or rec.keys() != _RECORD_KEYS:
            return False
        if rec["nature"] not in NATURES or not _hex64(rec["sha256"]):
            return False
    return True


# A valid settlement's canonical bytes, field by field in key order: non-empty strings,
# integers of at most 18 digits (inside the 64-bit range; longer ones take the dict checks),
# and the patterns above. Matched against the bytes a record was decoded from, when it keeps
# them (``CanonicalRecord``: checked canonical, so these bytes say exactly what the record
# holds): one pass in C instead of a Python check per field.
_STR = rb'"(?=[^"])[^"\\]*(?:\\.[^"\\]*)*"'
_NAT = rb"(?:0|[1-9][0-9]{0,17})"
_INT = rb"-?" + _NAT
_H64 = rb'"[0-9a-f]{64}"'
_RECORD = rb'\{"nature":"(?:Begin|Intermediate|End)","sha256":' + _H64 + rb"\}"
_INTERVAL = (
    rb'\{"export_price":' + _INT + rb',"export_wh":' + _NAT + rb',"import_price":' + _INT
) + (rb',"import_wh":' + _NAT + rb',"start":' + _STR + rb"\}")
_SETTLEMENT_BYTES = re.compile(
    rb'\{"amount":'
    + _INT
    + rb',"end":'
    + _STR
    + rb',"energy":\{"export_wh":'
    + _NAT
    + rb',"import_wh":'
    + _NAT
    + rb'\},"ev":'
    + _STR
    + rb',"evidence":\{"meter_key_sha256":'
    + _H64
    + rb',"records":\[(?:'
    + _RECORD
    + rb"(?:,"
    + _RECORD
    + rb")*)?\]\}"
    + rb',"evse_id":'
    + _STR
    + rb',"intervals":\['
    + _INTERVAL
    + rb"(?:,"
    + _INTERVAL
    + rb")*\]"
    + rb',"operator":'
    + _STR
    + rb',"payment":"(?:invoice|ledger)","schema":1'
    + rb',"settlement_id":'
    + _STR
    + rb',"sig":"[0-9a-f]{128}","signer":'
    + _STR
    + rb',"start":'
    + _STR
    + rb',"tariff":\{"currency":"[A-Z]{3}","id":'
    + _STR
    + rb',"sha256":'
    + _H64
    + rb'\},"transaction_id":'
    + _STR
    + rb',"type":"settlement"\}'
)


def settlement_bytes_pass(raw: bytes) -> bool:
    """Whether the canonical bytes ``raw`` are those of a settlement that passes every rule
    of ``check_settlement`` (False: it may still pass; the dict checks decide)."""
    return _SETTLEMENT_BYTES.fullmatch(raw) is not None


def check_settlement(record: Mapping[str, Any]) -> None:
    raw = record.raw if isinstance(record, CanonicalRecord) else None
    if raw is not None and settlement_bytes_pass(raw):
        return
    if not _settlement_passes(record, _SETTLEMENT_KEYS):
        _check_settlement_like(record, SETTLEMENT, SETTLEMENT_FIELDS)


def check_credit(record: Mapping[str, Any]) -> None:
    if not (_settlement_passes(record, _CREDIT_KEYS) and _text(record["corrects"])):
        _check_settlement_like(record, CREDIT, CREDIT_FIELDS)
        _str(record["corrects"], "credit.corrects")


def check_topup(record: Mapping[str, Any]) -> None:
    _header(record, TOPUP, TOPUP_FIELDS)
    _str(record["topup_id"], "topup.topup_id")
    _str(record["account"], "topup.account")
    _int(record["amount"], "topup.amount", minimum=1)


def check_validator_update(record: Mapping[str, Any]) -> None:
    _header(record, VALIDATOR_UPDATE, VALIDATOR_UPDATE_FIELDS)
    _str(record["update_id"], "validator_update.update_id")
    entries = _list(record["validators"], "validator_update.validators", min_size=1)
    for i, item in enumerate(entries):
        where = f"validator_update.validators[{i}]"
        _fields(item, ("public_key", "power"), where)
        _str(item["public_key"], f"{where}.public_key", pattern=_HEX64)
        _int(item["power"], f"{where}.power", minimum=0)


def check_key_authorisation(record: Mapping[str, Any]) -> None:
    _header(record, KEY_AUTHORISATION, KEY_AUTHORISATION_FIELDS)
    _str(record["update_id"], "key_authorisation.update_id")
    _str(record["public_key"], "key_authorisation.public_key", pattern=_HEX64)
    if not isinstance(record["authorised"], bool):
        raise SchemaError(
            "key_authorisation.authorised", expected="boolean", received=record["authorised"]
        )


def check_evidence(record: Mapping[str, Any]) -> None:
    _header(record, EVIDENCE, EVIDENCE_FIELDS)
    for name in ("vote_a", "vote_b"):
        if not isinstance(record[name], Mapping):
            raise SchemaError(f"evidence.{name}", expected="object", received=record[name])


CHECKS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    SETTLEMENT: check_settlement,
    CREDIT: check_credit,
    TOPUP: check_topup,
    VALIDATOR_UPDATE: check_validator_update,
    KEY_AUTHORISATION: check_key_authorisation,
    EVIDENCE: check_evidence,
}


def check_record(record: Any) -> str:
    """Check a record against the schema of its ``type``; return that type."""
    if not isinstance(record, Mapping):
        raise SchemaError("transaction: not an object", received=type(record).__name__)
    kind = record.get("type")
    check = CHECKS.get(kind) if isinstance(kind, str) else None
    if check is None:
        raise SchemaError("transaction.type: unknown", expected=sorted(CHECKS), received=kind)
    check(record)
    return str(kind)
