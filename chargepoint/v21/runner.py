"""The composition root's OCPP 2.1 variant (``v2g chargepoint --ocpp 2.1``)."""

from __future__ import annotations

from chargepoint.runner import StationRunner
from chargepoint.v21.client import StationClient21
from chargepoint.v21.station import Station21


class StationRunner21(StationRunner):
    """Runs one 2.1 station: the 2.0.1 connection loop with the 2.1 station and client."""

    station_class = Station21
    client_class = StationClient21
