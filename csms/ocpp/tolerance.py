"""Tolerance of real-hardware habits: pure fix-ups of a raw payload, guided by its JSON schema.

Applied in one place, the Dispatcher, before schema validation (REAL_HARDWARE.md). A station
is ``strict`` (the default) or ``tolerant``. In tolerant mode the habits below are repaired
and each repair is reported as a ``Deviation`` for the caller to log and count; in strict mode
nothing is changed, the schema's CALLERRORs stand, and a deviation the schema cannot see (an
odd spelling of a free-text unit, which would otherwise be priced at the wrong scale) is
refused with a PropertyConstraintViolation.

Habits repaired:
- ``unit``: ``kwh``, ``KWH``, ``wh`` ... -> ``kWh``/``Wh`` (the known units, case-insensitively);
- ``timezone``: a date-time without a zone is taken as UTC (``Z`` appended);
- ``clock_unset``: a date-time before 2000 (a station whose clock is not set yet, typically
  ``1970-01-01``) is replaced by the time the CSMS received it;
- ``truncated``: a string longer than the schema's ``maxLength`` is cut to it (never signed
  meter data, whose signature covers every byte);
- ``enum``: an enum value differing only in case, blanks or punctuation, or a known misspelling,
  is mapped to the spec's value; ``enum_dropped``: an unknown value of an optional field is
  removed (a required one keeps the strict error);
- ``number_from_string`` / ``string_from_number`` / ``boolean_from_string``: scalars sent with
  the wrong JSON type but an unambiguous meaning (``"3"`` for a multiplier, ``1000`` for a
  1.6 string value, ``"true"``);
- ``error_code``: a CALLERROR code spelled the way another OCPP version spells it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any

from csms.errors import PropertyConstraintViolation
from csms.ocpp.versions import OcppVersion
from csms.timeutil import format_timestamp


class ToleranceMode(StrEnum):
    STRICT = "strict"
    TOLERANT = "tolerant"


TOLERANCE_MODES = tuple(mode.value for mode in ToleranceMode)

# Units of measure OCPP 1.6 and 2.x name; other units are left alone.
KNOWN_UNITS = (
    "Wh",
    "kWh",
    "varh",
    "kvarh",
    "W",
    "kW",
    "VA",
    "kVA",
    "var",
    "kvar",
    "VAh",
    "kVAh",
    "A",
    "V",
    "Celsius",
    "Fahrenheit",
    "K",
    "Percent",
)
_KNOWN_UNIT_SET = frozenset(KNOWN_UNITS)
_UNITS_BY_LOWER = {unit.lower(): unit for unit in KNOWN_UNITS}
_UNITS_BY_LOWER["%"] = "Percent"

# Misspellings seen in the field that the key normalisation below does not catch.
KNOWN_MISSPELLINGS = {
    "Energy.Active.Import": "Energy.Active.Import.Register",
    "Energy.Active.Export": "Energy.Active.Export.Register",
}

# CALLERROR codes as various versions spell them -> the canonical code.
ERROR_CODE_SPELLINGS = {
    "OccurenceConstraintViolation": "OccurrenceConstraintViolation",
    "FormationViolation": "FormatViolation",
}

# Signed evidence is kept verbatim or refused, never cut (its signature covers every byte).
NEVER_TRUNCATED = frozenset({"signedMeterData", "publicKey", "signingMethod", "encodingMethod"})

# Deviations refused in strict mode because the schema would let them through.
STRICT_REFUSED = frozenset({"unit"})

_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")
# A timestamp before this year comes from a station whose clock is not set (1970-01-01...).
CLOCK_SET_AFTER = 2000

_ACTION = re.compile(r"^[A-Za-z0-9]{1,64}$")
_DROP = object()


@dataclass(frozen=True, slots=True)
class Deviation:
    """One repair: what kind, where (``meterValue/0/...``), the value before and after."""

    kind: str
    path: str
    before: Any
    after: Any  # None when the field was dropped


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _resolve(node: Any, root: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref``s (``#/definitions/X``); anything unusable is an empty schema."""
    for _ in range(16):
        if not isinstance(node, dict):
            return {}
        ref = node.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return node
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        node = target
    return {}


class _Walker:
    """One pass over a payload beside its schema, collecting deviations and the fixed copy."""

    def __init__(self, root: dict[str, Any], now: datetime | None) -> None:
        self.root = root
        self.now = now
        self.deviations: list[Deviation] = []

    def note(self, kind: str, path: str, before: Any, after: Any) -> None:
        self.deviations.append(Deviation(kind, path, before, after))

    def fix(self, value: Any, node: Any, path: str, name: str, required: bool) -> Any:
        schema = _resolve(node, self.root)
        kind = schema.get("type")
        if kind == "object" and isinstance(value, dict):
            return self._object(value, schema, path)
        if kind == "array" and isinstance(value, list):
            items = schema.get("items", {})
            return [self.fix(v, items, f"{path}/{i}", name, True) for i, v in enumerate(value)]
        if kind == "string":
            return self._string(value, schema, path, name, required)
        if kind in ("integer", "number"):
            return self._number(value, kind, path)
        if kind == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
            fixed = value.lower() == "true"
            self.note("boolean_from_string", path, value, fixed)
            return fixed
        return value

    def _object(self, value: dict[str, Any], schema: dict[str, Any], path: str) -> Any:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return value
        required = schema.get("required")
        required_names = set(required) if isinstance(required, list) else set()
        fixed: dict[str, Any] = {}
        for key, item in value.items():
            if key not in properties:
                fixed[key] = item
                continue
            child = self.fix(
                item, properties[key], f"{path}/{key}" if path else key, key, key in required_names
            )
            if child is not _DROP:
                fixed[key] = child
        return fixed

    def _number(self, value: Any, kind: str, path: str) -> Any:
        if not isinstance(value, str):
            return value
        if kind == "integer":
            if not _INTEGER.match(value):
                return value
            fixed: int | float = int(value)
        else:
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                return value
            if not number.is_finite():
                return value
            fixed = int(number) if number == number.to_integral_value() else float(number)
        self.note("number_from_string", path, value, fixed)
        return fixed

    def _string(
        self, value: Any, schema: dict[str, Any], path: str, name: str, required: bool
    ) -> Any:
        plain = "enum" not in schema and "format" not in schema
        if plain and isinstance(value, (int, float)) and not isinstance(value, bool):
            text = str(value)
            self.note("string_from_number", path, value, text)
            value = text
        if not isinstance(value, str):
            return value
        enum = schema.get("enum")
        if isinstance(enum, list) and enum and value not in enum:
            return self._enum(value, [e for e in enum if isinstance(e, str)], path, required)
        if name == "unit" and value not in KNOWN_UNITS:
            unit = _UNITS_BY_LOWER.get(value.strip().lower())
            if unit is not None:
                self.note("unit", path, value, unit)
                value = unit
        if schema.get("format") == "date-time":
            value = self._timestamp(value, path)
        limit = schema.get("maxLength")
        if (
            isinstance(limit, int)
            and limit >= 0
            and len(value) > limit
            and name not in NEVER_TRUNCATED
        ):
            self.note("truncated", path, value, value[:limit])
            value = value[:limit]
        return value

    def _enum(self, value: str, enum: list[str], path: str, required: bool) -> Any:
        spelled = KNOWN_MISSPELLINGS.get(value.strip(), value)
        matches = [e for e in enum if _key(e) == _key(spelled)]
        if len(matches) == 1:
            self.note("enum", path, value, matches[0])
            return matches[0]
        if not required:
            self.note("enum_dropped", path, value, None)
            return _DROP
        return value

    def _timestamp(self, value: str, path: str) -> str:
        text = value.strip().replace(" ", "T", 1)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return value
        if "T" not in text:
            return value
        fixed = value
        if moment.tzinfo is None:
            fixed = f"{text}Z"
            self.note("timezone", path, value, fixed)
        if self.now is not None and moment.year < CLOCK_SET_AFTER:
            received = format_timestamp(self.now)
            self.note("clock_unset", path, fixed, received)
            fixed = received
        return fixed


def tolerate(
    payload: dict[str, Any], schema: dict[str, Any], *, now: datetime | None = None
) -> tuple[dict[str, Any], list[Deviation]]:
    """A repaired copy of ``payload`` and the list of repairs (empty: nothing to repair).

    ``now`` (the time of receipt) replaces timestamps from a station whose clock is not set;
    without it they are left alone. Never raises on odd input: what it does not understand it
    leaves for the schema to judge.
    """
    walker = _Walker(schema, now)
    try:
        fixed = walker.fix(payload, schema, "", "", True)
    except RecursionError:
        return payload, []
    if not isinstance(fixed, dict):
        return payload, []
    return fixed, walker.deviations


def may_hold_odd_unit(value: Any, under_unit: bool = False) -> bool:
    """Whether a payload holds a ``unit`` string that is not a known unit's exact spelling.

    The only deviation strict mode refuses is ``unit`` (STRICT_REFUSED); the walk in
    ``tolerate`` can report one only where this finds a candidate, so a strict station's
    payload without one skips the walk (the common case, and the hot path under load).
    Plain loops: this runs on every frame.
    """
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(item) is str:
                if key == "unit" and item not in _KNOWN_UNIT_SET:
                    return True
            elif may_hold_odd_unit(item, key == "unit"):
                return True
        return False
    if kind is list:
        for item in value:  # noqa: SIM110 - a plain loop: the hot path
            if may_hold_odd_unit(item, under_unit):
                return True
        return False
    if under_unit:
        return kind is not str or value not in _KNOWN_UNIT_SET
    return False


def refuse_in_strict(deviations: Iterable[Deviation]) -> None:
    """Strict mode: raise for a deviation the schema would not catch (see STRICT_REFUSED)."""
    for deviation in deviations:
        if deviation.kind in STRICT_REFUSED:
            raise PropertyConstraintViolation(
                f"{deviation.path}: {deviation.before!r} is not a valid {deviation.kind};"
                f" expected {deviation.after!r}",
                {"path": deviation.path},
            )


def canonical_error_code(code: str) -> str:
    """A CALLERROR code received from a station, in the canonical (2.1) spelling."""
    return ERROR_CODE_SPELLINGS.get(code, code)


class RequestSchemas:
    """The raw request schemas of one OCPP version, loaded on first use and cached."""

    def __init__(self, version: OcppVersion) -> None:
        self.version = version
        self._cache: dict[str, dict[str, Any] | None] = {}

    def get(self, action: str) -> dict[str, Any] | None:
        if not _ACTION.match(action):
            return None
        if action not in self._cache:
            path: Path = self.version.request_schema(action)
            schema: dict[str, Any] | None = None
            if path.is_file():
                loaded = json.loads(path.read_text(encoding="utf-8"))
                schema = loaded if isinstance(loaded, dict) else None
            self._cache[action] = schema
        return self._cache[action]
