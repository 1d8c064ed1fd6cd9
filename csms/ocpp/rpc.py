"""Routing one received frame to a handler and turning the outcome into the answer frame.

This is the single place where exceptions become CALLERRORs (STYLE.md rule 6): an
``OcppCallError`` keeps its code, anything else becomes InternalError with its cause in the
details, and never a traceback on the wire. It is also the one place where a station's
tolerance applies (``csms.ocpp.tolerance``): a request is repaired (tolerant) or checked
(strict) before schema validation, and every repair is logged and counted in ``deviations``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from csms.errors import (
    InternalError,
    NotImplementedCall,
    OcppCallError,
    PropertyConstraintViolation,
)
from csms.ocpp.frames import (
    Call,
    CallError,
    CallResult,
    FrameError,
    encode_error,
    encode_result,
    parse_frame,
)
from csms.ocpp.schemas import SchemaSet
from csms.ocpp.tolerance import (
    RequestSchemas,
    canonical_error_code,
    may_hold_odd_unit,
    refuse_in_strict,
    tolerate,
)
from csms.ocpp.versions import OcppVersion

log = logging.getLogger(__name__)

Ctx = TypeVar("Ctx")
# No OCPP field carries numbers beyond these; larger ones cannot be stored or priced.
MAX_INTEGER = 2**63 - 1
MAX_NUMBER = 1e15
Handler = Callable[[Ctx, dict[str, Any]], Awaitable[dict[str, Any]]]


def check_magnitudes(value: Any, path: str = "") -> None:
    """Refuse integers outside signed 64 bits and numbers beyond 1e15 anywhere in a payload."""
    if not _magnitudes_ok(value):
        _find_magnitude(value, path)


def _magnitudes_ok(value: Any) -> bool:
    """The fast check of every message: no paths built unless something is out of range."""
    kind = type(value)
    if kind is dict:
        for item in value.values():
            if type(item) is str:
                continue
            if not _magnitudes_ok(item):
                return False
        return True
    if kind is list:
        for item in value:  # noqa: SIM110 - a plain loop: the hot path
            if not _magnitudes_ok(item):
                return False
        return True
    if kind is int:
        return -MAX_INTEGER - 1 <= value <= MAX_INTEGER
    if kind is float:
        return -MAX_NUMBER <= value <= MAX_NUMBER
    if kind is str or kind is bool or value is None:
        return True
    return _magnitudes_ok_slow(value)


def _magnitudes_ok_slow(value: Any) -> bool:
    try:
        _find_magnitude(value, "")
    except PropertyConstraintViolation:
        return False
    return True


def _find_magnitude(value: Any, path: str) -> None:
    """Raise for the first out-of-range number, naming where it is."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -MAX_INTEGER - 1 <= value <= MAX_INTEGER:
            raise PropertyConstraintViolation(f"{path or 'payload'}: integer out of range")
    elif isinstance(value, float):
        if not -MAX_NUMBER <= value <= MAX_NUMBER:
            raise PropertyConstraintViolation(f"{path or 'payload'}: number out of range")
    elif isinstance(value, dict):
        for key, item in value.items():
            _find_magnitude(item, f"{path}/{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _find_magnitude(item, f"{path}/{index}")


@dataclass(frozen=True, slots=True)
class Inbound:
    """What became of one received frame: an answer to send and/or a response to route."""

    reply: str | None = None
    response: CallResult | CallError | None = None
    action: str | None = None
    error_code: str | None = None


@dataclass(slots=True)
class Dispatcher(Generic[Ctx]):
    """Parses, validates and routes frames for one OCPP version."""

    version: OcppVersion
    handlers: Mapping[str, Handler[Ctx]]
    schemas: SchemaSet
    validate_responses: bool = True
    stats: dict[str, int] = field(default_factory=dict)
    # Tolerance (csms.ocpp.tolerance): None skips it; ``tolerant`` repairs, else strict.
    tolerance: RequestSchemas | None = None
    tolerant: bool = False
    deviations: Counter[str] = field(default_factory=Counter)
    clock: Callable[[], datetime] | None = None  # time of receipt, for unset station clocks

    async def handle(self, ctx: Ctx, text: str | bytes, *, station_id: str = "?") -> Inbound:
        try:
            frame = parse_frame(text)
        except FrameError as exc:
            # A broken answer to one of our calls gets no reply (a CALLERROR answers CALLs);
            # a frame of an unknown type does.
            if exc.message_type in (3, 4):
                log.warning("%s: unusable response frame: %s", station_id, exc.description)
                return Inbound(error_code=exc.code)
            return self._error(exc.message_id, exc, None)
        if isinstance(frame, CallError):
            return Inbound(response=self._canonical_error(frame, station_id))
        if isinstance(frame, CallResult):
            return Inbound(response=frame)
        return await self._handle_call(ctx, frame, station_id)

    def refuse(self, text: str | bytes, error: OcppCallError, *, station_id: str = "?") -> Inbound:
        """Answer a CALL with ``error`` unprocessed (rate limiting); answers are still routed."""
        try:
            frame = parse_frame(text)
        except FrameError as exc:
            if exc.message_type in (3, 4):
                return Inbound(error_code=exc.code)
            return self._error(exc.message_id, error, None)
        if isinstance(frame, CallError):
            return Inbound(response=self._canonical_error(frame, station_id))
        if isinstance(frame, CallResult):
            return Inbound(response=frame)
        return self._error(frame.message_id, error, frame.action)

    def _canonical_error(self, frame: CallError, station_id: str) -> CallError:
        """A station's CALLERROR with its code in the canonical spelling; another version's
        spelling (``OccurenceConstraintViolation`` on 2.1) is a counted deviation."""
        code = canonical_error_code(frame.code)
        if code == frame.code:
            return frame
        if self.version.error_code(code) != frame.code:
            self._deviation("error_code", station_id, frame.code, code, "CALLERROR")
        return CallError(frame.message_id, code, frame.description, frame.details)

    def _tolerate(self, call: Call, station_id: str) -> dict[str, Any]:
        """Repair a tolerant station's payload (each repair logged and counted), or refuse
        in strict mode what the schema cannot catch."""
        schema = None if self.tolerance is None else self.tolerance.get(call.action)
        if schema is None:
            return call.payload
        if not self.tolerant and not may_hold_odd_unit(call.payload):
            return call.payload  # nothing strict mode could refuse: skip the walk
        now = self.clock() if self.clock is not None else None
        payload, deviations = tolerate(call.payload, schema, now=now)
        if not deviations:
            return call.payload
        if not self.tolerant:
            refuse_in_strict(deviations)
            return call.payload
        for deviation in deviations:
            self._deviation(
                deviation.kind,
                station_id,
                deviation.before,
                deviation.after,
                f"{call.action} {deviation.path}",
            )
        return payload

    def _deviation(self, kind: str, station_id: str, before: Any, after: Any, where: str) -> None:
        self.deviations[kind] += 1
        log.warning(
            "%s: tolerated %s in %s: %.80r -> %.80r", station_id, kind, where, before, after
        )

    async def _handle_call(self, ctx: Ctx, call: Call, station_id: str) -> Inbound:
        handler = self.handlers.get(call.action)
        try:
            if handler is None:
                if self.schemas.knows(call.action):
                    raise NotImplementedCall(f"{call.action} is not supported by this CSMS")
                raise NotImplementedCall(f"unknown action {call.action!r}")
            payload = self._tolerate(call, station_id)
            check_magnitudes(payload)
            self.schemas.validate_request(call.action, payload)
            result = await handler(ctx, payload)
            if self.validate_responses:
                self.schemas.validate_response(call.action, result)
        except OcppCallError as exc:
            return self._error(call.message_id, exc, call.action)
        except Exception as exc:
            log.exception("%s: handler for %s failed", station_id, call.action)
            internal = InternalError(
                f"{call.action} could not be processed", {"cause": type(exc).__name__}
            )
            return self._error(call.message_id, internal, call.action)
        self._count(call.action)
        return Inbound(reply=encode_result(call.message_id, result), action=call.action)

    def _error(self, message_id: str, exc: OcppCallError, action: str | None) -> Inbound:
        code = self.version.error_code(exc.code)
        self._count(f"error:{exc.code}")
        return Inbound(
            reply=encode_error(message_id, code, exc.description, exc.details),
            action=action,
            error_code=exc.code,
        )

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1
