"""What custody asks of the operating system: durable writes of its own files and the inter-
process lock.

Imports only custody.errors.
"""
