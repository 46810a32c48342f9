"""Sources: readers for what the field already produces — BagIt bags, chat exports, ProofMode, C2PA.

Each reader checks one external format by its own specification and returns structured,
immutable results (findings, metadata, digests) for the rest of custody to record; none
of them prints, copies or fetches anything.

What a reader says both goes into records and is shown at intake: ``said`` (``Said``) keeps
such a sentence in English for the records and says it in the language of the run for people.
"""
