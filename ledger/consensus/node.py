"""A validator process: one consensus core driven by asyncio, peers over websockets.

The node is the thin adapter around ``core.step``: a single task owns the core state and
feeds it events from one queue (peer messages, timers, caught-up blocks), signs what the core
asks for through the crash-safe ``PrivValidator`` (durable before anything is sent), commits
decided blocks to the ``BlockStore`` and answers clients' submissions with receipts.

Its parts, each in its own module:

- ``peers.py``: it listens on a websocket and keeps one outbound link per peer. Each
  connection opens with a handshake (``handshake.py``): validator links prove a genesis key
  both ways; clients declare their role and may only submit and read, so votes, proposals
  and blocks reach the core from validators only.
- ``gossip.py``: every gossip interval it tells its height and resends what peers may have
  missed. A peer that is ahead is asked for blocks (``pacing.py``), each verified (header,
  transactions, certificate) before it is stored.
- ``cadence.py``: blocks are made on demand (CometBFT's ``create_empty_blocks = false``).
- ``admission.py``: which transactions enter the mempool, each decoded and verified once,
  by one worker a slice at a time (consensus messages get the loop in between).
- ``serving.py``: blocks, receipt documents and submission answers handed out on request.
- ``submissions.py``: submission is idempotent; submitters wait for their block.

A decided block is stored at once with the quorum of precommits this validator decided on;
the next block's header binds the proposer's certificate, which then replaces it
(``BlockStore.append``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.exceptions import WebSocketException

from ledger.blocks import verify_block
from ledger.checked import CheckedTxs, settlement_index
from ledger.codec import tx_hash, tx_record
from ledger.commit import commit_from_votes
from ledger.consensus.admission import Admission
from ledger.consensus.app import LedgerApp
from ledger.consensus.cadence import BlockCadence
from ledger.consensus.core import step
from ledger.consensus.errors import DoubleSignRefused, SubmitRejected
from ledger.consensus.evidence import EvidencePool, evidence_in
from ledger.consensus.gossip import StatusBeat, to_resend
from ledger.consensus.handshake import Role
from ledger.consensus.limits import ConnectionCaps, ConnectionLimits
from ledger.consensus.linkstats import ValidatorLinks
from ledger.consensus.mempool import Mempool
from ledger.consensus.messages import (
    BroadcastProposal,
    BroadcastVote,
    Decide,
    Event,
    EvidenceFound,
    NewHeight,
    Output,
    Proposal,
    ReceiveProposal,
    ReceiveVote,
    ScheduleTimeout,
    TimeoutFired,
)
from ledger.consensus.pacing import FetchPolicy, TxBatcher
from ledger.consensus.peers import PeerNetwork, Reply
from ledger.consensus.privval import FileStateStore, PrivValidator
from ledger.consensus.serving import (
    answer_receipt,
    answer_submit,
    receipt_document,
    send_blocks,
)
from ledger.consensus.signing import Ed25519Signer, Ed25519Verifier
from ledger.consensus.state import ConsensusContext, ConsensusState, TimeoutConfig, initial_state
from ledger.consensus.submissions import Waiters, check_submitter, find_committed
from ledger.consensus.tip import StoredTop
from ledger.consensus.wire import (
    BlockMsg,
    Busy,
    GetBlocks,
    GetReceipt,
    GetStatus,
    Message,
    Receipt,
    ReceiptDoc,
    Rejected,
    Status,
    SubmitBatch,
    TxBatch,
    TxMsg,
)
from ledger.errors import DuplicateSettlementError, LedgerError
from ledger.genesis import Genesis
from ledger.keys import SigningKey
from ledger.state import State
from ledger.store import BlockStore
from ledger.tx import evidence_tx
from ledger.types import Block, Commit, Tx, Vote

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    genesis: Genesis
    key: SigningKey
    home: Path  # holds the signer state and the evidence file
    host: str = "127.0.0.1"
    port: int = 0
    timeouts: TimeoutConfig = field(default_factory=TimeoutConfig)
    block_interval_ms: int = 200  # least time between two heights' starts (to gather txs)
    max_idle_interval_ms: int = 0  # an empty block after this long without one (0: never)
    max_block_txs: int = 500
    gossip_interval_ms: int = 300
    connection_caps: ConnectionCaps = field(default_factory=ConnectionCaps)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class ValidatorNode:
    """One validator: start, connect to peers, submit transactions, stop."""

    def __init__(
        self,
        config: NodeConfig,
        store: BlockStore,
        *,
        clock_ms: Callable[[], int] = wall_clock_ms,
        checked: CheckedTxs | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.mempool = Mempool()
        # each transaction decoded and verified once (``checked``: once per process, shared
        # by validators that run in one)
        self.checked = CheckedTxs() if checked is None else checked
        self._clock_ms = clock_ms
        self._signer = Ed25519Signer(config.key)
        self.address = self._signer.address
        self._queue: asyncio.Queue[Event | BlockMsg] = asyncio.Queue()
        self._peers = PeerNetwork(
            self._on_message,
            host=config.host,
            port=config.port,
            chain_id=config.genesis.chain_id,
            key=config.key,
            validators=self._validator_key,
            submitters=self._submitter_key,
            caps=config.connection_caps,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._answering: set[asyncio.Task[None]] = set()
        self._waiters = Waiters()
        self.admission = Admission(
            self.mempool,
            self.checked,
            self._waiters,
            state=self._ledger_state,
            work_arrived=self._work_arrived,
        )
        self._cadence = BlockCadence(
            block_interval_ms=config.block_interval_ms,
            max_idle_interval_ms=config.max_idle_interval_ms,
            height=lambda: self.height,
            has_work=self.admission.has_work,
            start=self._start_next,
        )
        self._block_stored = asyncio.Event()  # set (and replaced) when a block is stored
        self._storing: asyncio.Future[None] | None = None  # a block's write under way
        self._own: list[Proposal | Vote] = []
        self._outgoing = TxBatcher(lambda txs: self._broadcast(TxBatch(txs)))
        self._fetching = FetchPolicy(patience_s=2 * config.gossip_interval_ms / 1000)
        self._app: LedgerApp | None = None
        self._state: ConsensusState | None = None
        self._ctx: ConsensusContext | None = None
        self._privval: PrivValidator | None = None
        self._stored = StoredTop(store, config.genesis, config.home / "decided_tip.json")
        self.evidence = EvidencePool(config.home / "evidence.jsonl")

    # ---- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Rebuild the state from the store (verifying it), listen, and start consensus."""
        genesis = self.config.genesis
        self.config.home.mkdir(parents=True, exist_ok=True)
        await self._stored.load()
        self._app = LedgerApp(
            self._stored.state,
            None,
            proposer=self.address,
            clock_ms=self._clock_ms,
            pending=self.mempool.take,
            max_block_txs=self.config.max_block_txs,
            checked=self.checked,
            drop=self.admission.drop,
        )
        self._sync_app()
        self._propose_evidence()
        state = self._app.state
        self._ctx = ConsensusContext(
            genesis.chain_id, self.address, Ed25519Verifier(), self._app, self.config.timeouts
        )
        self._state = initial_state(state.validators)
        signer_file = FileStateStore(
            self.config.home / "privval_state.json",
            chain_id=genesis.chain_id,
            address=self.address,
        )
        self._privval = PrivValidator(self._signer, signer_file)
        await self._peers.listen()
        self._tasks.append(asyncio.create_task(self._run()))
        self._tasks.append(asyncio.create_task(self._gossip()))
        self._cadence.rest(ready=True)
        round_, lock = self._privval.resume_point(state.height + 1)
        if round_ > 0 or lock is not None:  # this height was under way: rejoin it
            self._start_next()

    def _ledger_state(self) -> State:
        """The ledger state after the last decided block (each one is stored at once)."""
        assert self._app is not None
        return self._app.state

    @property
    def answers_in_flight(self) -> int:
        """Answers running on this validator's connections (bounded per connection)."""
        return self._peers.waiting

    @property
    def dropped_frames(self) -> int:
        """Frames dropped unread because their connection's role may not send them
        (consensus messages from clients)."""
        return self._peers.dropped

    @property
    def client_links(self) -> int:
        """Connections open in the client (read-only) role."""
        return self._peers.clients

    @property
    def submitter_links(self) -> int:
        """Connections open in the submitter role."""
        return self._peers.submitters

    @property
    def refused_submissions(self) -> int:
        """Submissions on client connections (which may only read), answered rejected."""
        return self._peers.refused_submissions

    @property
    def connection_limits(self) -> ConnectionLimits:
        """Connections open per source address and overall, and those refused by a cap."""
        return self._peers.limits

    def link_report(self) -> ValidatorLinks:
        """The counters of this validator's links (a copy)."""
        return self._peers.report(self.address)

    @property
    def handshake_failures(self) -> int:
        return self._peers.handshake_failures

    @property
    def url(self) -> str:
        return self._peers.url

    def _validator_key(self, address: str) -> bytes | None:
        """The public key of a genesis validator (or one a governance change added)."""
        member = self.config.genesis.validators.get(address)
        if member is None and self._app is not None:
            member = self._app.state.validators.get(address)
        return None if member is None else member.public_key

    def _submitter_key(self, key_id: str) -> bytes | None:
        """The public key of a transaction signer that may submit: an authorised CSMS key
        (or one being authorised) or the aggregator's."""
        state = self._app.state if self._app is not None else self._stored.genesis_state
        if key_id == state.aggregator_id:
            return state.aggregator_key
        return state.csms_keys.get(key_id) or state.next_csms_keys.get(key_id)

    @property
    def height(self) -> int:
        """Height of the last decided block (stored as soon as it is decided)."""
        return self._app.state.height if self._app is not None else 0

    def connect(self, peers: Iterable[str]) -> None:
        """Keep an outbound link to each peer URL (reconnecting when it drops)."""
        self._peers.connect(peers)

    async def stop(self) -> None:
        for task in [*self._tasks, *self._answering]:
            task.cancel()
        for task in [*self._tasks, *self._answering]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.admission.stop()
        if self._storing is not None:  # a block being written when the stop came: finish it
            with contextlib.suppress(Exception):
                await self._storing
            self._storing = None
            self._sync_app()
        await self._peers.close()
        self._waiters.cancel_all()

    # ---- clients --------------------------------------------------------------------------

    async def submit(
        self, tx: Tx, *, submitter: str | None = None, parsed: dict[str, Any] | None = None
    ) -> Receipt:
        """Validate ``tx``, gossip it, and wait until a block commits it.

        Idempotent, so a client may retry after a crash: a settlement already committed
        (the same transaction, or the same signed record) answers with its receipt, and one
        still pending is waited for, not duplicated. A different record reusing a settled
        id is rejected. ``submitter`` (the key id a submitter connection proved) must be
        the transaction's signer; None: submitted in this process. ``parsed``: its record as
        a frame reader parsed it (checked to encode back to the bytes, not parsed again).
        """
        assert self._app is not None
        try:
            await self.admission.check_queued(tx, parsed)  # decoded and verified in turn
            record = self.admission.check(tx)  # against the state now (checked: no verify)
        except DuplicateSettlementError as exc:
            check_submitter(tx_record(tx), submitter)
            found = await find_committed(tx, self._app.state, None, self.store)
            if found is not None:
                return found
            raise SubmitRejected(f"{type(exc).__name__}: {exc}") from exc
        except LedgerError as exc:
            raise SubmitRejected(f"{type(exc).__name__}: {exc}") from exc
        check_submitter(record, submitter)
        fut = self._waiters.wait_for(tx, record)
        if self.admission.add(tx):
            self._outgoing.add(tx)
        try:
            return await fut
        finally:
            del fut  # a rejection's traceback holds this frame: no cycle through the future

    async def receipt_document(self, settlement_id: str) -> dict[str, Any] | None:
        """The self-contained receipt of a settlement in the store (None if not stored)."""
        return await receipt_document(self.store, settlement_id)

    # ---- the consensus routine --------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                if isinstance(item, BlockMsg):
                    await self._catch_up(item)
                else:
                    await self._step(item)
            except Exception:  # one bad event must not stop the validator
                log.exception("validator %s: event %s failed", self.address, type(item).__name__)

    async def _step(self, event: Event) -> None:
        assert self._ctx is not None and self._state is not None and self._app is not None
        if isinstance(event, NewHeight):
            if event.height != self._app.state.height + 1:
                return  # a stale start: a caught-up block moved the height meanwhile
            if event.height == self._state.height and not self._state.decided:
                return  # already running this height: never reset its rounds and locks
        self._state, outputs = step(self._ctx, self._state, event)
        for out in outputs:
            await self._act(out)

    async def _act(self, out: Output) -> None:
        assert self._privval is not None
        if isinstance(out, BroadcastProposal | BroadcastVote):
            try:
                signed: Proposal | Vote
                if isinstance(out, BroadcastProposal):
                    signed = await self._privval.sign_proposal_async(out.proposal)
                else:
                    signed = await self._privval.sign_vote_async(out.vote, out.lock)
            except DoubleSignRefused as exc:
                log.warning("validator %s: %s", self.address, exc)
                return
            self._own.append(signed)
            self._broadcast(signed)
            own: Event = (
                ReceiveProposal(signed) if isinstance(signed, Proposal) else ReceiveVote(signed)
            )
            self._queue.put_nowait(own)
        elif isinstance(out, ScheduleTimeout):
            fired = TimeoutFired(out.kind, out.height, out.round)
            asyncio.get_running_loop().call_later(
                out.duration_ms / 1000, self._queue.put_nowait, fired
            )
        elif isinstance(out, Decide):
            await self._decided(out.value, commit_from_votes(out.commit))
        elif isinstance(out, EvidenceFound):
            self.evidence.add(out.evidence)  # durable first: committed in a later block
            self._propose_evidence()

    async def _decided(self, value: bytes, commit: Commit) -> None:
        """Store the block at once with the certificate decided on; the one below gets the
        certificate this block binds."""
        assert self._app is not None
        block, bound = self._app.decode(value)
        if block.header.height != self.height + 1:
            return  # a fetched copy of this height was stored meanwhile
        after = self._app.state_after(block.header.height, value)
        if after is None:  # the core decided it valid moments ago: this cannot happen
            raise RuntimeError(f"decided block {block.header.height} no longer validates")
        await self._store(block, commit, after, bound)
        self._finish(block)

    async def _catch_up(self, msg: BlockMsg) -> None:
        """Apply a fetched block after verifying it (header, transactions, certificate, and
        the certificate of the block below that its header binds)."""
        base = self._stored.state
        block = msg.block
        if block.header.height != base.height + 1:
            return
        top = self._stored.top
        last = msg.last_commit
        if last is None and top is not None:
            last = top.commit
        try:
            if top is not None and last is not None and last != top.commit:
                self._stored.check_certifies(last)
            after = verify_block(base, block, msg.commit, last_commit=last, checked=self.checked)
        except LedgerError as exc:
            log.warning("validator %s: fetched block refused: %s", self.address, exc)
            return
        await self._store(block, msg.commit, after, last)
        self._fetching.progressed()
        self._finish(block, start_now=True)

    async def _store(
        self, block: Block, commit: Commit, after: State, last_commit: Commit | None
    ) -> None:
        """Append ``block`` (binding ``last_commit`` to the block below) and make it the top.

        Shielded: a stop while the store writes waits for it (``stop``), so the node's height
        never lags a block its store already holds."""
        settlements = settlement_index(block, self.checked)
        storing = asyncio.ensure_future(
            self._stored.append(block, commit, after, last_commit, settlements=settlements)
        )
        self._storing = storing
        await asyncio.shield(storing)
        self._storing = None
        self._sync_app()
        self._block_stored.set()  # wakes the receipt waits
        self._block_stored = asyncio.Event()

    def _finish(self, block: Block, *, start_now: bool = False) -> None:
        """A block is final: answer its submitters and start the next height."""
        assert self._app is not None
        self.mempool.remove(block.txs)
        self.evidence.mark_committed(evidence_in(block))
        self._own = []
        self.mempool.remove(self._waiters.answer(block, self._app.state))
        self._cadence.rest(ready=start_now or len(self.mempool) >= self.config.max_block_txs)

    # ---- blocks on demand -------------------------------------------------------------------

    def _signed_by_a_validator(self, msg: Proposal | Vote) -> bool:
        """Only a validator's signed message starts a height (not anyone's forged one)."""
        assert self._ctx is not None and self._app is not None
        validators = self._app.state.validators
        if isinstance(msg, Proposal):
            member = validators.get(msg.proposer)
            return member is not None and self._ctx.verifier.verify_proposal(msg, member)
        member = validators.get(msg.validator)
        return member is not None and self._ctx.verifier.verify_vote(msg, member)

    def _work_arrived(self) -> None:
        self._cadence.work_arrived()

    def _start_next(self) -> None:
        assert self._app is not None and self._privval is not None
        if not self._cadence.begin():
            return
        state = self._app.state
        height = state.height + 1
        round_, lock = self._privval.resume_point(height)
        self._queue.put_nowait(NewHeight(height, state.validators, round_, lock))

    def _propose_evidence(self) -> None:
        """Queue pending evidence as transactions (those the state still accepts)."""
        for ev in self.evidence.pending():
            self.admission.admit(evidence_tx(ev.vote_a, ev.vote_b))

    def _sync_app(self) -> None:
        """Point the app at the top block: the next block may bind any valid certificate of
        it (the proposer's, or ours)."""
        assert self._app is not None
        top, prev = self._stored.top, self._stored.prev_state
        if top is None or prev is None:
            self._app.advance(self._stored.genesis_state, None, tip_validators=None)
        else:
            self._app.advance(top.state, top.commit, tip_validators=prev.validators)

    # ---- peers ------------------------------------------------------------------------------

    def _broadcast(self, msg: Message) -> None:
        self._peers.broadcast(msg)

    async def _on_message(self, msg: Message, reply: Reply) -> None:
        if (
            isinstance(msg, Proposal | Vote)
            and self._cadence.waiting
            and msg.height == self.height + 1
            and self._signed_by_a_validator(msg)
        ):
            self._start_next()  # a peer started the next height: join it
        if isinstance(msg, Proposal):
            self._queue.put_nowait(ReceiveProposal(msg))
        elif isinstance(msg, Vote):
            self._queue.put_nowait(ReceiveVote(msg))
        elif isinstance(msg, Status):
            now = asyncio.get_running_loop().time()
            if self._app is not None and self._fetching.should_fetch(self.height, msg.height, now):
                await reply(GetBlocks(self.height + 1))
            elif msg.height < self.height:  # a peer behind learns it now, not at our next beat
                await reply(Status(self.address, self.height))
        elif isinstance(msg, GetBlocks):
            await send_blocks(self.store, msg.from_height, reply)
        elif isinstance(msg, GetStatus):
            await reply(Status(self.address, self.height))
        elif isinstance(msg, BlockMsg):
            self._queue.put_nowait(msg)
        elif isinstance(msg, TxMsg) and msg.submit:
            await self._take_submission(msg.tx, None, reply)
        elif isinstance(msg, SubmitBatch):
            records = msg.records or (None,) * len(msg.txs)
            for tx, record in zip(msg.txs, records, strict=True):
                await self._take_submission(tx, record, reply)
        elif isinstance(msg, GetReceipt):
            work = answer_receipt(self.store, msg, reply, lambda: self._block_stored)
            if not self._answer(reply, work):
                with contextlib.suppress(WebSocketException):
                    await reply(ReceiptDoc(msg.settlement_id, None))  # too many: not now
        elif isinstance(msg, TxMsg):
            self.admission.admit(msg.tx)
        elif isinstance(msg, TxBatch):
            self.admission.queue_batch(msg)

    async def _take_submission(self, tx: Tx, record: dict[str, Any] | None, reply: Reply) -> None:
        """A client's submission (alone in its frame or one of a ``SubmitBatch``): answered
        with its receipt once committed, or at once when refused."""
        if reply.role is not Role.SUBMITTER:
            with contextlib.suppress(WebSocketException):
                await reply(Rejected("submissions come on a submitter connection", tx_hash(tx)))
            return
        submit = functools.partial(self.submit, submitter=reply.peer, parsed=record)
        if not self._answer(reply, answer_submit(submit, tx, reply)):
            with contextlib.suppress(WebSocketException):
                await reply(Busy(tx_hash(tx)))  # too many: not now

    def _answer(self, reply: Reply, work: Coroutine[Any, Any, None]) -> bool:
        """Answer in a task of the connection (which keeps reading meanwhile, and cancels
        it when it closes); False when that connection or the node has too many."""
        task = reply.spawn(work)
        if task is None:
            return False
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)
        return True

    async def _gossip(self) -> None:
        """Tell the height; resend what peers may have missed (``gossip.py``)."""
        tick = 0
        beat = StatusBeat()
        while True:
            await asyncio.sleep(self.config.gossip_interval_ms / 1000)
            tick += 1
            resend = to_resend(tick, self._own, self._state, self.address)
            if beat.due(tick, self.height, busy=bool(resend) or not self._cadence.waiting):
                self._broadcast(Status(self.address, self.height))
            for msg in resend:
                self._broadcast(msg)
