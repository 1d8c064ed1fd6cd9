"""``v2g validator --home DIR`` as an operator runs it: four processes commit settlements,
hand out receipts that verify offline, and stop cleanly on SIGTERM; bad homes and busy
ports are one-line errors."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ledger.consensus.client import submit_and_fetch, submit_tx
from ledger.genesis import load_genesis
from ledger.home import init_data_dir, validator_homes
from ledger.keys import read_key_file
from ledger.receipt import receipt_from_dict, verify_receipt
from ledger.tx import sign_tx
from tests.ledger.builders import T0, settlement_body
from tests.ledger.consensus.test_runner import free_ports, use_ports, wait_listening

REPO = Path(__file__).resolve().parents[2]
CHAIN = "cli-validator"


def validator(home: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "v2g", "validator", "--home", str(home), *extra]
    return subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.slow
async def test_four_validator_commands_commit_and_stop_on_sigterm(tmp_path: Path) -> None:
    """Slow (about 5 s): four Python processes."""
    init_data_dir(tmp_path, validators=4, chain_id=CHAIN, genesis_time=T0)
    urls = use_ports(tmp_path, free_ports(4))
    csms = read_key_file(tmp_path / "keys" / "csms.key")
    metrics_port = free_ports(1)[0]
    homes = validator_homes(tmp_path)
    procs = [
        validator(h, "--block-interval-ms", "50", *extra)
        for h, extra in zip(homes, [("--metrics-port", str(metrics_port))] + [()] * 3, strict=True)
    ]
    try:
        await wait_listening(urls)
        tx = sign_tx(settlement_body("cli-1"), csms, CHAIN)
        receipt, doc = await asyncio.wait_for(submit_and_fetch(urls, tx, key=csms), 60)
        verify_receipt(receipt_from_dict(doc), load_genesis(tmp_path / "genesis.json"))
        # A retry after a crash of the submitter: the same receipt, not a rejection.
        assert await asyncio.wait_for(submit_tx(urls[::-1], tx, key=csms), 30) == receipt
        # v0's own metrics: its height, its links to the three others, and its collections
        # in ticks (the objects made since start-up frozen at the first look, a second in)
        links_up = r"^v2g_validator_peer_up\{[^}]*\} 1$"
        froze = r'^v2g_validator_gc_\S*\{[^}]*kind="freeze"\} [1-9]'
        async with httpx.AsyncClient() as http:
            for _ in range(100):  # a link may be coming up again on a busy machine
                text = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
                if len(re.findall(links_up, text, re.M)) == 3 and re.search(froze, text, re.M):
                    break
                await asyncio.sleep(0.1)
        assert re.search(r"^v2g_validator_height\{[^}]*\} [1-9]", text, re.M)
        assert len(re.findall(links_up, text, re.M)) == 3
        assert re.search(froze, text, re.M)
        assert re.search(r'^v2g_validator_gc_\S*\{[^}]*kind="full"\} 0$', text, re.M)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            _, err = proc.communicate(timeout=20)
            assert proc.returncode == 0, err
            assert "Traceback" not in err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)


def test_a_busy_port_and_a_missing_home_are_one_line_errors(tmp_path: Path) -> None:
    init_data_dir(tmp_path, validators=4, chain_id=CHAIN, genesis_time=T0)
    port = free_ports(1)[0]
    use_ports(tmp_path, [port, *free_ports(3)])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        proc = validator(validator_homes(tmp_path)[0])
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert err.strip().splitlines() == [
        f"Error: v0: cannot listen on 127.0.0.1:{port}: port in use"
    ]
    with socket.socket() as busy:  # the metrics port, this time
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        proc = validator(validator_homes(tmp_path)[1], "--metrics-port", str(taken))
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert err.strip().splitlines() == [
        f"Error: v1: cannot serve metrics on 127.0.0.1:{taken}: port in use"
    ]
    proc = validator(tmp_path / "nowhere")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert len(err.strip().splitlines()) == 1 and "config.yaml" in err


def test_a_bad_connection_cap_stops_start_up_naming_file_key_and_expectation(
    tmp_path: Path,
) -> None:
    init_data_dir(tmp_path, validators=4, chain_id=CHAIN, genesis_time=T0)
    home = validator_homes(tmp_path)[0]
    config = home / "config.yaml"
    config.write_text(config.read_text() + "links:\n  opening_per_address: -1\n")
    proc = validator(home)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert err.strip().splitlines() == [
        f"Error: {config}: key 'links.opening_per_address': expected an integer from 1 to "
        "1000000, got -1"
    ]
