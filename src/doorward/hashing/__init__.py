"""The hashing processes and the workers' side of their socket: one wire format, one reader.

This package imports nothing: a hashing process (``python -m doorward.hashing.process``), one per
core, loads the hasher and the wire format, and none of what the workers' side needs.
"""
