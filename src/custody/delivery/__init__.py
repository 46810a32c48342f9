"""What leaves an evidence root: bundles, their verification and import, reports, registers
and exports.
"""
