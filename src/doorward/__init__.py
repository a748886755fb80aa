"""doorward: a login and session service."""

__version__ = "0.1.0"
