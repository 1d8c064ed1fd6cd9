"""Benchmark: full-chain verification throughput against the raw Ed25519 verify rate.

Builds a chain of settlement blocks with single-process sealing, then measures, in the
same run, (a) ``verify_blocks`` over the whole chain from genesis (every header, Merkle
root, transaction signature, validation rule, state hash and commit certificate), (b)
the same from an aiosqlite store in a temp dir, and (c) bare Ed25519 verifications of
messages of the same size. Each transaction costs one Ed25519 verify, each block one
per commit signature, so ``ledger_verify_fraction`` shows how close verification runs
to the signature bound.

Run: ``python -m bench.bench_ledger_verify [--quick]``; prints ``name=value`` lines.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from ledger.chain import verify_blocks, verify_store
from ledger.devchain import demo_settlements
from ledger.genesis import Genesis
from ledger.keys import generate_key, key_id_of, public_bytes, sign, verify
from ledger.sealing import seal_block
from ledger.sqlite_store import SqliteBlockStore
from ledger.state import genesis_state
from ledger.store import StoredBlock
from ledger.types import Commit, Validator, ValidatorSet

CHAIN_ID = "bench-chain"


def build_chain(blocks: int, per_block: int, validators: int) -> tuple[Genesis, list[StoredBlock]]:
    vkeys = [generate_key() for _ in range(validators)]
    csms, aggregator = generate_key(), generate_key()
    genesis = Genesis(
        chain_id=CHAIN_ID,
        genesis_time=1_700_000_000_000,
        validators=ValidatorSet(tuple(Validator(key_id_of(k), public_bytes(k), 10) for k in vkeys)),
        csms_keys={key_id_of(csms): public_bytes(csms)},
        aggregator_key=public_bytes(aggregator),
    )
    state = genesis_state(genesis)
    last: Commit | None = None
    chain = []
    for b in range(blocks):
        txs = demo_settlements(csms, CHAIN_ID, b * per_block, per_block)
        sealed = seal_block(state, txs, vkeys, time=state.time + 1000, last_commit=last)
        chain.append(StoredBlock(sealed.block, sealed.commit))
        state, last = sealed.state, sealed.commit
    return genesis, chain


def ed25519_rate(message_size: int, count: int) -> float:
    """Raw Ed25519 verifications per second of ``message_size``-byte messages."""
    key = generate_key()
    pub = public_bytes(key)
    messages = [i.to_bytes(8, "big") + bytes(max(0, message_size - 8)) for i in range(count)]
    signed = [(m, sign(key, m)) for m in messages]
    began = time.perf_counter()
    ok = all(verify(pub, m, s) for m, s in signed)
    elapsed = time.perf_counter() - began
    assert ok
    return count / elapsed


async def sqlite_verify_seconds(genesis: Genesis, chain: list[StoredBlock]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "blocks.sqlite"
        store = await SqliteBlockStore.open(path)
        for stored in chain:
            await store.append(stored.block, stored.commit)
        await store.close()
        reader = await SqliteBlockStore.open(path, readonly=True)
        try:
            began = time.perf_counter()
            await verify_store(reader, genesis)
            return time.perf_counter() - began
        finally:
            await reader.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small chain (a few seconds)")
    parser.add_argument("--blocks", type=int, default=None)
    parser.add_argument("--per-block", type=int, default=None)
    parser.add_argument("--validators", type=int, default=4)
    args = parser.parse_args(argv)
    blocks = args.blocks or (20 if args.quick else 100)
    per_block = args.per_block or (50 if args.quick else 100)

    began = time.perf_counter()
    genesis, chain = build_chain(blocks, per_block, args.validators)
    build_seconds = time.perf_counter() - began
    txs = sum(len(s.block.txs) for s in chain)
    tx_size = sum(len(t.data) for s in chain for t in s.block.txs) // max(txs, 1)

    began = time.perf_counter()
    report = verify_blocks(genesis, chain)
    verify_seconds = time.perf_counter() - began
    assert report.height == blocks and report.tx_count == txs
    sqlite_seconds = asyncio.run(sqlite_verify_seconds(genesis, chain))

    sig_checks = txs + sum(len(s.commit.signatures) for s in chain if s.commit)
    rate = ed25519_rate(tx_size, min(sig_checks, 20_000))
    tps = txs / verify_seconds
    lines = {
        "blocks": blocks,
        "txs": txs,
        "validators": args.validators,
        "tx_bytes_avg": tx_size,
        "build_seconds": f"{build_seconds:.3f}",
        "ledger_verify_seconds": f"{verify_seconds:.3f}",
        "ledger_verify_tps": f"{tps:.0f}",
        "ledger_verify_sqlite_tps": f"{txs / sqlite_seconds:.0f}",
        "ed25519_verify_per_s": f"{rate:.0f}",
        "signature_checks_per_tx": f"{sig_checks / txs:.3f}",
        "ledger_verify_fraction": f"{tps / rate:.3f}",
    }
    for name, value in lines.items():
        print(f"{name}={value}")


if __name__ == "__main__":
    main()
