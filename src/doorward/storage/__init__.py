"""Storage: SQLAlchemy Core tables, the Store and repositories the core asks for, Alembic migrations."""

from doorward.storage.database import create_engine, open_checkpointer, ping, schema_revision
from doorward.storage.keys import load_or_create_secret
from doorward.storage.migrate import downgrade, schema_current, upgrade
from doorward.storage.store import SqlStore

__all__ = [
    "SqlStore",
    "create_engine",
    "downgrade",
    "load_or_create_secret",
    "open_checkpointer",
    "ping",
    "schema_current",
    "schema_revision",
    "upgrade",
]
