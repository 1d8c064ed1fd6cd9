"""A station's websocket connection that leaves no reference cycles once it is closed.

A closed connection used to be freed only by the cyclic collector: two cycles held it
(about 80 objects a connection: the connection, its protocol, the handshake's request and
response headers, its transport, socket and buffers).

- ``websockets`` shadows the protocol's ``select_subprotocol`` with a bound closure over
  the connection: connection -> protocol -> closure -> connection.
- asyncio's socket transport keeps its own bound read callback: transport -> method ->
  transport (Python 3.11).

While thousands of stations are connected the server freezes what survives each tick
(``csms.gc_pacing``), so those cycles could only be collected by a FULL collection, which
walks the whole heap (0.4-0.6 s at 5,000 stations). Both are broken when the connection is
lost, after which neither is used: the handshake is long over, and the transport has
stopped reading. The connection is then freed by its reference count when the server lets
go of it.
"""

from __future__ import annotations

from typing import Any

from websockets.asyncio.server import ServerConnection


class StationWebsocket(ServerConnection):
    """``ServerConnection`` that breaks its reference cycles in ``connection_lost``."""

    def connection_lost(self, exc: Exception | None) -> None:
        transport: Any = self.transport
        super().connection_lost(exc)
        vars(self.protocol).pop("select_subprotocol", None)  # back to the class's method
        # asyncio calls this once the transport has stopped reading and closed its socket
        if getattr(transport, "_read_ready_cb", None) is not None:
            transport._read_ready_cb = None
