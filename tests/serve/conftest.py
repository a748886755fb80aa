"""The hashing processes' fixtures (tests/hashing/processes.py), offered to every test module here."""

from tests.hashing.processes import bad_deploy, hashers  # noqa: F401 - fixtures
