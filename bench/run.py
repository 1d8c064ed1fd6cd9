"""Run every benchmark in ``bench/`` and write ``bench/RESULTS.md``.

Each ``bench/bench_*.py`` module runs as ``python -m bench.<name> [--quick]`` in its own
process; its ``name=value`` lines are collected (and echoed). The results file lists the
figures per benchmark, the targets of issue 7 (met or not, as measured in this run), the
machine (cores, CPU model, Python), the date and the command. Ratios are measured side by
side within one benchmark run; absolute numbers are reported, never asserted.

Run: ``python -m bench.run [--quick] [--only NAME ...] [--output FILE]`` (``make bench``,
``make bench-quick``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.common import REPO, machine

BENCH_DIR = Path(__file__).resolve().parent
TIMEOUT_S = {"quick": 240.0, "full": 1800.0}


@dataclass(frozen=True, slots=True)
class Target:
    """One goal of issue 7 over the figures of a run (``at_scale``: the run was as big)."""

    text: str
    needs: tuple[str, ...]
    met: Callable[[dict[str, float]], bool]
    at_scale: Callable[[dict[str, float]], bool] = lambda f: True


TARGETS = (
    Target(
        "CSMS throughput >= 5x the reference, validation on",
        ("csms_throughput_ratio",),
        lambda f: f["csms_throughput_ratio"] >= 5,
    ),
    Target(
        "CSMS p99 < 50 ms at 1,000 stations",
        ("csms_p99_ms", "csms_stations"),
        lambda f: f["csms_p99_ms"] < 50,
        lambda f: f["csms_stations"] >= 1000,
    ),
    Target(
        "CSMS p99 < 50 ms at 1,000 stations, paced load (1 Updated/s each)",
        ("csms_paced_p99_ms", "csms_stations"),
        lambda f: f["csms_paced_p99_ms"] < 50,
        lambda f: f["csms_stations"] >= 1000,
    ),
    Target(
        "10,000 stations: heartbeat p99 < 100 ms",
        ("conn_heartbeat_p99_ms", "conn_live"),
        lambda f: f["conn_heartbeat_p99_ms"] < 100,
        lambda f: f["conn_live"] >= 10_000,
    ),
    Target(
        "10,000 stations in < 1 GiB resident",
        ("conn_rss_mib", "conn_live"),
        lambda f: f["conn_rss_mib"] < 1024,
        lambda f: f["conn_live"] >= 10_000,
    ),
    Target(
        "Ledger >= half the signature ceiling (reference: reference_ledger_ceiling_fraction)",
        ("ledger_ceiling_fraction",),
        lambda f: f["ledger_ceiling_fraction"] >= 0.5,
    ),
    Target(
        "Session -> receipt p99 < 2 s at 20 sessions/s",
        ("e2e_receipt_p99_ms", "e2e_offered_rate"),
        lambda f: f["e2e_receipt_p99_ms"] < 2000,
        lambda f: f["e2e_offered_rate"] >= 19.5,
    ),
    Target(
        "Session -> receipt p99 < 500 ms at 20 sessions/s (receipt from the block's own"
        " certificate; reference: e2e_reference_receipt_p99_ms)",
        ("e2e_receipt_p99_ms", "e2e_offered_rate"),
        lambda f: f["e2e_receipt_p99_ms"] < 500,
        lambda f: f["e2e_offered_rate"] >= 19.5,
    ),
    Target(
        "Idle CSMS with embedded validators: no block in 30 s, under 2% of a core",
        ("ledger_idle_blocks", "ledger_idle_cpu_pct", "ledger_idle_seconds"),
        lambda f: f["ledger_idle_blocks"] == 0 and f["ledger_idle_cpu_pct"] < 2,
        lambda f: f["ledger_idle_seconds"] >= 30,
    ),
    Target(
        "Storm: 10,000 stations imported at production cost, 500/s, all connect",
        ("storm_live", "storm_stations", "storm_rate"),
        lambda f: f["storm_live"] == f["storm_stations"],
        lambda f: f["storm_stations"] >= 10_000 and f["storm_rate"] >= 500,
    ),
    Target(
        "Storm: connect p99 < 2 s (reference: storm_reference_connect_p99_ms)",
        ("storm_connect_p99_ms", "storm_stations", "storm_rate"),
        lambda f: f["storm_connect_p99_ms"] < 2000,
        lambda f: f["storm_stations"] >= 10_000 and f["storm_rate"] >= 500,
    ),
    Target(
        "Storm: heartbeat p99 < 100 ms",
        ("storm_heartbeat_p99_ms", "storm_stations", "storm_rate"),
        lambda f: f["storm_heartbeat_p99_ms"] < 100,
        lambda f: f["storm_stations"] >= 10_000 and f["storm_rate"] >= 500,
    ),
    Target(
        "Storm: no event-loop stall over 100 ms",
        ("storm_stalls_over_100ms", "storm_stations", "storm_rate"),
        lambda f: f["storm_stalls_over_100ms"] == 0,
        lambda f: f["storm_stations"] >= 10_000 and f["storm_rate"] >= 500,
    ),
    Target(
        "Updated round trip at the 10,000th sample of a transaction within 2x of the 1st",
        ("running_cost_late_over_early", "running_cost_samples"),
        lambda f: f["running_cost_late_over_early"] < 2,
        lambda f: f["running_cost_samples"] >= 10_000,
    ),
    Target(
        "MeterValues round trip at a station's keep_meter_values cap (10,000) within 2x of"
        " below it",
        ("retention_at_cap_over_below", "retention_keep"),
        lambda f: f["retention_at_cap_over_below"] < 2,
        lambda f: f["retention_keep"] >= 10_000,
    ),
    Target(
        "Review API on 100,000 sessions / 10,000 stations within 2x of 1,000 sessions:"
        " first page of /api/sessions, a /metrics scrape, /api/stations",
        ("web_sessions_ratio", "web_metrics_ratio", "web_stations_ratio", "web_large_sessions"),
        lambda f: max(f["web_sessions_ratio"], f["web_metrics_ratio"], f["web_stations_ratio"]) < 2,
        lambda f: f["web_large_sessions"] >= 100_000,
    ),
)


def discover(only: list[str] | None) -> list[str]:
    names = sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))
    if only:
        names = [n for n in names if n in only or n.removeprefix("bench_") in only]
    return names


def parse_lines(text: str) -> list[tuple[str, str]]:
    """The ``name=value`` lines of a benchmark's output, in order."""
    figures = []
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name and " " not in name and name.replace("_", "").isalnum():
            figures.append((name, value))
    return figures


# what a benchmark is also given: its figures beside the reference version's, in one run
EXTRA_ARGS = {"bench_ledger_commit": ["--reference"]}


def command_for(name: str, quick: bool) -> list[str]:
    command = [sys.executable, "-m", f"bench.{name}", *EXTRA_ARGS.get(name, [])]
    return command + (["--quick"] if quick else [])


def run_one(name: str, quick: bool) -> tuple[list[tuple[str, str]], float, str | None]:
    """Run one benchmark module; (figures, seconds, error or None)."""
    command = command_for(name, quick)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    began = time.monotonic()
    try:
        done = subprocess.run(
            command,
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S["quick" if quick else "full"],
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return parse_lines(output), time.monotonic() - began, "timed out"
    error = None
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        error = f"exit {done.returncode}: " + " | ".join(tail)
    return parse_lines(done.stdout), time.monotonic() - began, error


def as_number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def render(
    results: dict[str, tuple[list[tuple[str, str]], float, str | None]],
    command: str,
    began: datetime,
) -> str:
    info = machine()
    figures: dict[str, float] = {}
    for lines, _, _ in results.values():
        for name, value in lines:
            number = as_number(value)
            if number is not None:
                figures[name] = number
    out = [
        "# Benchmark results",
        "",
        f"- date: {began.strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `{command}`",
        f"- machine: {info['nproc']} cores, {info['cpu']}, Python {info['python']},"
        f" {info['platform']}",
        "- ratios are measured side by side in this run; absolute numbers vary with the"
        " machine and its load and are reported, not asserted",
        "- method, benchmark settings and what holds each target back: `bench/README.md`",
        "",
        "## Targets (issue 7)",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for target in TARGETS:
        if all(n in figures for n in target.needs):
            shown = ", ".join(f"{n}={figures[n]:g}" for n in target.needs)
            verdict = "yes" if target.met(figures) else "no"
            if not target.at_scale(figures):
                verdict += " (below the target's scale: quick run)"
        else:
            shown, verdict = "not measured in this run", "-"
        out.append(f"| {target.text} | {shown} | {verdict} |")
    for name, (lines, seconds, error) in results.items():
        out += ["", f"## {name} ({seconds:.0f} s)", ""]
        if error:
            out += [f"**failed**: {error}", ""]
        out += ["| figure | value |", "|---|---|"]
        out += [f"| {n} | {v} |" for n, v in lines]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every benchmark's quick mode")
    parser.add_argument("--only", nargs="*", help="benchmark names (bench_x or x)")
    parser.add_argument("--output", default=str(BENCH_DIR / "RESULTS.md"))
    args = parser.parse_args()
    began = datetime.now(UTC)
    command = "python -m bench.run" + (" --quick" if args.quick else "")
    if args.only:
        command += " --only " + " ".join(args.only)
    results = {}
    failed = False
    for name in discover(args.only):
        print(f"# {name}", flush=True)
        lines, seconds, error = run_one(name, args.quick)
        for figure, value in lines:
            print(f"{figure}={value}", flush=True)
        if error:
            failed = True
            print(f"# {name} failed: {error}", flush=True)
        print(f"# {name}: {seconds:.0f} s", flush=True)
        results[name] = (lines, seconds, error)
    Path(args.output).write_text(render(results, command, began), encoding="utf-8")
    print(f"# wrote {args.output}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
