"""``/metrics`` in the Prometheus text exposition format (0.0.4), written by hand.

Collected on each scrape: live stations and their per-connection message counters (the
Dispatcher's ``stats``: one count per handled action, ``error:<code>`` per CALLERROR sent),
tolerated deviations, rows removed past the per-station caps (``keep_<kind>``), settlements
by status, the ledger height, and a histogram of commit latency (a settlement's
``created_at`` to ``committed_at``). Settlements are read as tallies the store keeps
(``csms.store.tallies``): a scrape reads a few rows however many settlements there are.
Counters of a connection start again from zero when the station reconnects.

The ledger's links: the CSMS's connection to each validator (``v2g_ledger_link_*``, by
validator URL), and for the embedded validators their own links (``v2g_validator_*``, by
validator address: each peer link by peer URL, and the listening port by role). These
counters only grow while the process runs.

With CSMS processes sharing a PostgreSQL database (``csms.cluster``): connections closed
because another process took the station, and operator calls between processes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from csms.cluster import Cluster, render_cluster
from csms.looplag import LagHistogram, render_lag
from csms.model import SettlementRecord
from csms.store.tallies import COMMIT_BUCKETS_S, CommitLatency
from csms.throttle import AuthThrottle, render_throttle
from csms.timeutil import parse_timestamp
from ledger.consensus.linkstats import (
    LinkStats,
    ValidatorLinks,
    link_lines,
    prometheus_labels,
    render_validator_links,
)

LATENCY_BUCKETS = COMMIT_BUCKETS_S
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
    commit_latencies: Sequence[float] = field(default=())  # single ones, or:
    commit_latency: CommitLatency | None = None  # the histogram as tallied by the store
    loop_lag: LagHistogram | None = None
    throttles: Sequence[AuthThrottle] = field(default=())
    discovery: Mapping[str, int] = field(default_factory=dict)  # csms.evse_discovery outcomes
    ledger_links: Mapping[str, LinkStats] = field(default_factory=dict)  # validator URL ->
    validator_links: Sequence[ValidatorLinks] = field(default=())
    cluster: Cluster | None = None  # with processes sharing a PostgreSQL database
    pruned: Mapping[str, int] = field(default_factory=dict)  # kind -> rows past keep_<kind>
    # scrypt hashes run: "handshake" (a password not matched by its MAC, or an unknown id),
    # "imported" (an imported password hashed in the background, csms.pending_hash)
    password_hashes: Mapping[str, int] = field(default_factory=dict)
    imported_waiting: int = 0  # imported passwords waiting for their background hash


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
    family(
        "v2g_evse_discovery_total",
        "counter",
        "What the CSMS asked stations about their EVSEs after boot, and what came of it.",
    )
    for outcome, n in sorted(s.discovery.items()):
        lines.append(f'v2g_evse_discovery_total{{outcome="{_label(outcome)}"}} {n}')
    family(
        "v2g_store_pruned_total",
        "counter",
        "Rows a station's reports pushed past its keep_<kind> cap, oldest first, by kind.",
    )
    for kind, n in sorted(s.pruned.items()):
        lines.append(f'v2g_store_pruned_total{{kind="{_label(kind)}"}} {n}')
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
    latency = s.commit_latency or CommitLatency.of(list(s.commit_latencies))
    for bound, n in latency.buckets:
        lines.append(f'v2g_settlement_commit_seconds_bucket{{le="{bound:g}"}} {n}')
    lines.append(f'v2g_settlement_commit_seconds_bucket{{le="+Inf"}} {latency.count}')
    lines.append(f"v2g_settlement_commit_seconds_sum {latency.sum_s:.6f}")
    lines.append(f"v2g_settlement_commit_seconds_count {latency.count}")
    if s.loop_lag is not None:
        lines.extend(render_lag(s.loop_lag))
    lines.extend(render_throttle(s.throttles))
    family(
        "v2g_password_hashes_total",
        "counter",
        "Station password scrypt hashes run: at handshakes, or for imported passwords.",
    )
    for why, n in sorted(s.password_hashes.items()):
        lines.append(f'v2g_password_hashes_total{{why="{_label(why)}"}} {n}')
    family(
        "v2g_imported_passwords_waiting",
        "gauge",
        "Imported passwords verified by their MAC and waiting for their background hash.",
    )
    lines.append(f"v2g_imported_passwords_waiting {s.imported_waiting}")
    lines.extend(render_ledger_links(s.ledger_links))
    lines.extend(render_validator_links(s.validator_links))
    lines.extend(render_cluster(s.cluster))
    return "\n".join(lines) + "\n"


def render_ledger_links(links: Mapping[str, LinkStats]) -> list[str]:
    """The CSMS's connection to each validator."""
    lines: list[str] = []
    pairs = [(prometheus_labels(validator=url), stats) for url, stats in sorted(links.items())]
    link_lines(lines, "v2g_ledger_link", pairs, "CSMS's connection to a validator")
    return lines
