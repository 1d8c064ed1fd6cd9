"""Benchmark: committed settlements per second with validator processes vs the signature ceiling.

Starts ``--validators`` (4) processes with ``v2g validator --home`` on homes made by
``init_data_dir`` in a temp dir (ephemeral loopback ports), then a load generator in this
process submits N pre-signed settlements over one pipelined session per validator, keeping
at most ``--window`` in flight (shared out between the sessions), and waits for every commit
receipt.

The ceiling is what signature checks alone allow: every validator verifies each settlement's
Ed25519 signature once, and the validators share this machine's cores, so

    ledger_ceiling = cores * ed25519_verify_per_s / validators

with ``ed25519_verify_per_s`` the single-core rate of bare verifications of messages of a
settlement's size, measured in the same run (before the validators start and after they
stop; the higher of the two).
``ledger_ceiling_fraction = ledger_commit_tps / ledger_ceiling``. Latency is from a
settlement's submission to its receipt (the block's commit).

The rate is timed in CPU seconds, so a busy machine does not lower the ceiling; the commit
rate is on the wall clock, so what else the machine runs lowers the fraction. Hence also
``ledger_ceiling_fraction_cpu``: the CPU the signature checks need per settlement
(``validators / ed25519_verify_per_s``) over the CPU the benchmark's processes spent per
settlement (validators and load generator): the fraction the same code reaches on a machine
that runs nothing else, when the validators are bound by their CPU (Linux only).

``--before COMMIT`` first runs the same benchmark from that commit's tree (``git archive``,
its own validators and load generator) and prints its figures as ``before_*``, so that a
change is measured against the code before it in one run; ``--reference`` does the same for
the version the ledger work started from (``bench.reference``), as ``reference_*`` (what
``make bench`` runs).

Run: ``python -m bench.bench_ledger_commit [--quick] [--before COMMIT]``; prints
``name=value`` lines. Every process it started is stopped on the way out, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.reference import REFERENCE_COMMIT, reference_tree
from ledger.consensus.client import ValidatorSession
from ledger.consensus.peers import MAX_WAITS_PER_LINK
from ledger.devchain import demo_settlements, read_csms_key
from ledger.home import init_data_dir, validator_homes
from ledger.keys import SigningKey, generate_key, public_bytes, sign, verify
from ledger.types import Tx

CHAIN_ID = "bench-commit"
REPO = Path(__file__).resolve().parents[1]


def ed25519_rate(message_size: int, count: int) -> float:
    """Ed25519 verifications per CPU second of ``message_size``-byte messages (one core)."""
    key = generate_key()
    pub = public_bytes(key)
    messages = [i.to_bytes(8, "big") + bytes(max(0, message_size - 8)) for i in range(count)]
    signed = [(m, sign(key, m)) for m in messages]
    began = time.process_time()  # CPU time: a busy machine may delay the loop, not slow it
    ok = all(verify(pub, m, s) for m, s in signed)
    elapsed = time.process_time() - began
    assert ok
    return count / elapsed


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def use_ports(data_dir: Path, ports: list[int]) -> list[str]:
    """Point every home at the given loopback ports (its own and its peers'); return URLs."""
    homes = validator_homes(data_dir)
    urls = {f"v{i}": f"ws://127.0.0.1:{p}" for i, p in enumerate(ports)}
    for i, home in enumerate(homes):
        path = home / "config.yaml"
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        config["listen"]["port"] = ports[i]
        for peer in config["peers"]:
            peer["url"] = urls[peer["name"]]
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return [urls[f"v{i}"] for i in range(len(homes))]


def spawn(home: Path, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    command = [sys.executable]
    if args.profile is not None:
        command += ["-m", "cProfile", "-o", str(args.profile / f"{home.name}.prof")]
    command += ["-m", "v2g"]
    command += ["validator", "--home", str(home)]
    command += ["--block-interval-ms", str(args.block_interval_ms)]
    command += ["--max-block-txs", str(args.max_block_txs)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with (home / "process.log").open("ab") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=REPO)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def wait_listening(urls: list[str], procs: list[subprocess.Popen[bytes]]) -> None:
    async def one(url: str) -> None:
        host, port = url.removeprefix("ws://").split(":")
        while True:
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a validator process exited at start")
            try:
                _, writer = await asyncio.open_connection(host, int(port))
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return

    await asyncio.wait_for(asyncio.gather(*(one(u) for u in urls)), 30)


async def load(
    urls: list[str], key: SigningKey, warmup: Tx, txs: list[Tx], window: int
) -> tuple[float, list[float]]:
    """Submit ``txs`` (signed by ``key``) spread over the validators; return (seconds,
    per-tx latencies)."""
    sessions = [ValidatorSession(url, key=key) for url in urls]
    for session in sessions:
        await session.__aenter__()
    try:
        await asyncio.wait_for(sessions[0].submit(warmup), 60)  # links up, first block made
        # The window is shared out between the sessions: a validator answers at most
        # MAX_WAITS_PER_LINK submissions waiting on one connection (more are told "busy").
        per_session = max(1, min(window // len(sessions), MAX_WAITS_PER_LINK))
        gates = [asyncio.Semaphore(per_session) for _ in sessions]
        latencies: list[float] = []

        async def one(i: int, tx: Tx) -> None:
            async with gates[i % len(sessions)]:
                began = time.perf_counter()
                await sessions[i % len(sessions)].submit(tx)
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(one(i, tx) for i, tx in enumerate(txs))), 600)
        return time.perf_counter() - began, latencies
    finally:
        for session in sessions:
            await session.close()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a running process (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def without_before(argv: list[str]) -> list[str]:
    """The arguments less ``--before COMMIT`` (or ``--before=COMMIT``)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--before":
            skip = True
        elif not arg.startswith("--before=") and arg != "--reference":
            out.append(arg)
    return out


def run_before(commit: str, argv: list[str], prefix: str = "before") -> None:
    """This benchmark as the tree of ``commit`` has it; its figures printed as
    ``<prefix>_*``."""
    with reference_tree(commit) as tree:
        command = [sys.executable, "-m", "bench.bench_ledger_commit", *argv]
        env = {**os.environ, "PYTHONPATH": str(tree)}
        done = subprocess.run(
            command, cwd=tree, env=env, capture_output=True, text=True, timeout=1800
        )
    if done.returncode != 0:
        raise RuntimeError(f"the benchmark of {commit} failed:\n{done.stderr[-2000:]}")
    print(f"{prefix}_commit={commit}")
    for line in done.stdout.splitlines():
        if "=" in line:
            print(f"{prefix}_{line}")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer settlements (under 60 s)")
    parser.add_argument("--settlements", type=int, default=None)
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--block-interval-ms", type=int, default=100)
    parser.add_argument("--max-block-txs", type=int, default=1000)
    parser.add_argument("--window", type=int, default=None, help="most settlements in flight")
    parser.add_argument(
        "--profile", type=Path, default=None, help="write each validator's cProfile stats here"
    )
    parser.add_argument("--before", help="first run this commit's tree too (before_*)")
    parser.add_argument(
        "--reference",
        action="store_true",
        help=f"first run the reference version too ({REFERENCE_COMMIT}: reference_*)",
    )
    args = parser.parse_args(argv)
    rest = without_before(sys.argv[1:] if argv is None else argv)
    if args.reference:
        run_before(REFERENCE_COMMIT, rest, prefix="reference")
    if args.before:
        run_before(args.before, rest)
    count = args.settlements or (3000 if args.quick else 20_000)
    window = args.window or 3 * args.max_block_txs
    cores = os.cpu_count() or 1

    with tempfile.TemporaryDirectory(prefix="bench-commit-") as tmp:
        data = Path(tmp)
        init_data_dir(
            data,
            validators=args.validators,
            chain_id=CHAIN_ID,
            genesis_time=int(time.time() * 1000) - 1000,
        )
        urls = use_ports(data, free_ports(args.validators))
        key = read_csms_key(data)
        began = time.perf_counter()
        warmup, *txs = demo_settlements(key, CHAIN_ID, 0, count + 1)
        sign_seconds = time.perf_counter() - began
        tx_size = sum(len(t.data) for t in txs) // len(txs)
        samples = 5000 if args.quick else 20_000
        rate_before = ed25519_rate(tx_size, samples)

        procs: list[subprocess.Popen[bytes]] = []
        try:
            for home in validator_homes(data):
                procs.append(spawn(home, args))
            asyncio.run(wait_listening(urls, procs))
            cpu_before = [cpu_seconds(p.pid) for p in procs]
            own_before = time.process_time()
            seconds, latencies = asyncio.run(load(urls, key, warmup, txs, window))
            own_cpu = time.process_time() - own_before
            cpu_after = [cpu_seconds(p.pid) for p in procs]
        except BaseException:
            for home in validator_homes(data):
                tail = (home / "process.log").read_text(errors="replace")[-2000:]
                print(f"--- {home.name} log tail ---\n{tail}", file=sys.stderr)
            raise
        finally:
            stop(procs)
        # Measured again once the validators are gone; the higher rate sets the ceiling, so
        # that a busy machine during one measurement cannot lower the bar.
        rate = max(rate_before, ed25519_rate(tx_size, samples))

    tps = count / seconds
    ceiling = cores * rate / args.validators
    spent = [b - a for a, b in zip(cpu_before, cpu_after, strict=True) if a is not None and b]
    lines = {
        "validators": args.validators,
        "settlements": count,
        "cores": cores,
        "tx_bytes_avg": tx_size,
        "presign_seconds": f"{sign_seconds:.3f}",
        "block_interval_ms": args.block_interval_ms,
        "max_block_txs": args.max_block_txs,
        "window": window,
        "ledger_commit_seconds": f"{seconds:.3f}",
        "ledger_commit_tps": f"{tps:.0f}",
        "ed25519_verify_per_s": f"{rate:.0f}",
        "ledger_ceiling": f"{ceiling:.0f}",
        "ledger_ceiling_fraction": f"{tps / ceiling:.3f}",
        "ledger_commit_latency_p50_ms": f"{statistics.median(latencies) * 1000:.0f}",
        "ledger_commit_latency_p99_ms": f"{percentile(latencies, 0.99) * 1000:.0f}",
    }
    if len(spent) == args.validators:
        # CPU the validators spent per committed settlement, all of them together, and the
        # share of it that the one signature check per validator accounts for: a measure
        # that does not depend on what else the machine runs.
        per_tx = sum(spent) / count
        lines["validators_cpu_us_per_tx"] = f"{per_tx * 1e6:.0f}"
        lines["signature_share_of_cpu"] = f"{args.validators / rate / per_tx:.3f}"
        whole = per_tx + own_cpu / count
        lines["ledger_ceiling_fraction_cpu"] = f"{args.validators / rate / whole:.3f}"
    lines["loadgen_cpu_us_per_tx"] = f"{own_cpu / count * 1e6:.0f}"
    for name, value in lines.items():
        print(f"{name}={value}")


if __name__ == "__main__":
    main()
