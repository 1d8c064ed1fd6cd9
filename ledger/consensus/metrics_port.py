"""A validator's own metrics: Prometheus text on ``GET /metrics``, on a port of its own.

Off unless asked for (``v2g validator --metrics-port P``); meant for loopback or a
monitoring network, since the series name the validator's peers. What a scraper can cost is
bounded: at most ``MAX_CONNECTIONS`` at once (more are closed at once, unread), a request
head of at most ``MAX_HEAD`` bytes read within ``REQUEST_S``, one answer per connection.
Anything but ``GET /metrics`` is answered 404 (405 for another method on it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from ledger.consensus.gc_ticks import GcTicks
from ledger.consensus.linkstats import render_validator_links
from ledger.consensus.node import ValidatorNode

MAX_CONNECTIONS = 16
MAX_HEAD = 8 * 1024
REQUEST_S = 5.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render_node_metrics(node: ValidatorNode, gc_ticks: GcTicks | None = None) -> str:
    """The validator's height and its link counters (and, with ``gc_ticks``, its process's
    collections)."""
    name = "v2g_validator_height"
    lines = [
        f"# HELP {name} Height of the validator's last stored block.",
        f"# TYPE {name} gauge",
        f'{name}{{validator="{node.address}"}} {node.height}',
        *render_validator_links([node.link_report()]),
    ]
    if gc_ticks is not None:
        name = "v2g_validator_gc_collections_total"
        lines += [
            f"# HELP {name} Collections of the objects made since the last one (freeze) and "
            "of the whole heap (full).",
            f"# TYPE {name} counter",
            f'{name}{{validator="{node.address}",kind="freeze"}} {gc_ticks.freezes}',
            f'{name}{{validator="{node.address}",kind="full"}} {gc_ticks.full_collections}',
        ]
    return "\n".join(lines) + "\n"


def _response(status: str, body: str, content_type: str = "text/plain; charset=utf-8") -> bytes:
    data = body.encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + data


class MetricsPort:
    """The listening socket; ``render()`` gives the text of each scrape."""

    def __init__(self, render: Callable[[], str]) -> None:
        self._render = render
        self._server: asyncio.Server | None = None
        self.open = 0  # connections being answered
        self.refused = 0  # connections closed unread: too many at once

    async def listen(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._answer, host, port, limit=MAX_HEAD)

    @property
    def port(self) -> int:
        assert self._server is not None, "listen() first"
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.open >= MAX_CONNECTIONS:
            self.refused += 1
            writer.transport.abort()
            return
        self.open += 1
        try:
            async with asyncio.timeout(REQUEST_S):
                head = await reader.readuntil(b"\r\n\r\n")
                writer.write(self._reply(head))
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            self.open -= 1
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _reply(self, head: bytes) -> bytes:
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or parts[1].split("?", 1)[0] != "/metrics":
            return _response("404 Not Found", "not found: the metrics are at GET /metrics\n")
        if parts[0] != "GET":
            return _response("405 Method Not Allowed", "use GET /metrics\n")
        return _response("200 OK", self._render(), CONTENT_TYPE)
