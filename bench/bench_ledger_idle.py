"""Benchmark: an idle CSMS with its embedded validators, this version against the reference.

Starts ``bench.serve ours --ledger embedded`` (4 in-process validators, no station traffic),
lets it settle, then for ``--seconds`` counts the blocks validator v0 stores and the CPU time
the whole process uses (``/proc/PID/stat``). The same is measured for the reference version
(``bench.reference``: blocks every interval) in the same run.

Prints ledger_idle_blocks, ledger_idle_cpu_pct (of one core) and ledger_idle_store_bytes
(v0's block store growth), each also as ``*_reference``.
Run: ``python -m bench.bench_ledger_idle [--quick] [--seconds N]``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.common import REPO, emit, read_json_line, spawn_module, stop_process
from bench.reference import reference_tree

SETTLE_S = 3.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def store_height(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        (height,) = db.execute("SELECT coalesce(max(height), 0) FROM blocks").fetchone()
    return int(height)


def store_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def measure(root: Path, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        data_dir = Path(tmp) / "data"
        server = spawn_module(
            "bench.serve", "ours", "--data-dir", str(data_dir), "--stations", "1",
            "--ledger", "embedded", root=root,
        )  # fmt: skip
        try:
            started = read_json_line(server, 120)
            pid = int(started["pid"])  # type: ignore[call-overload]
            time.sleep(SETTLE_S)
            store = next((data_dir / "ledger" / "validators" / "v0").glob("*.sqlite"))
            h0, b0, c0, t0 = store_height(store), store_bytes(store), cpu_seconds(pid), time.time()
            time.sleep(seconds)
            h1, b1, c1, t1 = store_height(store), store_bytes(store), cpu_seconds(pid), time.time()
        finally:
            stop_process(server)
    return {"blocks": h1 - h0, "cpu_pct": 100 * (c1 - c0) / (t1 - t0), "bytes": b1 - b0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, help="idle seconds measured (default 30)")
    args = parser.parse_args()
    seconds = args.seconds or (10.0 if args.quick else 30.0)
    emit("ledger_idle_seconds", seconds)
    ours = measure(REPO, seconds)
    with reference_tree() as tree:
        reference = measure(tree, seconds)
    for name, figures in (("ledger_idle", ours), ("ledger_idle_reference", reference)):
        emit(f"{name}_blocks", int(figures["blocks"]))
        emit(f"{name}_cpu_pct", round(figures["cpu_pct"], 2))
        emit(f"{name}_store_bytes", int(figures["bytes"]))


if __name__ == "__main__":
    main()
