from __future__ import annotations

import dataclasses

import pytest

from ledger.errors import ReceiptError, StoreError
from ledger.keys import generate_key, public_bytes
from ledger.receipt import build_receipt, receipt_from_dict, receipt_to_dict, verify_receipt
from ledger.store import MemoryBlockStore
from ledger.tx import validator_update_body
from ledger.types import Tx
from tests.ledger.builders import Net, make_net, settlement_body


async def chain_with_receipts() -> tuple[Net, MemoryBlockStore]:
    net = make_net()
    net.seal([net.csms_tx(settlement_body(f"s-{i}")) for i in range(5)])
    net.seal([net.csms_tx(settlement_body("s-5"))])
    store = MemoryBlockStore()
    for sealed in net.chain:
        await store.append(sealed.block, sealed.commit)
    return net, store


@pytest.mark.parametrize("settlement_id", ["s-0", "s-3", "s-4", "s-5"])
async def test_receipts_verify_offline(settlement_id: str) -> None:
    net, store = await chain_with_receipts()
    receipt = await build_receipt(store, settlement_id)
    verify_receipt(receipt, net.genesis)
    again = receipt_from_dict(receipt_to_dict(receipt))
    assert again == receipt
    verify_receipt(again, net.genesis)


async def test_unknown_settlement() -> None:
    _, store = await chain_with_receipts()
    with pytest.raises(StoreError):
        await build_receipt(store, "nope")


async def test_tampering_is_detected() -> None:
    net, store = await chain_with_receipts()
    receipt = await build_receipt(store, "s-3")
    data = receipt_to_dict(receipt)
    data["settlement"]["amount"] += 1
    with pytest.raises(ReceiptError):
        verify_receipt(receipt_from_dict(data), net.genesis)
    # a consistent but different settlement (amount rule holds) is not in the block
    other = net.csms_tx(settlement_body("s-3", intervals=[(1, 0, 1000, 0)]))
    with pytest.raises(ReceiptError, match="not in the block"):
        verify_receipt(dataclasses.replace(receipt, settlement=other), net.genesis)
    with pytest.raises(ReceiptError):
        verify_receipt(dataclasses.replace(receipt, tx_index=2), net.genesis)
    bad_path = (bytes(32), *receipt.merkle_path[1:])
    with pytest.raises(ReceiptError):
        verify_receipt(dataclasses.replace(receipt, merkle_path=bad_path), net.genesis)
    with pytest.raises(ReceiptError, match="another block"):
        second = await store.get(2)
        assert second is not None
        verify_receipt(dataclasses.replace(receipt, commit=second.commit), net.genesis)
    with pytest.raises(ReceiptError, match="no commit"):
        verify_receipt(dataclasses.replace(receipt, commit=None), net.genesis)
    assert receipt.commit is not None
    weak = dataclasses.replace(receipt.commit, signatures=receipt.commit.signatures[:2])
    with pytest.raises(ReceiptError, match="commit certificate"):
        verify_receipt(dataclasses.replace(receipt, commit=weak), net.genesis)


async def test_other_genesis_is_refused() -> None:
    _, store = await chain_with_receipts()
    receipt = await build_receipt(store, "s-1")
    with pytest.raises(ReceiptError, match="validator set"):
        verify_receipt(receipt, make_net().genesis)


async def test_receipt_carries_a_real_transaction() -> None:
    _, store = await chain_with_receipts()
    receipt = await build_receipt(store, "s-5")
    assert isinstance(receipt.settlement, Tx)
    assert receipt.tx_count == 1 and receipt.merkle_path == ()
    data = receipt_to_dict(receipt)
    data["block_id"] = "00" * 32
    with pytest.raises(ReceiptError, match="block_id"):
        receipt_from_dict(data)


async def test_receipt_spans_validator_set_changes() -> None:
    net = make_net()
    newcomer = generate_key()
    net.seal(
        [
            net.csms_tx(settlement_body("s-0")),
            net.aggregator_tx(
                validator_update_body(update_id="u1", changes=[(public_bytes(newcomer), 10)])
            ),
        ]
    )  # in force from height 3
    net.seal([])
    net.validator_keys = [*net.validator_keys[1:], newcomer]  # 4 of the 5 sign from now on
    net.seal(
        [
            net.aggregator_tx(
                validator_update_body(
                    update_id="u2", changes=[(net.genesis.validators.validators[0].public_key, 0)]
                )
            )
        ]
    )  # removes a genesis validator from height 5
    net.seal([])
    net.seal([net.csms_tx(settlement_body("s-5"))])
    store = MemoryBlockStore()
    for sealed in net.chain:
        await store.append(sealed.block, sealed.commit)
    receipt = await build_receipt(store, "s-5")
    assert [c.header.height for c in receipt.validator_changes] == [1, 3]
    verify_receipt(receipt, net.genesis)
    verify_receipt(receipt_from_dict(receipt_to_dict(receipt)), net.genesis)
    early = await build_receipt(store, "s-0")
    assert early.validator_changes == ()
    verify_receipt(early, net.genesis)
    # leaving a change out, or reordering, breaks the chain of sets
    for changes in ((), receipt.validator_changes[:1], receipt.validator_changes[::-1]):
        with pytest.raises(ReceiptError):
            verify_receipt(dataclasses.replace(receipt, validator_changes=changes), net.genesis)
    # a forged update (a different key added) is not in its block
    first = receipt.validator_changes[0]
    forged_tx = net.aggregator_tx(
        validator_update_body(update_id="u1", changes=[(public_bytes(generate_key()), 10)])
    )
    forged = dataclasses.replace(
        first, updates=(dataclasses.replace(first.updates[0], tx=forged_tx),)
    )
    with pytest.raises(ReceiptError):
        verify_receipt(
            dataclasses.replace(receipt, validator_changes=(forged, receipt.validator_changes[1])),
            net.genesis,
        )
