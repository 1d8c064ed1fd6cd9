"""Corrections: a credit record that references a settlement, never a change to it.

A credit restates the original's session (operator, transaction, EV, evidence digests) and
carries its own intervals whose amount follows the one rounding rule, so validators check it
like any settlement. Without an amount the credit reverses the original in full (same
energy, prices negated, amount = -original). With an amount ``C`` (micro-units credited to
the driver) it states one nominal 1 Wh import priced at ``-1000*C`` per kWh, whose amount is
exactly ``-C``: the rule has no way to move money without energy. The operator's reason
stays off-chain, in the CSMS database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from csms.errors import CsmsError
from csms.model import SettlementRecord
from csms.settling import SettlementOutcome, SettlementSetup
from ledger.amounts import PricedInterval, settlement_amount
from ledger.tx import CREDIT, sign_tx

MAX_REASON = 500


class CorrectionError(CsmsError):
    """A credit cannot be issued as asked (unknown, uncommitted or unsettled original)."""


def credit_id_for(original_id: str, created_at: str, reason: str) -> str:
    digest = hashlib.sha256(f"{original_id}\x00{created_at}\x00{reason}".encode()).hexdigest()
    return f"crd-{digest[:32]}"


def credit_body(
    original: dict[str, Any], *, credit_id: str, amount: int | None = None
) -> dict[str, Any]:
    """The unsigned credit record for ``original`` (a settlement body without signature)."""
    if original.get("type") != "settlement":
        raise CorrectionError("only a settlement can be corrected, not a credit")
    if amount is None:
        intervals = [
            {**i, "import_price": -i["import_price"], "export_price": -i["export_price"]}
            for i in original["intervals"]
        ]
    else:
        if amount <= 0:
            raise CorrectionError("a credit amount must be a positive number of micro-units")
        intervals = [
            {
                "start": original["intervals"][0]["start"],
                "import_wh": 1,
                "export_wh": 0,
                "import_price": -1000 * amount,
                "export_price": 0,
            }
        ]
    body = {k: v for k, v in original.items() if k not in ("signer", "sig", "corrects")}
    body.update(
        type=CREDIT,
        settlement_id=credit_id,
        intervals=intervals,
        energy={
            "import_wh": sum(i["import_wh"] for i in intervals),
            "export_wh": sum(i["export_wh"] for i in intervals),
        },
        amount=settlement_amount(
            PricedInterval(i["import_wh"], i["export_wh"], i["import_price"], i["export_price"])
            for i in intervals
        ),
        corrects=original["settlement_id"],
    )
    return body


def check_room(
    original: SettlementRecord, earlier: Sequence[SettlementRecord], amount: int | None
) -> None:
    """Refuse a credit that would give back more than was settled.

    A full reversal needs no other live (pending or committed) credit; partial credits of a
    session the driver paid for add up to at most what was paid. (A session where the driver
    was paid may still get partial goodwill credits.)
    """
    live = [c for c in earlier if c.kind == "credit" and c.status in ("pending", "committed")]
    if amount is None:
        if live:
            raise CorrectionError(
                f"{original.settlement_id} already has {len(live)} credit(s): a full reversal"
                " would give back twice"
            )
        return
    paid = original.amount or 0
    if paid > 0:
        refunded = -sum(c.amount or 0 for c in live)
        if refunded + amount > paid:
            raise CorrectionError(
                f"{original.settlement_id}: {refunded} of {paid} micro-units are credited"
                f" already; {amount} more would exceed what was paid"
            )


def build_credit(
    setup: SettlementSetup,
    original: SettlementRecord,
    *,
    reason: str,
    created_at: str,
    amount: int | None = None,
    earlier: Sequence[SettlementRecord] = (),
) -> SettlementOutcome:
    """A signed credit for a settlement, ready for ``CsmsStore.add_credit``.

    ``earlier`` are the credits already issued for it (see :func:`check_room`).
    """
    reason = reason.strip()
    if not reason:
        raise CorrectionError("a correction needs a reason")
    if len(reason) > MAX_REASON:
        raise CorrectionError(f"the reason is longer than {MAX_REASON} characters")
    if original.kind != "settlement" or original.body is None:
        raise CorrectionError(f"{original.settlement_id} is not a signed settlement")
    if original.status != "committed":
        raise CorrectionError(
            f"{original.settlement_id} is {original.status}: only a committed settlement can"
            " be corrected (validators refuse a credit for anything else)"
        )
    check_room(original, [c for c in earlier if c.corrects == original.settlement_id], amount)
    credit_id = credit_id_for(original.settlement_id, created_at, reason)
    body = credit_body(json.loads(original.body), credit_id=credit_id, amount=amount)
    tx = sign_tx(body, setup.signer, setup.chain_id)
    return SettlementOutcome(credit_id, "pending", reason, original.ev, body, tx.data)
