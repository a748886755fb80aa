"""The hashing processes' fixtures (tests/hashing/processes.py), offered to every test module here."""

from tests.hashing.processes import hashers  # noqa: F401 - a fixture
