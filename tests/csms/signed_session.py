"""A signing meter driven through a session, producing the events a station stores.

The settlement tests (``test_settling``) and the review world (``web/world``) both drive
one: energy fed into an OCMF meter, signed register readings at the chosen instants, each
wrapped in the TransactionEventRecord the CSMS's handler would have stored.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.ev import UJ_PER_WH, EnergyFlow
from chargepoint.meter import (
    Identification,
    Meter,
    MeterInfo,
    public_key_ocmf,
    signed_meter_value,
)
from csms.model import MeterSample, TransactionEventRecord
from tests.csms.records import event_record

# a time-of-use day: 0.30 import / 0.10 export until 17:00, then 0.40 / 0.50 (EUR per kWh)
T0 = datetime(2026, 11, 25, 16, 30, tzinfo=UTC)
BOUNDARY = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
TARIFF = b"""\
id: test-tou
currency: EUR
series:
  - {start: "2026-11-25T00:00:00Z", import_price: 300000, export_price: 100000}
  - {start: "2026-11-25T17:00:00Z", import_price: 400000, export_price: 500000}
"""


class SignedSession:
    """One transaction's events, numbered from seqNo 0, behind a fresh P-256 signing meter."""

    def __init__(self, station_id: str, transaction_id: str, token: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.meter = Meter(self.key, MeterInfo(serial="MTR-1"), import_wh=50_000, export_wh=7_000)
        self.who = Identification(token, "ISO14443", "1")
        self.station_id = station_id
        self.transaction_id = transaction_id
        self.token = token
        self.seq = 0

    def flow(self, imported_wh: int, exported_wh: int, at: datetime) -> None:
        self.meter.feed(EnergyFlow(at, at, imported_wh * UJ_PER_WH, exported_wh * UJ_PER_WH))

    def signed(self, nature: str, at: datetime) -> str:
        """The signedMeterValue (JSON) of the meter's reading ``nature`` at ``at``."""
        record = self.meter.sign(nature, at, self.who)  # type: ignore[arg-type]
        return json.dumps(signed_meter_value(record, public_key_ocmf(self.key)))

    def registers(self, at: datetime, signed: str | None) -> tuple[MeterSample, MeterSample]:
        """Both energy registers now, the import one carrying ``signed``."""
        return (
            MeterSample(at, "Energy.Active.Import.Register", self.meter.import_wh, "Wh",
                        signed=signed),
            MeterSample(at, "Energy.Active.Export.Register", self.meter.export_wh, "Wh"),
        )  # fmt: skip

    def record(
        self, event_type: str, at: datetime, samples: tuple[MeterSample, ...]
    ) -> TransactionEventRecord:
        """The next event of the transaction, carrying ``samples``."""
        self.seq += 1
        stopped = "Local" if event_type == "Ended" else None
        return event_record(
            self.station_id,
            self.transaction_id,
            self.seq - 1,
            event_type,
            at,
            samples,
            token=self.token,
            stopped_reason=stopped,
        )
