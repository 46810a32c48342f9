"""Sources: readers for what the field already produces — BagIt bags, chat exports, ProofMode, C2PA.

Each reader checks one external format by its own specification and returns structured,
immutable results (findings, metadata, digests) for the rest of custody to record; none
of them prints, copies or fetches anything.
"""
