"""Schema validation of OCPP payloads with compiled validators over the official schemas.

The ``ocpp`` package ships the official JSON schemas; each is compiled once (on first use, or
ahead of it with ``SchemaSet.compile``) by ``fastjsonschema`` into plain Python (about a
microsecond a message instead of the library's interpreted Draft-4 validator). A failure is
raised as the CALLERROR the specification names for that kind of violation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import fastjsonschema

from csms.errors import (
    FormatViolation,
    NotImplementedCall,
    OccurrenceConstraintViolation,
    OcppCallError,
    PropertyConstraintViolation,
    TypeConstraintViolation,
)
from csms.ocpp.versions import OcppVersion

Validator = Callable[[Any], Any]

_ACTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")

_OCCURRENCE_RULES = {"required", "minItems", "maxItems", "minProperties", "maxProperties"}
_PROPERTY_RULES = {
    "enum",
    "const",
    "maxLength",
    "minLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "pattern",
    "format",
    "multipleOf",
}


def _load_schema(path: Path) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    # The official files carry ids such as "urn:OCPP:Cp:2:2020:3:..."; references are local.
    schema.pop("$id", None)
    schema.pop("id", None)
    return schema


def error_for_rule(rule: str | None, message: str) -> OcppCallError:
    """The CALLERROR for a schema rule that failed (OCPP-J error code semantics)."""
    if rule == "type":
        return TypeConstraintViolation(message)
    if rule in _OCCURRENCE_RULES:
        return OccurrenceConstraintViolation(message)
    if rule in _PROPERTY_RULES:
        return PropertyConstraintViolation(message)
    return FormatViolation(message)


class SchemaSet:
    """Compiled request/response validators for one OCPP version, built lazily and cached."""

    def __init__(self, version: OcppVersion) -> None:
        self.version = version
        self._validators: dict[tuple[str, bool], Validator | None] = {}

    def _validator(self, action: str, *, request: bool) -> Validator | None:
        if not _ACTION_NAME.fullmatch(action):
            return None  # never build a file path from anything but a plain action name
        key = (action, request)
        if key not in self._validators:
            path = (
                self.version.request_schema(action)
                if request
                else self.version.response_schema(action)
            )
            self._validators[key] = (
                fastjsonschema.compile(_load_schema(path)) if path.is_file() else None
            )
        return self._validators[key]

    def compile(self, actions: Iterable[str]) -> None:
        """Compile the request and response validators of ``actions`` now, not on first use."""
        for action in actions:
            self._validator(action, request=True)
            self._validator(action, request=False)

    def knows(self, action: str) -> bool:
        return self._validator(action, request=True) is not None

    def validate_request(self, action: str, payload: dict[str, Any]) -> None:
        validator = self._validator(action, request=True)
        if validator is None:
            raise NotImplementedCall(f"unknown action {action!r}")
        _run(validator, payload, f"{action} request")

    def validate_response(self, action: str, payload: dict[str, Any]) -> None:
        validator = self._validator(action, request=False)
        if validator is None:
            raise NotImplementedCall(f"no response schema for {action!r}")
        _run(validator, payload, f"{action} response")


def _run(validator: Validator, payload: dict[str, Any], what: str) -> None:
    try:
        validator(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise error_for_rule(exc.rule, f"{what}: {exc.message}") from None
