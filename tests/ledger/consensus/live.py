"""Validators running in this process over real websockets on 127.0.0.1 (port 0), and raw
connections to them, for the node and link tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

from ledger.consensus.handshake import Role
from ledger.consensus.node import NodeConfig, ValidatorNode
from ledger.consensus.peers import greet
from ledger.consensus.state import TimeoutConfig
from ledger.keys import SigningKey
from ledger.store import BlockStore
from tests.ledger.builders import CHAIN_ID, Net

FAST = TimeoutConfig(300, 100, 200, 100, 200, 100)


async def start_nodes(
    net: Net,
    tmp_path: Path,
    stores: Sequence[BlockStore],
    *,
    max_idle_interval_ms: int = 0,
    block_interval_ms: int = 50,
) -> list[ValidatorNode]:
    nodes = [
        ValidatorNode(
            NodeConfig(
                net.genesis,
                key,
                tmp_path / f"v{i}",
                timeouts=FAST,
                block_interval_ms=block_interval_ms,
                gossip_interval_ms=100,
                max_idle_interval_ms=max_idle_interval_ms,
            ),
            stores[i],
        )
        for i, key in enumerate(net.validator_keys)
    ]
    for node in nodes:
        await node.start()
    for node in nodes:
        node.connect([n.url for n in nodes])
    return nodes


@contextlib.asynccontextmanager
async def link_to(
    url: str, *, key: SigningKey | None = None, role: Role = Role.VALIDATOR
) -> AsyncIterator[ClientConnection]:
    """A raw connection after its handshake: in ``role`` (a validator's, or a submitter's)
    proving ``key``, or a client's without a key."""
    async with connect(url, max_size=None) as ws:
        role = Role.CLIENT if key is None else role
        await greet(ws, role=role, chain_id=CHAIN_ID, key=key)
        yield ws


async def stop_all(nodes: list[ValidatorNode]) -> None:
    for node in nodes:
        await node.stop()


async def wait_for(condition: object, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)


def free_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"ws://127.0.0.1:{s.getsockname()[1]}"
