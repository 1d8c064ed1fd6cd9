"""OCPP-J RPC frames: parsing and encoding, with no I/O.

A frame is a JSON array: ``[2, id, action, payload]`` (CALL), ``[3, id, payload]`` (CALLRESULT),
``[4, id, code, description, details]`` (CALLERROR). Parsing never raises anything but an
``OcppCallError`` carrying the message id when it can be recovered, and ``"-1"`` when it cannot
(OCPP 2.0.1 Part 4, 4.2.3), so that every frame can be answered.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from csms.errors import (
    FormatViolation,
    MessageTypeNotSupported,
    OcppCallError,
    RpcFrameworkError,
)

CALL = 2
CALLRESULT = 3
CALLERROR = 4
UNKNOWN_ID = "-1"
MAX_ID_LENGTH = 36
MAX_DEPTH = 32  # arrays and objects nested in one frame (OCPP payloads nest about 8 deep)
MAX_NUMBER_CHARS = 40  # characters of one JSON number (digits, sign, point, exponent)

_ID_PATTERN = re.compile(r'^\s*\[\s*(-?\d+)\s*,\s*"([^"\\]{1,36})"')


@dataclass(frozen=True, slots=True)
class Call:
    message_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallResult:
    message_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallError:
    message_id: str
    code: str
    description: str
    details: dict[str, Any]


Frame = Call | CallResult | CallError


class FrameError(OcppCallError):
    """A frame that cannot be processed; ``message_id`` says whom to answer."""

    def __init__(self, error: OcppCallError, message_id: str) -> None:
        super().__init__(error.description, error.details)
        self.code = error.code
        self.message_id = message_id
        self.message_type: int | None = None


def _recover_id(text: str) -> tuple[int | None, str]:
    match = _ID_PATTERN.match(text)
    if match is None:
        return None, UNKNOWN_ID
    return int(match.group(1)), match.group(2)


def _fail(error: OcppCallError, message_id: str, message_type: int | None) -> FrameError:
    failure = FrameError(error, message_id)
    failure.message_type = message_type
    return failure


def parse_frame(text: str | bytes) -> Frame:
    """Parse one websocket message into a frame or raise FrameError saying how to answer."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(RpcFrameworkError("frame is not UTF-8 text"), UNKNOWN_ID, None) from None
    try:
        message = json.loads(text, parse_int=_bounded_int, parse_float=_bounded_float)
    except _NumberTooLong:
        message_type, message_id = _recover_id(text)
        limit = f"a number is longer than {MAX_NUMBER_CHARS} characters (the frame limit)"
        raise _fail(FormatViolation(limit), message_id, message_type) from None
    except RecursionError:
        message_type, message_id = _recover_id(text)
        limit = f"arrays and objects nest deeper than {MAX_DEPTH} levels (the frame limit)"
        raise _fail(FormatViolation(limit), message_id, message_type) from None
    except ValueError:
        message_type, message_id = _recover_id(text)
        raise _fail(
            RpcFrameworkError("frame is not valid JSON"), message_id, message_type
        ) from None
    if (
        isinstance(message, list)
        and message
        and type(message[0]) is int  # 3.0 is no message type id
        and message[0] in (CALLRESULT, CALLERROR)
    ):
        known_type: int | None = message[0]  # a broken response gets no reply
    else:
        known_type = None
    if not isinstance(message, list) or len(message) < 3:
        raise _fail(RpcFrameworkError("frame is not an OCPP-J array"), UNKNOWN_ID, known_type)
    message_type, message_id = message[0], message[1]
    if isinstance(message_id, str) and not _encodable(message_id):
        raise _fail(
            FormatViolation("message id is not valid Unicode (a lone surrogate)"),
            UNKNOWN_ID,
            known_type,
        )
    problem = _shape_problem(message)
    if problem is not None:
        reply_to = message_id if isinstance(message_id, str) else UNKNOWN_ID
        raise _fail(FormatViolation(problem), reply_to, known_type)
    if not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_ID_LENGTH:
        raise _fail(
            RpcFrameworkError("message id must be a string of 1 to 36 characters"),
            UNKNOWN_ID,
            None,
        )
    if type(message_type) is not int:
        raise _fail(RpcFrameworkError("message type id must be an integer"), message_id, None)
    if message_type == CALL:
        return _parse_call(message, message_id)
    if message_type == CALLRESULT:
        if len(message) != 3 or not isinstance(message[2], dict):
            raise _fail(
                FormatViolation("CALLRESULT must be [3, id, {payload}]"), message_id, message_type
            )
        return CallResult(message_id, message[2])
    if message_type == CALLERROR:
        if len(message) != 5 or not all(isinstance(part, str) for part in message[2:4]):
            raise _fail(
                FormatViolation("CALLERROR must be [4, id, code, description, {details}]"),
                message_id,
                message_type,
            )
        details = message[4] if isinstance(message[4], dict) else {}
        return CallError(message_id, message[2], message[3], details)
    raise _fail(
        MessageTypeNotSupported(f"message type {message_type} is not supported"),
        message_id,
        message_type,
    )


class _NumberTooLong(ValueError):
    pass


def _bounded_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _NumberTooLong(text[:20])
    return int(text)


def _bounded_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _NumberTooLong(text[:20])
    return float(text)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shape_problem(message: Any) -> str | None:
    """Nesting beyond MAX_DEPTH or a string with a lone surrogate (one pass, no recursion)."""
    stack: list[tuple[Any, int]] = [(message, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if not _encodable(value):
                return "a string is not valid Unicode (a lone surrogate)"
        elif isinstance(value, list | dict):
            if depth > MAX_DEPTH:
                return f"arrays and objects nest deeper than {MAX_DEPTH} levels (the frame limit)"
            if isinstance(value, dict):
                stack.extend((key, depth) for key in value)
                stack.extend((item, depth + 1) for item in value.values())
            else:
                stack.extend((item, depth + 1) for item in value)
    return None


def _parse_call(message: list[Any], message_id: str) -> Call:
    if len(message) != 4:
        raise _fail(RpcFrameworkError("CALL must be [2, id, action, {payload}]"), message_id, CALL)
    action, payload = message[2], message[3]
    if not isinstance(action, str) or not action:
        raise _fail(RpcFrameworkError("action must be a non-empty string"), message_id, CALL)
    if not isinstance(payload, dict):
        raise _fail(FormatViolation("payload must be a JSON object"), message_id, CALL)
    return Call(message_id, action, payload)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def encode_call(message_id: str, action: str, payload: dict[str, Any]) -> str:
    return _dumps([CALL, message_id, action, payload])


def encode_result(message_id: str, payload: dict[str, Any]) -> str:
    return _dumps([CALLRESULT, message_id, payload])


def encode_error(
    message_id: str, code: str, description: str, details: dict[str, Any] | None = None
) -> str:
    return _dumps([CALLERROR, message_id, code, description[:255], details or {}])
