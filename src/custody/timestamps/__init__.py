"""Trusted time: RFC 3161 requests and token checks, and stamping the ledger's checkpoints.

May import the foundation modules, root, keys, evidence and ledger.
"""
