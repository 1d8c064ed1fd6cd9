"""The event loop ``v2g csms`` runs on: at most ``READY_SLICE`` sockets served per pass.

asyncio asks epoll for every ready socket at once and runs all their callbacks in one pass of
the loop. When thousands of stations send at the same moment (a fleet's close frames after
a network cut, its BootNotifications after a restart), that one pass held the loop for 80 to
330 ms at 5,000 stations: every timer, and every other station's answer, waited for it.

``SlicedEpollSelector`` asks epoll for at most ``READY_SLICE`` events per call. The rest stay
ready (epoll is level-triggered here) and come back on the next pass, which first runs the
timers and callbacks that came due. epoll hands back a reported socket at the tail of its
ready list, so sockets are served in turn and none waits more than
``ready sockets / READY_SLICE`` passes. A quiet loop sees no difference: the slice only binds
when more than ``READY_SLICE`` sockets are ready at once.
"""

from __future__ import annotations

import asyncio
import math
import select
import selectors
from typing import Any

READY_SLICE = 64  # sockets served per pass (a socket read and what it wakes: ~0.3 ms)


if hasattr(selectors, "EpollSelector"):

    class SlicedEpollSelector(selectors.EpollSelector):
        """``EpollSelector`` returning at most ``limit`` ready keys per ``select``."""

        def __init__(self, limit: int = READY_SLICE) -> None:
            super().__init__()
            self.limit = limit

        def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
            # As the standard library's, but with maxevents capped at the slice.
            if timeout is None:
                wait = -1.0
            elif timeout <= 0:
                wait = 0.0
            else:  # epoll_wait() counts milliseconds: round up, to wait at least `timeout`
                wait = math.ceil(timeout * 1e3) * 1e-3
            epoll: Any = self._selector  # type: ignore[attr-defined]
            try:
                fired = epoll.poll(wait, self.limit)
            except InterruptedError:
                return []
            ready = []
            for fd, event in fired:
                events = 0
                if event & ~select.EPOLLIN:
                    events |= selectors.EVENT_WRITE
                if event & ~select.EPOLLOUT:
                    events |= selectors.EVENT_READ
                key = self._key_from_fd(fd)  # type: ignore[attr-defined]
                if key:
                    ready.append((key, events & key.events))
            return ready


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A selector loop over ``SlicedEpollSelector`` where epoll exists, else the default."""
    if hasattr(selectors, "EpollSelector"):
        return asyncio.SelectorEventLoop(SlicedEpollSelector())
    return asyncio.new_event_loop()
