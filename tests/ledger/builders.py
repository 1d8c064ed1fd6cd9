"""Builders for ledger tests: a genesis with its keys, and valid transaction bodies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.amounts import PricedInterval, settlement_amount
from ledger.genesis import Genesis
from ledger.keys import SigningKey, generate_key, key_id_of, public_bytes
from ledger.sealing import Sealed, seal_block
from ledger.state import State, genesis_state
from ledger.tx import sign_tx
from ledger.types import Commit, Tx, Validator, ValidatorSet

CHAIN_ID = "test-chain"
HEX64 = "ab" * 32
T0 = 1_700_000_000_000


@dataclass
class Net:
    """A genesis and every key that it names."""

    genesis: Genesis
    validator_keys: list[SigningKey]
    csms_key: SigningKey
    aggregator_key: SigningKey
    chain: list[Sealed] = field(default_factory=list)

    @property
    def state(self) -> State:
        return self.chain[-1].state if self.chain else genesis_state(self.genesis)

    @property
    def last_commit(self) -> Commit | None:
        return self.chain[-1].commit if self.chain else None

    def seal(self, txs: list[Tx]) -> Sealed:
        sealed = seal_block(
            self.state,
            txs,
            self.validator_keys,
            time=T0 + 1000 * (len(self.chain) + 1),
            last_commit=self.last_commit,
        )
        self.chain.append(sealed)
        return sealed

    def csms_tx(self, body: dict[str, Any]) -> Tx:
        return sign_tx(body, self.csms_key, CHAIN_ID)

    def aggregator_tx(self, body: dict[str, Any]) -> Tx:
        return sign_tx(body, self.aggregator_key, CHAIN_ID)


def make_net(
    n_validators: int = 4,
    *,
    balances: dict[str, int] | None = None,
    sealing: str = "bft",
    pow_bits: int = 0,
) -> Net:
    vkeys = [generate_key() for _ in range(n_validators)]
    csms, agg = generate_key(), generate_key()
    vset = ValidatorSet(tuple(Validator(key_id_of(k), public_bytes(k), 10) for k in vkeys))
    genesis = Genesis(
        chain_id=CHAIN_ID,
        genesis_time=T0,
        validators=vset,
        csms_keys={key_id_of(csms): public_bytes(csms)},
        aggregator_key=public_bytes(agg),
        balances=balances or {},
        sealing=sealing,
        pow_bits=pow_bits,
    )
    return Net(genesis, vkeys, csms, agg)


def settlement_body(
    settlement_id: str = "s-1",
    *,
    transaction_id: str | None = None,
    operator: str = "op-1",
    ev: str = "ev-pseudo-1",
    intervals: list[tuple[int, int, int, int]] | None = None,
    payment: str = "invoice",
    kind: str = "settlement",
    corrects: str | None = None,
) -> dict[str, Any]:
    """A valid settlement body: intervals (import_wh, export_wh, import_price, export_price)."""
    rows = intervals or [(10_000, 0, 300_000, 100_000), (0, 4_000, 300_000, 450_000)]
    body: dict[str, Any] = {
        "type": kind,
        "schema": 1,
        "settlement_id": settlement_id,
        "transaction_id": transaction_id or f"tx-{settlement_id}",
        "operator": operator,
        "evse_id": "DE*ABC*E1*1",
        "ev": ev,
        "start": "2026-01-01T10:00:00Z",
        "end": "2026-01-01T12:00:00Z",
        "energy": {"import_wh": sum(r[0] for r in rows), "export_wh": sum(r[1] for r in rows)},
        "tariff": {"id": "t-1", "sha256": HEX64, "currency": "EUR"},
        "intervals": [
            {
                "start": f"2026-01-01T1{i}:00:00Z",
                "import_wh": r[0],
                "export_wh": r[1],
                "import_price": r[2],
                "export_price": r[3],
            }
            for i, r in enumerate(rows)
        ],
        "amount": settlement_amount(PricedInterval(*r) for r in rows),
        "payment": payment,
        "evidence": {
            "meter_key_sha256": HEX64,
            "records": [{"nature": "Begin", "sha256": HEX64}, {"nature": "End", "sha256": HEX64}],
        },
    }
    if corrects is not None:
        body["corrects"] = corrects
    return body
