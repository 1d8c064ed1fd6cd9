"""Validator links and client links over real websockets: the handshake, what each role may
send, and a stranger's flood of forged votes."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from ledger.blocks import build_block
from ledger.codec import block_id
from ledger.commit import make_commit
from ledger.consensus.client import ValidatorSession
from ledger.consensus.errors import HandshakeFailed, SubmitRejected
from ledger.consensus.handshake import Auth, Hello, Role, Side, new_hello, prove
from ledger.consensus.limits import ConnectionCaps
from ledger.consensus.messages import Proposal
from ledger.consensus.node import NodeConfig, ValidatorNode
from ledger.consensus.signing import proposal_sign_bytes
from ledger.consensus.wire import (
    BlockMsg,
    GetStatus,
    Message,
    Rejected,
    Status,
    TxBatch,
    TxMsg,
    dump,
    load,
)
from ledger.keys import generate_key, sign
from ledger.signing import sign_vote
from ledger.state import genesis_state
from ledger.store import MemoryBlockStore
from ledger.tx import topup_body
from ledger.types import Vote, VoteKind
from tests.ledger.builders import CHAIN_ID, T0, Net, make_net, settlement_body
from tests.ledger.consensus.live import FAST, link_to, start_nodes, stop_all, wait_for


async def closed_with(ws: ClientConnection) -> str:
    """Read until the validator closes the connection; its reason (the code must be 1008)."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(10):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    return closed.value.rcvd.reason


async def hello_of(ws: ClientConnection) -> Hello:
    hello = load(await ws.recv())
    assert isinstance(hello, Hello)
    return hello


async def test_a_handshake_fails_for_another_chain_a_replayed_proof_or_a_strangers_key(
    tmp_path: Path,
) -> None:
    net = make_net(4)
    nodes = await start_nodes(net, tmp_path, [MemoryBlockStore() for _ in range(4)])
    node, key = nodes[0], net.validator_keys[1]
    try:
        # Anything before the hello closes the connection.
        async with connect(node.url) as ws:
            await hello_of(ws)
            await ws.send(dump(GetStatus()))
            assert "expected hello" in await closed_with(ws)
        # A hello for another chain.
        async with connect(node.url) as ws:
            await hello_of(ws)
            await ws.send(dump(new_hello("another-chain", Role.CLIENT)))
            assert "another-chain" in await closed_with(ws)
        # A proof signed for another chain (the hello names this one).
        async with connect(node.url) as ws:
            theirs = await hello_of(ws)
            mine = new_hello(CHAIN_ID, Role.VALIDATOR)
            await ws.send(dump(mine))
            await ws.send(dump(prove(key, "another-chain", Side.DIALER, mine, theirs)))
            assert "signature does not verify" in await closed_with(ws)
        # A key that is not a validator's.
        async with connect(node.url) as ws:
            theirs = await hello_of(ws)
            mine = new_hello(CHAIN_ID, Role.VALIDATOR)
            await ws.send(dump(mine))
            await ws.send(dump(prove(generate_key(), CHAIN_ID, Side.DIALER, mine, theirs)))
            assert "is not a validator" in await closed_with(ws)
        # A proof recorded from a good handshake, replayed on a new connection.
        async with connect(node.url) as ws:
            theirs = await hello_of(ws)
            mine = new_hello(CHAIN_ID, Role.VALIDATOR)
            recorded = prove(key, CHAIN_ID, Side.DIALER, mine, theirs)
            await ws.send(dump(mine))
            await ws.send(dump(recorded))
            assert isinstance(load(await ws.recv()), Auth)
            await ws.send(dump(GetStatus()))
            assert isinstance(load(await ws.recv()), Status)  # accepted: a validator link
        async with connect(node.url) as ws:
            await hello_of(ws)  # a fresh nonce
            await ws.send(dump(mine))
            await ws.send(dump(recorded))
            assert "signature does not verify" in await closed_with(ws)
        assert node.handshake_failures == 5
        # A client with the genesis checks the validator's proof in turn.
        other = dataclasses.replace(net.genesis, chain_id="another-chain")
        with pytest.raises(HandshakeFailed, match="another-chain"):
            async with ValidatorSession(node.url, genesis=other):
                pass
        async with ValidatorSession(node.url, genesis=net.genesis) as session:
            assert session.validator == node.address
        observer = ValidatorNode(
            NodeConfig(net.genesis, generate_key(), tmp_path / "observer", timeouts=FAST),
            MemoryBlockStore(),
        )
        await observer.start()
        try:
            with pytest.raises(HandshakeFailed, match="is not a validator"):
                async with ValidatorSession(observer.url, genesis=net.genesis):
                    pass
        finally:
            await observer.stop()
    finally:
        await stop_all(nodes)


async def test_only_a_connection_proving_a_signer_key_submits_and_only_what_that_key_signed(
    tmp_path: Path,
) -> None:
    net = make_net(4)
    nodes = await start_nodes(net, tmp_path, [MemoryBlockStore() for _ in range(4)])
    node = nodes[0]
    try:
        # A client proves no key: it may read, but a submission is refused at once, unread.
        anonymous = net.csms_tx(settlement_body("anon-1"))
        async with ValidatorSession(node.url, genesis=net.genesis) as reader:
            with pytest.raises(SubmitRejected, match="may only read"):
                await asyncio.wait_for(reader.submit(anonymous), 10)
            assert await asyncio.wait_for(reader.get_receipt("anon-1"), 10) is None
        assert node.refused_submissions == 1
        assert anonymous not in node.mempool
        # Neither a stranger's key nor a validator's key is a transaction signer's.
        for key in (generate_key(), net.validator_keys[1]):
            async with connect(node.url) as ws:
                theirs = await hello_of(ws)
                mine = new_hello(CHAIN_ID, Role.SUBMITTER)
                await ws.send(dump(mine))
                await ws.send(dump(prove(key, CHAIN_ID, Side.DIALER, mine, theirs)))
                assert "is not a transaction signer" in await closed_with(ws)
        # The CSMS's connection submits what the CSMS key signed, not what another key did
        # (even a valid transaction of the aggregator's).
        topup = net.aggregator_tx(topup_body(topup_id="t-1", account="ev:x", amount=5))
        async with ValidatorSession(node.url, genesis=net.genesis, key=net.csms_key) as csms:
            with pytest.raises(SubmitRejected, match="not by this connection's key"):
                await asyncio.wait_for(csms.submit(topup), 10)
            assert topup not in node.mempool
            receipt = await asyncio.wait_for(csms.submit(anonymous), 30)
            assert receipt.height >= 1
        async with ValidatorSession(node.url, genesis=net.genesis, key=net.aggregator_key) as agg:
            assert (await asyncio.wait_for(agg.submit(topup), 30)).height >= 1
        # A validator link carries consensus, not submissions.
        other = net.csms_tx(settlement_body("via-validator"))
        async with link_to(node.url, key=net.validator_keys[2]) as ws:
            await ws.send(dump(TxMsg(other, submit=True)))
            answer = load(await asyncio.wait_for(ws.recv(), 10))
            while isinstance(answer, Status | Vote | Proposal):  # its gossip, as to a peer
                answer = load(await asyncio.wait_for(ws.recv(), 10))
            assert isinstance(answer, Rejected) and "submitter connection" in answer.reason
        assert node.handshake_failures == 2
    finally:
        await stop_all(nodes)


async def test_consensus_messages_from_a_client_are_dropped_and_counted(tmp_path: Path) -> None:
    """Even genuinely signed votes and a block with a quorum certificate are not taken from
    a client link; the very same block on a validator link is."""
    net = make_net(4)
    nodes = await start_nodes(net, tmp_path, [MemoryBlockStore() for _ in range(4)])
    node, key = nodes[0], net.validator_keys[1]
    state = genesis_state(net.genesis)
    tx = net.csms_tx(settlement_body("s-1"))
    block, _ = build_block(state, [tx], time=T0 + 1, proposer=node.address, last_commit=None)
    bid = block_id(block.header)
    certificate = make_commit(chain_id=CHAIN_ID, height=1, block_id=bid, keys=net.validator_keys)
    vote = sign_vote(Vote(CHAIN_ID, 1, 0, VoteKind.PREVOTE, bid, ""), key)
    shell = Proposal(CHAIN_ID, 1, 0, b"", bid, -1, vote.validator, b"")
    proposal = dataclasses.replace(shell, signature=sign(key, proposal_sign_bytes(shell)))
    frames: list[Message] = [
        vote,
        proposal,
        BlockMsg(block, certificate),
        TxMsg(tx),  # gossip, not a submission
        TxBatch((tx,)),
        Status(vote.validator, 9),
    ]
    try:
        async with link_to(node.url) as ws:  # a client
            for msg in frames:
                await ws.send(dump(msg))
            await ws.send(dump(GetStatus()))
            answer = load(await ws.recv())  # frames are read in order: the others are done
            assert isinstance(answer, Status) and answer.height == 0
        assert node.dropped_frames == len(frames)
        await asyncio.sleep(0.5)
        assert [n.height for n in nodes] == [0, 0, 0, 0]  # nothing woke or moved the set
        assert len(node.mempool) == 0
        async with link_to(node.url, key=key) as ws:  # a validator
            await ws.send(dump(BlockMsg(block, certificate)))
            await wait_for(lambda: node.height == 1, timeout=10)
        assert node.dropped_frames == len(frames)
    finally:
        await stop_all(nodes)


async def blocks_made(net: Net, nodes: list[ValidatorNode], prefix: str, seconds: float) -> float:
    """Blocks a second while one submitter after another commits a settlement."""
    loop = asyncio.get_running_loop()
    start_height, started = nodes[0].height, loop.time()
    index = 0
    while loop.time() - started < seconds:
        tx = net.csms_tx(settlement_body(f"{prefix}-{index}"))
        await asyncio.wait_for(nodes[index % 4].submit(tx), 10)
        index += 1
    return (nodes[0].height - start_height) / (loop.time() - started)


FLOOD_RATE = 1500  # forged votes a second to each validator
WINDOW_S = 3.0


async def test_a_strangers_forged_vote_flood_does_not_slow_block_production(
    tmp_path: Path,
) -> None:
    net = make_net(4)
    # blocks paced by the interval (a height starts at most every 150 ms), not by how fast
    # this loaded machine agrees one: a flood that costs the validators more than the slack
    # shows as fewer blocks, the machine's own load does not
    stores = [MemoryBlockStore() for _ in range(4)]
    nodes = await start_nodes(net, tmp_path, stores, block_interval_ms=150)
    try:
        quiet = await blocks_made(net, nodes, "quiet", WINDOW_S)
        flooder = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.ledger.consensus.flood",
            "--chain-id",
            CHAIN_ID,
            "--claim",
            nodes[1].address,
            "--seconds",
            str(WINDOW_S + 1),
            "--rate",
            str(FLOOD_RATE),
            *(n.url for n in nodes),
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert flooder.stdout is not None
            line = await asyncio.wait_for(flooder.stdout.readline(), 20)
            assert line.strip() == b"flooding", "the flood process could not connect"
            flooded = await blocks_made(net, nodes, "flooded", WINDOW_S)
            out, _ = await asyncio.wait_for(flooder.communicate(), 20)
        finally:
            if flooder.returncode is None:
                flooder.kill()
                await flooder.wait()
        sent = int(out)
        # the flood was real: hundreds of forged votes a second to each validator, far more than
        # the few real ones a block takes, even when this loaded machine slows the flooder
        assert sent >= FLOOD_RATE * WINDOW_S * 4 * 0.25, sent
        await wait_for(lambda: sum(n.dropped_frames for n in nodes) == sent, timeout=10)
        print(f"blocks/s quiet {quiet:.1f}, under {sent} forged votes {flooded:.1f}")
        assert flooded >= 0.75 * quiet
    finally:
        await stop_all(nodes)


async def refused_at_once(host: str, port: int) -> bool:
    """Open a TCP connection and send nothing: True if the validator closes it at once
    (an admitted one waits for the handshake)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        async with asyncio.timeout(1.5):
            return await reader.read() == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    finally:
        writer.close()


async def test_connections_from_one_address_are_capped_from_the_tcp_accept(
    tmp_path: Path,
) -> None:
    """Over real sockets: one address may hold a few unfinished handshakes and a few
    connections; more are closed at once, before anything is read, and counted by cap."""
    net = make_net(4)
    caps = ConnectionCaps(per_address=3, opening_per_address=2)
    config = NodeConfig(
        net.genesis, net.validator_keys[0], tmp_path / "v0", timeouts=FAST, connection_caps=caps
    )
    node = ValidatorNode(config, MemoryBlockStore())
    await node.start()
    host, port = node.url.removeprefix("ws://").rsplit(":", 1)
    limits = node.connection_limits
    try:
        # Two connections that never start their handshake hold the address's opening slots.
        idle = [await asyncio.open_connection(host, int(port)) for _ in range(2)]
        await wait_for(lambda: limits.opening == 2, timeout=5)
        assert await refused_at_once(host, int(port))
        assert limits.refused["address_opening"] == 1
        idle.pop()[1].close()
        await wait_for(lambda: limits.opening == 1, timeout=5)
        # Sessions that finish their handshake leave the opening count; the third
        # connection of the address is the last one it may hold.
        async with (
            ValidatorSession(node.url, genesis=net.genesis) as first,
            ValidatorSession(node.url, key=net.csms_key) as second,
        ):
            assert limits.from_address("127.0.0.1") == 3 and limits.opening == 1
            with pytest.raises((OSError, WebSocketException)):
                async with ValidatorSession(node.url, genesis=net.genesis):
                    pass
            assert limits.refused["address"] == 1
            assert await first.get_receipt("none") is None  # the admitted ones work
            assert await second.get_receipt("none") is None
        idle.pop()[1].close()
        await wait_for(lambda: limits.connections == 0, timeout=5)
        async with ValidatorSession(node.url, genesis=net.genesis):
            pass  # the address may connect again
        assert dict(limits.refused) == {
            "address": 1,
            "address_opening": 1,
            "total": 0,
            "opening": 0,
        }
    finally:
        await node.stop()
