"""The ledger: canonical encoding, keys, transactions, Merkle trees, blocks, state, store."""
