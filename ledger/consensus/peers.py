"""Websocket links between validators: one server for inbound frames, one link per peer.

A node sends its own messages on its outbound links (reconnecting when one drops) and answers
a peer on the connection the request came on. Frames are parsed here; the node only ever sees
typed messages. A slow peer cannot stall consensus: each link has a bounded outbox and what
overflows is dropped (gossip resends it). No per-message compression: on a validator's links
it costs more CPU than the bandwidth it saves.

Answers that take a while (a submission waiting for its block, a receipt waiting to be
stored) run as tasks owned by the connection they answer (``Link.spawn``): at most
``MAX_WAITS_PER_LINK`` on one connection and ``MAX_WAITS`` in all; more are refused, and a
connection's tasks are cancelled when it closes, so a client that goes away leaves no work.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import WebSocketException

from ledger.consensus.wire import Message, dump, load
from ledger.errors import LedgerError

MAX_FRAME = 16 * 1024 * 1024
OUTBOX_SIZE = 10_000
RECONNECT_S = 0.2
MAX_WAITS_PER_LINK = 1_000  # answers in flight on one connection
MAX_WAITS = 20_000  # answers in flight on all connections together


class Link:
    """One connection as its messages' handler sees it: ``await link(msg)`` answers on it,
    ``link.spawn(work)`` runs a longer answer as a task bound to it."""

    def __init__(self, ws: ClientConnection | ServerConnection, network: PeerNetwork) -> None:
        self._ws = ws
        self._network = network
        self.tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, msg: Message) -> None:
        await self._ws.send(dump(msg))

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
        """Run ``work`` as a task of this connection; None (and ``work`` dropped) when this
        connection or the node has too many in flight."""
        if len(self.tasks) >= MAX_WAITS_PER_LINK or self._network.waiting >= MAX_WAITS:
            work.close()
            self._network.refused += 1
            return None
        task = asyncio.create_task(work)
        self.tasks.add(task)
        self._network.waiting += 1
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self._network.waiting -= 1

    def cancel_all(self) -> None:
        for task in list(self.tasks):
            task.cancel()


Reply = Link
Handler = Callable[[Message, Reply], Awaitable[None]]


class PeerNetwork:
    """Listen for peers and clients; keep outbound links to peer URLs."""

    def __init__(self, handler: Handler, *, host: str, port: int) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._server: Server | None = None
        self._outboxes: dict[str, asyncio.Queue[str]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.waiting = 0  # answers in flight on all connections
        self.refused = 0  # answers refused for being over a limit

    async def listen(self) -> None:
        self._server = await serve(
            self._serve, self._host, self._port, max_size=MAX_FRAME, compression=None
        )

    @property
    def url(self) -> str:
        assert self._server is not None, "listen() first"
        host, port = next(iter(self._server.sockets)).getsockname()[:2]
        return f"ws://{host}:{port}"

    def connect(self, urls: Iterable[str]) -> None:
        for url in urls:
            if url != self.url and url not in self._outboxes:
                outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=OUTBOX_SIZE)
                self._outboxes[url] = outbox
                self._tasks.append(asyncio.create_task(self._link(url, outbox)))

    def broadcast(self, msg: Message) -> None:
        text = dump(msg)
        for outbox in self._outboxes.values():
            with contextlib.suppress(asyncio.QueueFull):
                outbox.put_nowait(text)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _link(self, url: str, outbox: asyncio.Queue[str]) -> None:
        while True:
            try:
                async with connect(url, max_size=MAX_FRAME, open_timeout=2, compression=None) as ws:
                    writing = asyncio.create_task(_write(ws, outbox))
                    try:
                        await self._read(ws)
                    finally:
                        writing.cancel()
            except (TimeoutError, OSError, WebSocketException):
                pass
            await asyncio.sleep(RECONNECT_S)

    async def _serve(self, ws: ServerConnection) -> None:
        with contextlib.suppress(WebSocketException):
            await self._read(ws)

    async def _read(self, ws: ClientConnection | ServerConnection) -> None:
        link = Link(ws, self)
        try:
            async for frame in ws:
                try:
                    msg = load(frame)
                except LedgerError:
                    continue  # a malformed frame is dropped, the link stays
                await self._handler(msg, link)
        finally:
            link.cancel_all()  # nobody is left to answer


async def _write(ws: ClientConnection, outbox: asyncio.Queue[str]) -> None:
    while True:
        await ws.send(await outbox.get())
