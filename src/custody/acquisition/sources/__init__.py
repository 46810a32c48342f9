"""Readers for the provenance formats other tools attach to evidence.

Each module here reads one outside format (ProofMode bundles, C2PA manifests) into
frozen, structured results: every check is listed with its state (``passed``, ``failed``,
``not_checkable``) and its reason, and what is only claimed is kept apart from what was
checked. The modules import only ``custody.errors`` and each other from custody, the standard
library and the well-kept libraries named in their docstrings.
"""
