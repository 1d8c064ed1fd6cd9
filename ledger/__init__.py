"""The ledger: canonical encoding, keys, transactions, Merkle trees, blocks, state, store.

Imports nothing of the project and knows nothing of OCPP. A map of the modules:

- ``canonical``: the one encoding for every hashed or signed byte; domain tags.
- ``keys``, ``signing``: Ed25519 key files and key ids; vote sign bytes.
- ``types``, ``codec``: Vote, Validator(Set), Tx, Header, Block, Commit and their
  canonical forms; ``block_id``.
- ``tx``, ``schema``, ``validation``: transaction kinds, ``sign_tx``, schema checks, and
  the rules that reject a transaction with its own error type.
- ``checked``: transactions a validator has decoded and verified, so each is checked once.
- ``state``, ``apply``: the ledger state and ``apply_block`` (a new state per block).
- ``merkle``: RFC 6962 roots and inclusion proofs.
- ``commit``, ``blocks``, ``chain``: certificates, building and verifying blocks, and
  whole-chain verification.
- ``store``, ``sqlite_store``: the ``BlockStore`` interface, in memory and aiosqlite.
- ``genesis``, ``home``: the genesis document and the on-disk layout of a ledger.
- ``receipt``: offline-verifiable proofs that a settlement was committed.
- ``pow``, ``sealing``, ``devchain``: PoW sealing, single-process sealing, demo chains.
- ``consensus``: Tendermint BFT consensus.
- ``cli``: ``v2g keys``, ``v2g ledger`` and ``v2g validator``.
"""
