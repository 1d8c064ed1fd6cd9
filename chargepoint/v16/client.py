"""The OCPP 1.6J client: the station client's outbound helper and wrapper, 1.6's messages.

It reuses ``StationClient`` (one ``send`` helper, ``answering`` mapping errors to CALLERRORs,
follow-ups parked until the answer is out) with the library's 1.6 message classes and
schemas. Only the actions defined here are routed: a 2.0.1-only action is NotImplemented.
The ``@after`` hooks of Reset, TriggerMessage and ChangeAvailability are inherited: the
actions share their names in both versions, and each hook only starts the parked follow-up.
Handlers convert arguments and call one function of ``chargepoint.v16.remote``.
"""

from __future__ import annotations

from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from chargepoint.client import Answer, StationClient, answering
from chargepoint.station import Station
from chargepoint.v16 import remote
from chargepoint.v16.station import Station16

ROUTED = {
    Action.remote_start_transaction,
    Action.remote_stop_transaction,
    Action.change_configuration,
    Action.get_configuration,
    Action.set_charging_profile,
    Action.clear_charging_profile,
    Action.reset,
    Action.trigger_message,
    Action.change_availability,
    Action.data_transfer,
}


class StationClient16(StationClient):
    """One live 1.6 connection of a ``Station16``."""

    _call = call
    _call_result = call_result
    _ocpp_version = "1.6"

    def __init__(self, station: Station, connection: Any, *, response_timeout: float = 30.0):
        if not isinstance(station, Station16):
            raise TypeError("a 1.6 client needs a Station16")
        super().__init__(station, connection, response_timeout=response_timeout)
        self.station16 = station
        state: dict[str, Any] = self.__dict__  # the library's untyped route map: 1.6's only
        state["route_map"] = {a: r for a, r in state["route_map"].items() if a in ROUTED}

    @on(Action.remote_start_transaction)
    @answering
    def on_request_start_transaction(
        self, id_tag: str, call_unique_id: str, connector_id: int | None = None, **_: Any
    ) -> Answer:
        return remote.remote_start(self.station16, id_tag, connector_id or None)

    @after(Action.remote_start_transaction)
    def after_request_start_transaction(self, call_unique_id: str, **_: Any) -> None:
        self._run_parked(call_unique_id, "RemoteStartTransaction")

    @on(Action.remote_stop_transaction)
    @answering
    def on_request_stop_transaction(
        self, transaction_id: int, call_unique_id: str, **_: Any
    ) -> Answer:
        return remote.remote_stop(self.station16, transaction_id)

    @after(Action.remote_stop_transaction)
    def after_request_stop_transaction(self, call_unique_id: str, **_: Any) -> None:
        self._run_parked(call_unique_id, "RemoteStopTransaction")

    @on(Action.get_configuration)
    @answering
    def on_get_configuration(
        self, call_unique_id: str, key: list[str] | None = None, **_: Any
    ) -> Answer:
        return remote.get_configuration(self.station16, key), None

    @on(Action.change_configuration)
    @answering
    def on_change_configuration(
        self, key: str, value: str, call_unique_id: str, **_: Any
    ) -> Answer:
        return remote.change_configuration(self.station16, key, value), None

    @on(Action.set_charging_profile)
    @answering
    def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], call_unique_id: str, **_: Any
    ) -> Answer:
        return remote.set_charging_profile(self.station16, connector_id, cs_charging_profiles), None

    @on(Action.clear_charging_profile)
    @answering
    def on_clear_charging_profile(
        self,
        call_unique_id: str,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **_: Any,
    ) -> Answer:
        station = self.station16
        result = remote.clear_charging_profile(
            station, id, connector_id, charging_profile_purpose, stack_level
        )
        return result, None

    @on(Action.reset)
    @answering
    def on_reset(self, type: str, call_unique_id: str, **_: Any) -> Answer:
        return remote.reset(self.station16, type)

    @on(Action.trigger_message)
    @answering
    def on_trigger_message(
        self, requested_message: str, call_unique_id: str, connector_id: int | None = None, **_: Any
    ) -> Answer:
        return remote.trigger_message(self.station16, requested_message, connector_id)

    @on(Action.change_availability)
    @answering
    def on_change_availability(
        self, connector_id: int, type: str, call_unique_id: str, **_: Any
    ) -> Answer:
        return remote.change_availability(self.station16, connector_id, type)

    @on(Action.data_transfer)
    @answering
    def on_data_transfer(
        self, vendor_id: str, call_unique_id: str, message_id: str | None = None, **_: Any
    ) -> Answer:
        return remote.data_transfer(vendor_id, message_id), None
