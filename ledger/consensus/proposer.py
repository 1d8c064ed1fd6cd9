"""Weighted round-robin proposer selection and the validator-set admission rule.

CometBFT's priority algorithm: at every step each validator's priority grows by its power, the
validator with the highest priority (ties: smallest address) proposes, and its priority drops by
the total power. Starting from all-zero priorities the sequence is periodic: over ``P / g``
steps (``P`` total power, ``g`` the gcd of the powers) validator ``i`` proposes exactly
``power_i / g`` times. So the proposer of (height, round) is a pure function of the set,
``height`` and ``round``: step number ``height + round`` taken modulo the period.

CometBFT also re-centres and rescales priorities; those only matter when the set changes with
priorities carried over. Here each set starts from zero, which keeps selection deterministic
from (validator set, height, round) alone.
"""

from __future__ import annotations

from functools import lru_cache, reduce
from math import gcd

from ledger.consensus.errors import InvalidValidatorSet
from ledger.types import ValidatorSet

# Above this period the schedule is walked on demand instead of cached whole.
_MAX_CACHED_PERIOD = 100_000


def check_validator_set(validators: ValidatorSet) -> None:
    """Refuse an empty set or one where a single validator holds a third or more of the power.

    With such a validator, its crash alone stops commits and it alone meets the f+1 round-skip
    threshold, so the set cannot tolerate any fault of its biggest member.
    """
    if not validators.validators:
        raise InvalidValidatorSet("validator set is empty")
    total = validators.total_power
    for v in validators.validators:
        if 3 * v.power >= total:
            raise InvalidValidatorSet(
                f"validator {v.address} holds {v.power} of {total} power: "
                "no validator may hold a third or more"
            )


def proposer_for(validators: ValidatorSet, height: int, round_: int) -> str:
    """Address of the proposer of (``height``, ``round_``)."""
    if height < 1 or round_ < 0:
        raise ValueError(f"no proposer for height {height} round {round_}")
    powers = tuple((v.address, v.power) for v in validators.validators)
    step = height + round_  # >= 1: the first pick follows one increment, as in CometBFT genesis
    period = _period(powers)
    if period <= _MAX_CACHED_PERIOD:
        schedule = _schedule(powers)
        return schedule[(step - 1) % period]
    return _walk(powers, (step - 1) % period + 1)


def _period(powers: tuple[tuple[str, int], ...]) -> int:
    g = reduce(gcd, (p for _, p in powers))
    return sum(p for _, p in powers) // g


@lru_cache(maxsize=64)
def _schedule(powers: tuple[tuple[str, int], ...]) -> tuple[str, ...]:
    """One full period of proposers for a set (cached: sets change rarely)."""
    return tuple(_iterate(powers, _period(powers)))


def _walk(powers: tuple[tuple[str, int], ...], steps: int) -> str:
    return _iterate(powers, steps)[-1]


def _iterate(powers: tuple[tuple[str, int], ...], steps: int) -> list[str]:
    total = sum(p for _, p in powers)
    priority = dict.fromkeys((a for a, _ in powers), 0)
    chosen: list[str] = []
    for _ in range(steps):
        for address, power in powers:
            priority[address] += power
        # Max priority; on ties the smallest address, as powers are ordered by address.
        best = powers[0][0]
        for address, _ in powers[1:]:
            if priority[address] > priority[best]:
                best = address
        priority[best] -= total
        chosen.append(best)
    return chosen
