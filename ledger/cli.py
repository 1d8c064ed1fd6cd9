"""Commands of the ledger: ``v2g keys ...``, ``v2g ledger ...`` and ``v2g validator``.

Every failure is one line naming the file and what was wrong, and a nonzero exit;
``verify`` names the first bad height of each store it checks.
"""

from __future__ import annotations

import asyncio
import errno
import json
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from ledger.chain import ChainReport, first_divergence, verify_store
from ledger.codec import block_id, block_to_dict, commit_to_dict
from ledger.consensus.errors import MetricsPortError
from ledger.consensus.runner import Tuning, run_validator
from ledger.devchain import demo_settlements, read_csms_key, seal_into_data_dir
from ledger.duration import parse_duration
from ledger.errors import BlockError, LedgerError, ReceiptError, StoreError
from ledger.genesis import load_genesis
from ledger.home import (
    GENESIS_FILE,
    HomeConfig,
    init_data_dir,
    load_home,
    load_home_genesis,
    load_validator_key,
    validator_homes,
)
from ledger.keys import generate_key, key_id_of, public_bytes, read_key_file, write_key_file
from ledger.pow import solve_puzzle
from ledger.receipt import build_receipt, receipt_from_dict, receipt_to_dict, verify_receipt
from ledger.sqlite_store import SqliteBlockStore
from ledger.store import StoredBlock
from ledger.tables import amount_text, kwh_text, render_table, rfc3339_ms, utc_text, who_pays
from ledger.types import Header

T = TypeVar("T")

# How long a validator's event loop keeps the GIL while a thread waits for it (Python's
# default 5 ms). The block store's writes and the signer's syncs run in threads that need
# the GIL at each step, while the loop checks signatures without a pause: each step then
# waited the whole interval, and storing a block or signing a vote took 100-300 ms.
VALIDATOR_SWITCH_INTERVAL_S = 0.0005


def run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine; turn ledger errors into one clear line and exit 1."""
    try:
        return asyncio.run(make())
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from exc


def guard(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from exc


def homes_of(data_dir: Path | None, home: Path | None) -> list[HomeConfig]:
    """The validator homes named by ``--data-dir`` (all of them) or ``--home`` (one)."""
    if (data_dir is None) == (home is None):
        raise click.UsageError("give exactly one of --data-dir DIR or --home DIR")
    if home is not None:
        return [guard(lambda: load_home(home))]
    assert data_dir is not None
    homes = guard(lambda: validator_homes(data_dir))
    if not homes:
        raise click.ClickException(f"{data_dir}/validators: no validator homes")
    try:
        return [load_home(h) for h in homes]
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from exc


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


# --- keys ---------------------------------------------------------------------------


@click.group("keys")
def keys_group() -> None:
    """Generate and inspect Ed25519 key files."""


@keys_group.command("generate")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def keys_generate(path: Path) -> None:
    """Write a new Ed25519 key to PATH (mode 0600) and print its key id."""
    key = generate_key()
    guard(lambda: write_key_file(path, key))
    click.echo(key_id_of(key))


@keys_group.command("show")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def keys_show(path: Path) -> None:
    """Print the key id and public key of the key file at PATH."""
    key = guard(lambda: read_key_file(path))
    click.echo(f"key_id={key_id_of(key)}")
    click.echo(f"public_key={public_bytes(key).hex()}")


# --- ledger -------------------------------------------------------------------------


@click.group("ledger")
def ledger_group() -> None:
    """Create, inspect and verify the ledger."""


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Ledger data dir, or a CSMS data dir (its ledger/).",
)
home_option = click.option(
    "--home", type=click.Path(file_okay=False, path_type=Path), help="One validator's home."
)


@ledger_group.command("init")
@click.option("--data-dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--validators", required=True, type=click.IntRange(min=1), help="At least 4 for BFT.")
@click.option("--chain-id", default="v2g-local", show_default=True)
@click.option("--base-port", default=26650, show_default=True, type=click.IntRange(1, 65000))
@click.option("--pow-bits", default=0, type=click.IntRange(0, 64), help="PoW sealing instead.")
def ledger_init(
    data_dir: Path, validators: int, chain_id: str, base_port: int, pow_bits: int
) -> None:
    """Write genesis.json, keys and one home per validator under DATA_DIR."""
    genesis = guard(
        lambda: init_data_dir(
            data_dir,
            validators=validators,
            chain_id=chain_id,
            genesis_time=int(time.time() * 1000),
            base_port=base_port,
            pow_bits=pow_bits,
        )
    )

    async def create_stores() -> None:
        for home in validator_homes(data_dir):
            store = await SqliteBlockStore.open(home / "blocks.sqlite")
            await store.close()

    run(create_stores)
    click.echo(f"chain {genesis.chain_id}: {validators} validators under {data_dir}/validators")
    click.echo(f"genesis: {data_dir / GENESIS_FILE}")
    click.echo(f"aggregator key: {data_dir / 'keys' / 'aggregator.key'} ({genesis.aggregator_id})")
    click.echo(f"csms key: {data_dir / 'keys' / 'csms.key'} ({next(iter(genesis.csms_keys))})")


async def _verify_one(config: HomeConfig) -> tuple[ChainReport | None, str]:
    genesis = load_home_genesis(config)
    store = await SqliteBlockStore.open(config.store_path, readonly=True)
    try:
        report = await verify_store(store, genesis)
    except BlockError as exc:
        return None, f"{config.name}: FAILED at height {exc.height}: {exc.detail}"
    finally:
        await store.close()
    return report, f"{config.name}: ok, height {report.height}, {report.tx_count} transactions"


@ledger_group.command("verify")
@data_dir_option
@home_option
def ledger_verify(data_dir: Path | None, home: Path | None) -> None:
    """Re-check every hash, link, root, signature and certificate from genesis.

    With --data-dir every validator store is checked, and the stores must agree.
    """
    configs = homes_of(data_dir, home)

    async def verify_all() -> list[tuple[ChainReport | None, str]]:
        return [await _verify_one(c) for c in configs]

    results = run(verify_all)
    failed = False
    for report, line in results:
        click.echo(line, err=report is None)
        failed = failed or report is None
    good = [(c.name, r) for c, (r, _) in zip(configs, results, strict=True) if r is not None]
    for name, report in good[1:]:
        height = first_divergence(good[0][1], report)
        if height is not None:
            click.echo(f"{name}: DIVERGES from {good[0][0]} at height {height}", err=True)
            failed = True
    if failed:
        raise SystemExit(1)


async def _find_block(configs: list[HomeConfig], height: int) -> StoredBlock | None:
    for config in configs:
        if not config.store_path.is_file():
            continue
        store = await SqliteBlockStore.open(config.store_path, readonly=True)
        try:
            stored = await store.get(height)
        finally:
            await store.close()
        if stored is not None:
            return stored
    return None


@ledger_group.command("show")
@click.argument("height", type=click.IntRange(min=1))
@data_dir_option
@home_option
def ledger_show(height: int, data_dir: Path | None, home: Path | None) -> None:
    """Print the block at HEIGHT with its commit certificate, as JSON."""
    configs = homes_of(data_dir, home)
    stored = run(lambda: _find_block(configs, height))
    if stored is None:
        raise click.ClickException(f"no store holds a block at height {height}")
    data = block_to_dict(stored.block)
    data["block_id"] = block_id(stored.block.header).hex()
    data["commit"] = None if stored.commit is None else commit_to_dict(stored.commit)
    echo_json(data)


@ledger_group.command("status")
@data_dir_option
@home_option
@click.option("--format", "fmt", type=click.Choice(["json", "text"]), default="text")
def ledger_status(data_dir: Path | None, home: Path | None, fmt: str) -> None:
    """Print the height (and last block) of each validator's store."""
    configs = homes_of(data_dir, home)

    async def status_all() -> list[dict[str, Any]]:
        return [await _status(c) for c in configs]

    results = run(status_all)
    if fmt == "json":
        for data in results:
            click.echo(json.dumps(data, sort_keys=True))
        return
    header = ("VALIDATOR", "CHAIN", "HEIGHT", "LAST BLOCK (UTC)", "BLOCK ID")
    rows = [
        (
            config.name,
            data["chain_id"],
            str(data["height"]),
            utc_text(data["time"]),
            data["block_id"] or "-",
        )
        for config, data in zip(configs, results, strict=True)
    ]
    click.echo(render_table(header, rows, right={2}), nl=False)


async def _status(config: HomeConfig) -> dict[str, Any]:
    if not config.store_path.is_file():
        raise click.ClickException(f"{config.name}: no block store at {config.store_path}")
    store = await SqliteBlockStore.open(config.store_path, readonly=True)
    try:
        height = await store.height()
        top = await store.get(height) if height else None
    finally:
        await store.close()
    return {
        "height": height,
        "chain_id": config.chain_id,
        "validator": config.address,
        "block_id": None if top is None else block_id(top.block.header).hex(),
        "time": None if top is None else top.block.header.time,  # Unix milliseconds
        "time_utc": None if top is None else rfc3339_ms(top.block.header.time),
    }


@ledger_group.command("proof")
@click.argument("settlement_id")
@data_dir_option
@home_option
def ledger_proof(settlement_id: str, data_dir: Path | None, home: Path | None) -> None:
    """Print a self-contained receipt (settlement, Merkle path, header, certificate)."""
    configs = homes_of(data_dir, home)

    async def find() -> dict[str, Any] | None:
        for config in configs:
            if not config.store_path.is_file():
                continue
            store = await SqliteBlockStore.open(config.store_path, readonly=True)
            try:
                return receipt_to_dict(await build_receipt(store, settlement_id))
            except StoreError:
                continue
            finally:
                await store.close()
        return None

    receipt = run(find)
    if receipt is None:
        raise click.ClickException(f"settlement {settlement_id} is in no store")
    echo_json(receipt)


@ledger_group.command("verify-receipt")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--genesis", "genesis_file", required=True, type=click.Path(dir_okay=False, path_type=Path)
)
def ledger_verify_receipt(file: Path, genesis_file: Path) -> None:
    """Verify a receipt offline against a genesis file."""
    genesis = guard(lambda: load_genesis(genesis_file))
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise click.ClickException(f"{file}: cannot read: {exc.strerror}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{file}: not JSON: {exc}") from exc
    try:
        receipt = receipt_from_dict(data)
        verify_receipt(receipt, genesis)
    except ReceiptError as exc:
        raise click.ClickException(f"{file}: receipt INVALID: {exc}") from exc
    record = json.loads(receipt.settlement.data)
    click.echo(f"receipt OK: {receipt_summary(record, receipt.header)}")


def receipt_summary(record: dict[str, Any], header: Header) -> str:
    """A verified record in words: amount in currency units and who pays, energy in kWh,
    where and when it was committed."""
    text = f"{record['type']} {record['settlement_id']}"
    if isinstance(record.get("corrects"), str):
        text += f" (corrects {record['corrects']})"
    amount = record.get("amount")
    if isinstance(amount, int):
        currency = (record.get("tariff") or {}).get("currency")
        text += f": amount {amount_text(amount, currency, places=6)} ({who_pays(amount)})"
    energy = record.get("energy") or {}
    if isinstance(energy.get("import_wh"), int) and isinstance(energy.get("export_wh"), int):
        text += (
            f", {kwh_text(energy['import_wh'])} kWh imported,"
            f" {kwh_text(energy['export_wh'])} kWh exported"
        )
    return (
        f"{text}; committed at height {header.height} (block {block_id(header).hex()})"
        f" at {utc_text(header.time)} UTC"
    )


@ledger_group.command("pow-demo")
@click.option("--data", "text", required=True, help="The text to seal.")
@click.option("--zeros", required=True, type=click.IntRange(1, 64), help="Leading hex zeros.")
@click.option("--start", default=0, type=click.IntRange(min=0), help="First nonce to try.")
def ledger_pow_demo(text: str, zeros: int, start: int) -> None:
    """Find the first nonce whose SHA-256(TEXT + nonce), in hex, starts with ZEROS zeros."""
    began = time.perf_counter()
    nonce, digest = solve_puzzle(text, zeros, start=start)
    elapsed = time.perf_counter() - began
    click.echo(f"nonce={nonce}")
    click.echo(f"hash={digest}")
    click.echo(f"tries={nonce - start + 1}")
    click.echo(f"seconds={elapsed:.3f}")


@ledger_group.command("seal-demo")
@click.option("--data-dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--blocks", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--per-block", default=5, show_default=True, type=click.IntRange(min=0))
def ledger_seal_demo(data_dir: Path, blocks: int, per_block: int) -> None:
    """Seal demo settlements in one process into every validator store (no consensus)."""
    configs = homes_of(data_dir, None)
    genesis = guard(lambda: load_home_genesis(configs[0]))
    key = guard(lambda: read_csms_key(data_dir))

    async def seal() -> int:
        store = await SqliteBlockStore.open(configs[0].store_path, readonly=True)
        try:
            first = 0
            async for stored in store.blocks():
                first += len(stored.block.txs)
        finally:
            await store.close()
        batches = [
            demo_settlements(key, genesis.chain_id, first + b * per_block, per_block)
            for b in range(blocks)
        ]
        return await seal_into_data_dir(data_dir, batches)

    height = run(seal)
    click.echo(f"sealed {blocks} blocks of {per_block} settlements; height {height}")


# --- validator ----------------------------------------------------------------------


async def _serve_validator(
    home: Path, tuning: Tuning, metrics: tuple[str, int] | None = None
) -> None:
    """Run the validator of ``home`` until SIGINT or SIGTERM asks it to stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run_validator(home, tuning=tuning, stop=stop, metrics=metrics)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


@click.command("validator")
@click.option("--home", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--block-interval-ms",
    default=Tuning().block_interval_ms,
    show_default=True,
    type=click.IntRange(min=0),
    help="Least time from one height's start to the next (transactions gather meanwhile;"
    " a full mempool does not wait).",
)
@click.option(
    "--max-block-txs",
    default=Tuning().max_block_txs,
    show_default=True,
    type=click.IntRange(min=1),
    help="Most transactions in one block.",
)
@click.option(
    "--max-idle-interval",
    default="0",
    show_default=True,
    help="Make an empty block after this long without one (90s, 15m, 1h; 0: never). "
    "Blocks are otherwise made only when there is something to commit.",
)
@click.option(
    "--metrics-port",
    default=None,
    type=click.IntRange(min=1, max=65535),
    help="Serve Prometheus metrics (height, link counters) at http://HOST:PORT/metrics.",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address of the metrics port (it names the validator's peers: keep it private).",
)
def validator_command(
    home: Path,
    block_interval_ms: int,
    max_block_txs: int,
    max_idle_interval: str,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Run one validator from its home (see `v2g ledger init`) until SIGINT or SIGTERM."""
    config = guard(lambda: load_home(home))
    guard(lambda: load_validator_key(config))
    guard(lambda: load_home_genesis(config))
    try:
        idle_s = parse_duration(max_idle_interval)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--max-idle-interval'") from None
    tuning = Tuning(
        block_interval_ms=block_interval_ms,
        max_block_txs=max_block_txs,
        max_idle_interval_ms=round(idle_s * 1000),
    )
    metrics = None if metrics_port is None else (metrics_host, metrics_port)
    sys.setswitchinterval(VALIDATOR_SWITCH_INTERVAL_S)
    try:
        run(lambda: _serve_validator(home, tuning, metrics))
    except MetricsPortError as exc:
        raise click.ClickException(f"{config.name}: cannot serve metrics on {exc}") from exc
    except OSError as exc:
        where = f"{config.listen_host}:{config.listen_port}"
        why = "port in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise click.ClickException(f"{config.name}: cannot listen on {where}: {why}") from exc
