"""What a verifier trusts, and why: trust anchors in the user's own custody home (never in
the evidence being verified), the policy a verification runs under (``TrustPolicy``), and
the judgement of each signer against it (anchored, and through which chain of keys).

May import the foundation modules, root, keys, evidence, ledger and timestamps; never
acquisition, handling, verify, delivery or cli.
"""
