"""Four validators in one process over real websockets on 127.0.0.1 (port 0)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ledger.blocks import build_block
from ledger.chain import verify_store
from ledger.codec import block_id, tx_hash, tx_record
from ledger.commit import make_commit
from ledger.consensus.client import submit_tx
from ledger.consensus.errors import SubmitRejected
from ledger.consensus.handshake import Role
from ledger.consensus.node import NodeConfig, ValidatorNode
from ledger.consensus.peers import MAX_WAITS_PER_CLIENT, MAX_WAITS_PER_LINK
from ledger.consensus.wire import BlockMsg, Busy, GetReceipt, ReceiptDoc, Status, TxMsg, dump, load
from ledger.keys import generate_key, key_id_of
from ledger.signing import sign_vote
from ledger.sqlite_store import SqliteBlockStore
from ledger.store import MemoryBlockStore
from ledger.types import Vote, VoteKind
from tests.ledger.builders import CHAIN_ID, make_net, settlement_body
from tests.ledger.consensus.live import FAST, free_url, link_to, start_nodes, stop_all, wait_for


async def test_four_validators_commit_submitted_settlements(tmp_path: Path) -> None:
    net = make_net(4)
    stores = [MemoryBlockStore() for _ in range(4)]
    nodes = await start_nodes(net, tmp_path, stores)
    try:
        txs = [net.csms_tx(settlement_body(f"s-{i}")) for i in range(12)]
        receipts = await asyncio.wait_for(
            asyncio.gather(*(nodes[i % 4].submit(tx) for i, tx in enumerate(txs))), 30
        )
        top = max(r.height for r in receipts)
        await wait_for(lambda: all(n.height >= top for n in nodes))
        for store in stores:
            report = await verify_store(store, net.genesis)
            assert report.state.height >= top
            assert set(report.state.settlements) >= {f"s-{i}" for i in range(12)}
        for receipt, tx in zip(receipts, txs, strict=True):
            stored = await stores[0].get(receipt.height)
            assert stored is not None
            assert tx_hash(stored.block.txs[receipt.index]) == tx_hash(tx)
        # Over the wire, as the CSMS outbox does; a retry of a committed settlement gets its
        # receipt, while another record reusing its id is refused.
        receipt = await submit_tx(
            [nodes[2].url], net.csms_tx(settlement_body("wire-1")), key=net.csms_key
        )
        assert receipt.height >= 1
        again = await submit_tx([nodes[1].url], txs[0], key=net.csms_key)
        assert (again.height, again.index, again.block_id) == (
            receipts[0].height,
            receipts[0].index,
            receipts[0].block_id,
        )
        with pytest.raises(SubmitRejected, match="DuplicateSettlementError"):
            other = settlement_body("s-0", transaction_id="another-session")
            await submit_tx([nodes[1].url], net.csms_tx(other), key=net.csms_key)
    finally:
        await stop_all(nodes)


async def test_one_validator_down_then_catches_up(tmp_path: Path) -> None:
    net = make_net(4)
    stores = [MemoryBlockStore() for _ in range(4)]
    nodes = await start_nodes(net, tmp_path, stores)
    try:
        await nodes[3].stop()
        live = nodes[:3]
        txs = [net.csms_tx(settlement_body(f"d-{i}")) for i in range(6)]
        receipts = await asyncio.wait_for(
            asyncio.gather(*(live[i % 3].submit(tx) for i, tx in enumerate(txs))), 30
        )
        top = max(r.height for r in receipts)
        assert nodes[3].height < top
        # Restart the stopped validator on its own store and home: it fetches and verifies.
        config = nodes[3].config
        nodes[3] = ValidatorNode(config, stores[3])
        await nodes[3].start()
        nodes[3].connect([n.url for n in nodes])
        for n in live:
            n.connect([nodes[3].url])
        await wait_for(lambda: nodes[3].height >= top)
        report = await verify_store(stores[3], net.genesis)
        assert set(report.state.settlements) >= {f"d-{i}" for i in range(6)}
    finally:
        await stop_all(nodes)


async def committed_evidence(store: MemoryBlockStore) -> list[dict[str, object]]:
    found = []
    async for stored in store.blocks():
        found += [r for r in map(tx_record, stored.block.txs) if r["type"] == "evidence"]
    return found


async def test_double_sign_becomes_evidence_committed_in_a_later_block(tmp_path: Path) -> None:
    net = make_net(4)
    stores = [MemoryBlockStore() for _ in range(4)]
    nodes = await start_nodes(net, tmp_path, stores)
    cheater = net.validator_keys[1]
    try:
        async with link_to(nodes[0].url, key=cheater) as ws:

            async def cheat_until_committed() -> None:
                while not await committed_evidence(stores[0]):
                    height = nodes[0].height + 1  # the height being decided right now
                    for block_id in (b"\x01" * 32, b"\x02" * 32):
                        vote = Vote(CHAIN_ID, height, 1000, VoteKind.PREVOTE, block_id, "")
                        await ws.send(dump(sign_vote(vote, cheater)))
                    await asyncio.sleep(0.2)

            await asyncio.wait_for(cheat_until_committed(), 30)
        records = await committed_evidence(stores[0])
        slots = [
            tuple(r["vote_a"][k] for k in ("validator", "height", "round", "kind"))  # type: ignore[index]
            for r in records
        ]
        assert {s[0] for s in slots} == {key_id_of(cheater)}
        assert len(set(slots)) == len(slots)  # each double sign committed once
        report = await verify_store(stores[0], net.genesis)
        assert report.state.height >= 2
    finally:
        await stop_all(nodes)


async def test_whole_set_restarts_from_sqlite_stores_and_signer_files(tmp_path: Path) -> None:
    net = make_net(4)
    paths = [tmp_path / f"store{i}.sqlite" for i in range(4)]
    stores = [await SqliteBlockStore.open(p) for p in paths]
    nodes = await start_nodes(net, tmp_path, stores)
    try:
        first = [net.csms_tx(settlement_body(f"a-{i}")) for i in range(4)]
        await asyncio.wait_for(
            asyncio.gather(*(n.submit(t) for n, t in zip(nodes, first, strict=True))), 30
        )
    finally:
        await stop_all(nodes)
        for store in stores:
            await store.close()
    heights = [n.height for n in nodes]
    stores = [await SqliteBlockStore.open(p) for p in paths]
    nodes = await start_nodes(net, tmp_path, stores)
    try:
        assert [n.height for n in nodes] == heights  # resumed from the store alone
        second = [net.csms_tx(settlement_body(f"b-{i}")) for i in range(4)]
        receipts = await asyncio.wait_for(
            asyncio.gather(*(n.submit(t) for n, t in zip(nodes, second, strict=True))), 30
        )
        top = max(r.height for r in receipts)
        await wait_for(lambda: all(n.height >= top for n in nodes))
        for store in stores:
            report = await verify_store(store, net.genesis)
            expected = {f"a-{i}" for i in range(4)} | {f"b-{i}" for i in range(4)}
            assert set(report.state.settlements) >= expected
    finally:
        await stop_all(nodes)
        for store in stores:
            await store.close()


async def test_client_fails_over_and_forged_blocks_are_refused(tmp_path: Path) -> None:
    net = make_net(4)
    stores = [MemoryBlockStore() for _ in range(4)]
    nodes = await start_nodes(net, tmp_path, stores)
    try:
        dead = free_url()
        receipt = await submit_tx(
            [dead, nodes[0].url], net.csms_tx(settlement_body("f-1")), key=net.csms_key, timeout_s=5
        )
        assert receipt.height >= 1
        # A block for the next height whose certificate only 2 of 4 validators signed.
        state = (await verify_store(stores[1], net.genesis)).state
        top = await stores[1].height()
        last = await stores[1].get(top)
        block, _ = build_block(
            state,
            [net.csms_tx(settlement_body("forged"))],
            time=state.time + 1,
            proposer=state.validators.validators[0].address,
            last_commit=last.commit if last is not None else None,
        )
        weak = make_commit(
            chain_id=CHAIN_ID,
            height=block.header.height,
            block_id=block_id(block.header),
            keys=net.validator_keys[:2],
        )
        lagging = ValidatorNode(
            NodeConfig(net.genesis, generate_key(), tmp_path / "observer", timeouts=FAST),
            MemoryBlockStore(),
        )
        await lagging.start()
        try:
            async with link_to(lagging.url, key=net.validator_keys[1]) as ws:
                for h in range(1, top + 1):
                    stored = await stores[1].get(h)
                    assert stored is not None and stored.commit is not None
                    await ws.send(dump(BlockMsg(stored.block, stored.commit)))
                await ws.send(dump(BlockMsg(block, weak)))
            await wait_for(lambda: lagging.height >= top)
            await asyncio.sleep(0.3)
            assert await lagging.store.height() == top  # the forged block was not stored
            assert lagging.height == top
            # Control: the very same block with a quorum certificate is taken.
            full = make_commit(
                chain_id=CHAIN_ID,
                height=block.header.height,
                block_id=block_id(block.header),
                keys=net.validator_keys[:3],
            )
            async with link_to(lagging.url, key=net.validator_keys[1]) as ws:
                await ws.send(dump(BlockMsg(block, full)))
            await wait_for(lambda: lagging.height == top + 1)
        finally:
            await lagging.stop()
    finally:
        await stop_all(nodes)


async def test_an_idle_set_makes_no_block_until_there_is_something_to_commit(
    tmp_path: Path,
) -> None:
    net = make_net(4)
    stores = [MemoryBlockStore() for _ in range(4)]
    nodes = await start_nodes(net, tmp_path, stores)
    try:
        await asyncio.sleep(1.0)  # 20 block intervals, 10 gossip rounds
        assert [n.height for n in nodes] == [0, 0, 0, 0]
        receipt = await asyncio.wait_for(
            nodes[2].submit(net.csms_tx(settlement_body("wake-1"))), 10
        )
        assert receipt.height == 1
        await asyncio.sleep(1.0)
        assert [n.height for n in nodes] == [1, 1, 1, 1]
    finally:
        await stop_all(nodes)


async def test_max_idle_interval_makes_an_empty_block_after_that_long(tmp_path: Path) -> None:
    net = make_net(4)
    stores = [MemoryBlockStore() for _ in range(4)]
    nodes = await start_nodes(net, tmp_path, stores, max_idle_interval_ms=400)
    try:
        await wait_for(lambda: all(n.height >= 2 for n in nodes), timeout=10)
        stored = await stores[0].get(1)
        assert stored is not None and stored.block.txs == ()
        assert 1 <= nodes[0].height <= 6  # about one block per 400 ms, not one per interval
    finally:
        await stop_all(nodes)


async def test_a_decided_block_is_in_every_store_at_once_and_binds_the_canonical_commit(
    tmp_path: Path,
) -> None:
    net = make_net(4)
    stores = [MemoryBlockStore() for _ in range(4)]
    nodes = await start_nodes(net, tmp_path, stores)
    try:
        for i in range(3):
            tx = net.csms_tx(settlement_body(f"now-{i}"))
            receipt = await asyncio.wait_for(nodes[i].submit(tx), 10)
            # The answering validator stored the block before it answered.
            stored = await stores[i].get(receipt.height)
            assert stored is not None and stored.commit is not None
            assert tx_hash(stored.block.txs[receipt.index]) == tx_hash(tx)
            height = receipt.height
            await wait_for(lambda: all(n.height >= height for n in nodes))  # noqa: B023
        for store in stores:
            # Below the top, each certificate is the one the next header binds; the whole
            # chain verifies, and so does the top with this validator's own quorum.
            report = await verify_store(store, net.genesis)
            assert report.state.height == 3
            assert set(report.state.settlements) == {"now-0", "now-1", "now-2"}
    finally:
        await stop_all(nodes)


async def test_a_connections_waits_are_bounded_and_freed_when_it_closes(tmp_path: Path) -> None:
    """A submitter parks more receipt waits than one connection may have: the extra ones
    are answered at once with no document, and closing the connection ends the rest. A
    client, which proved no key, may park far fewer."""
    net = make_net(4)
    nodes = await start_nodes(net, tmp_path, [MemoryBlockStore() for _ in range(4)])
    try:
        node = nodes[0]
        async with link_to(node.url) as reader:  # a client: read only
            for i in range(MAX_WAITS_PER_CLIENT + 5):
                await reader.send(dump(GetReceipt(f"stranger-{i}", 60_000)))
            for _ in range(5):
                answer = load(await asyncio.wait_for(reader.recv(), 10))
                assert isinstance(answer, ReceiptDoc) and answer.document is None
            assert node.answers_in_flight == MAX_WAITS_PER_CLIENT
        await wait_for(lambda: node.answers_in_flight == 0, timeout=5)
        async with link_to(node.url, key=net.csms_key, role=Role.SUBMITTER) as ws:
            for i in range(MAX_WAITS_PER_LINK + 200):
                await ws.send(dump(GetReceipt(f"never-{i}", 60_000)))
            refused = 0
            async with asyncio.timeout(20):
                while refused < 200:
                    answer = load(await ws.recv())
                    assert isinstance(answer, ReceiptDoc) and answer.document is None
                    refused += 1
            assert node.answers_in_flight == MAX_WAITS_PER_LINK
            # A submission over the limit is answered at once as busy (never left waiting),
            # and nothing of it is admitted.
            busy = net.csms_tx(settlement_body("over-the-limit"))
            await ws.send(dump(TxMsg(busy, submit=True)))
            answer = load(await asyncio.wait_for(ws.recv(), 10))
            assert answer == Busy(tx_hash(busy))
            assert busy not in node.mempool
        await wait_for(lambda: node.answers_in_flight == 0, timeout=5)
        # The set still commits afterwards.
        receipt = await asyncio.wait_for(node.submit(net.csms_tx(settlement_body("after"))), 10)
        assert receipt.height >= 1
    finally:
        await stop_all(nodes)


async def test_an_idle_set_tells_its_height_rarely_and_answers_a_peer_behind(
    tmp_path: Path,
) -> None:
    net = make_net(4)
    stores = [MemoryBlockStore() for _ in range(4)]
    nodes = await start_nodes(net, tmp_path, stores)
    try:
        await asyncio.sleep(1.0)  # links up, the start's statuses told
        sent = [sum(s.messages_out for s in n.link_report().peers.values()) for n in nodes]
        await asyncio.sleep(2.0)  # 20 gossip ticks at rest
        after = [sum(s.messages_out for s in n.link_report().peers.values()) for n in nodes]
        # one status per peer per tick would be 60 frames per validator
        assert all(b - a <= 9 for a, b in zip(sent, after, strict=True)), (sent, after)
        # A validator that asks with a lower height hears the real one at once.
        async with link_to(nodes[0].url, key=net.validator_keys[1]) as ws:
            await ws.send(dump(Status(nodes[1].address, -1)))
            answer = load(await asyncio.wait_for(ws.recv(), 2))
        assert answer == Status(nodes[0].address, 0)
    finally:
        await stop_all(nodes)
