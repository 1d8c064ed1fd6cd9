from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.consensus.errors import InvalidValidatorSet
from ledger.consensus.proposer import check_validator_set, proposer_for
from tests.ledger.consensus.fakes import make_set


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=30), min_size=4, max_size=9))
def test_each_validator_proposes_in_proportion_to_power(powers: list[int]) -> None:
    vset = make_set(powers)
    total = vset.total_power
    counts = Counter(proposer_for(vset, h, 0) for h in range(1, total + 1))
    assert counts == {v.address: v.power for v in vset.validators}


def test_equal_powers_rotate_in_address_order() -> None:
    vset = make_set([5, 5, 5, 5])
    order = [proposer_for(vset, 1, r) for r in range(8)]
    # Worked by hand: all tie at 5, v0 wins and drops to -15; then v1..v3 tie at 10, 15...
    assert order == ["v0", "v1", "v2", "v3"] * 2


def test_heavier_validator_is_picked_first_and_more_often() -> None:
    vset = make_set([1, 1, 1, 2])  # v3 has 2 of 5: refused for consensus, fine for selection
    first = proposer_for(vset, 1, 0)
    assert first == "v3"
    window = [proposer_for(vset, 1, r) for r in range(5)]
    assert window.count("v3") == 2


def test_proposer_depends_on_height_and_round_only() -> None:
    vset = make_set([3, 4, 5, 6, 7])
    assert proposer_for(vset, 7, 2) == proposer_for(make_set([3, 4, 5, 6, 7]), 7, 2)
    # height + round is the step number: (7, 2) and (8, 1) pick the same validator.
    assert proposer_for(vset, 7, 2) == proposer_for(vset, 8, 1)


def test_round_change_moves_to_another_proposer() -> None:
    vset = make_set([1, 1, 1, 1])
    assert proposer_for(vset, 3, 0) != proposer_for(vset, 3, 1)


@pytest.mark.parametrize("powers", [[1, 1, 1], [1, 1, 2], [3, 3, 3, 9], [10]])
def test_refuses_a_validator_with_a_third_or_more(powers: list[int]) -> None:
    with pytest.raises(InvalidValidatorSet):
        check_validator_set(make_set(powers))


@pytest.mark.parametrize("powers", [[1, 1, 1, 1], [3, 3, 3, 4], [1] * 7, [10, 10, 10, 11]])
def test_accepts_sets_where_everyone_holds_less_than_a_third(powers: list[int]) -> None:
    check_validator_set(make_set(powers))


def test_rejects_bad_height_or_round() -> None:
    with pytest.raises(ValueError):
        proposer_for(make_set([1, 1, 1, 1]), 0, 0)
    with pytest.raises(ValueError):
        proposer_for(make_set([1, 1, 1, 1]), 1, -1)
