"""The CSMS's ledger port over real validators (an embedded set on loopback)."""

from __future__ import annotations

from pathlib import Path

from csms.ledger_link import ValidatorLedger
from ledger.consensus.runner import start_embedded
from ledger.genesis import load_genesis
from ledger.home import init_data_dir
from ledger.keys import read_key_file
from ledger.receipt import receipt_from_dict, verify_receipt
from ledger.tx import sign_tx
from tests.ledger.builders import T0, settlement_body
from tests.ledger.consensus.test_runner import FAST

CHAIN = "link-chain"


async def test_a_commit_comes_with_its_receipt_document(tmp_path: Path) -> None:
    """The outbox stores the commit and the receipt in one write: the document that
    verifies offline against genesis comes back with the commit itself."""
    init_data_dir(tmp_path, validators=4, chain_id=CHAIN, genesis_time=T0)
    csms = read_key_file(tmp_path / "keys" / "csms.key")
    genesis = load_genesis(tmp_path / "genesis.json")
    embedded = await start_embedded(tmp_path, tuning=FAST)
    ledger = ValidatorLedger(embedded.urls, genesis, key=csms, timeout_s=20)
    try:
        tx = sign_tx(settlement_body("l-1"), csms, CHAIN)
        receipt = await ledger.submit(tx.data)
    finally:
        await ledger.close()
        await embedded.stop()
    assert receipt.document["settlement"]["settlement_id"] == "l-1"
    verify_receipt(receipt_from_dict(receipt.document), genesis)  # raises if it does not
    assert (receipt.height, receipt.tx_index) == (
        receipt.document["header"]["height"],
        receipt.document["tx_index"],
    )
