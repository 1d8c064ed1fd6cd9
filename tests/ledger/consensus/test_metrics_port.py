"""A validator's own metrics port over real sockets: height and link counters as Prometheus
text, other requests answered 404 or 405, and scrapers bounded in number."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx

from ledger.consensus.metrics_port import MAX_CONNECTIONS, MetricsPort, render_node_metrics
from ledger.store import MemoryBlockStore
from tests.ledger.builders import make_net, settlement_body
from tests.ledger.consensus.live import start_nodes, stop_all, wait_for
from tests.ledger.consensus.test_links import refused_at_once

SAMPLE = re.compile(r"^([a-z_][a-z0-9_]*)(\{[^}]*\})? (-?[0-9.e+]+)$")


def samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith("# "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        out[match[1] + (match[2] or "")] = float(match[3])
    return out


async def test_a_validator_serves_its_height_and_link_counters(tmp_path: Path) -> None:
    net = make_net(4)
    nodes = await start_nodes(net, tmp_path, [MemoryBlockStore() for _ in range(4)])
    node = nodes[0]
    port = MetricsPort(lambda: render_node_metrics(node))
    await port.listen("127.0.0.1", 0)
    base = f"http://127.0.0.1:{port.port}"
    try:
        await asyncio.wait_for(node.submit(net.csms_tx(settlement_body("m-1"))), 20)
        await wait_for(lambda: all(s.up for s in node.link_report().peers.values()), timeout=10)
        async with httpx.AsyncClient(base_url=base) as http:
            answer = await http.get("/metrics")
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
            got = samples(answer.text)
            assert got[f'v2g_validator_height{{validator="{node.address}"}}'] >= 1
            for other in nodes[1:]:
                peer = f'{{validator="{node.address}",peer="{other.url}"}}'
                assert got[f"v2g_validator_peer_up{peer}"] == 1
                assert got[f"v2g_validator_peer_connects_total{peer}"] >= 1
            inbound = f'{{validator="{node.address}",role="validator",direction="in"}}'
            assert got[f"v2g_validator_inbound_messages_total{inbound}"] >= 1
            assert (await http.get("/other")).status_code == 404
            assert (await http.post("/metrics")).status_code == 405
        # Scrapers that never send a request hold the port's few places; one more is
        # closed at once, and a place freed is taken again.
        host, port_number = "127.0.0.1", port.port
        idle = [await asyncio.open_connection(host, port_number) for _ in range(MAX_CONNECTIONS)]
        await wait_for(lambda: port.open == MAX_CONNECTIONS, timeout=5)
        assert await refused_at_once(host, port_number)
        assert port.refused == 1
        for _, writer in idle:
            writer.close()
        await wait_for(lambda: port.open == 0, timeout=5)
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/metrics")).status_code == 200
    finally:
        await port.close()
        await stop_all(nodes)
