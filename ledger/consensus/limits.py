"""How many connections a validator's port holds at once, per source address and overall.

A connection is counted from the moment its TCP connection is accepted until it closes, and
is *opening* until its handshake (the websocket upgrade and ``handshake.py``) is done. One
address may hold at most ``per_address`` connections, of which at most
``opening_per_address`` still opening; all addresses together at most ``total``, of which
at most ``opening`` still opening. A connection over a cap is refused at once (its socket is
closed before anything is read) and counted by the cap it hit, so one stranger cannot take
the slots that validators, the CSMS or other clients need. Pure: the caller passes the
address.

The same caps hold the counts of links past their handshake (``clients``, ``submitters``)
and of the answers clients may wait for (``waits_per_client``, ``client_waits``), which
``peers.py`` enforces. Each is set in a validator's ``config.yaml`` under ``links``
(``ledger/home.py``); these are the defaults.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConnectionCaps:
    per_address: int = 64  # connections from one source address, in any phase
    opening_per_address: int = 8  # of which still in their handshake
    total: int = 2048  # connections from all addresses
    opening: int = 1024  # of which still in their handshake
    submitters: int = 64  # submitter links past their handshake
    clients: int = 256  # client (read-only) links past their handshake
    waits_per_client: int = 16  # answers in flight on one client connection
    client_waits: int = 1024  # answers in flight on all client connections together

    def __post_init__(self) -> None:
        for name in CAP_NAMES:
            if getattr(self, name) < 1:
                raise ValueError(f"connection cap {name} must be at least 1")


CAP_NAMES = (
    "per_address",
    "opening_per_address",
    "total",
    "opening",
    "submitters",
    "clients",
    "waits_per_client",
    "client_waits",
)


# why a connection was refused: the cap it hit
ADDRESS = "address"
ADDRESS_OPENING = "address_opening"
TOTAL = "total"
OPENING = "opening"
REASONS = (ADDRESS, ADDRESS_OPENING, TOTAL, OPENING)


class Slot:
    """One admitted connection's place: ``established()`` once its handshake is done,
    ``release()`` when it closes (each takes effect once)."""

    __slots__ = ("_limits", "_open", "_opening", "address")

    def __init__(self, limits: ConnectionLimits, address: str) -> None:
        self._limits = limits
        self.address = address
        self._opening = True
        self._open = True

    def established(self) -> None:
        if self._open and self._opening:
            self._opening = False
            self._limits._end_opening(self.address)

    def release(self) -> None:
        if not self._open:
            return
        self.established()
        self._open = False
        self._limits._close(self.address)


class ConnectionLimits:
    """Counts of connections per address and overall, and of those refused by each cap."""

    def __init__(self, caps: ConnectionCaps | None = None) -> None:
        self.caps = caps or ConnectionCaps()
        self._connections: Counter[str] = Counter()
        self._opening: Counter[str] = Counter()
        self.connections = 0  # open now, all addresses
        self.opening = 0  # of which still in their handshake
        self.refused: Counter[str] = Counter({reason: 0 for reason in REASONS})

    def admit(self, address: str) -> Slot | None:
        """A slot for a new connection from ``address``; None (and counted) over a cap."""
        caps = self.caps
        reason = None
        if self.connections >= caps.total:
            reason = TOTAL
        elif self.opening >= caps.opening:
            reason = OPENING
        elif self._connections[address] >= caps.per_address:
            reason = ADDRESS
        elif self._opening[address] >= caps.opening_per_address:
            reason = ADDRESS_OPENING
        if reason is not None:
            self.refused[reason] += 1
            return None
        self._connections[address] += 1
        self._opening[address] += 1
        self.connections += 1
        self.opening += 1
        return Slot(self, address)

    def from_address(self, address: str) -> int:
        """Connections open now from ``address``."""
        return self._connections[address]

    def _end_opening(self, address: str) -> None:
        self.opening -= 1
        self._opening[address] -= 1
        if self._opening[address] <= 0:
            del self._opening[address]

    def _close(self, address: str) -> None:
        self.connections -= 1
        self._connections[address] -= 1
        if self._connections[address] <= 0:
            del self._connections[address]
