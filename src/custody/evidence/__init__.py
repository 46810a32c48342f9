"""Reading evidence files without ever changing them: streaming digests and exiftool metadata.

May import the foundation modules only.
"""
