"""``v2g sessions resettle`` through the real command line, on a real data directory."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.meter import public_key_pem
from csms.app import ensure_embedded_ledger, settlement_setup_for
from csms.config import CsmsConfig
from csms.model import TokenRecord
from csms.operators import OperatorRegistry
from csms.settling import session_closer
from csms.store.sqlite import CsmsStore
from csms.timeutil import format_timestamp, utc_now
from tests.csms.test_cli import v2g
from tests.csms.test_settling import STATION, TOKEN, Session


async def flagged_session(data: Path, session: Session) -> None:
    ensure_embedded_ledger(data, utc_now)
    store = await CsmsStore.open_data_dir(data)
    try:
        wrong = public_key_pem(ec.generate_private_key(ec.SECP256R1())).decode()
        await store.add_station(STATION, "scrypt$x", "2026-11-25T00:00:00Z", wrong)
        await store.add_token(TokenRecord(TOKEN, "ISO14443", "Accepted", "invoice", None, "x"))
        registry = OperatorRegistry(store)
        await registry.add("alice", "alice-password", "operator", "2026-11-25T00:00:00Z")
        await registry.add("carol", "carol-password", "auditor", "2026-11-25T00:00:00Z")
        store.session_closer = session_closer(settlement_setup_for(data, CsmsConfig()))
        for event in session.events():
            await store.record_transaction_event(event, format_timestamp(event.timestamp))
        settled = await store.settlement_for_session(STATION, "tx-42")
        assert settled is not None and settled.status == "flagged"
    finally:
        await store.close()


def test_an_operator_resettles_a_flagged_session_after_fixing_the_meter_key(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    session = Session()
    asyncio.run(flagged_session(data, session))
    review_id = f"{STATION}:tx-42"
    args = ("sessions", "resettle", review_id, "--data-dir", str(data))
    still = v2g(*args, "--as", "alice")
    assert still.returncode == 1 and "still flagged" in still.stderr, still.stderr
    key = tmp_path / "meter.pub.pem"
    key.write_bytes(public_key_pem(session.key))
    fixed = v2g("stations", "set", STATION, "--meter-key", str(key), "--data-dir", str(data))
    assert fixed.returncode == 0, fixed.stderr
    auditor = v2g(*args, "--as", "carol")
    assert auditor.returncode == 1 and "operator role" in auditor.stderr
    done = v2g(*args, "--as", "alice")
    assert done.returncode == 0 and "settled" in done.stdout, done.stderr
    assert "Traceback" not in still.stderr + auditor.stderr + done.stderr

    async def check() -> list[tuple[str, str, str, str | None]]:
        store = await CsmsStore.open_data_dir(data)
        try:
            settled = await store.settlement_for_session(STATION, "tx-42")
            assert settled is not None and settled.status == "pending"
            assert await store.outbox_size() == 1
            return await store.resettlements(settled.settlement_id)
        finally:
            await store.close()

    log = asyncio.run(check())
    assert [(who, outcome) for who, _, outcome, _ in log] == [
        ("alice", "flagged"),
        ("alice", "pending"),
    ]
