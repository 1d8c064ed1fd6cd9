"""Websocket links between validators, and from clients: one server, one link per peer.

Every connection opens with the handshake of ``handshake.py`` before anything else is read
(at most ``HANDSHAKE_S``; a failure closes it with code 1008 and the reason, and is counted
in ``handshake_failures``). A **validator link** proves a genesis validator key in both
directions and carries everything but submissions; a **submitter link** proves a key the
ledger knows as a transaction signer (a CSMS key or the aggregator's) and may submit
transactions signed by that key and read; a **client link** (no key) may only ask for
receipts, blocks and status: its submissions are answered ``rejected`` unread. Any other
frame on a submitter or client link (a vote, a proposal, a block, gossip) is dropped unread
and counted in ``dropped``, so a stranger's forged votes cost a glance at the frame, never
a signature check.

A node sends its own messages on its outbound links (reconnecting when one drops) and answers
a peer on the connection the request came on. Frames are parsed here; the node only ever sees
typed messages. A slow peer cannot stall consensus: each link has a bounded outbox and what
overflows is dropped (gossip resends it). No per-message compression: on a validator's links
it costs more CPU than the bandwidth it saves.

Answers that take a while (a submission waiting for its block, a receipt waiting to be
stored) run as tasks owned by the connection they answer (``Link.spawn``): at most
``MAX_WAITS_PER_LINK`` on one validator or submitter connection and ``MAX_WAITS`` in all,
and for clients, who proved nothing, ``MAX_WAITS_PER_CLIENT`` on one connection and
``MAX_CLIENT_WAITS`` on all of them together (so strangers cannot use up what submitters
need); more are refused, and a connection's tasks are cancelled when it closes, so a client
that goes away leaves no work. At most ``MAX_SUBMITTERS`` submitter links and
``MAX_CLIENTS`` client links at a time. These are defaults: each is a ``ConnectionCaps``
field, set by the validator's config.yaml. Connections per source address and overall, and
those still in their handshake, are capped from the moment the TCP connection is accepted
(``limits.py``): one over a cap is closed at once, unread, and counted.

Each outbound link keeps ``LinkStats`` (``links``, by peer URL: up, connects, refused
handshakes, frames in and out, frames dropped from a full outbox); the listening port keeps
them by role (``inbound``), busy answers included.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, ClassVar, TypeVar, cast

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, WebSocketException

from ledger.consensus.errors import HandshakeFailed
from ledger.consensus.handshake import (
    FEATURES,
    PROVING_ROLES,
    Auth,
    Hello,
    Role,
    Side,
    SubmitterKeys,
    ValidatorKeys,
    check_auth,
    check_hello,
    new_hello,
    prove,
)
from ledger.consensus.limits import ConnectionCaps, ConnectionLimits, Slot
from ledger.consensus.linkstats import LinkStats, ValidatorLinks
from ledger.consensus.wire import (
    SUBMIT_BATCH,
    GetBlocks,
    GetReceipt,
    GetStatus,
    Message,
    Receipt,
    Receipts,
    Rejected,
    SubmitBatch,
    TxMsg,
    dump,
    load,
)
from ledger.errors import LedgerError
from ledger.keys import SigningKey

log = logging.getLogger(__name__)

MAX_FRAME = 16 * 1024 * 1024
OUTBOX_SIZE = 10_000
RECONNECT_S = 0.2
REFUSED_RECONNECT_S = 2.0  # after a failed handshake: the peer will not change its mind soon
HANDSHAKE_S = 5.0  # the whole opening, both halves
MAX_WAITS_PER_LINK = 1_000  # answers in flight on one validator or submitter connection
MAX_WAITS = 20_000  # answers in flight on all connections together
# the client caps' defaults (``ConnectionCaps``; a validator's config.yaml may change them)
_DEFAULT_CAPS = ConnectionCaps()
MAX_WAITS_PER_CLIENT = _DEFAULT_CAPS.waits_per_client  # answers in flight on one client link
MAX_CLIENT_WAITS = _DEFAULT_CAPS.client_waits  # answers in flight on all client links
MAX_CLIENTS = _DEFAULT_CAPS.clients  # client (read-only) links open at once
MAX_SUBMITTERS = _DEFAULT_CAPS.submitters  # submitter links open at once
MAX_REQUEST = 1024  # a client's request other than a submission
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013

NOT_A_SUBMITTER = (
    "this connection may only read: submitting needs the submitter role, proving a key the "
    "ledger knows (an authorised CSMS key or the aggregator's)"
)

M = TypeVar("M", Hello, Auth)


def is_submission(frame: str) -> bool:
    """A submission frame: one transaction, or several (``SubmitBatch``)."""
    if frame.startswith('{"tx":{'):
        return frame.endswith(',"type":"submit"}')
    return frame.startswith('{"txs":[') and frame.endswith(f',"type":"{SUBMIT_BATCH}"}}')


def client_frame_passes(frame: str | bytes, *, submitter: bool = True) -> bool:
    """A cheap look at a submitter's or client's frame before it is parsed: a submission
    (a submitter's) or a small request. Anything else (a vote, a proposal, a block,
    gossip) is dropped unread."""
    if isinstance(frame, bytes):
        frame = frame.decode("utf-8", "replace")
    if frame.startswith(('{"tx":{', '{"txs":[')):
        return submitter and is_submission(frame)
    return len(frame) <= MAX_REQUEST and '"type":"get_' in frame


def client_may_send(msg: Message, *, submitter: bool = True) -> bool:
    """What a submitter link carries: submissions and reads; a client link: reads only.
    Never consensus or gossip."""
    if isinstance(msg, TxMsg):
        return submitter and msg.submit
    if isinstance(msg, SubmitBatch):
        return submitter
    return isinstance(msg, GetReceipt | GetBlocks | GetStatus)


class Link:
    """One open connection as its messages' handler sees it: ``await link(msg)`` answers
    on it, ``link.spawn(work)`` runs a longer answer as a task bound to it. ``role`` and
    ``peer`` (the address it proved: a validator's, or a submitter's key id; None for a
    client) come from its handshake.

    To an end that declared ``batches`` in its hello, receipts go together: those answered
    in one turn of the event loop (a block answers all its submitters at once) leave in one
    ``Receipts`` frame at the next turn; to any other, one frame each."""

    def __init__(
        self,
        ws: ClientConnection | ServerConnection,
        network: PeerNetwork,
        *,
        role: Role,
        peer: str | None,
        stats: LinkStats,
        batches: bool = False,
    ) -> None:
        self._ws = ws
        self._network = network
        self.role = role
        self.peer = peer
        self.stats = stats  # shared by the links of one peer URL (or one inbound role)
        self.batches = batches
        self.tasks: set[asyncio.Task[None]] = set()
        self.dropped = 0  # frames its role may not send
        self._receipts: list[Receipt] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def __call__(self, msg: Message) -> None:
        if self.batches and type(msg) is Receipt:
            self._receipts.append(msg)
            if len(self._receipts) == 1:
                asyncio.get_running_loop().call_soon(self._flush_receipts)
            return
        await self._ws.send(dump(msg))
        self.stats.messages_out += 1

    def _flush_receipts(self) -> None:
        receipts, self._receipts = tuple(self._receipts), []
        if receipts:
            task = asyncio.ensure_future(self._send_quietly(Receipts(receipts)))
            self._sending.add(task)  # kept until sent (the loop holds tasks weakly)
            task.add_done_callback(self._sending.discard)

    async def _send_quietly(self, msg: Message) -> None:
        with contextlib.suppress(WebSocketException):  # closed meanwhile: nobody to tell
            await self._ws.send(dump(msg))
            self.stats.messages_out += 1

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
        """Run ``work`` as a task of this connection; None (and ``work`` dropped) when this
        connection or the node has too many in flight."""
        network = self._network
        client = self.role is Role.CLIENT
        if client:
            caps = network.limits.caps
            full = len(self.tasks) >= caps.waits_per_client
            full = full or network.client_waiting >= caps.client_waits
        else:
            full = len(self.tasks) >= MAX_WAITS_PER_LINK
        if full or network.waiting >= MAX_WAITS:
            work.close()
            network.refused += 1
            self.stats.busy += 1
            return None
        task = asyncio.create_task(work)
        self.tasks.add(task)
        network.waiting += 1
        network.client_waiting += client
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self._network.waiting -= 1
        self._network.client_waiting -= self.role is Role.CLIENT

    def cancel_all(self) -> None:
        for task in list(self.tasks):
            task.cancel()


Reply = Link
Handler = Callable[[Message, Reply], Awaitable[None]]


async def _expect(ws: ClientConnection | ServerConnection, kind: type[M]) -> M:
    """The next frame, which must be a ``kind`` (``HandshakeFailed`` otherwise)."""
    frame = await ws.recv()
    try:
        msg = load(frame)
    except LedgerError as exc:
        raise HandshakeFailed(f"expected {kind.__name__.lower()}: {exc}") from None
    if not isinstance(msg, kind):
        raise HandshakeFailed(f"expected {kind.__name__.lower()} first, got {type(msg).__name__}")
    return msg


@dataclasses.dataclass(frozen=True, slots=True)
class Greeted:
    """What the dialer learnt in the handshake: the listener's address (checked against
    ``validators``; None without) and whether it takes ``batches``."""

    address: str | None
    batches: bool


async def greet(
    ws: ClientConnection,
    *,
    role: Role,
    chain_id: str | None,
    key: SigningKey | None = None,
    validators: ValidatorKeys | None = None,
    features: tuple[str, ...] = FEATURES,
) -> Greeted:
    """The dialer's half of the handshake on a fresh connection ``ws``.

    A validator or a submitter proves ``key``; a client proves nothing. With
    ``validators``, the listener's proof is checked and its address returned (None without).
    ``chain_id`` None takes the listener's (a client that has no genesis). Raises
    ``HandshakeFailed``; a listener that refuses this end closes the connection.
    ``features``: what this end declares it reads (``handshake.FEATURES``).
    """
    theirs = await _expect(ws, Hello)
    chain = theirs.chain_id if chain_id is None else chain_id
    check_hello(theirs, chain)
    mine = dataclasses.replace(new_hello(chain, role), features=features)
    await ws.send(dump(mine))
    if role in PROVING_ROLES:
        if key is None:
            raise ValueError(f"a {role} link needs its key")
        await ws.send(dump(prove(key, chain, Side.DIALER, mine, theirs)))
    auth = await _expect(ws, Auth)
    if validators is None:
        return Greeted(None, theirs.batches)
    address = check_auth(
        auth, chain_id=chain, side=Side.LISTENER, mine=mine, theirs=theirs, validators=validators
    )
    return Greeted(address, theirs.batches)


class LimitedConnection(ServerConnection):
    """A server connection that takes a slot of ``limits`` when its TCP connection is
    accepted, or is closed at once when none is left (before anything is read)."""

    limits: ClassVar[ConnectionLimits]
    slot: Slot | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        self.slot = self.limits.admit(address)
        if self.slot is None:
            cast(asyncio.Transport, transport).abort()  # refused: counted by the cap it hit
            return
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.slot is None:
            return  # refused when accepted: nothing was started
        self.slot.release()
        super().connection_lost(exc)


class PeerNetwork:
    """Listen for peers and clients; keep outbound links to peer URLs."""

    def __init__(
        self,
        handler: Handler,
        *,
        host: str,
        port: int,
        chain_id: str,
        key: SigningKey,
        validators: ValidatorKeys,
        submitters: SubmitterKeys | None = None,
        caps: ConnectionCaps | None = None,
    ) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._chain_id = chain_id
        self._key = key
        self._validators = validators
        self._submitters = submitters or (lambda _address: None)
        self._server: Server | None = None
        self._outboxes: dict[str, asyncio.Queue[str]] = {}
        self.links: dict[str, LinkStats] = {}  # peer URL -> its outbound link's counters
        self.inbound = {role: LinkStats() for role in Role}  # the listening port, by role
        self._tasks: list[asyncio.Task[None]] = []
        self.limits = ConnectionLimits(caps)
        self._refusals: dict[str, str] = {}  # peer URL -> why it last refused (logged once)
        self.clients = 0  # client links open
        self.submitters = 0  # submitter links open
        self.validator_links = 0  # inbound validator links open
        self.waiting = 0  # answers in flight on all connections
        self.client_waiting = 0  # of which on client links
        self.refused = 0  # answers refused for being over a limit
        self.dropped = 0  # frames dropped because the link's role may not send them
        self.refused_submissions = 0  # submissions on client links, answered rejected
        self.handshake_failures = 0  # inbound and outbound openings that failed

    async def listen(self) -> None:
        connection = type("Limited", (LimitedConnection,), {"limits": self.limits})
        self._server = await serve(
            self._serve,
            self._host,
            self._port,
            max_size=MAX_FRAME,
            compression=None,
            open_timeout=HANDSHAKE_S,
            create_connection=connection,
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
                self.links[url] = LinkStats()
                self._tasks.append(asyncio.create_task(self._link(url, outbox)))

    def broadcast(self, msg: Message) -> None:
        text = dump(msg)
        for url, outbox in self._outboxes.items():
            try:
                outbox.put_nowait(text)
            except asyncio.QueueFull:
                self.links[url].dropped += 1

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
        stats = self.links[url]
        while True:
            pause = RECONNECT_S
            try:
                async with connect(url, max_size=MAX_FRAME, open_timeout=2, compression=None) as ws:
                    try:
                        async with asyncio.timeout(HANDSHAKE_S):
                            greeted = await greet(
                                ws,
                                role=Role.VALIDATOR,
                                chain_id=self._chain_id,
                                key=self._key,
                                validators=self._validators,
                            )
                    except HandshakeFailed as exc:
                        stats.handshake_refused += 1
                        self._refused_by(url, str(exc))
                        pause = REFUSED_RECONNECT_S
                        await ws.close(POLICY_VIOLATION, str(exc)[:120])
                        continue
                    self._refusals.pop(url, None)
                    stats.up = True
                    stats.connects += 1
                    writing = asyncio.create_task(_write(ws, outbox, stats))
                    link = Link(ws, self, role=Role.VALIDATOR, peer=greeted.address, stats=stats)
                    try:
                        await self._read(ws, link)
                    finally:
                        writing.cancel()
            except ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code == POLICY_VIOLATION:
                    stats.handshake_refused += 1  # the peer refused this end's proof
                    self._refused_by(url, exc.rcvd.reason)
                    pause = REFUSED_RECONNECT_S
            except (TimeoutError, OSError, WebSocketException):
                pass
            finally:
                stats.up = False
                await asyncio.sleep(pause)

    def report(self, address: str) -> ValidatorLinks:
        """The counters of this validator's links (copies: later traffic does not change
        them); ``address`` is the validator's own."""
        return ValidatorLinks(
            address=address,
            peers={url: dataclasses.replace(stats) for url, stats in self.links.items()},
            connections={
                str(Role.CLIENT): self.clients,
                str(Role.SUBMITTER): self.submitters,
                str(Role.VALIDATOR): self.validator_links,
            },
            messages_in={str(r): stats.messages_in for r, stats in self.inbound.items()},
            messages_out={str(r): stats.messages_out for r, stats in self.inbound.items()},
            handshake_failures=self.handshake_failures,
            refused_connections=dict(self.limits.refused),
            busy=self.refused,
            dropped_frames=self.dropped,
            refused_submissions=self.refused_submissions,
        )

    def _refused_by(self, url: str, reason: str) -> None:
        self.handshake_failures += 1
        if self._refusals.get(url) != reason:
            self._refusals[url] = reason
            log.warning("peer %s is not a validator link: %s", url, reason)

    async def _serve(self, ws: ServerConnection) -> None:
        try:
            async with asyncio.timeout(HANDSHAKE_S):
                role, peer, batches = await self._accept(ws)
        except (HandshakeFailed, TimeoutError) as exc:
            self.handshake_failures += 1
            reason = str(exc) or "handshake took too long"
            with contextlib.suppress(WebSocketException):
                await ws.close(POLICY_VIOLATION, f"handshake failed: {reason}"[:120])
            return
        except WebSocketException:
            return
        if isinstance(ws, LimitedConnection) and ws.slot is not None:
            ws.slot.established()
        stats = self.inbound[role]
        stats.connects += 1
        if role is Role.CLIENT:
            if self.clients >= self.limits.caps.clients:
                await ws.close(TRY_AGAIN_LATER, "too many clients")
                return
            self.clients += 1
        elif role is Role.SUBMITTER:
            if self.submitters >= self.limits.caps.submitters:
                await ws.close(TRY_AGAIN_LATER, "too many submitters")
                return
            self.submitters += 1
        else:
            self.validator_links += 1
        try:
            with contextlib.suppress(WebSocketException):
                link = Link(ws, self, role=role, peer=peer, stats=stats, batches=batches)
                await self._read(ws, link)
        finally:
            if role is Role.CLIENT:
                self.clients -= 1
            elif role is Role.SUBMITTER:
                self.submitters -= 1
            else:
                self.validator_links -= 1

    async def _accept(self, ws: ServerConnection) -> tuple[Role, str | None, bool]:
        """The listener's half: hello, then this validator's proof; a validator or a
        submitter dialer must prove its key in turn."""
        mine = new_hello(self._chain_id, Role.VALIDATOR)
        await ws.send(dump(mine))
        theirs = await _expect(ws, Hello)
        check_hello(theirs, self._chain_id)
        await ws.send(dump(prove(self._key, self._chain_id, Side.LISTENER, mine, theirs)))
        if theirs.role is Role.CLIENT:
            return Role.CLIENT, None, theirs.batches
        auth = await _expect(ws, Auth)
        validator = theirs.role is Role.VALIDATOR
        address = check_auth(
            auth,
            chain_id=self._chain_id,
            side=Side.DIALER,
            mine=mine,
            theirs=theirs,
            validators=self._validators if validator else self._submitters,
            member="validator" if validator else "transaction signer (CSMS or aggregator key)",
        )
        return theirs.role, address, theirs.batches

    async def _read(self, ws: ClientConnection | ServerConnection, link: Link) -> None:
        try:
            client = link.role is not Role.VALIDATOR
            submitter = link.role is Role.SUBMITTER
            stats = link.stats
            async for frame in ws:
                stats.messages_in += 1
                if client and not client_frame_passes(frame, submitter=submitter):
                    await self._refuse(link, frame)
                    continue
                try:
                    msg = load(frame)
                except LedgerError:
                    continue  # a malformed frame is dropped, the link stays
                if isinstance(msg, Hello | Auth) or (
                    client and not client_may_send(msg, submitter=submitter)
                ):
                    self._drop(link)
                    continue
                await self._handler(msg, link)
        finally:
            link.cancel_all()  # nobody is left to answer

    async def _refuse(self, link: Link, frame: str | bytes) -> None:
        """A frame the link's role may not send: a client's submission is answered (it
        names no transaction: the frame is not parsed), anything else dropped."""
        text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
        if link.role is Role.CLIENT and is_submission(text):
            self.refused_submissions += 1
            await link(Rejected(NOT_A_SUBMITTER, b""))
        else:
            self._drop(link)

    def _drop(self, link: Link) -> None:
        link.dropped += 1
        self.dropped += 1


async def _write(ws: ClientConnection, outbox: asyncio.Queue[str], stats: LinkStats) -> None:
    while True:
        await ws.send(await outbox.get())
        stats.messages_out += 1
