"""Composition roots for validators: one from its home directory, or a whole set in-process.

``run_validator(home)`` is what ``v2g validator --home DIR`` runs: it reads the home's
``config.yaml`` (``ledger.home``), opens its SQLite block store, starts the node and keeps
links to the peers listed there until ``stop`` is set. ``start_embedded(data_dir)`` starts every
validator of a data dir inside the current event loop (each with its own SQLite file), on
loopback ports chosen by the system, for the one-command demo and for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from dataclasses import dataclass, field
from pathlib import Path

from ledger.checked import CheckedTxs
from ledger.consensus.errors import MetricsPortError
from ledger.consensus.gc_ticks import GcTicks, run_gc_ticks
from ledger.consensus.metrics_port import MetricsPort, render_node_metrics
from ledger.consensus.node import NodeConfig, ValidatorNode
from ledger.consensus.state import TimeoutConfig
from ledger.gc_freeze import freeze_start_up_heap
from ledger.home import load_home, load_home_genesis, load_validator_key, validator_homes
from ledger.sqlite_store import SqliteBlockStore


@dataclass(frozen=True, slots=True)
class Tuning:
    """Timing knobs (the defaults suit a LAN; tests shorten them)."""

    timeouts: TimeoutConfig = field(default_factory=TimeoutConfig)
    block_interval_ms: int = 1000
    gossip_interval_ms: int = 300
    max_block_txs: int = 500
    max_idle_interval_ms: int = 0  # an empty block after this long without one (0: never)


def validator_urls(data_dir: Path) -> list[str]:
    """Where the validators of a data dir listen (for clients started with a data dir)."""
    configs = [load_home(home) for home in validator_homes(data_dir)]
    return [f"ws://{c.listen_host}:{c.listen_port}" for c in configs]


async def open_validator(
    home: Path,
    *,
    tuning: Tuning | None = None,
    port: int | None = None,
    checked: CheckedTxs | None = None,
) -> tuple[ValidatorNode, SqliteBlockStore]:
    """Build (not start) the validator of ``home`` on its SQLite store (``checked``: the
    transactions already checked in this process, when several validators share it)."""
    tuning = tuning or Tuning()
    config = load_home(home)
    genesis = load_home_genesis(config)
    key = load_validator_key(config)
    store = await SqliteBlockStore.open(config.store_path)
    node = ValidatorNode(
        NodeConfig(
            genesis,
            key,
            home,
            host=config.listen_host,
            port=config.listen_port if port is None else port,
            timeouts=tuning.timeouts,
            block_interval_ms=tuning.block_interval_ms,
            max_block_txs=tuning.max_block_txs,
            gossip_interval_ms=tuning.gossip_interval_ms,
            max_idle_interval_ms=tuning.max_idle_interval_ms,
            connection_caps=config.caps,
        ),
        store,
        checked=checked,
    )
    return node, store


async def run_validator(
    home: Path,
    *,
    tuning: Tuning | None = None,
    stop: asyncio.Event | None = None,
    metrics: tuple[str, int] | None = None,
) -> None:
    """Run the validator of ``home`` until ``stop`` is set (forever without one); with
    ``metrics`` (host, port), also serve its metrics there (``metrics_port.py``).

    The validator owns its process's garbage collection (``gc_ticks``)."""
    node, store = await open_validator(home, tuning=tuning)
    port: MetricsPort | None = None
    freeze_start_up_heap()  # modules, genesis, keys: no collection walks them again
    ticks = GcTicks()
    collector = asyncio.create_task(run_gc_ticks(ticks))
    try:
        await node.start()
        if metrics is not None:
            port = MetricsPort(lambda: render_node_metrics(node, ticks))
            try:
                await port.listen(*metrics)
            except OSError as exc:
                why = "port in use" if exc.errno == errno.EADDRINUSE else exc.strerror
                raise MetricsPortError(f"{metrics[0]}:{metrics[1]}: {why}") from exc
        node.connect(peer.url for peer in load_home(home).peers)
        await (stop or asyncio.Event()).wait()
    finally:
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
        if port is not None:
            await port.close()
        await node.stop()
        await store.close()


SETTLE_S = 3.0  # at most this long for lagging validators to catch up at a clean stop


@dataclass
class EmbeddedSet:
    """Validators running inside this process; ``urls`` is what clients submit to."""

    nodes: list[ValidatorNode]
    stores: list[SqliteBlockStore]

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    async def stop(self, *, settle_s: float = SETTLE_S) -> None:
        """Stop every validator, first letting those behind store what the others decided
        (bounded by ``settle_s``): a clean stop leaves each store at the same height."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settle_s
        while self.nodes and loop.time() < deadline:
            if len({node.height for node in self.nodes}) <= 1:
                break
            await asyncio.sleep(0.02)
        for node in self.nodes:
            await node.stop()
        for store in self.stores:
            await store.close()


async def start_embedded(data_dir: Path, *, tuning: Tuning | None = None) -> EmbeddedSet:
    """Start every validator of ``data_dir`` in this process on system-chosen loopback ports.

    They share one record of checked transactions: a transaction's signature and schema
    depend only on its bytes, so the process checks each once, not once per validator."""
    nodes: list[ValidatorNode] = []
    stores: list[SqliteBlockStore] = []
    checked = CheckedTxs()
    try:
        for home in validator_homes(data_dir):
            node, store = await open_validator(home, tuning=tuning, port=0, checked=checked)
            stores.append(store)
            await node.start()
            nodes.append(node)
    except BaseException:
        await EmbeddedSet(nodes, stores).stop()
        raise
    for node in nodes:
        node.connect(n.url for n in nodes)
    return EmbeddedSet(nodes, stores)
