"""A deterministic simulation of a validator set: seeded network, clock, crashes and restarts.

Each simulated validator owns one consensus core, a private validator over a durable in-memory
store, a write-ahead log of its own signed messages at the current height and a block store.
All three survive a crash; the core's state does not, and a restart replays the log.

Until ``heal_at`` the network delays, reorders, drops and duplicates messages and splits
validators into partitions; after that it is calm (bounded delay, no loss). Validators crash at
random moments, including between the core deciding a vote and the vote being persisted and
signed, and restart from their durable state. Gossip is a periodic tick on which a validator
resends its own messages of the current height, relays others' messages of its current round
and of its proof-of-lock rounds, and tells its height; a peer that is ahead answers
with the decided blocks and certificates, which the laggard's core verifies and decides on
(line 49).

Byzantine validators run "split-brain": two instances share a key but not their signer state,
each talking to one half of the honest validators, so they double-sign.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random
from typing import Any

from ledger.consensus.core import make_evidence, step
from ledger.consensus.errors import DoubleSignRefused
from ledger.consensus.evidence import evidence_from_commits, is_valid_evidence
from ledger.consensus.messages import (
    BroadcastProposal,
    BroadcastVote,
    Decide,
    DuplicateVoteEvidence,
    Event,
    EvidenceFound,
    NewHeight,
    Output,
    ReceiveProposal,
    ReceiveVote,
    ScheduleTimeout,
    TimeoutFired,
)
from ledger.consensus.privval import MemoryStateStore, PrivValidator
from ledger.consensus.state import ConsensusContext, ConsensusState, initial_state
from ledger.types import ValidatorSet, Vote, VoteKind
from tests.ledger.consensus.checker import Checker
from tests.ledger.consensus.fakes import CHAIN, HmacSigner, HmacVerifier, make_ctx

TICK_MS = 250

# A scripted network adversary: True drops the message from src to dst.
Adversary = Callable[["SimNode", "SimNode", tuple[Any, ...]], bool]
CALM_DELAY_MS = (1, 20)


@dataclass(frozen=True)
class Faults:
    """Misbehaviour of the network and of validators until the network heals."""

    delay_ms: tuple[int, int] = CALM_DELAY_MS
    drop: float = 0.0
    duplicate: float = 0.0
    crash_at_output: float = 0.0  # chance to crash while acting on one core output
    partitions: tuple[tuple[int, int, frozenset[str]], ...] = ()  # (start, end, one side)
    crashes: tuple[tuple[str, int, int], ...] = ()  # (honest validator, crash at, restart at)


@dataclass(eq=False)
class SimNode:
    id: int
    address: str
    byzantine_side: str | None = None
    honest_side: str | None = None
    pv_store: MemoryStateStore = field(default_factory=MemoryStateStore)
    blocks: dict[int, Decide] = field(default_factory=dict)
    state: ConsensusState | None = None
    privval: PrivValidator | None = None
    crashed: bool = True
    incarnation: int = 0
    wal: list[tuple[Any, ...]] = field(default_factory=list)  # own signed msgs, this height
    ctx: ConsensusContext = field(init=False)

    def __post_init__(self) -> None:
        self.ctx = make_ctx(self.address, f"{self.address}{self.byzantine_side or ''}")

    @property
    def honest(self) -> bool:
        return self.byzantine_side is None

    @property
    def height(self) -> int:
        return self.state.height if self.state is not None else 0


class Simulation:
    def __init__(
        self,
        seed: int,
        validators: ValidatorSet,
        *,
        target_height: int,
        faults: Faults = Faults(),
        heal_at: int = 0,
        down: frozenset[str] = frozenset(),
        byzantine: frozenset[str] = frozenset(),
        adversary: Adversary | None = None,
    ) -> None:
        self.rng = Random(seed)
        self.validators = validators
        self.target = target_height
        self.faults = faults
        self.heal_at = heal_at
        self.adversary = adversary
        self.now = 0
        self.queue: list[tuple[int, int, tuple[Any, ...]]] = []
        self.seq = 0
        self.checker = Checker(validators, HmacVerifier(), CHAIN)
        self.evidence: list[DuplicateVoteEvidence] = []
        self.steps = 0
        self.crash_points: Counter[str] = Counter()
        self.observed: dict[tuple[str, int, int, str, bytes | None], Vote] = {}
        self.nodes: list[SimNode] = []
        for v in validators.validators:
            sides = ("a", "b") if v.address in byzantine else (None,)
            for side in sides:
                self.nodes.append(SimNode(len(self.nodes), v.address, byzantine_side=side))
        if byzantine:
            self._balance_sides()
        self.down = {n.id for n in self.nodes if n.address in down}
        for node in self.nodes:
            if node.id not in self.down:
                self.push(0, ("restart", node.id))
            self.push(self.rng.randint(0, TICK_MS), ("tick", node.id))
        by_address = {n.address: n.id for n in self.nodes if n.honest}
        for address, crash_at, restart_at in faults.crashes:
            self.push(crash_at, ("crash", by_address[address]))
            self.push(restart_at, ("restart", by_address[address]))

    def _balance_sides(self) -> None:
        """Split honest validators into two halves of near-equal power (heaviest first)."""
        power = {"a": 0, "b": 0}
        honest = [n for n in self.nodes if n.honest]
        by_power = sorted(honest, key=lambda n: -self.validators.power_of([n.address]))
        for node in by_power:
            side = "a" if power["a"] <= power["b"] else "b"
            node.honest_side = side
            power[side] += self.validators.power_of([node.address])

    # ---- running ------------------------------------------------------------------------

    def run(self, until_ms: int, *, stop_on_violation: bool = True) -> None:
        """Process events until every live honest node reaches the target or time runs out."""
        while self.queue and not self.done():
            time, _, action = self.queue[0]
            if time > until_ms:
                break
            heapq.heappop(self.queue)
            self.now = time
            self.dispatch(action)
            if stop_on_violation and self.checker.violations:
                return
        self.now = max(self.now, until_ms) if not self.done() else self.now

    def done(self) -> bool:
        return all(
            self.target in n.blocks for n in self.nodes if n.honest and n.id not in self.down
        )

    def push(self, time: int, action: tuple[Any, ...]) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (time, self.seq, action))

    def dispatch(self, action: tuple[Any, ...]) -> None:
        kind, node = action[0], self.nodes[action[1]]
        if kind == "deliver":
            self.deliver(node, action[2])
        elif kind == "timeout":
            if not node.crashed and action[2] == node.incarnation:
                self.feed(node, action[3])
        elif kind == "tick":
            self.tick(node)
        elif kind == "crash":
            self.crash(node)
        elif kind == "restart":
            self.restart(node)

    # ---- network --------------------------------------------------------------------------

    @property
    def chaotic(self) -> bool:
        return self.now < self.heal_at

    def can_reach(self, src: SimNode, dst: SimNode) -> bool:
        if src.byzantine_side or dst.byzantine_side:
            return (src.byzantine_side or src.honest_side) == (
                dst.byzantine_side or dst.honest_side
            )
        if not self.chaotic:
            return True
        if src.honest_side != dst.honest_side:
            return False
        for start, end, side in self.faults.partitions:
            if start <= self.now < end and ((src.address in side) != (dst.address in side)):
                return False
        return True

    def send(self, src: SimNode, dst: SimNode, msg: tuple[Any, ...]) -> None:
        if not self.can_reach(src, dst):
            return
        if self.adversary is not None and self.adversary(src, dst, msg):
            return
        faults = self.faults if self.chaotic else Faults()
        if self.rng.random() < faults.drop:
            return
        copies = 2 if self.rng.random() < faults.duplicate else 1
        for _ in range(copies):
            self.push(self.now + self.rng.randint(*faults.delay_ms), ("deliver", dst.id, msg))

    def broadcast(self, src: SimNode, msg: tuple[Any, ...]) -> None:
        for dst in self.nodes:
            if dst is not src:
                self.send(src, dst, msg)
        self.push(self.now, ("deliver", src.id, msg))  # own messages count, never lost

    def tick(self, node: SimNode) -> None:
        self.push(self.now + TICK_MS, ("tick", node.id))
        if node.crashed:
            return
        messages = [*node.wal, *self.relayed(node)]
        for dst in self.nodes:
            if dst is not node:
                self.send(node, dst, ("status", node.id, node.height))
                for msg in messages:
                    self.send(node, dst, msg)

    def relayed(self, node: SimNode) -> list[tuple[Any, ...]]:
        """Others' messages this node passes on: the paper's gossip assumption, as in CometBFT.

        Votes and proposals of the current round, of the rounds behind its lock and valid value
        and of the proof-of-lock round of the current proposal (CometBFT sends a peer the POL
        prevotes it lacks), so what one correct validator received, all eventually do.
        """
        state = node.state
        if state is None or state.decided:
            return []
        rounds = {state.round, state.valid_round, state.locked_round}
        rounds |= {p.pol_round for p in state.proposals.get(state.round, ())}
        rounds.discard(-1)
        relayed: list[tuple[Any, ...]] = []
        for r in sorted(rounds):
            relayed.extend(("proposal", node.id, p) for p in state.proposals.get(r, ()))
            for kind in (VoteKind.PREVOTE, VoteKind.PRECOMMIT):
                tally = state.votes.tally(r, kind)
                relayed.extend(
                    ("vote", node.id, v)
                    for bucket in tally.by_id.values()
                    for v in bucket.values()
                    if v.validator != node.address
                )
        return relayed

    def deliver(self, node: SimNode, msg: tuple[Any, ...]) -> None:
        if node.crashed or node.state is None:
            return
        tag, src = msg[0], self.nodes[msg[1]]
        if tag == "status":
            self.serve_catch_up(node, src, msg[2])
        elif tag in ("proposal", "vote"):
            if msg[2].height in node.blocks:
                self.serve_catch_up(node, src, msg[2].height)
            if tag == "vote":
                v = msg[2]
                if node.honest:
                    self.observed.setdefault(
                        (v.validator, v.height, v.round, v.kind, v.block_id), v
                    )
                self.feed(node, ReceiveVote(v))
            else:
                self.feed(node, ReceiveProposal(msg[2]))
        elif tag == "commits":
            for d in msg[2]:
                self.apply_commit(node, d)

    def serve_catch_up(self, node: SimNode, src: SimNode, height: int) -> None:
        top = max(node.blocks, default=0)
        decided = tuple(node.blocks[h] for h in range(height, top + 1) if h in node.blocks)
        if decided:
            self.send(node, src, ("commits", node.id, decided))

    def apply_commit(self, node: SimNode, d: Decide) -> None:
        """Feed a peer's decision (proposal + certificate) to the core, which verifies it."""
        own = node.blocks.get(d.height)
        if own is not None and own.block_id != d.block_id:
            self.evidence.extend(evidence_from_commits(own.commit, d.commit))
        if node.crashed or node.state is None or d.height != node.height:
            return
        for vote in d.commit:  # votes first: a quorum lets the core log this proposal
            if node.crashed or node.state is None or node.height != d.height:
                return
            self.feed(node, ReceiveVote(vote))
        if not node.crashed and node.state is not None and node.height == d.height:
            self.feed(node, ReceiveProposal(d.proposal))

    def observed_evidence(self) -> list[DuplicateVoteEvidence]:
        """Double signs among all votes honest validators received (their pooled vote logs)."""
        first: dict[tuple[str, int, int, str], Vote] = {}
        found: dict[tuple[str, int, int, str], DuplicateVoteEvidence] = {}
        for (address, height, round_, kind, _), vote in self.observed.items():
            slot = (address, height, round_, kind)
            if slot in first and slot not in found:
                found[slot] = make_evidence(first[slot], vote)
            first.setdefault(slot, vote)
        return [*found.values(), *self.evidence]

    # ---- validators ---------------------------------------------------------------------

    def crash(self, node: SimNode) -> None:
        node.crashed = True
        node.incarnation += 1
        node.state = None
        node.privval = None

    def restart(self, node: SimNode) -> None:
        if not node.crashed:
            return
        node.crashed = False
        node.privval = PrivValidator(HmacSigner(node.address), node.pv_store)
        height = max(node.blocks, default=0) + 1
        node.state = initial_state(self.validators)
        if height > self.target:
            return
        round_, lock = node.privval.resume_point(height)
        node.wal = [m for m in node.wal if m[2].height == height]
        self.feed(node, NewHeight(height, self.validators, round_, lock))
        for msg in node.wal:  # replay own signed messages so they count again
            self.push(self.now, ("deliver", node.id, msg))

    def maybe_crash(self, node: SimNode, point: str) -> bool:
        """Crash ``node`` now (with the configured chance, while chaotic); restart it later."""
        if not (self.chaotic and node.honest and node.id not in self.down):
            return False
        if self.rng.random() >= self.faults.crash_at_output:
            return False
        self.crash(node)
        self.crash_points[point] += 1
        self.push(min(self.now + self.rng.randint(20, 600), self.heal_at), ("restart", node.id))
        return True

    def feed(self, node: SimNode, event: Event) -> None:
        assert node.state is not None
        node.state, outputs = step(node.ctx, node.state, event)
        self.steps += 1
        for out in outputs:
            if node.crashed:
                return  # crashed while acting: the remaining outputs never happen
            self.act(node, out)

    def act(self, node: SimNode, out: Output) -> None:
        assert node.privval is not None
        if isinstance(out, BroadcastProposal | BroadcastVote):
            if self.maybe_crash(node, "before persisting"):  # decided, never persisted
                return
            try:
                if isinstance(out, BroadcastProposal):
                    msg: tuple[Any, ...] = (
                        "proposal",
                        node.id,
                        node.privval.sign_proposal(out.proposal),
                    )
                else:
                    msg = ("vote", node.id, node.privval.sign_vote(out.vote, out.lock))
            except DoubleSignRefused:
                return
            if node.honest and msg[0] == "vote":
                self.checker.on_signed_vote(msg[2])
            node.wal.append(msg)  # written with the signer state (a real node's WAL)
            if self.maybe_crash(node, "before sending"):  # persisted and signed, never sent
                return
            self.broadcast(node, msg)
        elif isinstance(out, ScheduleTimeout):
            timeout = TimeoutFired(out.kind, out.height, out.round)
            self.push(self.now + out.duration_ms, ("timeout", node.id, node.incarnation, timeout))
        elif isinstance(out, Decide):
            self.checker.on_decide(f"node{node.id}", out, honest=node.honest)
            if self.maybe_crash(node, "before storing"):  # decided, block never stored
                return
            node.blocks[out.height] = out
            node.wal = []
            if out.height < self.target:
                self.feed(node, NewHeight(out.height + 1, self.validators))
        elif isinstance(out, EvidenceFound) and is_valid_evidence(
            out.evidence, self.validators, HmacVerifier()
        ):
            self.evidence.append(out.evidence)
