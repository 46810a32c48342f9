"""The ledger: canonical form, record types, the RFC 9162 Merkle tree, the file and PostgreSQL
stores, their index, the checks every line must pass, and proofs.

May import the foundation modules (errors, clock, progress, findings, encoding, i18n, system),
root, keys and evidence; never anything above (timestamps, trust, acquisition, handling,
verify, delivery, cli).
"""
