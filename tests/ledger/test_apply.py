from __future__ import annotations

import pytest

from ledger.apply import apply_block, select_valid
from ledger.errors import DuplicateSettlementError
from ledger.state import genesis_state, state_hash
from ledger.tx import topup_body
from ledger.types import Tx
from tests.ledger.builders import make_net, settlement_body


def test_applying_a_block_returns_a_new_state_and_keeps_the_old() -> None:
    net = make_net()
    before = net.state
    sealed = net.seal(
        [
            net.csms_tx(settlement_body("s-1")),
            net.aggregator_tx(topup_body(topup_id="t", account="ev:a", amount=7)),
        ]
    )
    after = apply_block(before, sealed.block)
    assert before.height == 0 and after.height == 1
    assert "s-1" not in before.settlements and "s-1" in after.settlements
    assert before.balances == {} and after.balances == {"ev:a": 7}
    assert state_hash(after) == sealed.block.header.state_hash
    assert state_hash(before) != state_hash(after)
    with pytest.raises(TypeError):
        after.balances["ev:a"] = 1_000_000  # type: ignore[index]


def test_state_hash_commits_to_settled_ids_and_balances() -> None:
    a, b = make_net(), make_net()
    b.genesis = a.genesis
    b.csms_key, b.aggregator_key, b.validator_keys = a.csms_key, a.aggregator_key, a.validator_keys
    a.seal([a.csms_tx(settlement_body("s-1"))])
    b.seal([b.csms_tx(settlement_body("s-2"))])
    assert state_hash(a.state) != state_hash(b.state)
    # the same history gives the same hash
    c = make_net()
    c.genesis, c.csms_key, c.validator_keys = a.genesis, a.csms_key, a.validator_keys
    c.seal([c.csms_tx(settlement_body("s-1"))])
    assert state_hash(c.state) == state_hash(a.state)


def test_a_block_with_an_invalid_transaction_changes_nothing() -> None:
    net = make_net()
    net.seal([net.csms_tx(settlement_body("s-1"))])
    state = net.state
    with pytest.raises(DuplicateSettlementError) as info:
        net.seal([net.csms_tx(settlement_body("s-2")), net.csms_tx(settlement_body("s-1"))])
    assert "transaction 1" in getattr(info.value, "__notes__", [])
    assert net.state is state and "s-2" not in state.settlements
    assert genesis_state(net.genesis).height == 0


def test_select_valid_keeps_what_applies_in_order_in_one_pass() -> None:
    net = make_net(4)
    good = [net.csms_tx(settlement_body(f"s-{i}")) for i in range(3)]
    twice = net.csms_tx(settlement_body("s-0", transaction_id="other"))
    forged = Tx(good[1].data.replace(b"s-1", b"s-9"))
    state = net.state
    kept = select_valid(state, [good[0], twice, good[1], forged, good[2]], time=state.time + 1)
    assert kept == good
