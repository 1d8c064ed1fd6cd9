"""A signed OCPP 1.6 session settles like any other, exactly once.

A strict 1.6 station (``ocpp.v16``) runs a session whose StopTransaction carries the meter's
OCMF Begin and End records as ``SignedData`` (one raw, one Base64, as real stations mix them).
The CSMS's own settlement path closes it; the amount is checked against a computation from the
meter's registers and the flat tariff written out here, and a resent Stop settles nothing more.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from ocpp.v16 import ChargePoint, call

from chargepoint.ev import UJ_PER_WH, EnergyFlow
from chargepoint.meter import Identification, Meter, MeterInfo, public_key_ocmf
from csms.app import CsmsApp
from csms.identity import PseudonymKey
from csms.model import MeterSample, SessionRecord, StationRecord, TokenRecord
from csms.passwords import hash_password
from csms.settling import SettlementOutcome, SettlementSetup, settle_session
from csms.tariffs import parse_tariff
from csms.timeutil import format_timestamp
from ledger.keys import generate_key
from tests.csms.conftest import PASSWORD, STATION
from tests.csms.library_station import library_station

TAG = "TAG16-SIGNED"
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
IMPORT_PRICE, EXPORT_PRICE = 300_000, 90_000  # micro-units per kWh
FLAT = f"""\
id: flat
currency: EUR
timezone: UTC
daily:
  - {{start: "00:00", import_price: {IMPORT_PRICE}, export_price: {EXPORT_PRICE}}}
""".encode()
METER_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def csms_database(database: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database


@pytest.fixture
async def station(csms: CsmsApp) -> AsyncIterator[ChargePoint]:
    store = csms.store
    await store.add_token(TokenRecord(TAG, "ISO14443", "Accepted", "invoice", None, "x"))
    await store.update_station_secret(STATION, hash_password(PASSWORD), public_key_ocmf(METER_KEY))
    setup = SettlementSetup(
        operator="OP-TEST",
        chain_id="v2g-test",
        signer=generate_key(),
        tariff=parse_tariff(FLAT, source="flat.yaml"),
        pseudonym_key=PseudonymKey(version=1, key=b"operator-pseudonym-key-32-bytes!"),
    )

    def close(
        session: SessionRecord,
        samples: list[MeterSample],
        station: StationRecord | None,
        token: TokenRecord | None,
    ) -> SettlementOutcome:
        meter_key = station.meter_key if station is not None else None
        return settle_session(setup, session, samples, meter_key=meter_key, token=token)

    store.session_closer = close
    async with library_station(csms, ChargePoint, ["ocpp1.6"], registered=False) as cp:
        yield cp


def signed_reading(at: datetime, value: str, context: str) -> dict[str, Any]:
    return {
        "timestamp": format_timestamp(at),
        "sampled_value": [
            {
                "value": value,
                "format": "SignedData",
                "measurand": measurand,
                "context": context,
            }
            for measurand in ("Energy.Active.Import.Register", "Energy.Active.Export.Register")
        ],
    }


async def test_signed_16_session_settles_once_with_the_registers_amount(
    csms: CsmsApp, station: ChargePoint
) -> None:
    meter = Meter(METER_KEY, MeterInfo(serial="MTR-16"), import_wh=1_000_000, export_wh=20_000)
    who = Identification(id_token=TAG, token_type="ISO14443")
    begin = meter.sign("Begin", T0, who)
    started = await station.call(
        call.StartTransaction(
            connector_id=1,
            id_tag=TAG,
            meter_start=meter.import_wh,
            timestamp=format_timestamp(T0),
        )
    )
    meter.feed(EnergyFlow(T0, T1, 5_000 * UJ_PER_WH, 2_000 * UJ_PER_WH))
    end = meter.sign("End", T1, who)
    stop = call.StopTransaction(
        transaction_id=started.transaction_id,
        meter_stop=meter.import_wh,
        timestamp=format_timestamp(T1),
        id_tag=TAG,
        transaction_data=[
            signed_reading(T0, begin.text, "Transaction.Begin"),
            signed_reading(T1, base64.b64encode(end.text.encode()).decode(), "Transaction.End"),
        ],
    )
    await station.call(stop)
    await station.call(stop)  # resent after a reboot: no second settlement

    transaction_id = str(started.transaction_id)
    session = await csms.store.get_session(STATION, transaction_id)
    assert session is not None and session.state == "ended"
    assert (session.import_wh, session.export_wh) == (5_000, 2_000)
    settlement = await csms.store.settlement_for_session(STATION, transaction_id)
    assert settlement is not None
    assert settlement.status == "pending", settlement.reason
    assert (settlement.import_wh, settlement.export_wh) == (5_000, 2_000)
    # 5 kWh at 0.30 minus 2 kWh at 0.09, in micro-units: no rounding needed here.
    assert settlement.amount == (5_000 * IMPORT_PRICE - 2_000 * EXPORT_PRICE) // 1_000
    settlements = await csms.store.list_settlements()
    assert [s.transaction_id for s in settlements] == [transaction_id]
