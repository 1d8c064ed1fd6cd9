"""CSMS-initiated operations carried between CSMS processes: their text form (pure, no I/O).

An operator may ask any process; the operation runs on the process holding the station's
connection (``csms.cluster``) and its outcome comes back as text: the value, or the error
the holder raised, rebuilt on the asking side as the same exception, so the API answers a
remote station exactly as a local one (409 not connected, 502 CALLERROR or no answer, 400 a
bad request).
"""

from __future__ import annotations

import json
from typing import Any

from csms import errors
from csms.errors import (
    CallErrorResponse,
    CallTimeout,
    OcppCallError,
    StationCallError,
    StationNotConnected,
)

# The StationService operations another process may ask for (JSON arguments only).
FORWARDED = frozenset(
    {
        "call",
        "operator_call",
        "request_start_transaction",
        "request_stop_transaction",
        "reset",
        "trigger_message",
        "change_availability",
        "change_configuration",
        "get_configuration",
        "set_charging_profile",
        "notify_allowed_energy_transfer",
    }
)


class RemoteCallsBusy(StationCallError):
    """Too many calls already wait on other CSMS processes; try again shortly."""


class RemoteCallError(ValueError):
    """A call row that is not a call this process can serve."""


def _ocpp_errors() -> dict[str, type[OcppCallError]]:
    found: dict[str, type[OcppCallError]] = {}
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, OcppCallError):
            found[value.code] = value
    return found


_OCPP_ERRORS = _ocpp_errors()


def encode_request(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    return json.dumps({"args": list(args), "kwargs": kwargs}, default=list)


def decode_request(method: str, text: str) -> tuple[list[Any], dict[str, Any]]:
    """(args, kwargs) of a call row; RemoteCallError for anything else."""
    if method not in FORWARDED:
        raise RemoteCallError(f"{method!r} is not an operation another process may ask for")
    try:
        document = json.loads(text)
        args, kwargs = document["args"], document["kwargs"]
    except (ValueError, KeyError, TypeError):
        raise RemoteCallError("call arguments are not {args, kwargs} JSON") from None
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise RemoteCallError("call arguments are not {args, kwargs} JSON")
    return args, kwargs


def encode_value(value: Any) -> str:
    from csms.service import OperatorCall

    if isinstance(value, OperatorCall):
        return json.dumps(
            {
                "operator_call": {
                    "action": value.action,
                    "request": value.request,
                    "response": value.response,
                    "clamped": list(value.clamped),
                }
            }
        )
    return json.dumps({"value": value})


def encode_error(exc: BaseException, station_id: str) -> str:
    """The outcome of an operation that raised ``exc`` (an unexpected one keeps no detail)."""
    error: dict[str, Any] = {"message": str(exc)}
    if isinstance(exc, StationNotConnected):
        error["kind"] = "not_connected"
    elif isinstance(exc, CallTimeout):
        error["kind"] = "timeout"
    elif isinstance(exc, CallErrorResponse):
        error.update(
            kind="call_error", action=exc.action, code=exc.code, description=exc.description
        )
    elif isinstance(exc, RemoteCallsBusy):
        error["kind"] = "busy"
    elif isinstance(exc, StationCallError):
        error["kind"] = "station"
    elif isinstance(exc, OcppCallError):
        error.update(kind="ocpp", code=exc.code)
    elif isinstance(exc, ValueError):
        error["kind"] = "value"
    else:
        error = {"kind": "station", "message": f"{station_id}: internal error in its CSMS process"}
    return json.dumps({"error": error})


def decode_outcome(text: str, station_id: str) -> Any:
    """The value of an answer, or its error raised again as the holder raised it."""
    from csms.service import OperatorCall

    try:
        document = json.loads(text)
    except ValueError:
        raise StationCallError(f"{station_id}: unreadable answer from its CSMS process") from None
    if "operator_call" in document:
        call = document["operator_call"]
        return OperatorCall(
            call["action"], call["request"], call["response"], tuple(call["clamped"])
        )
    if "value" in document:
        return document["value"]
    error = document.get("error") or {}
    kind, message = error.get("kind"), str(error.get("message", ""))
    if kind == "not_connected":
        raise StationNotConnected(message)
    if kind == "timeout":
        raise CallTimeout(message)
    if kind == "call_error":
        raise CallErrorResponse(
            station_id, str(error.get("action")), str(error["code"]), str(error["description"])
        )
    if kind == "busy":
        raise RemoteCallsBusy(message)
    if kind == "ocpp":
        raise _OCPP_ERRORS.get(str(error.get("code")), errors.GenericError)(message)
    if kind == "value":
        raise ValueError(message)
    raise StationCallError(message or f"{station_id}: the call failed in its CSMS process")
