"""The CSMS's port to validators over real websockets: submit, retry, fetch receipts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from ledger.codec import tx_hash
from ledger.consensus import peers
from ledger.consensus.client import (
    ValidatorClient,
    ValidatorSession,
    fetch_receipt,
    submit_and_fetch,
    submit_tx,
    submit_with_receipt,
)
from ledger.consensus.errors import SubmitRejected
from ledger.consensus.wire import Receipt
from ledger.genesis import genesis_json
from ledger.receipt import receipt_from_dict, verify_receipt
from ledger.store import MemoryBlockStore
from ledger.types import Tx
from tests.ledger.builders import make_net, settlement_body
from tests.ledger.consensus.live import start_nodes, stop_all, wait_for

REPO = Path(__file__).resolve().parents[3]


async def test_fetched_receipt_verifies_offline_against_the_genesis(tmp_path: Path) -> None:
    net = make_net(4)
    nodes = await start_nodes(net, tmp_path, [MemoryBlockStore() for _ in range(4)])
    try:
        tx = net.csms_tx(settlement_body("r-1"))
        urls = [n.url for n in nodes]
        receipt, doc = await asyncio.wait_for(
            submit_and_fetch(urls, tx, key=net.csms_key, genesis=net.genesis), 30
        )
        parsed = receipt_from_dict(doc)
        verify_receipt(parsed, net.genesis)
        assert parsed.settlement == tx
        assert (parsed.header.height, parsed.tx_index) == (receipt.height, receipt.index)
        assert doc["block_id"] == receipt.block_id.hex()
        # Another validator hands out the same document once its store holds the block.
        again = await fetch_receipt(urls[3:], "r-1", wait_s=10)
        assert again is not None and again["block_id"] == doc["block_id"]
        assert await fetch_receipt(urls[:1], "never-submitted", wait_s=0.2) is None
    finally:
        await stop_all(nodes)
    (tmp_path / "genesis.json").write_text(genesis_json(net.genesis))
    (tmp_path / "receipt.json").write_text(json.dumps(doc))
    command = ["ledger", "verify-receipt", tmp_path / "receipt.json"]
    command += ["--genesis", tmp_path / "genesis.json"]
    checked = subprocess.run(
        [sys.executable, "-m", "v2g", *map(str, command)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert checked.returncode == 0, checked.stderr
    assert "receipt OK" in checked.stdout and "r-1" in checked.stdout


async def test_a_retry_gets_the_same_receipt_and_commits_once(tmp_path: Path) -> None:
    """The CSMS crashed after submitting: it submits again, while pending and after."""
    net = make_net(4)
    stores = [MemoryBlockStore() for _ in range(4)]
    nodes = await start_nodes(net, tmp_path, stores)
    try:
        tx = net.csms_tx(settlement_body("retry-1"))
        urls = [n.url for n in nodes]
        pending = await asyncio.wait_for(
            asyncio.gather(
                submit_tx(urls[:1], tx, key=net.csms_key),
                submit_tx(urls[1:2], tx, key=net.csms_key),
            ),
            30,
        )
        assert pending[0] == pending[1]
        assert pending[0].tx_hash == tx_hash(tx)
        later = await submit_tx(urls[2:3], tx, key=net.csms_key)
        assert later == pending[0]
        # Stored as soon as decided, the block holds the transaction exactly once.
        await wait_for(lambda: nodes[2].height >= later.height)
        stored = await stores[2].get(later.height)
        assert stored is not None
        assert [t for t in stored.block.txs if t == tx] == [tx]
    finally:
        await stop_all(nodes)


async def test_one_session_carries_many_submissions(tmp_path: Path) -> None:
    net = make_net(4)
    nodes = await start_nodes(net, tmp_path, [MemoryBlockStore() for _ in range(4)])
    try:
        txs = [net.csms_tx(settlement_body(f"m-{i}")) for i in range(20)]
        async with ValidatorSession(nodes[0].url, key=net.csms_key) as session:
            receipts = await asyncio.wait_for(asyncio.gather(*map(session.submit, txs)), 30)
        assert [r.tx_hash for r in receipts] == [tx_hash(t) for t in txs]
        assert len({(r.height, r.index) for r in receipts}) == len(txs)
    finally:
        await stop_all(nodes)


async def submit_together(session: ValidatorSession, txs: list[Tx]) -> list[Receipt]:
    return await asyncio.wait_for(asyncio.gather(*map(session.submit, txs)), 30)


async def test_submissions_made_together_travel_in_one_frame_and_their_receipts_in_few(
    tmp_path: Path,
) -> None:
    """A validator that declares batches takes the submissions of one turn of the event loop
    in one frame and answers a block's receipts for the connection in one frame."""
    net = make_net(4)
    nodes = await start_nodes(net, tmp_path, [MemoryBlockStore() for _ in range(4)])
    try:
        txs = [net.csms_tx(settlement_body(f"b-{i}")) for i in range(20)]
        async with ValidatorSession(nodes[0].url, key=net.csms_key) as session:
            assert session.batching
            receipts = await submit_together(session, txs)
            assert session.stats.messages_out == 1
            heights = {r.height for r in receipts}
            assert session.stats.messages_in <= len(heights) < len(txs)
            bad = Tx(txs[0].data.replace(b'"b-0"', b'"x-0"'))  # no longer its signature
            with pytest.raises(SubmitRejected, match="SignatureError"):
                await asyncio.wait_for(session.submit(bad), 30)
        assert [r.tx_hash for r in receipts] == [tx_hash(t) for t in txs]
        assert len({(r.height, r.index) for r in receipts}) == len(txs)
    finally:
        await stop_all(nodes)


async def test_older_clients_and_older_validators_keep_one_frame_per_submission(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that declares nothing (as before batches) gets a frame per receipt; a client
    meeting a validator that declares nothing sends a frame per submission."""
    net = make_net(4)
    nodes = await start_nodes(net, tmp_path, [MemoryBlockStore() for _ in range(4)])
    try:
        txs = [net.csms_tx(settlement_body(f"o-{i}")) for i in range(10)]
        async with ValidatorSession(nodes[0].url, key=net.csms_key, batches=False) as session:
            assert not session.batching
            receipts = await submit_together(session, txs[:5])
            assert session.stats.messages_out == 5 and session.stats.messages_in == 5

        real = peers.new_hello
        monkeypatch.setattr(
            peers, "new_hello", lambda chain, role: replace(real(chain, role), features=())
        )
        async with ValidatorSession(nodes[1].url, key=net.csms_key) as session:
            assert not session.batching  # the validator (as an older one) declared nothing
            receipts += await submit_together(session, txs[5:])
            assert session.stats.messages_out == 5
        assert [r.tx_hash for r in receipts] == [tx_hash(t) for t in txs]
    finally:
        await stop_all(nodes)


async def test_the_receipt_comes_with_the_commit_on_one_connection(tmp_path: Path) -> None:
    """The validator that answers has stored the block: its receipt, with the certificate it
    decided on, is there at once and verifies against genesis."""
    net = make_net(4)
    nodes = await start_nodes(net, tmp_path, [MemoryBlockStore() for _ in range(4)])
    try:
        tx = net.csms_tx(settlement_body("with-receipt-1"))
        receipt, doc = await asyncio.wait_for(
            submit_with_receipt(
                [nodes[1].url], tx, key=net.csms_key, wait_s=0.0, genesis=net.genesis
            ),
            30,
        )
        assert doc is not None  # no wait needed: stored before the commit was answered
        parsed = receipt_from_dict(doc)
        verify_receipt(parsed, net.genesis)
        assert parsed.header.height == receipt.height and parsed.tx_index == receipt.index
    finally:
        await stop_all(nodes)


async def test_a_client_keeps_one_connection_per_validator_for_many_settlements(
    tmp_path: Path,
) -> None:
    """The CSMS's client (a submitter): one handshake per validator, not one per
    settlement; a dropped connection is opened again on the next call, and closing frees
    the validator's side."""
    net = make_net(4)
    nodes = await start_nodes(net, tmp_path, [MemoryBlockStore() for _ in range(4)])
    node = nodes[0]
    try:
        async with ValidatorClient([node.url], genesis=net.genesis, key=net.csms_key) as client:
            for i in range(3):
                tx = net.csms_tx(settlement_body(f"kept-{i}"))
                _, doc = await asyncio.wait_for(client.submit_with_receipt(tx), 30)
                assert doc is not None
                assert node.submitter_links == 1
            await asyncio.wait_for(
                asyncio.gather(
                    *(client.submit(net.csms_tx(settlement_body(f"many-{i}"))) for i in range(8))
                ),
                30,
            )
            assert node.submitter_links == 1
            assert node.handshake_failures == 0
            await client.close()  # as if it dropped: the next call opens a new one
            await wait_for(lambda: node.submitter_links == 0, timeout=5)
            assert await client.fetch_receipt("kept-0", wait_s=1) is not None
            assert node.submitter_links == 1
        await wait_for(lambda: node.submitter_links == 0, timeout=5)
    finally:
        await stop_all(nodes)
