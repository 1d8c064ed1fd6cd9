"""The running cost reaches a 2.x station in CostUpdated, never as totalCost in an Updated
response (the 2.0.1 schema: totalCost "SHALL only be sent when charging has ended")."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from csms.app import CsmsApp
from csms.defaults import DEFAULT_TARIFF_YAML
from csms.dispatch import DispatchPolicy
from csms.dispatching import Dispatcher, DispatchSettings
from csms.tariffs import parse_tariff
from tests.csms.builders import transaction_event
from tests.csms.conftest import open_client

POLICY = DispatchPolicy(export_threshold=300_000, charge_w=11_000, discharge_w=7_000)


async def test_updated_responses_carry_no_total_cost_and_cost_updated_does(csms: CsmsApp) -> None:
    tariff = parse_tariff(DEFAULT_TARIFF_YAML.encode(), source="tariff.yaml")
    csms.server.services.tariff = tariff
    client = await open_client(csms)
    try:
        started = transaction_event(
            "Started", 0, timestamp="2026-11-25T10:00:00.000Z", import_wh=1_000
        )
        assert (await client.call("TransactionEvent", started))[0] == 3
        for seq, (at, wh) in enumerate([("10:15", 3_500), ("10:30", 6_000)], start=1):
            updated = transaction_event(
                "Updated", seq, timestamp=f"2026-11-25T{at}:00.000Z", import_wh=wh
            )
            answer = await client.call("TransactionEvent", updated)
            assert answer[0] == 3 and "totalCost" not in answer[2], answer

        dispatcher = Dispatcher(csms.server, tariff, DispatchSettings(POLICY, 30, 3600))
        asked: list[tuple[str, dict[str, Any]]] = []

        async def serve(count: int) -> None:
            for _ in range(count):
                frame = await client.recv_json()
                asked.append((frame[2], frame[3]))
                await client.ws.send(
                    json.dumps(
                        [
                            3,
                            frame[1],
                            {"status": "Accepted"} if frame[2] == "SetChargingProfile" else {},
                        ]
                    )
                )

        server = asyncio.create_task(serve(2))
        await dispatcher.run_once()
        await asyncio.wait_for(server, 5)
        costs = [payload for action, payload in asked if action == "CostUpdated"]
        # 5 kWh at 0.22 (the default tariff from 10:00)
        assert costs == [{"totalCost": 1.1, "transactionId": "tx-1"}]
        again = asyncio.create_task(dispatcher.run_once())  # nothing changed: nothing sent
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.ws.recv(), 0.3)
        assert await again == 0
    finally:
        await client.ws.close()
