"""doorward's core: accounts, passwords, tokens and sessions in plain Python (no framework, no driver).

Import from the modules themselves (``doorward.core.sessions``, ...): this package imports nothing,
so that code that only hashes passwords loads the hasher and its few neighbours without the rest.
"""
