"""What leaves an evidence root: bundles (writing, verifying, importing), court reports, and
the CASE/UCO export.

May import any library package; never cli.
"""
