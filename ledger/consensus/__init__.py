"""Tendermint BFT consensus (arXiv:1807.04938) for the validator set.

``core.step`` is the pure state machine; ``proposer`` picks proposers by weighted round-robin;
``privval`` is the crash-safe signer; ``evidence`` keeps double-sign evidence.
"""
