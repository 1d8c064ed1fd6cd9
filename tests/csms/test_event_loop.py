"""The CSMS's event loop serves at most a slice of the ready sockets per pass, fairly."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from csms.event_loop import READY_SLICE, SlicedEpollSelector, new_event_loop


@pytest.fixture
def readable_pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    """600 socket pairs whose reading ends all have a byte waiting."""
    pairs = [socket.socketpair() for _ in range(600)]
    for _, writer in pairs:
        writer.send(b"x")
    yield pairs
    for reader, writer in pairs:
        reader.close()
        writer.close()


def test_each_select_returns_a_slice_and_every_socket_gets_its_turn(
    readable_pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    selector = SlicedEpollSelector(limit=64)
    for reader, _ in readable_pairs:
        selector.register(reader, 1)  # EVENT_READ; nothing is read, so all stay ready
    served: set[int] = set()
    turns = -(-len(readable_pairs) // 64)
    for _ in range(turns):
        ready = selector.select(0)
        assert len(ready) == 64 or len(served) + len(ready) == len(readable_pairs)
        served.update(key.fd for key, _ in ready)
    assert served == {reader.fileno() for reader, _ in readable_pairs}
    selector.close()


def test_a_burst_of_ready_sockets_is_spread_over_passes_of_the_loop(
    readable_pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    loop = new_event_loop()
    passes = 0
    read_in: list[int] = []
    done = loop.create_future()

    def tick() -> None:  # one step of a call_soon chain per pass of the loop
        nonlocal passes
        passes += 1
        if not done.done():
            loop.call_soon(tick)

    def on_read(reader: socket.socket) -> None:
        reader.recv(1)
        loop.remove_reader(reader)
        read_in.append(passes)
        if len(read_in) == len(readable_pairs):
            done.set_result(None)

    for reader, _ in readable_pairs:
        loop.add_reader(reader, on_read, reader)
    loop.call_soon(tick)
    try:
        loop.run_until_complete(asyncio.wait_for(done, 10))
    finally:
        loop.close()
    per_pass = max(read_in.count(p) for p in set(read_in))
    assert per_pass <= READY_SLICE
    assert len(set(read_in)) >= len(readable_pairs) // READY_SLICE
