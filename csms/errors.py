"""The CSMS exception tree.

    CsmsError
    ├── ConfigError              a bad configuration file or argument (names file, key, expected)
    ├── RegistryError            station / token registry misuse (unknown id, duplicate, ...)
    ├── OcppCallError            answered to a station as a CALLERROR (code + description)
    │   ├── FormatViolation, TypeConstraintViolation, PropertyConstraintViolation,
    │   │   OccurrenceConstraintViolation, ProtocolError, NotImplementedCall, NotSupported,
    │   │   SecurityError, GenericError, InternalError, RpcFrameworkError, MessageTypeNotSupported
    └── StationCallError         a CSMS-initiated call that did not succeed
        ├── StationNotConnected
        ├── CallTimeout
        └── CallErrorResponse    the station answered with a CALLERROR

Every OcppCallError is turned into a CALLERROR frame in exactly one place (``csms.ocpp.rpc``);
anything else raised by a handler becomes InternalError there.
"""

from __future__ import annotations

from typing import Any


class CsmsError(Exception):
    """Base of every error the CSMS raises on purpose."""


class ConfigError(CsmsError):
    """A configuration file or value is wrong; the message names the file, key and expectation."""


class RegistryError(CsmsError):
    """A registry operation failed (unknown or duplicate id, bad value)."""


class OcppCallError(CsmsError):
    """An error answered to the station as a CALLERROR with ``code``."""

    code = "GenericError"

    def __init__(self, description: str = "", details: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.details: dict[str, Any] = details or {}


class FormatViolation(OcppCallError):
    code = "FormatViolation"


class TypeConstraintViolation(OcppCallError):
    code = "TypeConstraintViolation"


class PropertyConstraintViolation(OcppCallError):
    code = "PropertyConstraintViolation"


class OccurrenceConstraintViolation(OcppCallError):
    code = "OccurrenceConstraintViolation"


class ProtocolError(OcppCallError):
    code = "ProtocolError"


class NotImplementedCall(OcppCallError):
    code = "NotImplemented"


class NotSupported(OcppCallError):
    code = "NotSupported"


class SecurityError(OcppCallError):
    code = "SecurityError"


class GenericError(OcppCallError):
    code = "GenericError"


class InternalError(OcppCallError):
    code = "InternalError"


class RpcFrameworkError(OcppCallError):
    code = "RpcFrameworkError"


class MessageTypeNotSupported(OcppCallError):
    code = "MessageTypeNotSupported"


class StationCallError(CsmsError):
    """A call from the CSMS to a station did not succeed."""


class StationNotConnected(StationCallError):
    """The station has no live connection."""


class CallTimeout(StationCallError):
    """The station did not answer in time."""


class CallErrorResponse(StationCallError):
    """The station answered with a CALLERROR."""

    def __init__(self, station_id: str, action: str, code: str, description: str) -> None:
        super().__init__(f"{station_id}: {action} answered {code}: {description}")
        self.action = action
        self.code = code
        self.description = description
