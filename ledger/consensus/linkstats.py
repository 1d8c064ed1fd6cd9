"""Counters of the websocket links around a validator, for monitoring.

``LinkStats`` is kept per link end: by a validator for each peer it dials (``peers.py``),
and by a client for each validator it talks to (``client.py``). ``ValidatorLinks`` is a
validator's snapshot: its outbound links by peer URL, and what its listening port saw
(frames in and out by role, handshakes failed, connections refused by cap, answers refused
as busy). Every count only grows while the process runs; ``up`` is a state.

The series are written here in the Prometheus text format, for the CSMS's ``/metrics`` and
a validator's own metrics port alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ledger.consensus.limits import REASONS


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


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")


def prometheus_labels(**labels: str) -> str:
    """``k="v",...`` with each value escaped as the Prometheus text format asks."""
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())


def link_lines(
    lines: list[str], prefix: str, links: Sequence[tuple[str, LinkStats]], what: str
) -> None:
    """The series of link ends: ``links`` pairs a label set (rendered) with its counters."""
    series: list[tuple[str, str, str, str]] = [
        ("up", "gauge", f"1 while the {what} is open (through its handshake).", "up"),
        ("connects_total", "counter", f"Handshakes completed on the {what}.", "connects"),
        ("reconnects_total", "counter", f"Times the {what} was opened again.", "reconnects"),
        (
            "handshakes_refused_total",
            "counter",
            f"Openings of the {what} that failed its handshake.",
            "handshake_refused",
        ),
        ("busy_total", "counter", f"'Busy' answers on the {what}.", "busy"),
        ("dropped_total", "counter", f"Frames not sent: the {what}'s outbox was full.", "dropped"),
    ]
    for suffix, kind, help_text, attr in series:
        _family(lines, f"{prefix}_{suffix}", kind, help_text)
        for labels, stats in links:
            lines.append(f"{prefix}_{suffix}{{{labels}}} {int(getattr(stats, attr))}")
    _family(lines, f"{prefix}_messages_total", "counter", f"Frames on the {what}, by direction.")
    for labels, stats in links:
        lines.append(f'{prefix}_messages_total{{{labels},direction="in"}} {stats.messages_in}')
        lines.append(f'{prefix}_messages_total{{{labels},direction="out"}} {stats.messages_out}')


def render_validator_links(reports: Sequence[ValidatorLinks]) -> list[str]:
    """The embedded validators' links: to each peer, and on their listening port."""
    if not reports:
        return []
    lines: list[str] = []
    pairs = [
        (prometheus_labels(validator=r.address, peer=url), stats)
        for r in reports
        for url, stats in sorted(r.peers.items())
    ]
    link_lines(lines, "v2g_validator_peer", pairs, "validator's link to a peer")
    name = "v2g_validator_connections"
    _family(lines, name, "gauge", "Connections open on a validator's port, by role.")
    for r in reports:
        for role, n in sorted(r.connections.items()):
            lines.append(f"{name}{{{prometheus_labels(validator=r.address, role=role)}}} {n}")
    name = "v2g_validator_inbound_messages_total"
    _family(lines, name, "counter", "Frames on a validator's port, by role and direction.")
    for r in reports:
        for role in sorted(r.messages_in):
            labels = prometheus_labels(validator=r.address, role=role)
            lines.append(f'{name}{{{labels},direction="in"}} {r.messages_in[role]}')
            lines.append(f'{name}{{{labels},direction="out"}} {r.messages_out.get(role, 0)}')
    name = "v2g_validator_connections_refused_total"
    _family(lines, name, "counter", "Connections closed unread: a connection cap was reached.")
    for r in reports:
        for cap in REASONS:
            labels = prometheus_labels(validator=r.address, cap=cap)
            lines.append(f"{name}{{{labels}}} {r.refused_connections.get(cap, 0)}")
    singles = [
        (
            "handshakes_failed_total",
            "Inbound openings that failed the handshake.",
            "handshake_failures",
        ),
        ("busy_total", "Answers refused for being over a limit ('busy').", "busy"),
        (
            "dropped_frames_total",
            "Frames a connection's role may not send, dropped.",
            "dropped_frames",
        ),
        (
            "refused_submissions_total",
            "Submissions on read-only connections, refused.",
            "refused_submissions",
        ),
    ]
    for suffix, help_text, attr in singles:
        name = f"v2g_validator_{suffix}"
        _family(lines, name, "counter", help_text)
        for r in reports:
            lines.append(f"{name}{{{prometheus_labels(validator=r.address)}}} {getattr(r, attr)}")
    return lines
