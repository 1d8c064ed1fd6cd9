"""Signed OCPP 2.0.1 TransactionEvent payloads straight from a signing meter (load drivers).

For drivers that speak raw OCPP-J rather than run a whole station (benchmarks, end-to-end
tests): a meter whose registers are moved by hand signs each reading as an OCMF record and
the record travels in ``signedMeterValue`` as DESIGN.md describes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.ev import UJ_PER_WH, EnergyFlow
from chargepoint.meter import (
    Identification,
    Meter,
    MeterInfo,
    Nature,
    public_key_ocmf,
    signed_meter_value,
)

_TRIGGER = {"Started": "Authorized", "Updated": "MeterValueClock", "Ended": "StopAuthorized"}


def wire_time(at: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision, as the CSMS expects."""
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SignedMeterDriver:
    """A signing meter for one idToken on EVSE 1 whose registers the caller moves."""

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        *,
        serial: str,
        id_token: str,
        token_type: str = "ISO14443",
        import_wh: int = 0,
        export_wh: int = 0,
    ) -> None:
        self.key = key
        self.meter = Meter(key, MeterInfo(serial=serial), import_wh=import_wh, export_wh=export_wh)
        self.id_token, self.token_type = id_token, token_type
        self.who = Identification(id_token, token_type, "1")

    def move(self, imported_wh: int, exported_wh: int, at: datetime) -> None:
        self.meter.feed(EnergyFlow(at, at, imported_wh * UJ_PER_WH, exported_wh * UJ_PER_WH))

    def meter_value(
        self, at: datetime, nature: Nature, context: str, *, soc: int | None = None
    ) -> dict[str, Any]:
        """Both registers at ``at``, the import one carrying the signed OCMF record."""
        record = self.meter.sign(nature, at, self.who)
        sampled: list[dict[str, Any]] = [
            {
                "value": self.meter.import_wh,
                "context": context,
                "measurand": "Energy.Active.Import.Register",
                "unitOfMeasure": {"unit": "Wh"},
                "signedMeterValue": signed_meter_value(record, public_key_ocmf(self.key)),
            },
            {
                "value": self.meter.export_wh,
                "context": context,
                "measurand": "Energy.Active.Export.Register",
                "unitOfMeasure": {"unit": "Wh"},
            },
        ]
        if soc is not None:
            sampled.append({"value": soc, "context": context, "measurand": "SoC"})
        return {"timestamp": wire_time(at), "sampledValue": sampled}

    def event(
        self,
        kind: str,
        seq_no: int,
        transaction_id: str,
        at: datetime,
        meter_value: dict[str, Any],
    ) -> dict[str, Any]:
        """A TransactionEventRequest (Started, Updated or Ended) carrying ``meter_value``."""
        payload: dict[str, Any] = {
            "eventType": kind,
            "timestamp": wire_time(at),
            "triggerReason": _TRIGGER[kind],
            "seqNo": seq_no,
            "transactionInfo": {"transactionId": transaction_id},
            "evse": {"id": 1, "connectorId": 1},
            "idToken": {"idToken": self.id_token, "type": self.token_type},
            "meterValue": [meter_value],
        }
        if kind == "Ended":
            payload["transactionInfo"]["stoppedReason"] = "EVDisconnected"
        return payload
