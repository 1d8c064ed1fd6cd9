"""Fakes for the station's ports: a scripted link, a fixed clock, a constant meter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from chargepoint.config import StationConfig
from chargepoint.device_model import DeviceModel, default_variables
from chargepoint.errors import ChargePointError
from chargepoint.ev import EvSpec
from chargepoint.metering import MeterReading, MeterRequest
from chargepoint.station import Station

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def ev_spec(departure: datetime, max_discharge_w: int = 7000) -> EvSpec:
    """The tests' V2G EV: 60 kWh, 11 kW in, 20 % reserve, wants 80 % at ``departure``."""
    return EvSpec(
        capacity_wh=60_000,
        reserve_soc_pct=20,
        max_charge_w=11_000,
        max_discharge_w=max_discharge_w,
        departure=departure,
        target_soc_pct=80,
    )


class FixedClock:
    """Station time that moves only when slept through (sleep/wait advance it at once)."""

    def __init__(self, start: datetime = T0) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    async def sleep(self, seconds: float) -> None:
        self.current += timedelta(seconds=max(0.0, seconds))
        await asyncio.sleep(0)

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        await asyncio.sleep(0)
        if event.is_set():
            return True
        self.current += timedelta(seconds=max(0.0, seconds))
        return event.is_set()

    def hold(self) -> None:
        """Nothing to stop: this clock moves only when slept through."""

    def release(self) -> None:
        """Nothing to resume."""


class ConstantMeter:
    """Registers that grow by 100 Wh per read."""

    def __init__(self) -> None:
        self.reads: list[MeterRequest] = []

    def read(self, request: MeterRequest) -> MeterReading:
        self.reads.append(request)
        return MeterReading(import_wh=100 * len(self.reads), export_wh=0, power_w=7000, soc=50)


class FakeLink:
    """Records payloads; answers through ``answer`` (return a result or raise)."""

    def __init__(self, answer: Callable[[Any], Any] | None = None) -> None:
        self.sent: list[Any] = []
        self.answer = answer or default_answer

    async def send(self, payload: Any) -> Any:
        self.sent.append(payload)
        await asyncio.sleep(0)
        return self.answer(payload)

    def actions(self) -> list[str]:
        return [type(p).__name__ for p in self.sent]


def default_answer(payload: Any) -> Any:
    name = type(payload).__name__
    if name in ("Authorize", "TransactionEvent"):
        return SimpleNamespace(id_token_info={"status": "Accepted"})
    return SimpleNamespace()


def make_station(
    *, evses: int = 1, errors: list[ChargePointError] | None = None, **config: Any
) -> Station:
    settings: dict[str, Any] = dict(url="ws://h/ocpp", station_id="CP1", evses=evses)
    settings.update(config)
    cfg = StationConfig(**settings)
    counter = iter(range(1, 1000))
    sink = errors if errors is not None else []
    return Station(
        cfg,
        clock=FixedClock(),
        device_model=DeviceModel(default_variables(station_id="CP1", evse_count=evses)),
        meters={n: ConstantMeter() for n in range(1, evses + 1)},
        new_transaction_id=lambda: f"tx-{next(counter)}",
        on_error=sink.append,
    )
