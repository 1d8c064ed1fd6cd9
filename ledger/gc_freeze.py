"""Collections in short walks: collect what is not frozen, then freeze the survivors.

CPython's cyclic collector walks, in a full (generation 2) collection, every object it
tracks, and stops the process meanwhile. A long-running server whose heap holds data that
forms no cycles can instead collect the objects made since its last collection and freeze
the survivors (``gc.freeze``: out of every later collection's sight), so each walk covers
only what is new. Frozen objects are still freed by their reference counts; a cycle among
them is collected only by a FULL collection (everything unfrozen, collected, frozen again).

Used by the CSMS (``csms.gc_pacing``) and by a validator process
(``ledger.consensus.gc_ticks``), each deciding when.
"""

from __future__ import annotations

import gc
from enum import Enum


class GcAction(Enum):
    FREEZE = "freeze"  # collect what is not frozen, then freeze the survivors
    FULL = "full"  # give everything back, collect it all, freeze the survivors


def freeze_start_up_heap() -> None:
    """Collect once and freeze what a process holds after start-up (modules, schemas)."""
    gc.collect()
    gc.freeze()


def apply(action: GcAction | None) -> None:
    if action is GcAction.FREEZE:
        gc.collect()  # walks only what is not frozen: the objects made since the last one
        gc.freeze()
    elif action is GcAction.FULL:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
