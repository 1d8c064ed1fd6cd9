"""What the review app is given by its composition root (``csms.app`` or ``v2g dashboard``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from csms.server import CsmsServer
from csms.service import StationService
from csms.settling import SettlementSetup
from csms.store.sqlite import CsmsStore
from csms.timeutil import Clock, utc_now
from csms.web.chain import ChainStatus
from ledger.consensus.linkstats import LinkStats, ValidatorLinks

LedgerStatus = Callable[[], Awaitable[ChainStatus]]


@dataclass(frozen=True, slots=True)
class ReviewDeps:
    """The store and, in a running CSMS, the live parts; ``stations`` None means read-only.

    ``setup`` signs corrections (without it credits are refused); ``settlement_written``
    wakes the outbox after a credit is queued; ``ledger_status`` reports the chain (default:
    read the validator stores of ``ledger_dir``, or of ``data_dir`` or ``data_dir/ledger``);
    ``genesis_path`` is offered to receipt users; ``reserve_soc_pct`` is marked on SoC charts.
    ``ledger_links`` and ``validator_links`` give the link counters of ``/metrics``: the
    CSMS's connections to the validators, and the embedded validators' own links.
    """

    store: CsmsStore
    data_dir: Path
    stations: StationService | None = None
    server: CsmsServer | None = None
    setup: SettlementSetup | None = None
    genesis_path: Path | None = None
    ledger_dir: Path | None = None  # the validators' data dir; default: found in data_dir
    ledger_status: LedgerStatus | None = None
    settlement_written: Callable[[], None] | None = None
    clock: Clock = utc_now
    reserve_soc_pct: int | None = None  # the dispatcher's reserve, when it dispatches
    ledger_links: Callable[[], Mapping[str, LinkStats]] | None = None  # CSMS -> validators
    validator_links: Callable[[], Sequence[ValidatorLinks]] | None = None  # embedded set

    @property
    def read_only(self) -> bool:
        return self.stations is None
