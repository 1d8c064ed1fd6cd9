"""Connection caps per source address and overall, without sockets."""

from __future__ import annotations

import pytest

from ledger.consensus.limits import ConnectionCaps, ConnectionLimits, Slot


def test_one_address_is_capped_in_handshakes_and_in_connections() -> None:
    limits = ConnectionLimits(ConnectionCaps(per_address=3, opening_per_address=2))
    first, second = limits.admit("10.0.0.1"), limits.admit("10.0.0.1")
    assert first is not None and second is not None
    assert limits.admit("10.0.0.1") is None  # two handshakes under way already
    assert limits.refused["address_opening"] == 1
    assert limits.admit("10.0.0.2") is not None  # another address is not held back
    first.established()
    third = limits.admit("10.0.0.1")
    assert third is not None
    third.established()
    assert limits.admit("10.0.0.1") is None  # three connections open
    assert limits.refused["address"] == 1
    assert limits.from_address("10.0.0.1") == 3
    first.release()
    first.release()  # once only
    assert limits.from_address("10.0.0.1") == 2
    assert limits.admit("10.0.0.1") is not None  # a closed connection frees its place
    assert dict(limits.refused) == {
        "address": 1,
        "address_opening": 1,
        "total": 0,
        "opening": 0,
    }


def test_the_caps_over_all_addresses() -> None:
    limits = ConnectionLimits(ConnectionCaps(total=3, opening=2))
    slots: list[Slot] = []
    for i in range(2):
        slot = limits.admit(f"10.0.0.{i}")
        assert slot is not None
        slots.append(slot)
    assert limits.admit("10.0.1.1") is None
    assert limits.refused["opening"] == 1
    slots[0].established()
    third = limits.admit("10.0.1.1")
    assert third is not None
    assert limits.admit("10.0.1.2") is None
    assert limits.refused["total"] == 1
    for slot in [*slots, third]:
        slot.release()
    assert (limits.connections, limits.opening) == (0, 0)
    assert limits.from_address("10.0.0.0") == 0


def test_a_cap_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="per_address"):
        ConnectionCaps(per_address=0)
