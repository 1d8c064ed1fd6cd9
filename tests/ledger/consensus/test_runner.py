"""Validators from their home directories: in-process (embedded) and as real OS processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from websockets.exceptions import ConnectionClosed

import ledger.validation
from ledger.chain import verify_store
from ledger.codec import tx_record
from ledger.consensus.client import ValidatorSession, submit_tx
from ledger.consensus.limits import ConnectionCaps
from ledger.consensus.runner import Tuning, start_embedded, validator_urls
from ledger.consensus.state import TimeoutConfig
from ledger.genesis import load_genesis
from ledger.home import init_data_dir, load_home, validator_homes
from ledger.keys import read_key_file
from ledger.sqlite_store import SqliteBlockStore
from ledger.tx import sign_tx
from ledger.verified import VERIFIED
from tests.ledger.builders import T0, settlement_body

CHAIN = "runner-chain"
FAST = Tuning(
    TimeoutConfig(400, 100, 300, 100, 300, 100), block_interval_ms=50, gossip_interval_ms=100
)


def init(data_dir: Path) -> None:
    init_data_dir(data_dir, validators=4, chain_id=CHAIN, genesis_time=T0)


async def test_embedded_set_commits_and_resumes(tmp_path: Path) -> None:
    init(tmp_path)
    csms = read_key_file(tmp_path / "keys" / "csms.key")
    embedded = await start_embedded(tmp_path, tuning=FAST)
    try:
        receipt = await submit_tx(
            embedded.urls, sign_tx(settlement_body("e-1"), csms, CHAIN), key=csms
        )
    finally:
        await embedded.stop()
    embedded = await start_embedded(tmp_path, tuning=FAST)
    try:
        later = await submit_tx(
            embedded.urls[::-1], sign_tx(settlement_body("e-2"), csms, CHAIN), key=csms
        )
        assert later.height > receipt.height
        # A store holds e-1's block once its validator decided a later one: the receipt
        # came from the first to decide, so wait for the others before stopping.
        async with asyncio.timeout(20):
            while not all(n.height >= later.height for n in embedded.nodes):
                await asyncio.sleep(0.02)
    finally:
        await embedded.stop()
    genesis = load_genesis(tmp_path / "genesis.json")
    for home in validator_homes(tmp_path):
        store = await SqliteBlockStore.open(load_home(home).store_path, readonly=True)
        try:
            report = await verify_store(store, genesis)
            assert "e-1" in report.state.settlements
        finally:
            await store.close()


async def test_an_embedded_set_checks_each_signature_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validators in one process share what they checked: a transaction's signature is
    verified once in the process (not once per validator), and a vote or proposal one
    validator verified is not verified again by the others."""
    init(tmp_path)
    csms = read_key_file(tmp_path / "keys" / "csms.key")
    tx = sign_tx(settlement_body("once-1"), csms, CHAIN)
    tx_checks = [0]
    real = ledger.validation.verify

    def counting(key: bytes, message: bytes, sig: bytes) -> bool:
        if bytes.fromhex(tx_record(tx)["sig"]) == sig:
            tx_checks[0] += 1
        return real(key, message, sig)

    monkeypatch.setattr(ledger.validation, "verify", counting)
    before = (VERIFIED.checks, VERIFIED.hits)
    embedded = await start_embedded(tmp_path, tuning=FAST)
    try:
        receipt = await submit_tx(embedded.urls, tx, key=csms)
        async with asyncio.timeout(20):
            while not all(n.height >= receipt.height for n in embedded.nodes):
                await asyncio.sleep(0.02)
    finally:
        await embedded.stop()
    assert tx_checks[0] == 1
    checks, hits = VERIFIED.checks - before[0], VERIFIED.hits - before[1]
    # each validator's vote is checked once and found by the three others
    assert checks > 0 and hits >= 2 * checks


RUN = """
import asyncio, sys
from pathlib import Path
from ledger.consensus.runner import Tuning, run_validator
from ledger.consensus.state import TimeoutConfig
tuning = Tuning(TimeoutConfig(400, 100, 300, 100, 300, 100), block_interval_ms=50,
                gossip_interval_ms=100)
asyncio.run(run_validator(Path(sys.argv[1]), tuning=tuning))
"""


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def use_ports(data_dir: Path, ports: list[int]) -> list[str]:
    """Point every home at the given loopback ports (its own and its peers')."""
    homes = validator_homes(data_dir)
    urls = {f"v{i}": f"ws://127.0.0.1:{p}" for i, p in enumerate(ports)}
    for i, home in enumerate(homes):
        path = home / "config.yaml"
        config = yaml.safe_load(path.read_text())
        config["listen"]["port"] = ports[i]
        for peer in config["peers"]:
            peer["url"] = urls[peer["name"]]
        path.write_text(yaml.safe_dump(config, sort_keys=False))
    return [urls[f"v{i}"] for i in range(len(homes))]


def spawn(home: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    with (home / "process.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-c", RUN, str(home)], env=env, stdout=log, stderr=log
        )


async def wait_listening(urls: list[str], timeout: float = 20.0) -> None:
    async def one(url: str) -> None:
        host, port = url.removeprefix("ws://").split(":")
        while True:
            try:
                _, writer = await asyncio.open_connection(host, int(port))
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return

    await asyncio.wait_for(asyncio.gather(*(one(u) for u in urls)), timeout)


async def store_height(home: Path) -> int:
    store = await SqliteBlockStore.open(load_home(home).store_path, readonly=True)
    try:
        return await store.height()
    finally:
        await store.close()


@pytest.mark.slow
async def test_four_processes_kill_one_while_settlements_flow(tmp_path: Path) -> None:
    """kill -9 one validator process mid-stream: every settlement still commits; restarted,
    it catches up to the same height and its store verifies. Slow (about 10 s): it starts
    five Python processes."""
    init(tmp_path)
    urls = use_ports(tmp_path, free_ports(4))
    assert validator_urls(tmp_path) == urls
    homes = validator_homes(tmp_path)
    csms = read_key_file(tmp_path / "keys" / "csms.key")
    procs = [spawn(h) for h in homes]
    try:
        await wait_listening(urls)
        txs = [sign_tx(settlement_body(f"p-{i}"), csms, CHAIN) for i in range(16)]

        async def submit(i: int) -> int:
            await asyncio.sleep(0.1 * i)
            if i == 6:
                procs[3].send_signal(signal.SIGKILL)
            # Spread over v0..v2; the killed v3 is the client's last fallback.
            order = [*urls[i % 3 : 3], *urls[: i % 3], urls[3]]
            return (await submit_tx(order, txs[i], key=csms, timeout_s=20)).height

        heights = await asyncio.wait_for(asyncio.gather(*(submit(i) for i in range(16))), 60)
        top = max(heights)
        procs[3].wait(timeout=10)
        assert await store_height(homes[3]) < top
        procs[3] = spawn(homes[3])

        async def caught_up() -> None:
            while await store_height(homes[3]) < top:
                await asyncio.sleep(0.2)

        await asyncio.wait_for(caught_up(), 30)
        genesis = load_genesis(tmp_path / "genesis.json")
        store = await SqliteBlockStore.open(load_home(homes[3]).store_path, readonly=True)
        try:
            report = await verify_store(store, genesis)
            assert {f"p-{i}" for i in range(16)} <= set(report.state.settlements)
        finally:
            await store.close()
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)


async def second_client_refusal(url: str) -> str | None:
    """Why the validator at ``url`` closed a client session that asked for a receipt
    (None: it answered)."""
    session = ValidatorSession(url)
    try:
        await session.__aenter__()
        await session.get_receipt("none")
    except ConnectionClosed as exc:
        return None if exc.rcvd is None else exc.rcvd.reason
    finally:
        await session.close()
    return None


async def test_a_validator_takes_its_connection_caps_from_its_config(tmp_path: Path) -> None:
    """``links`` in a home's config.yaml sets that validator's caps: with one client link
    allowed, a second client is closed after its handshake while the first still reads."""
    init(tmp_path)
    home = validator_homes(tmp_path)[0]
    data = yaml.safe_load((home / "config.yaml").read_text())
    data["links"] = {"clients": 1, "per_address": 40}
    (home / "config.yaml").write_text(yaml.safe_dump(data))
    embedded = await start_embedded(tmp_path, tuning=FAST)
    try:
        node = embedded.nodes[0]
        assert node.connection_limits.caps == ConnectionCaps(clients=1, per_address=40)
        assert embedded.nodes[1].connection_limits.caps == ConnectionCaps()
        async with ValidatorSession(embedded.urls[0]) as first:
            assert await second_client_refusal(embedded.urls[0]) == "too many clients"
            assert await first.get_receipt("none") is None
        async with ValidatorSession(embedded.urls[1]) as a, ValidatorSession(embedded.urls[1]) as b:
            assert await a.get_receipt("none") is None and await b.get_receipt("none") is None
    finally:
        await embedded.stop()
