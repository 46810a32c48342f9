"""The roles a key may hold. What each role may record is judged by the ledger checks
(``custody.ledger.checks``, docs/events.md); this module only names them, so that record
parsing can check a role without loading any cryptography."""

ROLES = ("documenter", "custodian", "lawyer")
