"""The OCPP 2.1 client: the 2.0.1 handlers on the library's 2.1 messages, plus V2X.

Every 2.0.1 handler of ``StationClient`` answers 2.1 unchanged; SetChargingProfile reads 2.1's
``operationMode``/``setpoint``/``dischargeLimit`` (``chargepoint.v21.profiles``) into the
shared smart-charging core, and NotifyAllowedEnergyTransfer records what the CSMS allows.
"""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v21 import call, call_result
from ocpp.v21.enums import Action

from chargepoint import smart_charging
from chargepoint.client import Answer, StationClient, answering
from chargepoint.payloads import charging_profile_from, status_info
from chargepoint.station import Station
from chargepoint.v21.profiles import ProfileRefused, discharges, signed_profile
from chargepoint.v21.station import Station21


def _rejected(reason: str) -> call_result.SetChargingProfile:
    return call_result.SetChargingProfile(status="Rejected", status_info=status_info(reason))


class StationClient21(StationClient):
    """One live 2.1 connection of a ``Station21``."""

    _call = call
    _call_result = call_result
    _ocpp_version = "2.1"

    def __init__(self, station: Station, connection: Any, *, response_timeout: float = 30.0):
        if not isinstance(station, Station21):
            raise TypeError("a 2.1 client needs a Station21")
        super().__init__(station, connection, response_timeout=response_timeout)
        self.station21 = station

    @on(Action.set_charging_profile)
    @answering
    def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], call_unique_id: str, **_: Any
    ) -> Answer:
        try:
            signed = signed_profile(charging_profile)
            profile = charging_profile_from(signed)
        except ProfileRefused as exc:
            return _rejected(exc.reason), None
        except (ValueError, KeyError):  # a 2.1-only purpose or kind, a start that is no time
            return _rejected("InvalidProfile"), None
        if discharges(signed) and not self.station21.discharge_allowed(int(evse_id)):
            return _rejected("DischargeNotAllowed"), None
        return smart_charging.set_charging_profile(self.station21, int(evse_id), profile)

    @on(Action.notify_allowed_energy_transfer)
    @answering
    def on_notify_allowed_energy_transfer(
        self,
        transaction_id: str,
        allowed_energy_transfer: list[str],
        call_unique_id: str,
        **_: Any,
    ) -> Answer:
        if self.station21.allow_transfer(transaction_id, tuple(allowed_energy_transfer)):
            return call_result.NotifyAllowedEnergyTransfer(status="Accepted"), None
        info = status_info("UnknownTransaction")
        return call_result.NotifyAllowedEnergyTransfer(status="Rejected", status_info=info), None
