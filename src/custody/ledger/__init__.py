"""The ledger: canonical form, records, Merkle tree, stores, checks and proofs."""
