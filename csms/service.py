"""CSMS-initiated calls, through one service API (used by the CLI, tests and the dashboard).

Every call goes through ``StationConnection.call`` (the one outbound helper): payloads are
schema-validated both ways, a CALLERROR raises ``CallErrorResponse``, a timeout ``CallTimeout``,
an absent station ``StationNotConnected``.

The methods are version-aware: on an ``ocpp1.6`` connection the same operation is sent as its
1.6 message (RequestStartTransaction becomes RemoteStartTransaction, an EVSE id a connectorId).
Operations one version lacks (GetVariables on 1.6, GetConfiguration on 2.x, NotifyAllowedEnergy-
Transfer before 2.1) raise ``ValueError`` before anything is sent.

With CSMS processes sharing a PostgreSQL database, an operation on a station connected to
another process runs there (``@forwardable``, ``csms.cluster``) and answers the same way.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from csms.blocks16 import remote as remote16
from csms.cluster import SERVING_REMOTE
from csms.connection import StationConnection
from csms.dispatch_limits import Limits, limits_for, station_limits
from csms.errors import StationNotConnected
from csms.evse_limits import facts_from_configuration, facts_from_variables
from csms.operator_calls import check_operator_action
from csms.power_bounds import (
    POWER_MESSAGES,
    bound_allowed_transfer,
    bound_der_control,
    bound_dynamic_update,
    check_afrr_signal,
    dynamic_update_limits,
    dynamic_update_reactive,
    unknown_profile,
)
from csms.profile_bounds import clamp_request, profile_target, request_limits, request_reactive
from csms.reactive_bounds import ReactiveLimits
from csms.remote_calls import FORWARDED
from csms.server import CsmsServer
from csms.store.charging_needs import ChargingNeedsStore
from csms.store.evse_caps import EvseCapsStore
from csms.store.ocpp16 import Ocpp16Store

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def forwardable(
    method: Callable[Concatenate[StationService, str, P], Awaitable[R]],
) -> Callable[Concatenate[StationService, str, P], Awaitable[R]]:
    """Run the operation where the station is connected: here, or on the process holding its
    lease (never forwarded again by the process serving it for another)."""

    @functools.wraps(method)
    async def operation(
        self: StationService, station_id: str, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        cluster = self._server.cluster
        if cluster is None or station_id in self._server.connections or SERVING_REMOTE.get():
            return await method(self, station_id, *args, **kwargs)
        value: R = await cluster.forward(station_id, method.__name__, args, kwargs)
        return value

    return operation


@dataclass(frozen=True, slots=True)
class OperatorCall:
    """What was sent (after clamping), what the station answered, and what was clamped."""

    action: str
    request: dict[str, Any]
    response: dict[str, Any]
    clamped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VariableRef:
    component: str
    variable: str
    attribute_type: str = "Actual"
    evse_id: int | None = None

    def to_ocpp(self) -> dict[str, Any]:
        component: dict[str, Any] = {"name": self.component}
        if self.evse_id is not None:
            component["evse"] = {"id": self.evse_id}
        return {
            "component": component,
            "variable": {"name": self.variable},
            "attributeType": self.attribute_type,
        }


class StationService:
    """The operations an operator can ask of a connected station."""

    def __init__(self, server: CsmsServer) -> None:
        self._server = server
        self._remote_start_ids = itertools.count(1)
        if server.cluster is not None:
            for name in FORWARDED:
                server.cluster.operations[name] = getattr(self, name)

    def connection(self, station_id: str) -> StationConnection:
        connection = self._server.connections.get(station_id)
        if connection is None:
            raise StationNotConnected(f"station {station_id!r} is not connected")
        return connection

    def connected(self) -> list[str]:
        return sorted(self._server.connections)

    @forwardable
    async def call(self, station_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.connection(station_id).call(action, payload)

    def ocpp_version(self, station_id: str) -> str:
        """The subprotocol a connected station negotiated (``ocpp1.6``, ``ocpp2.0.1``, ...)."""
        return self.connection(station_id).subprotocol

    def _is_16(self, station_id: str) -> bool:
        return self.ocpp_version(station_id) == "ocpp1.6"

    def _require(self, station_id: str, versions: set[str], operation: str) -> None:
        version = self.ocpp_version(station_id)
        if version not in versions:
            raise ValueError(f"{operation} is not available on {version} ({station_id})")

    @forwardable
    async def request_start_transaction(
        self,
        station_id: str,
        id_token: str,
        *,
        token_type: str | None = None,
        evse_id: int | None = None,
        remote_start_id: int | None = None,
    ) -> dict[str, Any]:
        """RequestStartTransaction (2.x) or RemoteStartTransaction (1.6: idTag, connectorId).

        Without ``token_type`` the token goes with its registered type (so the station's
        Started is authorized as that token), or ``Central`` if it is not registered.
        """
        if self._is_16(station_id):
            request = remote16.remote_start_request(id_token, connector_id=evse_id)
            return await self.call(station_id, "RemoteStartTransaction", request)
        if token_type is None:
            registered = await Ocpp16Store(self._server.services.store).token_type(id_token)
            token_type = registered or "Central"
        payload: dict[str, Any] = {
            "idToken": {"idToken": id_token, "type": token_type},
            "remoteStartId": remote_start_id
            if remote_start_id is not None
            else next(self._remote_start_ids),
        }
        if evse_id is not None:
            payload["evseId"] = evse_id
        return await self.call(station_id, "RequestStartTransaction", payload)

    @forwardable
    async def request_stop_transaction(
        self, station_id: str, transaction_id: str
    ) -> dict[str, Any]:
        """RequestStopTransaction (2.x) or RemoteStopTransaction (1.6, integer id)."""
        if self._is_16(station_id):
            request = remote16.remote_stop_request(transaction_id)
            return await self.call(station_id, "RemoteStopTransaction", request)
        return await self.call(
            station_id, "RequestStopTransaction", {"transactionId": transaction_id}
        )

    async def get_variables(
        self, station_id: str, refs: Iterable[VariableRef]
    ) -> list[dict[str, Any]]:
        self._require(station_id, {"ocpp2.0.1", "ocpp2.1"}, "GetVariables")
        request = {"getVariableData": [r.to_ocpp() for r in refs]}
        result = (await self.operator_call(station_id, "GetVariables", request)).response
        return list(result["getVariableResult"])

    async def set_variables(
        self, station_id: str, values: Iterable[tuple[VariableRef, str]]
    ) -> list[dict[str, Any]]:
        self._require(station_id, {"ocpp2.0.1", "ocpp2.1"}, "SetVariables")
        data = [{**ref.to_ocpp(), "attributeValue": value} for ref, value in values]
        result = await self.call(station_id, "SetVariables", {"setVariableData": data})
        return list(result["setVariableResult"])

    @forwardable
    async def reset(
        self, station_id: str, reset_type: str = "Immediate", evse_id: int | None = None
    ) -> dict[str, Any]:
        """Reset; on 1.6 the whole station, ``Immediate`` as ``Hard`` and ``OnIdle`` as ``Soft``."""
        if self._is_16(station_id):
            if evse_id is not None:
                raise ValueError("OCPP 1.6 resets the whole station, not one EVSE")
            return await self.call(station_id, "Reset", remote16.reset_request(reset_type))
        payload: dict[str, Any] = {"type": reset_type}
        if evse_id is not None:
            payload["evseId"] = evse_id
        return await self.call(station_id, "Reset", payload)

    @forwardable
    async def trigger_message(
        self,
        station_id: str,
        requested_message: str,
        *,
        evse_id: int | None = None,
        connector_id: int | None = None,
    ) -> dict[str, Any]:
        """TriggerMessage; on 1.6 an EVSE id is the connectorId."""
        if self._is_16(station_id):
            request = remote16.trigger_message_request(requested_message, connector_id=evse_id)
            return await self.call(station_id, "TriggerMessage", request)
        payload: dict[str, Any] = {"requestedMessage": requested_message}
        if evse_id is not None:
            evse: dict[str, Any] = {"id": evse_id}
            if connector_id is not None:
                evse["connectorId"] = connector_id
            payload["evse"] = evse
        return await self.call(station_id, "TriggerMessage", payload)

    @forwardable
    async def change_availability(
        self,
        station_id: str,
        operational_status: str,
        *,
        evse_id: int | None = None,
        connector_id: int | None = None,
    ) -> dict[str, Any]:
        """ChangeAvailability; on 1.6 an EVSE id is the connectorId (0 or none: the station)."""
        if self._is_16(station_id):
            request = {"connectorId": evse_id or 0, "type": operational_status}
            return await self.call(station_id, "ChangeAvailability", request)
        payload: dict[str, Any] = {"operationalStatus": operational_status}
        if evse_id is not None:
            evse: dict[str, Any] = {"id": evse_id}
            if connector_id is not None:
                evse["connectorId"] = connector_id
            payload["evse"] = evse
        return await self.call(station_id, "ChangeAvailability", payload)

    @forwardable
    async def change_configuration(self, station_id: str, key: str, value: str) -> dict[str, Any]:
        """ChangeConfiguration (1.6 only; 2.x uses set_variables)."""
        self._require(station_id, {"ocpp1.6"}, "ChangeConfiguration")
        request = remote16.change_configuration_request(key, value)
        return await self.call(station_id, "ChangeConfiguration", request)

    @forwardable
    async def get_configuration(self, station_id: str, keys: Iterable[str] = ()) -> dict[str, Any]:
        """GetConfiguration (1.6 only): ``configurationKey`` and ``unknownKey`` lists."""
        self._require(station_id, {"ocpp1.6"}, "GetConfiguration")
        request = remote16.get_configuration_request(keys)
        return (await self.operator_call(station_id, "GetConfiguration", request)).response

    @forwardable
    async def set_charging_profile(
        self, station_id: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        """SetChargingProfile with a request already shaped for the station's version.

        Build it with ``csms.dispatch.set_charging_profile_request`` (2.0.1, or ``version="2.1"``
        for ``operationMode``/``setpoint``/``dischargeLimit``) or
        ``csms.blocks16.remote.set_charging_profile_request_16``; it is validated against the
        negotiated version's schema and clamped to the dispatch bounds before it is sent.
        """
        return (await self.operator_call(station_id, "SetChargingProfile", request)).response

    @forwardable
    async def operator_call(
        self, station_id: str, action: str, request: dict[str, Any]
    ) -> OperatorCall:
        """Any message an operator may send (``csms.operator_calls``), as the spec writes it.

        Checked against the negotiated version's schema (an ``OcppCallError`` names what is
        wrong); a charging profile in it is clamped to the bounds an EV on that EVSE has
        (``csms.profile_bounds``); what a GetVariables or GetConfiguration answer says about
        the EVSEs is kept for the bounds (``csms.evse_limits``).
        """
        connection = self.connection(station_id)
        subprotocol = connection.subprotocol
        check_operator_action(subprotocol, action)
        connection.dispatcher.schemas.validate_request(action, request)
        version = subprotocol.removeprefix("ocpp")
        bounds = await self._profile_limits(station_id, version, action, request)
        clamped: list[str] = []
        if bounds is not None:
            request, clamped = clamp_request(version, action, request, *bounds)
        elif action in POWER_MESSAGES:
            request, clamped = await self._bound_power(connection, action, request)
        if clamped:
            log.warning("%s: %s clamped: %s", station_id, action, "; ".join(clamped))
        response = await connection.call(action, request)
        await self._learn(station_id, action, response)
        return OperatorCall(action, request, response, tuple(clamped))

    async def _profile_limits(
        self, station_id: str, version: str, action: str, request: dict[str, Any]
    ) -> tuple[Limits, ReactiveLimits] | None:
        target = profile_target(version, action, request)
        if target is None:
            return None
        store = self._server.services.store
        needs = await ChargingNeedsStore(store).latest(station_id, target) if target else None
        limits = request_limits(
            version,
            action,
            request,
            needs=needs,
            caps=await store.get_station_caps(station_id),
            evse=await EvseCapsStore(store).caps(station_id, target or None),
        )
        reactive = request_reactive(version, action, request, needs=needs, limits=limits)
        return limits, reactive

    async def _bound_power(
        self, connection: StationConnection, action: str, request: dict[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        """A 2.1 message that sets power outside a profile, bounded (``csms.power_bounds``)."""
        station_id = connection.station_id
        store = self._server.services.store
        caps = await store.get_station_caps(station_id)
        if action == "UpdateDynamicSchedule":
            profile = connection.sent_profiles.get(request.get("chargingProfileId", -1))
            if profile is None:
                raise unknown_profile(station_id, request.get("chargingProfileId"))
            evse = await EvseCapsStore(store).caps(station_id, profile.evse_id or None)
            needs = None
            if profile.evse_id:
                needs = await ChargingNeedsStore(store).latest(station_id, profile.evse_id)
            limits = dynamic_update_limits(profile, needs, caps, evse)
            reactive = dynamic_update_reactive(profile, needs, limits)
            return bound_dynamic_update(request, profile, limits, reactive)
        if action == "SetDERControl":
            station = await EvseCapsStore(store).caps(station_id, None)
            own = [w for w in (caps.max_charge_w, caps.max_discharge_w) if w is not None]
            return bound_der_control(
                station_id,
                request,
                station_limits("2.1", caps, station),
                rating_w=station.max_power_w,
                cap_w=min(own) if own else None,
            )
        if action == "NotifyAllowedEnergyTransfer":
            return bound_allowed_transfer(
                station_id, request, await self._transaction_limits(station_id, request)
            )
        check_afrr_signal(station_id, connection.sent_profiles.with_signal_curve())
        return request, []

    async def _transaction_limits(self, station_id: str, request: dict[str, Any]) -> Limits:
        """The dispatcher's bounds (without its own powers) for the EV of a transaction: on
        its session's EVSE; an unknown transaction's EV has declared nothing."""
        store = self._server.services.store
        session = await store.get_session(station_id, str(request.get("transactionId")))
        evse_id = session.evse_id if session is not None else None
        needs = await ChargingNeedsStore(store).latest(station_id, evse_id) if evse_id else None
        evse = await EvseCapsStore(store).caps(station_id, evse_id or None)
        return limits_for("2.1", needs, await store.get_station_caps(station_id), None, evse)

    async def _learn(self, station_id: str, action: str, response: dict[str, Any]) -> None:
        store = self._server.services.store
        if action == "GetVariables":
            facts = facts_from_variables(response.get("getVariableResult") or ())
        elif action == "GetConfiguration":
            power_key = (await store.get_station_caps(station_id)).power_key
            facts = facts_from_configuration(response.get("configurationKey") or (), power_key)
        else:
            return
        if facts:
            await EvseCapsStore(store).record(station_id, facts, self._server.services.now_text())

    @forwardable
    async def notify_allowed_energy_transfer(
        self, station_id: str, transaction_id: str, allowed: Iterable[str]
    ) -> dict[str, Any]:
        """NotifyAllowedEnergyTransfer (2.1 only): the transfer modes the CSMS accepts, without
        the bidirectional ones where the EV may not discharge (``csms.power_bounds``)."""
        self._require(station_id, {"ocpp2.1"}, "NotifyAllowedEnergyTransfer")
        request = {"transactionId": transaction_id, "allowedEnergyTransfer": list(allowed)}
        sent = await self.operator_call(station_id, "NotifyAllowedEnergyTransfer", request)
        return sent.response
