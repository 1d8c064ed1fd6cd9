"""Hundreds of seeded schedules: safety after every step, liveness once the network heals.

Each schedule draws a validator set (4 or 7 validators, equal or weighted power), network faults
(delay, reorder, loss, duplication, partitions) until a heal time, transient crashes at random
times and while acting on a core output (between deciding a vote and persisting it, between
persisting and sending, between deciding a block and storing it), and up to f validators (less
than a third of the power) that stay down for good or, in other schedules, double-sign
(split-brain byzantine validators). The checker runs on every decision and
every signed vote; after healing, every live validator must reach the target height.
"""

from __future__ import annotations

from collections import Counter
from random import Random
from typing import Any

import pytest

from ledger.consensus.evidence import accused_power, evidence_from_commits, is_valid_evidence
from ledger.consensus.proposer import proposer_for
from ledger.types import ValidatorSet, VoteKind
from tests.ledger.consensus.fakes import HmacVerifier, make_set
from tests.ledger.consensus.sim import Faults, SimNode, Simulation

SETS: dict[str, list[int]] = {
    "4 equal": [1, 1, 1, 1],
    "7 equal": [1] * 7,
    "4 weighted": [3, 3, 3, 4],
    "7 weighted": [1, 2, 3, 4, 5, 6, 7],
}
SCHEDULES = 300
LIVENESS_BOUND_MS = 60_000  # simulated time allowed after healing


def crashable(vset: ValidatorSet, rng: Random) -> frozenset[str]:
    """A random maximal set of validators holding less than a third of the power (f of 3f+1)."""
    chosen: list[str] = []
    for v in rng.sample(list(vset.validators), len(vset.validators)):
        if 3 * vset.power_of([*chosen, v.address]) < vset.total_power:
            chosen.append(v.address)
    return frozenset(chosen)


def random_schedule(seed: int) -> tuple[str, Simulation]:
    rng = Random(seed)
    name = rng.choice(sorted(SETS))
    vset = make_set(SETS[name])
    n = len(vset.validators)
    heal_at = rng.randint(0, 4000)
    mode = rng.random()
    faulty = crashable(vset, rng)
    down = faulty if mode < 0.5 else frozenset()
    byzantine = faulty if 0.5 <= mode < 0.8 else frozenset()
    addresses = [v.address for v in vset.validators]
    live = [a for a in addresses if a not in faulty]
    partitions = []
    for _ in range(rng.randint(0, 3)):
        start = rng.randint(0, heal_at)
        side = frozenset(rng.sample(addresses, rng.randint(1, n - 1)))
        partitions.append((start, rng.randint(start, heal_at), side))
    crashes = []
    for _ in range(rng.randint(0, 3)):
        at = rng.randint(0, heal_at)
        crashes.append((rng.choice(live), at, rng.randint(at, heal_at)))
    faults = Faults(
        delay_ms=(1, rng.randint(5, 400)),
        drop=rng.uniform(0.0, 0.4),
        duplicate=rng.uniform(0.0, 0.3),
        crash_at_output=rng.uniform(0.0, 0.05),
        partitions=tuple(partitions),
        crashes=tuple(crashes),
    )
    sim = Simulation(
        seed,
        vset,
        target_height=rng.randint(2, 4),
        faults=faults,
        heal_at=heal_at,
        down=down,
        byzantine=byzantine,
    )
    return f"seed {seed}, {name}, down {sorted(down)}, byzantine {sorted(byzantine)}", sim


CRASH_POINTS: Counter[str] = Counter()


@pytest.mark.parametrize("seed", range(SCHEDULES))
def test_random_schedule_is_safe_and_live_after_healing(seed: int) -> None:
    label, sim = random_schedule(seed)
    sim.run(sim.heal_at + LIVENESS_BOUND_MS)
    assert sim.checker.violations == [], label
    assert sim.done(), f"{label}: stuck at {[max(n.blocks, default=0) for n in sim.nodes]}"
    assert sim.checker.max_height() == sim.target
    for node in sim.nodes:
        for height, d in node.blocks.items():
            assert sim.checker.decided[height].keys() == {d.block_id}
    CRASH_POINTS.update(sim.crash_points)


def test_schedules_crashed_at_every_point() -> None:
    """The schedules above really crash between deciding a vote and persisting it, etc."""
    if len(CRASH_POINTS) == 0:
        for seed in range(SCHEDULES):
            _, sim = random_schedule(seed)
            sim.run(sim.heal_at + LIVENESS_BOUND_MS)
            CRASH_POINTS.update(sim.crash_points)
    assert {"before persisting", "before sending", "before storing"} <= set(CRASH_POINTS)
    assert min(CRASH_POINTS.values()) >= 10


@pytest.mark.parametrize("name", sorted(SETS))
@pytest.mark.parametrize("seed", range(5))
def test_more_than_a_third_crashed_stops_commits_until_restart(name: str, seed: int) -> None:
    rng = Random(1000 + seed)
    vset = make_set(SETS[name])
    down = set(crashable(vset, rng))
    for v in vset.validators:  # one more: now at least a third of the power is down
        if v.address not in down:
            down.add(v.address)
            break
    assert not vset.is_quorum(vset.total_power - vset.power_of(down))
    crash_at, restart_at = rng.randint(0, 120), 20_000
    ids = [i for i, v in enumerate(vset.validators) if v.address in down]
    faults = Faults(crashes=tuple((a, crash_at, restart_at) for a in sorted(down)))
    sim = Simulation(seed, vset, target_height=10, faults=faults)
    sim.run(restart_at - 1)
    assert sim.checker.violations == []
    # Every certificate needs a vote of a crashed validator: none beyond what they signed.
    signed_before = max(
        (state.height for i in ids if (state := sim.nodes[i].pv_store.state) is not None),
        default=0,
    )
    stalled_at = sim.checker.max_height()
    assert stalled_at <= signed_before < sim.target
    sim.run(restart_at + LIVENESS_BOUND_MS)
    assert sim.checker.violations == []
    assert sim.done() and sim.checker.max_height() == sim.target > stalled_at


BYZANTINE: dict[str, frozenset[str]] = {
    "4 equal": frozenset({"v0", "v1"}),  # 2 of 4
    "7 equal": frozenset({"v0", "v1", "v2"}),  # 3 of 7
    "4 weighted": frozenset({"v0", "v3"}),  # 7 of 13
    "7 weighted": frozenset({"v5", "v6"}),  # 13 of 28
}


@pytest.mark.parametrize("name", sorted(BYZANTINE))
@pytest.mark.parametrize("seed", range(5))
def test_negative_control_byzantine_third_forks_and_is_named(name: str, seed: int) -> None:
    vset = make_set(SETS[name])
    byzantine = BYZANTINE[name]
    assert 3 * vset.power_of(byzantine) >= vset.total_power
    sim = Simulation(seed, vset, target_height=3, heal_at=10**9, byzantine=byzantine)
    sim.run(60_000, stop_on_violation=False)
    forks = sim.checker.forks()
    assert forks, "the checker must detect the fork"
    assert any("fork" in v for v in sim.checker.violations)
    height = min(forks)
    a, b = forks[height][:2]
    evidence = [*evidence_from_commits(a.commit, b.commit), *sim.observed_evidence()]
    assert all(is_valid_evidence(ev, vset, HmacVerifier()) for ev in evidence)
    named = {ev.validator for ev in evidence}
    assert named <= byzantine  # no honest validator is ever accused
    assert 3 * accused_power(evidence, vset) >= vset.total_power


@pytest.mark.parametrize("seed", range(10))
def test_byzantine_minority_cannot_fork(seed: int) -> None:
    vset = make_set(SETS["7 equal"])
    sim = Simulation(seed, vset, target_height=3, heal_at=5000, byzantine=frozenset({"v0", "v1"}))
    sim.run(60_000)
    assert sim.checker.violations == []
    assert sim.checker.forks() == {}
    assert sim.checker.max_height() == 3


@pytest.mark.parametrize("restart_locked", [False, True])
def test_locks_keep_a_decision_seen_by_one_validator(restart_locked: bool) -> None:
    """A scripted schedule where only the lock stops a fork.

    Round 0: D misses the proposal; A, B, C prevote it and precommit it, but A's precommit
    reaches nobody else, so A alone decides (B and C lock), then falls silent for good.
    Round 1: D proposes a fresh value. B and C are locked on the round-0 value: they must
    prevote nil; were locks ignored, B, C and D would commit D's value and fork from A.
    A is still heard in round 0 by design of the schedule, so all four must end up agreeing.
    With ``restart_locked`` B and C crash after locking and restart: the lock must survive.
    """
    vset = make_set([1, 1, 1, 1])
    p0, d = proposer_for(vset, 1, 0), proposer_for(vset, 1, 1)
    a = min(v.address for v in vset.validators if v.address not in (p0, d))
    b, c = sorted(v.address for v in vset.validators if v.address not in (a, d))

    def adversary(src: SimNode, dst: SimNode, msg: tuple[Any, ...]) -> bool:
        tag, payload = msg[0], msg[2]
        # A is heard in round 0 only, and never passes on its decision.
        if src.address == a and (tag in ("status", "commits") or payload.round > 0):
            return True
        if tag == "proposal" and payload.round == 0:
            return dst.address == d
        precommit = tag == "vote" and payload.kind is VoteKind.PRECOMMIT
        if precommit and payload.round == 0 and payload.block_id is not None:
            return src.address == a and dst.address != a
        return False

    for seed in range(10):
        crashes = ((b, 120, 125), (c, 121, 126)) if restart_locked else ()
        faults = Faults(crashes=crashes)
        sim = Simulation(seed, vset, target_height=1, adversary=adversary, faults=faults)
        sim.run(60_000, stop_on_violation=False)
        assert sim.checker.violations == []
        decided = {n.address: n.blocks[1] for n in sim.nodes if 1 in n.blocks}
        assert decided.keys() == {a, b, c, d}, "everyone commits"
        assert decided[a].round == 0 and decided[b].round > 1  # A alone decided in round 0
        assert len({dec.block_id for dec in decided.values()}) == 1
