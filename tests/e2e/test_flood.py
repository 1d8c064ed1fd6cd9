"""One hostile station cannot stall the others: floods of meter values and an absurd number in
a signed record, over real sockets against the real CSMS with its embedded validators."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from websockets.asyncio.client import connect

from chargepoint.meter import public_key_pem
from csms.app import start_csms
from csms.config import CsmsConfig
from csms.model import TokenRecord
from csms.passwords import hash_password
from ledger.consensus.runner import Tuning
from ledger.consensus.state import TimeoutConfig
from simulators.signed_events import SignedMeterDriver, wire_time
from tests.csms.conftest import auth_header

FLOODER, OTHER, PASSWORD, TOKEN = "CS-FLOOD", "CS-CALM", "flood-station-pw", "04FL00D"
TARIFF = 'id: flat\ncurrency: EUR\nseries:\n  - {start: "2026-11-25T00:00:00Z", import_price: 250000, export_price: 80000}\n'  # noqa: E501
FAST = Tuning(
    timeouts=TimeoutConfig(300, 100, 200, 100, 200, 100), block_interval_ms=100,
    gossip_interval_ms=100,
)  # fmt: skip
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def resign(sampled: dict[str, Any], key: ec.EllipticCurvePrivateKey, value: str) -> None:
    """Put ``value`` as the import register of a signed record and sign it again."""
    signed = sampled["signedMeterValue"]
    text = base64.b64decode(signed["signedMeterData"]).decode()
    payload = text[len("OCMF|") :].rsplit("|", 1)[0]
    payload = re.sub(r'"RV":[0-9.]+', f'"RV":{value}', payload, count=1)
    der = key.sign(payload.encode(), ec.ECDSA(hashes.SHA256()))
    sig = json.dumps({"SA": "ECDSA-secp256r1-SHA256", "SD": der.hex()})
    signed["signedMeterData"] = base64.b64encode(f"OCMF|{payload}|{sig}".encode()).decode()


async def call(ws: Any, message_id: str, action: str, payload: dict[str, Any]) -> list[Any]:
    await ws.send(json.dumps([2, message_id, action, payload]))
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if frame[0] == 2:  # the CSMS's own calls (dispatch, cost): accept
            await ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
        elif frame[1] == message_id:
            return frame


async def test_a_flooding_station_does_not_stall_the_others(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "tariff.yaml").write_text(TARIFF)
    app = await start_csms(data, CsmsConfig(port=0), ledger="embedded", tuning=FAST)
    key = ec.generate_private_key(ec.SECP256R1())
    driver = SignedMeterDriver(key, serial="FLOOD-1", id_token=TOKEN, import_wh=50_000)
    stop = asyncio.Event()
    beats: list[float] = []
    try:
        pem = public_key_pem(key).decode()
        await app.store.add_station(FLOODER, hash_password(PASSWORD), "2026-11-25T00:00:00Z", pem)
        await app.store.add_station(OTHER, hash_password(PASSWORD), "2026-11-25T00:00:00Z")
        await app.store.add_token(
            TokenRecord(TOKEN, "ISO14443", "Accepted", "invoice", None, "2026-11-25T00:00:00Z")
        )

        def url(station: str) -> str:
            return f"ws://127.0.0.1:{app.port}/ocpp/{station}"

        async def heartbeats() -> None:
            async with connect(
                url(OTHER), subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                additional_headers=auth_header(OTHER, PASSWORD),
            ) as ws:  # fmt: skip
                n = 0
                while not stop.is_set():
                    started = time.perf_counter()
                    answer = await call(ws, f"hb{n}", "Heartbeat", {})
                    beats.append(time.perf_counter() - started)
                    assert answer[0] == 3, answer
                    n += 1
                    await asyncio.sleep(0.05)

        calm = asyncio.create_task(heartbeats())
        async with connect(
            url(FLOODER), subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
            additional_headers=auth_header(FLOODER, PASSWORD), max_size=None,
        ) as ws:  # fmt: skip
            begin = driver.meter_value(T0, "Begin", "Transaction.Begin")
            started = driver.event("Started", 0, "tx-flood", T0, begin)
            assert (await call(ws, "s", "TransactionEvent", started))[0] == 3
            # 30 frames of 1,500 sampled values each
            for n in range(30):
                at = T0 + timedelta(seconds=n + 1)
                values = [
                    {"value": 50_000 + n * 1500 + i, "measurand": "Energy.Active.Import.Register"}
                    for i in range(1500)
                ]
                flood = driver.event(
                    "Updated", n + 1, "tx-flood", at,
                    {"timestamp": wire_time(at), "sampledValue": values},
                )  # fmt: skip
                answer = await call(ws, f"f{n}", "TransactionEvent", flood)
                assert answer[0] == 4 and answer[2].startswith("Occur"), answer
                assert "max_sampled_values" in answer[3]
            # one ordinary Updated afterwards is answered at once
            at = T0 + timedelta(minutes=5)
            one = {"timestamp": wire_time(at), "sampledValue": [{"value": 51_000}]}
            began = time.perf_counter()
            answer = await call(
                ws, "u", "TransactionEvent", driver.event("Updated", 40, "tx-flood", at, one)
            )
            updated_s = time.perf_counter() - began
            assert answer[0] == 3, answer
            # a signed End record with an absurd register value
            end_at = T0 + timedelta(minutes=30)
            driver.move(2_000, 0, end_at)
            end = driver.meter_value(end_at, "End", "Transaction.End")
            resign(end["sampledValue"][0], key, "1E+999990")
            began = time.perf_counter()
            ended = driver.event("Ended", 41, "tx-flood", end_at, end)
            answer = await call(ws, "e", "TransactionEvent", ended)
            ended_s = time.perf_counter() - began
            assert answer[0] == 3, answer
        stop.set()
        await asyncio.wait_for(calm, 10)
        print(
            f"heartbeat max {max(beats) * 1000:.1f} ms over {len(beats)}, Updated after flood"
            f" {updated_s * 1000:.1f} ms, absurd Ended {ended_s * 1000:.1f} ms"
        )
        assert updated_s < 0.25, updated_s
        assert ended_s < 2, ended_s
        assert beats and max(beats) < 0.25, max(beats)
        session = await app.store.get_session(FLOODER, "tx-flood")
        assert session is not None and session.state != "active", session
        settlement = await app.store.settlement_for_session(FLOODER, "tx-flood")
        assert settlement is not None and settlement.status == "flagged", settlement
        assert "out_of_range" in str(settlement), settlement
    finally:
        stop.set()
        await app.stop()
