"""Verification of an evidence root: every check of its ledger and its files, as a structured
result that is never printed here.

May import everything below it (foundation, root, keys, evidence, ledger, timestamps,
trust); never handling, delivery or cli.
"""
