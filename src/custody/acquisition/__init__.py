"""Bringing evidence into a root: cataloguing files already inside it, and ingesting (copying
in, proven identical) files from outside.

May import the foundation modules, root, keys, evidence, ledger and timestamps.
"""
