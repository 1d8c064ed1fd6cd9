"""The GC pacer freezes as connections grow and unfreezes once many have gone."""

from __future__ import annotations

import gc

from csms.gc_pacing import GcAction, GcPacer, apply


def test_freezes_on_growth_only_past_the_minimum() -> None:
    pacer = GcPacer(minimum=100, growth=1.5, shrink=0.5)
    assert [pacer.observe(n) for n in (1, 50, 99)] == [None, None, None]
    assert pacer.observe(100) is GcAction.FREEZE
    assert pacer.observe(149) is None  # not yet 1.5x
    assert pacer.observe(150) is GcAction.FREEZE
    assert pacer.frozen_at == 150


def test_unfreezes_when_connections_fall_below_the_shrink_share() -> None:
    pacer = GcPacer(minimum=100, growth=1.5, shrink=0.5)
    pacer.observe(200)
    assert pacer.observe(101) is None
    assert pacer.observe(99) is GcAction.UNFREEZE
    assert pacer.frozen_at == 0
    assert pacer.observe(99) is None  # nothing frozen: nothing to give back
    assert pacer.observe(100) is GcAction.FREEZE  # growth past the minimum freezes again


def test_apply_moves_objects_out_of_and_back_into_the_collectors_sight() -> None:
    gc.unfreeze()
    apply(GcAction.FREEZE)
    try:
        assert gc.get_freeze_count() > 0
    finally:
        apply(GcAction.UNFREEZE)
    assert gc.get_freeze_count() == 0
    apply(None)
    assert gc.get_freeze_count() == 0
