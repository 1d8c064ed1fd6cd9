"""A bidirectional session over real sockets ends in a settlement committed by the embedded
validator set, with a receipt that verifies offline and no personal data in any byte."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.meter import Nature, public_key_pem
from csms.app import start_csms
from csms.config import CsmsConfig
from csms.identity import RegisteredToken, ev_pseudonym
from csms.model import TokenRecord
from csms.passwords import hash_password
from ledger.consensus.client import submit_tx
from ledger.consensus.runner import Tuning
from ledger.consensus.state import TimeoutConfig
from ledger.genesis import load_genesis
from ledger.keys import read_key_file
from ledger.receipt import receipt_from_dict, verify_receipt
from ledger.sqlite_store import SqliteBlockStore
from ledger.tx import ev_account, sign_tx, topup_body
from simulators.signed_events import SignedMeterDriver
from tests.csms.conftest import auth_header

STATION, PASSWORD, TOKEN = "CS-V2G", "v2g-station-pw", "04C0FFEE1234AB"
TARIFF = """\
id: e2e-tou
currency: EUR
series:
  - {start: "2026-11-25T00:00:00Z", import_price: 250000, export_price: 80000}
  - {start: "2026-11-25T17:00:00Z", import_price: 390000, export_price: 420000}
  - {start: "2026-11-25T19:00:00Z", import_price: 300000, export_price: 110000}
"""
FAST = Tuning(
    timeouts=TimeoutConfig(300, 100, 200, 100, 200, 100), block_interval_ms=100,
    gossip_interval_ms=100,
)  # fmt: skip


async def answer(ws: Any, frame: list[Any], received: list[list[Any]]) -> None:
    received.append(frame)
    result = {} if frame[2] == "CostUpdated" else {"status": "Accepted"}
    await ws.send(json.dumps([3, frame[1], result]))


def profile_limits(received: list[list[Any]]) -> list[int]:
    return [
        f[3]["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"]
        for f in received
        if f[2] == "SetChargingProfile"
    ]


async def test_bidirectional_session_is_settled_committed_and_verifiable(tmp_path: Path) -> None:
    from websockets.asyncio.client import connect

    data = tmp_path / "data"
    data.mkdir()
    (data / "tariff.yaml").write_text(TARIFF)
    config = CsmsConfig(port=0, dispatch_interval=0.2)
    app = await start_csms(data, config, ledger="embedded", tuning=FAST)
    driver = SignedMeterDriver(
        ec.generate_private_key(ec.SECP256R1()), serial="E2E-1", id_token=TOKEN,
        import_wh=120_000, export_wh=9_000,
    )  # fmt: skip
    try:
        await app.store.add_station(
            STATION, hash_password(PASSWORD), "2026-11-25T00:00:00Z",
            public_key_pem(driver.key).decode(),
        )  # fmt: skip
        # a 2.0.1 station discharges only when declared to take a negative limit as discharge
        await app.store.set_station_caps(STATION, discharge="2.0.1-negative-limit")
        await app.store.add_token(
            TokenRecord(TOKEN, "ISO14443", "Accepted", "ledger", None, "2026-11-25T00:00:00Z")
        )
        # the paper's crypto-payment path: the aggregator tops up the EV's ledger account
        assert app.setup is not None and app.embedded is not None
        ev = ev_pseudonym(RegisteredToken(TOKEN, "ISO14443", "ledger"), app.setup.pseudonym_key)
        aggregator = read_key_file(data / "ledger" / "keys" / "aggregator.key")
        topup = topup_body(topup_id="topup-1", account=ev_account(ev), amount=5_000_000)
        await submit_tx(
            app.embedded.urls, sign_tx(topup, aggregator, app.setup.chain_id), key=aggregator
        )

        t0 = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
        peak, evening = t0 + timedelta(hours=1), t0 + timedelta(hours=3)
        end = evening + timedelta(minutes=40)

        def signed(kind: str, seq: int, at: datetime, nature: Nature, context: str) -> Any:
            reading = driver.meter_value(at, nature, context, soc=62)
            return driver.event(kind, seq, "tx-v2g-1", at, reading)

        frames = [signed("Started", 0, t0, "Begin", "Transaction.Begin")]
        # charge 25 kWh before the peak: enough that a discharge at 7 kW, judged over the
        # 1 h reading gap plus twice the dispatcher's cadence in station time (up to 3 h
        # here, whichever passes saw the readings), still keeps the energy the EV arrived with
        driver.move(25_000, 0, t0)
        frames.append(signed("Updated", 1, peak, "Intermediate", "Sample.Clock"))
        driver.move(0, 6_500, peak)  # discharge 6.5 kWh at the high export price
        frames.append(signed("Updated", 2, evening, "Intermediate", "Sample.Clock"))
        driver.move(4_200, 0, evening)  # charge again
        frames.append(signed("Ended", 3, end, "End", "Transaction.End"))

        async with connect(
            f"ws://127.0.0.1:{app.port}/ocpp/{STATION}",
            subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
            additional_headers=auth_header(STATION, PASSWORD),
        ) as ws:
            answers, received = [], []
            for n, payload in enumerate(frames):
                await ws.send(json.dumps([2, f"m{n}", "TransactionEvent", payload]))
                while True:  # answer the CSMS's own calls (dispatch) while waiting for ours
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if frame[0] == 2:
                        await answer(ws, frame, received)
                    elif frame[1] == f"m{n}":
                        answers.append(frame)
                        break
                if n == 1:  # the EV is in the export peak: the dispatcher asks it to discharge
                    while not any(limit < 0 for limit in profile_limits(received)):
                        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                        await answer(ws, frame, received)
        assert all(a[0] == 3 for a in answers), answers
        limits = profile_limits(received)
        # at the export peak the EV (SoC 62% > reserve 30%) is told to discharge: on 2.0.1 a
        # negative limit; any other profile sent is the charge limit of the policy
        assert -config.discharge_w in limits
        assert set(limits) <= {config.charge_w, -config.discharge_w}
        assert any(f[2] == "CostUpdated" for f in received)

        # independent computation: 25 kWh @0.25, -6.5 kWh @0.42, 4.2 kWh @0.30
        milli = Decimal(25_000 * 250_000 - 6_500 * 420_000 + 4_200 * 300_000) / 1000
        expected = int(milli.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
        assert answers[-1][2]["totalCost"] == float(Decimal(expected).scaleb(-6))

        settled = None
        for _ in range(200):
            settled = await app.store.settlement_for_session(STATION, "tx-v2g-1")
            if settled is not None and settled.receipt is not None:
                break
            await asyncio.sleep(0.1)
        assert settled is not None and settled.status == "committed", settled
        assert settled.amount == expected
        assert settled.receipt is not None
        assert app.genesis_path is not None
        genesis = load_genesis(app.genesis_path)
        receipt = receipt_from_dict(json.loads(settled.receipt))
        verify_receipt(receipt, genesis)  # offline, against the genesis validator set
        assert json.loads(receipt.settlement.data)["amount"] == expected

        # nothing personal in the settlement bytes, on the outbox or in the committed block
        assert settled.tx is not None
        assert TOKEN.encode() not in settled.tx
        assert TOKEN not in (settled.body or "")
        store = await SqliteBlockStore.open(
            data / "ledger" / "validators" / "v0" / "blocks.sqlite", readonly=True
        )
        try:
            block = await store.get(settled.block_height or 0)
        finally:
            await store.close()
        assert block is not None
        assert any(tx.data == settled.tx for tx in block.block.txs)
        assert all(TOKEN.encode() not in tx.data for tx in block.block.txs)
    finally:
        await app.stop()
