"""The station's exception tree.

ChargePointError
├── ConfigError            a bad option or setting, found before anything runs
├── ConnectError           the websocket could not be opened
│   └── HandshakeRefused   the CSMS answered the handshake with an HTTP error (401, 404, ...)
├── NotConnected           a call was attempted while the station is offline
├── CallFailed             an outbound call did not complete
│   ├── CallTimeout        no answer within the response timeout, or the link dropped
│   └── CallErrorReceived  the CSMS answered with a CALLERROR
├── Rejected               the CSMS answered but said no (boot Rejected, idToken not Accepted)
└── StateError             an action does not fit an EVSE's state (a second start, ...)

Inbound errors are mapped to OCPP CALLERRORs in one place, ``chargepoint/client.py``.
"""

from __future__ import annotations


class ChargePointError(Exception):
    """Base of every error the station raises on purpose."""


class ConfigError(ChargePointError):
    """A command-line option or setting is invalid."""


class ConnectError(ChargePointError):
    """The websocket to the CSMS could not be opened."""


class HandshakeRefused(ConnectError):
    """The CSMS refused the opening handshake with an HTTP status."""

    def __init__(self, status: int, detail: str = "") -> None:
        self.status = status
        super().__init__(f"CSMS refused the connection: HTTP {status} {detail}".rstrip())


class NotConnected(ChargePointError):
    """There is no live connection to send a call on."""


class CallFailed(ChargePointError):
    """An outbound call did not complete."""


class CallTimeout(CallFailed):
    """No answer arrived in time, or the connection dropped while waiting."""


class CallErrorReceived(CallFailed):
    """The CSMS answered a call with a CALLERROR."""

    def __init__(self, action: str, code: str, description: str) -> None:
        self.action = action
        self.code = code
        self.description = description
        super().__init__(f"{action} answered with CALLERROR {code}: {description}")


class Rejected(ChargePointError):
    """The CSMS answered a call but refused it."""

    def __init__(self, action: str, status: str) -> None:
        self.action = action
        self.status = status
        super().__init__(f"{action} was not accepted: {status}")


class StateError(ChargePointError):
    """An action does not fit the current state of an EVSE or its transaction."""
