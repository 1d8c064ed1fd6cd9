"""Right after ``v2g demo --exit`` returns, every settlement the CSMS marks committed has a
proof in every validator's store: a decided block is stored at once, and a clean stop lets a
lagging validator store what the others decided."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.genesis import load_genesis
from ledger.home import load_home, validator_homes
from ledger.receipt import build_receipt, verify_receipt
from ledger.sqlite_store import SqliteBlockStore


def v2g(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "v2g", *args], capture_output=True, text=True, timeout=timeout
    )


async def proofs_in_every_store(data: Path, committed: dict[str, int]) -> list[str]:
    """Problems found: a store without a settlement, or a receipt that does not verify."""
    genesis = load_genesis(data / "ledger" / "genesis.json")
    problems = []
    for home in validator_homes(data / "ledger"):
        store = await SqliteBlockStore.open(load_home(home).store_path, readonly=True)
        try:
            for settlement_id, height in committed.items():
                try:
                    receipt = await build_receipt(store, settlement_id)
                    verify_receipt(receipt, genesis)
                except Exception as exc:
                    problems.append(f"{home.name}: {settlement_id}: {exc}")
                    continue
                if receipt.header.height != height:
                    problems.append(f"{home.name}: {settlement_id} at {receipt.header.height}")
        finally:
            await store.close()
    return problems


@pytest.mark.slow
def test_every_committed_settlement_has_a_proof_in_every_store_when_demo_returns(
    tmp_path: Path,
) -> None:
    data = tmp_path / "demo"
    result = v2g("demo", "--data-dir", str(data), "--stations", "2", "--exit",
                 "--http-port", "0")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    listed = v2g("sessions", "list", "--data-dir", str(data), "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    committed = {r["settlement_id"]: r["block_height"] for r in rows if r["status"] == "committed"}
    assert committed, "the demo committed no settlement"
    assert asyncio.run(proofs_in_every_store(data, committed)) == []
    # The ledger commands take the CSMS data directory and use its ledger/.
    first = next(iter(committed))
    proof = v2g("ledger", "proof", first, "--data-dir", str(data))
    assert proof.returncode == 0, proof.stderr
    assert json.loads(proof.stdout)["settlement"]["settlement_id"] == first
    verified = v2g("ledger", "verify", "--data-dir", str(data))
    assert verified.returncode == 0, verified.stderr
    heights = {line.split("height ")[1].split(",")[0] for line in verified.stdout.splitlines()}
    assert len(heights) == 1, verified.stdout  # every store at the same height
    status = v2g("ledger", "status", "--data-dir", str(data), "--format", "json")
    assert status.returncode == 0, status.stderr
    assert len(status.stdout.splitlines()) == 4
