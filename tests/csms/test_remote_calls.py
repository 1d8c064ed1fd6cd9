"""The text form of operations between CSMS processes: every outcome comes back as raised."""

from __future__ import annotations

import pytest

from csms.errors import (
    CallErrorResponse,
    CallTimeout,
    FormatViolation,
    StationCallError,
    StationNotConnected,
)
from csms.remote_calls import (
    RemoteCallError,
    RemoteCallsBusy,
    decode_outcome,
    decode_request,
    encode_error,
    encode_request,
    encode_value,
)
from csms.service import OperatorCall


def round_trip(exc: BaseException) -> BaseException:
    with pytest.raises(Exception) as raised:
        decode_outcome(encode_error(exc, "CS-1"), "CS-1")
    return raised.value


def test_values_come_back_as_they_were() -> None:
    call = OperatorCall("Reset", {"type": "Immediate"}, {"status": "Accepted"}, ("limit: 7 kW",))
    assert decode_outcome(encode_value(call), "CS-1") == call
    assert decode_outcome(encode_value([{"a": 1}]), "CS-1") == [{"a": 1}]
    text = encode_request("notify_allowed_energy_transfer", ("tx-1", {"DC"}), {})
    assert decode_request("notify_allowed_energy_transfer", text) == (["tx-1", ["DC"]], {})


def test_errors_come_back_as_the_same_exceptions() -> None:
    refused = round_trip(CallErrorResponse("CS-1", "UnlockConnector", "NotSupported", "no"))
    assert isinstance(refused, CallErrorResponse)
    assert (refused.action, refused.code, refused.description) == (
        "UnlockConnector",
        "NotSupported",
        "no",
    )
    assert isinstance(round_trip(CallTimeout("CS-1: Reset timed out")), CallTimeout)
    assert isinstance(round_trip(StationNotConnected("gone")), StationNotConnected)
    assert isinstance(round_trip(RemoteCallsBusy("busy")), RemoteCallsBusy)
    bad = round_trip(FormatViolation("type: 'Sideways' is not one of ..."))
    assert isinstance(bad, FormatViolation) and "Sideways" in str(bad)
    assert str(round_trip(ValueError("1.6 resets the whole station"))).startswith("1.6")
    # an unexpected error keeps no detail of the holder's internals
    hidden = round_trip(KeyError("secret internals"))
    assert type(hidden) is StationCallError and "secret" not in str(hidden)


def test_a_call_row_that_is_not_a_known_operation_is_refused() -> None:
    with pytest.raises(RemoteCallError, match="not an operation"):
        decode_request("connection", '{"args": [], "kwargs": {}}')
    with pytest.raises(RemoteCallError):
        decode_request("reset", "[1, 2]")
    with pytest.raises(StationCallError, match="unreadable"):
        decode_outcome("not json", "CS-1")
