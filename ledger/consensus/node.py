"""A validator process: one consensus core driven by asyncio, peers over websockets.

The node is the thin adapter around ``core.step``: a single task owns the core state and
feeds it events from one queue (peer messages, timers, caught-up blocks), signs what the core
asks for through the crash-safe ``PrivValidator`` (durable before anything is sent), commits
decided blocks to the ``BlockStore`` and answers clients' submissions with receipts.

Peers (``peers.py``): it listens on a websocket and keeps one outbound link per peer. Each
connection opens with a handshake (``handshake.py``): validator links prove a genesis key both
ways; clients declare their role and may only submit and read, so votes, proposals and blocks
reach the core from validators only. Every
gossip interval it tells its height, resends its own signed messages of the current height
and relays the votes of its current and proof-of-lock rounds, so what one correct validator
received, all eventually do. A peer that is ahead is asked for blocks, each verified (header,
transactions, certificate) before it is stored.

Blocks are made on demand (CometBFT's ``create_empty_blocks = false``): after a block, the
next height starts only once there is something to commit (a transaction or evidence in the
mempool, a validator-set change being a transaction too), or a peer has started it, or
``max_idle_interval_ms`` (off by default) has passed without a block. A decided block is
stored at once with the quorum of precommits this validator decided on; the next block's
header binds the proposer's certificate, which then replaces it (``BlockStore.append``).

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
from ledger.chain import replay_top
from ledger.checked import CheckedTxs, settlement_index
from ledger.codec import tx_hash
from ledger.commit import commit_from_votes, verify_commit
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
from ledger.consensus.tip import Tip, load_tip
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
    TxBatch,
    TxMsg,
)
from ledger.errors import CommitError, DuplicateSettlementError, LedgerError
from ledger.genesis import Genesis
from ledger.keys import SigningKey
from ledger.state import State, genesis_state
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
    max_idle_interval_ms: int = 0  # an empty block after this long without one (0: never)
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
        self._peers = PeerNetwork(
            self._on_message,
            host=config.host,
            port=config.port,
            chain_id=config.genesis.chain_id,
            key=config.key,
            validators=self._validator_key,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._answering: set[asyncio.Task[None]] = set()
        self._waiters = Waiters()
        self._block_stored = asyncio.Event()  # set (and replaced) when a block is stored
        self._own: list[Proposal | Vote] = []
        self._outgoing = TxBatcher(lambda txs: self._broadcast(TxBatch(txs)))
        self._fetching = FetchPolicy(patience_s=2 * config.gossip_interval_ms / 1000)
        self._app: LedgerApp | None = None
        self._state: ConsensusState | None = None
        self._ctx: ConsensusContext | None = None
        self._privval: PrivValidator | None = None
        self._prev_state: State | None = None  # before the top stored block
        self._top: Tip | None = None  # the top stored block (None: an empty store)
        self._genesis_state = genesis_state(config.genesis)
        self._waiting = False  # the next height is not started yet (nothing to commit)
        self._ready = False  # the block interval since the last block has passed
        self._last_block_at = 0.0
        self.evidence = EvidencePool(config.home / "evidence.jsonl")
        self._legacy_tip_path = config.home / "decided_tip.json"

    # ---- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Rebuild the state from the store (verifying it), listen, and start consensus."""
        genesis = self.config.genesis
        self.config.home.mkdir(parents=True, exist_ok=True)
        await self._load_top()
        self._app = LedgerApp(
            self._tip_state,
            None,
            proposer=self.address,
            clock_ms=self._clock_ms,
            pending=self.mempool.take,
            max_block_txs=self.config.max_block_txs,
            checked=self.checked,
            drop=self._drop_pending,
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
        self._rest(ready=True)
        round_, lock = self._privval.resume_point(state.height + 1)
        if round_ > 0 or lock is not None:  # this height was under way: rejoin it
            self._start_next()

    async def _load_top(self) -> None:
        """Rebuild the states around the top stored block (verifying the store); a decided
        tip left in a file by an earlier version moves into the store."""
        self._prev_state, after = await replay_top(self.store, self.config.genesis)
        height = await self.store.height()
        stored = await self.store.get(height) if height else None
        if stored is not None and stored.commit is not None:
            self._top = Tip(stored.block, stored.commit, after)
        legacy = load_tip(
            self._legacy_tip_path, after, stored.commit if stored is not None else None
        )
        if legacy is not None:
            await self.store.append(legacy.block, legacy.commit)
            self._prev_state, self._top = after, legacy
        self._legacy_tip_path.unlink(missing_ok=True)

    @property
    def _tip_state(self) -> State:
        return self._top.state if self._top is not None else self._genesis_state

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
        """Connections open in the client role."""
        return self._peers.clients

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
            found = await find_committed(tx, self._app.state, None, self.store)
            if found is not None:
                return found
            raise SubmitRejected(f"{type(exc).__name__}: {exc}") from exc
        except LedgerError as exc:
            raise SubmitRejected(f"{type(exc).__name__}: {exc}") from exc
        fut = self._waiters.wait_for(tx, record)
        if self.mempool.add(tx):
            self._outgoing.add(tx)
            self._work_arrived()
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
        base = self._tip_state
        block = msg.block
        if block.header.height != base.height + 1:
            return
        top = self._top
        last = msg.last_commit
        if last is None and top is not None:
            last = top.commit
        try:
            if top is not None and last is not None and last != top.commit:
                self._check_certifies_top(last)
            after = verify_block(base, block, msg.commit, last_commit=last, checked=self.checked)
        except LedgerError as exc:
            log.warning("validator %s: fetched block refused: %s", self.address, exc)
            return
        await self._store(block, msg.commit, after, last)
        self._fetching.progressed()
        self._finish(block, start_now=True)

    def _check_certifies_top(self, commit: Commit) -> None:
        """Raise ``LedgerError`` unless ``commit`` is a valid certificate of the top block."""
        assert self._top is not None and self._prev_state is not None
        tip = self._tip_state
        if commit.height != tip.height or commit.block_id != tip.last_block_id:
            raise CommitError(commit.height, "certificate of the block below names another block")
        verify_commit(commit, self._prev_state.validators, tip.chain_id)

    async def _store(
        self, block: Block, commit: Commit, after: State, last_commit: Commit | None
    ) -> None:
        """Append ``block`` (binding ``last_commit`` to the block below) and make it the top."""
        top = self._top
        bound = last_commit if top is not None and last_commit != top.commit else None
        await self.store.append(
            block, commit, last_commit=bound, settlements=settlement_index(block, self.checked)
        )
        self._prev_state, self._top = self._tip_state, Tip(block, commit, after)
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
        self._rest(ready=start_now or len(self.mempool) >= self.config.max_block_txs)

    # ---- blocks on demand -------------------------------------------------------------------

    def _rest(self, *, ready: bool) -> None:
        """After a block: the next height starts once there is something to commit (and the
        block interval has passed, unless ``ready``), or a peer starts it, or the idle
        interval passes."""
        self._waiting = True
        self._ready = False
        self._last_block_at = asyncio.get_running_loop().time()
        height = self.height + 1
        if ready:
            self._wake(height)
        else:
            delay = self.config.block_interval_ms / 1000
            asyncio.get_running_loop().call_later(delay, self._wake, height)

    def _wake(self, height: int) -> None:
        if not self._waiting or height != self.height + 1:
            return  # a stale timer: that height has started or passed
        self._ready = True
        if self._has_work():
            self._start_next()
            return
        idle_s = self.config.max_idle_interval_ms / 1000
        if idle_s <= 0:
            return
        loop = asyncio.get_running_loop()
        remaining = self._last_block_at + idle_s - loop.time()
        if remaining <= 0:
            self._start_next()
        else:
            loop.call_later(remaining, self._wake, height)

    def _has_work(self) -> bool:
        """A pending transaction that still applies (stale ones met first are dropped)."""
        assert self._app is not None
        stale = []
        found = False
        for tx in self.mempool.take(len(self.mempool)):
            try:
                validate_tx(tx, self._app.state, cache=self.checked)
            except LedgerError:
                stale.append(tx)
                continue
            found = True
            break
        if stale:
            self._drop_pending(stale)
        return found

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
        if self._waiting and self._ready:
            self._start_next()

    def _start_next(self) -> None:
        assert self._app is not None and self._privval is not None
        if not self._waiting:
            return
        self._waiting = self._ready = False
        state = self._app.state
        height = state.height + 1
        round_, lock = self._privval.resume_point(height)
        self._queue.put_nowait(NewHeight(height, state.validators, round_, lock))

    def _propose_evidence(self) -> None:
        """Queue pending evidence as transactions (those the state still accepts)."""
        for ev in self.evidence.pending():
            self._admit(evidence_tx(ev.vote_a, ev.vote_b))

    def _sync_app(self) -> None:
        """Point the app at the top block: the next block may bind any valid certificate of
        it (the proposer's, or ours)."""
        assert self._app is not None
        top, prev = self._top, self._prev_state
        if top is None or prev is None:
            self._app.advance(self._genesis_state, None, tip_validators=None)
        else:
            self._app.advance(top.state, top.commit, tip_validators=prev.validators)

    # ---- peers ------------------------------------------------------------------------------

    def _broadcast(self, msg: Message) -> None:
        self._peers.broadcast(msg)

    async def _on_message(self, msg: Message, reply: Reply) -> None:
        if (
            isinstance(msg, Proposal | Vote)
            and self._waiting
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
        elif isinstance(msg, GetBlocks):
            await send_blocks(self.store, msg.from_height, reply)
        elif isinstance(msg, GetStatus):
            await reply(Status(self.address, self.height))
        elif isinstance(msg, BlockMsg):
            self._queue.put_nowait(msg)
        elif isinstance(msg, TxMsg) and msg.submit:
            if not self._answer(reply, self._answer_submit(msg.tx, reply)):
                with contextlib.suppress(WebSocketException):
                    await reply(Busy(tx_hash(msg.tx)))  # too many: not now
        elif isinstance(msg, GetReceipt):
            if not self._answer(reply, self._answer_receipt(msg, reply)):
                with contextlib.suppress(WebSocketException):
                    await reply(ReceiptDoc(msg.settlement_id, None))  # too many: not now
        elif isinstance(msg, TxMsg):
            self._admit(msg.tx)
        elif isinstance(msg, TxBatch):
            self._answer(reply, self._admit_all(msg))

    def _drop_pending(self, txs: list[Tx]) -> None:
        """Pending transactions that no longer apply to the ledger: out of the mempool, and
        their submitters told (a proposer finds them when it builds a block)."""
        self.mempool.remove(txs)
        self._waiters.reject(txs, "no longer valid against the ledger: dropped")

    async def _admit_all(self, batch: TxBatch) -> None:
        """Admit gossiped transactions a few at a time, letting consensus messages in
        between: checking a signature takes a while and votes should not wait for many.
        Each is parsed once: the frame reader's record is checked, not parsed again."""
        records = batch.records
        for index, tx in enumerate(batch.txs):
            if index and index % ADMIT_CHUNK == 0:
                await asyncio.sleep(0)
            self._admit(tx, None if records is None else records[index])

    def _admit(self, tx: Tx, parsed: dict[str, Any] | None = None) -> None:
        assert self._app is not None
        try:
            validate_tx(tx, self._app.state, cache=self.checked, parsed=parsed)
        except LedgerError:
            return
        if self.mempool.add(tx):
            self._work_arrived()

    def _answer(self, reply: Reply, work: Coroutine[Any, Any, None]) -> bool:
        """Answer in a task of the connection (which keeps reading meanwhile, and cancels
        it when it closes); False when that connection or the node has too many."""
        task = reply.spawn(work)
        if task is None:
            return False
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)
        return True

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
        doc = await wait_receipt_document(
            self.store, msg.settlement_id, msg.wait_ms, lambda: self._block_stored
        )
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
