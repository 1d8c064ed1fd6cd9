"""The benchmark runner's parsing and results file; the percentile helper."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.bench_ledger_commit import without_before
from bench.common import percentile
from bench.run import command_for, parse_lines, render


def test_parse_lines_keeps_name_value_lines_only() -> None:
    text = "csms_msgs_per_s=4200\n# a comment\nnoise line\nbad name=1\nratio=2.5\n"
    assert parse_lines(text) == [("csms_msgs_per_s", "4200"), ("ratio", "2.5")]


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.5) == 0.0


def test_results_file_judges_targets_and_scale() -> None:
    results = {
        "bench_csms_throughput": (
            [
                ("csms_throughput_ratio", "5.5"),
                ("csms_p99_ms", "80"),
                ("csms_stations", "200"),
            ],
            12.0,
            None,
        ),
        "bench_e2e": ([("e2e_sessions", "3")], 5.0, "exit 1: boom"),
    }
    text = render(results, "python -m bench.run --quick", datetime(2026, 11, 25, tzinfo=UTC))
    lines = text.splitlines()
    ratio = next(line for line in lines if line.startswith("| CSMS throughput >= 5x"))
    assert ratio.endswith("| yes |")
    latency = next(
        line for line in lines if line.startswith("| CSMS p99 < 50 ms at 1,000 stations |")
    )
    assert "| no (below the target's scale: quick run) |" in latency
    ledger = next(line for line in lines if line.startswith("| Ledger"))
    assert "not measured in this run" in ledger
    assert "**failed**: exit 1: boom" in text
    assert "`python -m bench.run --quick`" in text
    assert "| e2e_sessions | 3 |" in text


def test_the_ledger_benchmark_runs_beside_the_reference_version() -> None:
    command = command_for("bench_ledger_commit", quick=True)
    assert command[-3:] == ["bench.bench_ledger_commit", "--reference", "--quick"]
    assert "--reference" not in command_for("bench_storm", quick=False)
    # the reference (and a --before commit) runs with the same settings, not asked again
    argv = ["--reference", "--quick", "--before", "abc123", "--settlements", "10"]
    assert without_before(argv) == ["--quick", "--settlements", "10"]
