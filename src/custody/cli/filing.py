"""``custody register`` and ``custody certify``: documents for a filing."""
