"""Acquisition: bringing evidence into a root — catalogue, ingest and the field's own formats.

Modules here read what arrives from outside (folders, devices, other archives' packages)
and decide, before anything is copied, what it is and whether it is whole. They never
write into the material they read.
"""
