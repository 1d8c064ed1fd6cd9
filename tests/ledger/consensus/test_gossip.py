"""When a validator tells its height (``StatusBeat``)."""

from __future__ import annotations

from ledger.consensus.gossip import QUIET_STATUS_TICKS, STATUS_AFTER_CHANGE_TICKS, StatusBeat


def told(beat: StatusBeat, heights: list[int]) -> list[int]:
    return [t for t, h in enumerate(heights, 1) if beat.due(t, h, busy=False)]


def test_at_rest_the_height_is_told_once_per_quiet_period() -> None:
    after, quiet = STATUS_AFTER_CHANGE_TICKS, QUIET_STATUS_TICKS
    # the first ticks after start (a change from nothing), then one beat per quiet period
    expected = list(range(1, after + 1)) + list(range(after + quiet, 41, quiet))
    assert told(StatusBeat(), [5] * 40) == expected


def test_a_new_height_is_told_on_consecutive_ticks_then_quiet_again() -> None:
    beat = StatusBeat()
    told(beat, [1] * 30)
    ticks = [t for t in range(31, 60) if beat.due(t, 2, busy=False)]
    assert ticks[:STATUS_AFTER_CHANGE_TICKS] == [31, 32, 33]
    assert 34 not in ticks


def test_every_tick_is_told_while_a_height_is_under_way() -> None:
    beat = StatusBeat()
    told(beat, [1] * 30)
    assert all(beat.due(t, 1, busy=True) for t in range(31, 50))
