"""doorward's core: accounts, passwords, tokens and sessions in plain Python (no framework, no driver).

Import from the modules themselves (``doorward.core.sessions``, ``doorward.core.password_hashes``, ...): this
package imports nothing, so that a hashing process (doorward/hashing_process.py), one per core,
loads the hasher and its few neighbours without the rest.
"""
