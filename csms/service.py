"""CSMS-initiated calls, through one service API (used by the CLI, tests and the dashboard).

Every call goes through ``StationConnection.call`` (the one outbound helper): payloads are
schema-validated both ways, a CALLERROR raises ``CallErrorResponse``, a timeout ``CallTimeout``,
an absent station ``StationNotConnected``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from csms.connection import StationConnection
from csms.errors import StationNotConnected
from csms.server import CsmsServer


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

    def connection(self, station_id: str) -> StationConnection:
        connection = self._server.connections.get(station_id)
        if connection is None:
            raise StationNotConnected(f"station {station_id!r} is not connected")
        return connection

    def connected(self) -> list[str]:
        return sorted(self._server.connections)

    async def call(self, station_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.connection(station_id).call(action, payload)

    async def request_start_transaction(
        self,
        station_id: str,
        id_token: str,
        *,
        token_type: str = "Central",
        evse_id: int | None = None,
        remote_start_id: int | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "idToken": {"idToken": id_token, "type": token_type},
            "remoteStartId": remote_start_id
            if remote_start_id is not None
            else next(self._remote_start_ids),
        }
        if evse_id is not None:
            payload["evseId"] = evse_id
        return await self.call(station_id, "RequestStartTransaction", payload)

    async def request_stop_transaction(
        self, station_id: str, transaction_id: str
    ) -> dict[str, Any]:
        return await self.call(
            station_id, "RequestStopTransaction", {"transactionId": transaction_id}
        )

    async def get_variables(
        self, station_id: str, refs: Iterable[VariableRef]
    ) -> list[dict[str, Any]]:
        result = await self.call(
            station_id, "GetVariables", {"getVariableData": [r.to_ocpp() for r in refs]}
        )
        return list(result["getVariableResult"])

    async def set_variables(
        self, station_id: str, values: Iterable[tuple[VariableRef, str]]
    ) -> list[dict[str, Any]]:
        data = [{**ref.to_ocpp(), "attributeValue": value} for ref, value in values]
        result = await self.call(station_id, "SetVariables", {"setVariableData": data})
        return list(result["setVariableResult"])

    async def reset(
        self, station_id: str, reset_type: str = "Immediate", evse_id: int | None = None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"type": reset_type}
        if evse_id is not None:
            payload["evseId"] = evse_id
        return await self.call(station_id, "Reset", payload)

    async def trigger_message(
        self,
        station_id: str,
        requested_message: str,
        *,
        evse_id: int | None = None,
        connector_id: int | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"requestedMessage": requested_message}
        if evse_id is not None:
            evse: dict[str, Any] = {"id": evse_id}
            if connector_id is not None:
                evse["connectorId"] = connector_id
            payload["evse"] = evse
        return await self.call(station_id, "TriggerMessage", payload)

    async def change_availability(
        self,
        station_id: str,
        operational_status: str,
        *,
        evse_id: int | None = None,
        connector_id: int | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"operationalStatus": operational_status}
        if evse_id is not None:
            evse: dict[str, Any] = {"id": evse_id}
            if connector_id is not None:
                evse["connectorId"] = connector_id
            payload["evse"] = evse
        return await self.call(station_id, "ChangeAvailability", payload)
