"""Builders for 1.6 and 2.1 station tests: a station of a given class on the shared fakes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from chargepoint.config import StationConfig
from chargepoint.device_model import DeviceModel, default_variables
from chargepoint.errors import ChargePointError
from chargepoint.metering import MeterSource
from chargepoint.station import Station
from tests.chargepoint.fakes import ConstantMeter, FixedClock

S = TypeVar("S", bound=Station)


class SteerableMeter(ConstantMeter):
    """A constant meter that records the limits it is given (W; < 0 discharges)."""

    def __init__(self) -> None:
        super().__init__()
        self.limits: list[int | None] = []

    def set_limit(self, limit_w: int | None, now: datetime) -> None:
        self.limits.append(limit_w)


def make(
    cls: type[S],
    *,
    evses: int = 1,
    errors: list[ChargePointError] | None = None,
    meters: Mapping[int, MeterSource] | None = None,
    **config: Any,
) -> S:
    """A station of class ``cls`` with a fixed clock and numbered transaction ids."""
    settings: dict[str, Any] = dict(url="ws://h/ocpp", station_id="CP1", evses=evses)
    settings.update(config)
    counter = iter(range(1, 1000))
    sink = errors if errors is not None else []
    return cls(
        StationConfig(**settings),
        clock=FixedClock(),
        device_model=DeviceModel(default_variables(station_id="CP1", evse_count=evses)),
        meters=meters or {n: ConstantMeter() for n in range(1, evses + 1)},
        new_transaction_id=lambda: f"tx-{next(counter)}",
        on_error=sink.append,
    )
