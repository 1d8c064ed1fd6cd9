"""Tendermint BFT consensus (arXiv:1807.04938) for the validator set.

Pure parts: ``core.step`` (the state machine), ``proposer`` (weighted round-robin),
``votes`` (stake-weighted tallies), ``messages``/``state`` (its vocabulary), ``evidence``.
Crash safety: ``privval`` (the signer that persists before it signs), ``tip`` (the decided
block not yet stored). Around them: ``app`` (the ledger as consensus values), ``node`` (the
asyncio validator), ``peers``/``wire`` (websocket links and frames), ``mempool``, ``pacing``
(when to fetch blocks; gossip batches), ``serving`` (blocks and receipt documents on
request), ``submissions`` (clients waiting for commits; idempotent resubmission), ``client``
(submit a transaction, get its receipt and its self-contained receipt document) and
``runner`` (composition roots).
"""
