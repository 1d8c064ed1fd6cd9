"""``/metrics`` in the Prometheus text exposition format (0.0.4), written by hand.

Collected on each scrape: live stations and their per-connection message counters (the
Dispatcher's ``stats``: one count per handled action, ``error:<code>`` per CALLERROR sent),
tolerated deviations, settlements by status, the ledger height, and a histogram of commit
latency (a settlement's ``created_at`` to ``committed_at``). Counters of a connection start
again from zero when the station reconnects.

The ledger's links: the CSMS's connection to each validator (``v2g_ledger_link_*``, by
validator URL), and for the embedded validators their own links (``v2g_validator_*``, by
validator address: each peer link by peer URL, and the listening port by role). These
counters only grow while the process runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from csms.looplag import LagHistogram, render_lag
from csms.model import SettlementRecord
from csms.throttle import AuthThrottle, render_throttle
from csms.timeutil import parse_timestamp
from ledger.consensus.limits import REASONS
from ledger.consensus.linkstats import LinkStats, ValidatorLinks

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
STATUSES = ("pending", "committed", "flagged", "rejected")


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    connected_stations: int
    messages: Mapping[tuple[str, str], int]  # (version, action) -> handled calls
    call_errors: Mapping[tuple[str, str], int]  # (version, error code) -> CALLERRORs sent
    tolerated: Mapping[str, int]  # deviation kind -> count
    rate_limited: int
    settlements: Mapping[str, int]
    ledger_height: int | None
    commit_latencies: Sequence[float] = field(default=())
    loop_lag: LagHistogram | None = None
    throttles: Sequence[AuthThrottle] = field(default=())
    ledger_links: Mapping[str, LinkStats] = field(default_factory=dict)  # validator URL ->
    validator_links: Sequence[ValidatorLinks] = field(default=())


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def commit_latencies(records: Iterable[SettlementRecord]) -> list[float]:
    """Seconds from writing each committed settlement to its commit."""
    out = []
    for record in records:
        if record.status == "committed" and record.committed_at:
            try:
                delta = parse_timestamp(record.committed_at) - parse_timestamp(record.created_at)
            except ValueError:
                continue
            out.append(max(0.0, delta.total_seconds()))
    return out


def count_messages(
    stats: Iterable[tuple[str, Mapping[str, int]]],
) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """Split the process-wide Dispatcher stats (per OCPP version) into messages and errors."""
    messages: Counter[tuple[str, str]] = Counter()
    errors: Counter[tuple[str, str]] = Counter()
    for version, counters in stats:
        for key, n in counters.items():
            if key.startswith("error:"):
                errors[(version, key.removeprefix("error:"))] += n
            else:
                messages[(version, key)] += n
    return messages, errors


def render_metrics(s: MetricsSnapshot) -> str:
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    family("v2g_connected_stations", "gauge", "Stations with an open OCPP connection.")
    lines.append(f"v2g_connected_stations {s.connected_stations}")
    family("v2g_ocpp_messages_total", "counter", "Station calls handled, by action.")
    for (version, action), n in sorted(s.messages.items()):
        lines.append(
            f'v2g_ocpp_messages_total{{version="{_label(version)}",action="{_label(action)}"}} {n}'
        )
    family("v2g_ocpp_callerrors_total", "counter", "CALLERRORs sent to stations, by code.")
    for (version, code), n in sorted(s.call_errors.items()):
        lines.append(
            f'v2g_ocpp_callerrors_total{{version="{_label(version)}",code="{_label(code)}"}} {n}'
        )
    family("v2g_ocpp_tolerated_total", "counter", "Deviations repaired for tolerant stations.")
    for kind, n in sorted(s.tolerated.items()):
        lines.append(f'v2g_ocpp_tolerated_total{{kind="{_label(kind)}"}} {n}')
    family("v2g_ocpp_rate_limited_total", "counter", "Frames refused by the rate limit.")
    lines.append(f"v2g_ocpp_rate_limited_total {s.rate_limited}")
    family("v2g_settlements", "gauge", "Settlements and credits in the CSMS, by status.")
    for status in STATUSES:
        lines.append(f'v2g_settlements{{status="{status}"}} {s.settlements.get(status, 0)}')
    family("v2g_ledger_height", "gauge", "Height of the ledger's last committed block.")
    lines.append(f"v2g_ledger_height {s.ledger_height if s.ledger_height is not None else 'NaN'}")
    family(
        "v2g_settlement_commit_seconds",
        "histogram",
        "Time from writing a settlement to its commit on the ledger.",
    )
    for bound in LATENCY_BUCKETS:
        n = sum(1 for x in s.commit_latencies if x <= bound)
        lines.append(f'v2g_settlement_commit_seconds_bucket{{le="{bound:g}"}} {n}')
    lines.append(f'v2g_settlement_commit_seconds_bucket{{le="+Inf"}} {len(s.commit_latencies)}')
    lines.append(f"v2g_settlement_commit_seconds_sum {sum(s.commit_latencies):.6f}")
    lines.append(f"v2g_settlement_commit_seconds_count {len(s.commit_latencies)}")
    if s.loop_lag is not None:
        lines.extend(render_lag(s.loop_lag))
    lines.extend(render_throttle(s.throttles))
    lines.extend(render_ledger_links(s.ledger_links))
    lines.extend(render_validator_links(s.validator_links))
    return "\n".join(lines) + "\n"


def _family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")


def _labels(**labels: str) -> str:
    return ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())


def _link_lines(
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


def render_ledger_links(links: Mapping[str, LinkStats]) -> list[str]:
    """The CSMS's connection to each validator."""
    lines: list[str] = []
    pairs = [(_labels(validator=url), stats) for url, stats in sorted(links.items())]
    _link_lines(lines, "v2g_ledger_link", pairs, "CSMS's connection to a validator")
    return lines


def render_validator_links(reports: Sequence[ValidatorLinks]) -> list[str]:
    """The embedded validators' links: to each peer, and on their listening port."""
    if not reports:
        return []
    lines: list[str] = []
    pairs = [
        (_labels(validator=r.address, peer=url), stats)
        for r in reports
        for url, stats in sorted(r.peers.items())
    ]
    _link_lines(lines, "v2g_validator_peer", pairs, "validator's link to a peer")
    name = "v2g_validator_connections"
    _family(lines, name, "gauge", "Connections open on a validator's port, by role.")
    for r in reports:
        for role, n in sorted(r.connections.items()):
            lines.append(f"{name}{{{_labels(validator=r.address, role=role)}}} {n}")
    name = "v2g_validator_inbound_messages_total"
    _family(lines, name, "counter", "Frames on a validator's port, by role and direction.")
    for r in reports:
        for role in sorted(r.messages_in):
            labels = _labels(validator=r.address, role=role)
            lines.append(f'{name}{{{labels},direction="in"}} {r.messages_in[role]}')
            lines.append(f'{name}{{{labels},direction="out"}} {r.messages_out.get(role, 0)}')
    name = "v2g_validator_connections_refused_total"
    _family(lines, name, "counter", "Connections closed unread: a connection cap was reached.")
    for r in reports:
        for cap in REASONS:
            labels = _labels(validator=r.address, cap=cap)
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
            lines.append(f"{name}{{{_labels(validator=r.address)}}} {getattr(r, attr)}")
    return lines
