"""A validator process: one consensus core driven by asyncio, peers over websockets.

The node is the thin adapter around ``core.step``: a single task owns the core state and
feeds it events from one queue (peer messages, timers, caught-up blocks), signs what the core
asks for through the crash-safe ``PrivValidator`` (durable before anything is sent), commits
decided blocks to the ``BlockStore`` and answers clients' submissions with receipts.

Peers (``peers.py``): it listens on a websocket and keeps one outbound link per peer. Every
gossip interval it tells its height, resends its own signed messages of the current height
and relays the votes of its current and proof-of-lock rounds, so what one correct validator
received, all eventually do. A peer that is ahead is asked for blocks, each verified (header,
transactions, certificate) before it is stored. A decided block is stored once the next one
binds its certificate (``tip.py``).

Each transaction is decoded and verified once (``ledger.checked``): at submission or when
gossip brings it (a batch per frame, ``pacing.py``), not again when a block holds it.
Submission is idempotent (``submissions.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.exceptions import WebSocketException

from ledger.blocks import verify_block
from ledger.chain import replay
from ledger.checked import CheckedTxs
from ledger.codec import tx_hash
from ledger.commit import commit_from_votes
from ledger.consensus.app import LedgerApp
from ledger.consensus.core import step
from ledger.consensus.errors import DoubleSignRefused, SubmitRejected
from ledger.consensus.evidence import EvidencePool, evidence_in
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
from ledger.consensus.serving import receipt_document, send_blocks, wait_receipt_document
from ledger.consensus.signing import Ed25519Signer, Ed25519Verifier
from ledger.consensus.state import ConsensusContext, ConsensusState, TimeoutConfig, initial_state
from ledger.consensus.submissions import Waiters, find_committed
from ledger.consensus.tip import Tip, load_tip, save_tip
from ledger.consensus.wire import (
    BlockMsg,
    GetBlocks,
    GetReceipt,
    Message,
    Receipt,
    ReceiptDoc,
    Rejected,
    Status,
    TxBatch,
    TxMsg,
)
from ledger.errors import DuplicateSettlementError, LedgerError
from ledger.genesis import Genesis
from ledger.keys import SigningKey
from ledger.state import State
from ledger.store import BlockStore
from ledger.tx import evidence_tx
from ledger.types import Block, Commit, Tx, Vote, VoteKind
from ledger.validation import validate_tx

log = logging.getLogger(__name__)

PROPOSAL_RESEND_TICKS = 4  # a proposal carries a block: resent every few gossip ticks only
ADMIT_CHUNK = 32  # gossiped transactions checked between two looks at the event loop


@dataclass(frozen=True, slots=True)
class NodeConfig:
    genesis: Genesis
    key: SigningKey
    home: Path  # holds the signer state and the evidence file
    host: str = "127.0.0.1"
    port: int = 0
    timeouts: TimeoutConfig = field(default_factory=TimeoutConfig)
    block_interval_ms: int = 200  # pause after a commit to gather transactions
    max_block_txs: int = 500
    gossip_interval_ms: int = 300


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
    ) -> None:
        self.config = config
        self.store = store
        self.mempool = Mempool()
        self.checked = CheckedTxs()  # each transaction decoded and verified once
        self._clock_ms = clock_ms
        self._signer = Ed25519Signer(config.key)
        self.address = self._signer.address
        self._queue: asyncio.Queue[Event | BlockMsg] = asyncio.Queue()
        self._peers = PeerNetwork(self._on_message, host=config.host, port=config.port)
        self._tasks: list[asyncio.Task[None]] = []
        self._answering: set[asyncio.Task[None]] = set()
        self._waiters = Waiters()
        self._own: list[Proposal | Vote] = []
        self._outgoing = TxBatcher(lambda txs: self._broadcast(TxBatch(txs)))
        self._fetching = FetchPolicy(patience_s=2 * config.gossip_interval_ms / 1000)
        self._app: LedgerApp | None = None
        self._state: ConsensusState | None = None
        self._ctx: ConsensusContext | None = None
        self._privval: PrivValidator | None = None
        self._base_state: State | None = None  # after the last stored block
        self._base_commit: Commit | None = None  # the last stored block's certificate
        self._pending: Tip | None = None  # decided, stored once the next block binds a commit
        self.evidence = EvidencePool(config.home / "evidence.jsonl")
        self._tip_path = config.home / "decided_tip.json"

    # ---- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Rebuild the state from the store (verifying it), listen, and start consensus."""
        genesis = self.config.genesis
        self.config.home.mkdir(parents=True, exist_ok=True)
        self._base_state = await replay(self.store, genesis)
        top = await self.store.height()
        stored = await self.store.get(top) if top else None
        self._base_commit = stored.commit if stored is not None else None
        self._app = LedgerApp(
            self._base_state,
            self._base_commit,
            proposer=self.address,
            clock_ms=self._clock_ms,
            pending=self.mempool.take,
            max_block_txs=self.config.max_block_txs,
            checked=self.checked,
            drop=self._drop_pending,
        )
        self._pending = load_tip(self._tip_path, self._base_state, self._base_commit)
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
        height = state.height + 1
        round_, lock = self._privval.resume_point(height)
        self._queue.put_nowait(NewHeight(height, state.validators, round_, lock))

    @property
    def url(self) -> str:
        return self._peers.url

    @property
    def height(self) -> int:
        """Height of the last decided block (the store holds all but this last one)."""
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
        await self._peers.close()
        self._waiters.cancel_all()

    # ---- clients --------------------------------------------------------------------------

    async def submit(self, tx: Tx) -> Receipt:
        """Validate ``tx``, gossip it, and wait until a block commits it.

        Idempotent, so a client may retry after a crash: a settlement already committed
        (the same transaction, or the same signed record) answers with its receipt, and one
        still pending is waited for, not duplicated. A different record reusing a settled
        id is rejected.
        """
        assert self._app is not None
        try:
            record = validate_tx(tx, self._app.state, cache=self.checked)
        except DuplicateSettlementError as exc:
            tip = self._pending.block if self._pending is not None else None
            found = await find_committed(tx, self._app.state, tip, self.store)
            if found is not None:
                return found
            raise SubmitRejected(f"{type(exc).__name__}: {exc}") from exc
        except LedgerError as exc:
            raise SubmitRejected(f"{type(exc).__name__}: {exc}") from exc
        fut = self._waiters.wait_for(tx, record)
        if self.mempool.add(tx):
            self._outgoing.add(tx)
        return await fut

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
                    signed = self._privval.sign_proposal(out.proposal)
                else:
                    signed = self._privval.sign_vote(out.vote, out.lock)
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
        """Store the previous tip with the certificate this block binds; this is the new tip."""
        assert self._app is not None
        block, bound = self._app.decode(value)
        after = self._app.state_after(block.header.height, value)
        if after is None:  # the core decided it valid moments ago: this cannot happen
            raise RuntimeError(f"decided block {block.header.height} no longer validates")
        if self._pending is not None:
            assert bound is not None  # valid_value accepted a certificate for the tip
            await self._store(self._pending.block, bound, self._pending.state)
        self._set_tip(Tip(block, commit, after))
        self._finish(block)

    async def _catch_up(self, msg: BlockMsg) -> None:
        """Apply a fetched block after verifying it (header, transactions, certificate)."""
        assert self._base_state is not None
        block = msg.block
        if block.header.height != self._base_state.height + 1:
            return
        try:
            after = verify_block(
                self._base_state,
                block,
                msg.commit,
                last_commit=self._base_commit,
                checked=self.checked,
            )
        except LedgerError as exc:
            log.warning("validator %s: fetched block refused: %s", self.address, exc)
            return
        tip = self._pending
        if msg.final:
            await self._store(block, msg.commit, after)
            if tip is not None and tip.block.header.height <= block.header.height:
                self._set_tip(None)
        elif tip is None:
            self._set_tip(Tip(block, msg.commit, after))
        else:
            return  # the same decided tip we hold (agreement): nothing new
        self._sync_app()
        self._fetching.progressed()
        self._finish(block, start_now=True)

    async def _store(self, block: Block, commit: Commit, after: State) -> None:
        await self.store.append(block, commit)
        self._base_state, self._base_commit = after, commit

    def _finish(self, block: Block, *, start_now: bool = False) -> None:
        """A block is final: answer its submitters and start the next height."""
        assert self._app is not None
        self.mempool.remove(block.txs)
        self.evidence.mark_committed(evidence_in(block))
        self._own = []
        self.mempool.remove(self._waiters.answer(block, self._app.state))
        state = self._app.state
        nxt = NewHeight(state.height + 1, state.validators)
        if start_now or len(self.mempool) >= self.config.max_block_txs:
            self._queue.put_nowait(nxt)
        else:
            delay = self.config.block_interval_ms / 1000
            asyncio.get_running_loop().call_later(delay, self._queue.put_nowait, nxt)

    def _propose_evidence(self) -> None:
        """Queue pending evidence as transactions (those the state still accepts)."""
        for ev in self.evidence.pending():
            self._admit(evidence_tx(ev.vote_a, ev.vote_b))

    # ---- the decided tip ------------------------------------------------------------------

    def _set_tip(self, tip: Tip | None) -> None:
        """Keep the decided tip durably (a restart resumes from it) and point the app at it."""
        self._pending = tip
        save_tip(self._tip_path, tip)
        self._sync_app()

    def _sync_app(self) -> None:
        assert self._app is not None and self._base_state is not None
        tip = self._pending
        if tip is None:
            self._app.advance(self._base_state, self._base_commit, tip_validators=None)
        else:
            self._app.advance(tip.state, tip.commit, tip_validators=self._base_state.validators)

    # ---- peers ------------------------------------------------------------------------------

    def _broadcast(self, msg: Message) -> None:
        self._peers.broadcast(msg)

    async def _on_message(self, msg: Message, reply: Reply) -> None:
        if isinstance(msg, Proposal):
            self._queue.put_nowait(ReceiveProposal(msg))
        elif isinstance(msg, Vote):
            self._queue.put_nowait(ReceiveVote(msg))
        elif isinstance(msg, Status):
            now = asyncio.get_running_loop().time()
            if self._base_state is not None and self._fetching.should_fetch(
                self.height, msg.height, now
            ):
                await reply(GetBlocks(self._base_state.height + 1))
        elif isinstance(msg, GetBlocks):
            await send_blocks(self.store, msg.from_height, self._pending, reply)
        elif isinstance(msg, BlockMsg):
            self._queue.put_nowait(msg)
        elif isinstance(msg, TxMsg) and msg.submit:
            self._answer(self._answer_submit(msg.tx, reply))
        elif isinstance(msg, GetReceipt):
            self._answer(self._answer_receipt(msg, reply))
        elif isinstance(msg, TxMsg):
            self._admit(msg.tx)
        elif isinstance(msg, TxBatch):
            self._answer(self._admit_all(msg.txs))

    def _drop_pending(self, txs: list[Tx]) -> None:
        """Pending transactions that no longer apply to the ledger: out of the mempool, and
        their submitters told (a proposer finds them when it builds a block)."""
        self.mempool.remove(txs)
        self._waiters.reject(txs, "no longer valid against the ledger: dropped")

    async def _admit_all(self, txs: tuple[Tx, ...]) -> None:
        """Admit gossiped transactions a few at a time, letting consensus messages in
        between: checking a signature takes a while and votes should not wait for many."""
        for index, tx in enumerate(txs):
            if index and index % ADMIT_CHUNK == 0:
                await asyncio.sleep(0)
            self._admit(tx)

    def _admit(self, tx: Tx) -> None:
        assert self._app is not None
        try:
            validate_tx(tx, self._app.state, cache=self.checked)
        except LedgerError:
            return
        self.mempool.add(tx)

    def _answer(self, work: Coroutine[Any, Any, None]) -> None:
        """Answer a client in its own task (the link keeps reading meanwhile)."""
        task = asyncio.create_task(work)
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _answer_submit(self, tx: Tx, reply: Reply) -> None:
        answer: Message
        try:
            answer = await self.submit(tx)
        except SubmitRejected as exc:
            answer = Rejected(str(exc), tx_hash(tx))
        with contextlib.suppress(WebSocketException):
            await reply(answer)

    async def _answer_receipt(self, msg: GetReceipt, reply: Reply) -> None:
        """Answer with the receipt document, polling the store up to the asked wait."""
        doc = await wait_receipt_document(self.store, msg.settlement_id, msg.wait_ms)
        with contextlib.suppress(WebSocketException):
            await reply(ReceiptDoc(msg.settlement_id, doc))

    async def _gossip(self) -> None:
        """Tell the height; resend what peers may have missed (a proposal, which carries a
        whole block, only every few rounds of gossip: links lose nothing while they last)."""
        tick = 0
        while True:
            await asyncio.sleep(self.config.gossip_interval_ms / 1000)
            tick += 1
            self._broadcast(Status(self.address, self.height))
            with_proposals = tick % PROPOSAL_RESEND_TICKS == 0
            for msg in [*self._own, *self._relayed()]:
                if with_proposals or not isinstance(msg, Proposal):
                    self._broadcast(msg)

    def _relayed(self) -> list[Proposal | Vote]:
        """Others' votes and proposals of the current round and the proof-of-lock rounds."""
        state = self._state
        if state is None or state.decided:
            return []
        rounds = {state.round, state.valid_round, state.locked_round}
        rounds |= {p.pol_round for p in state.proposals.get(state.round, ())}
        rounds.discard(-1)
        out: list[Proposal | Vote] = []
        for r in sorted(rounds):
            out.extend(state.proposals.get(r, ()))
            for kind in (VoteKind.PREVOTE, VoteKind.PRECOMMIT):
                for bucket in state.votes.tally(r, kind).by_id.values():
                    out.extend(v for v in bucket.values() if v.validator != self.address)
        return out
