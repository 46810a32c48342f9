"""Signing identities: Ed25519 keys, their encryption at rest, the roles a key may hold, and
the user's keyring.

May import the foundation modules only (errors, encoding, i18n, system); the ledger imports keys,
never the reverse.
"""
