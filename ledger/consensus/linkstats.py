"""Counters of the websocket links around a validator, for monitoring.

``LinkStats`` is kept per link end: by a validator for each peer it dials (``peers.py``),
and by a client for each validator it talks to (``client.py``). ``ValidatorLinks`` is a
validator's snapshot: its outbound links by peer URL, and what its listening port saw
(frames in and out by role, handshakes failed, connections refused by cap, answers refused
as busy). Every count only grows while the process runs; ``up`` is a state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(slots=True)
class LinkStats:
    """One link end: its state and monotonic counters."""

    up: bool = False  # the connection is open, through its handshake
    connects: int = 0  # handshakes completed (the first connection and every reconnect)
    handshake_refused: int = 0  # openings that failed (refused by the other end, or by this)
    messages_in: int = 0  # frames read
    messages_out: int = 0  # frames sent
    busy: int = 0  # answers "busy": a submission or wait refused for being over a limit
    dropped: int = 0  # frames not sent because the link's outbox was full

    @property
    def reconnects(self) -> int:
        """Connections opened again after the first."""
        return max(0, self.connects - 1)


@dataclass(frozen=True, slots=True)
class ValidatorLinks:
    """A validator's link counters at one moment."""

    address: str
    peers: Mapping[str, LinkStats]  # peer URL -> its outbound link (a copy)
    connections: Mapping[str, int]  # role -> connections open on the listening port
    messages_in: Mapping[str, int]  # role -> frames read on the listening port
    messages_out: Mapping[str, int]  # role -> frames answered on the listening port
    handshake_failures: int  # inbound openings that failed
    refused_connections: Mapping[str, int] = field(default_factory=dict)  # cap -> refused
    busy: int = 0  # answers refused for being over a limit
    dropped_frames: int = 0  # frames a role may not send, dropped unread
    refused_submissions: int = 0  # submissions on read-only connections
