"""What happens to evidence after acquisition: custody events, working copies, vault copies, an
item's history, and finding items from what a person types.

May import everything below it (foundation, root, keys, evidence, ledger, timestamps, trust,
acquisition); never verify, delivery or cli.
"""
