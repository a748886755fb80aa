"""doorward's core: accounts, passwords, tokens and sessions in plain Python (no framework, no driver).

The names below are imported on first use (PEP 562), not with the package: a hashing process
(doorward/hashing_process.py) imports ``doorward.core.hashing`` and a few of its neighbours, and
must not pay for the rest (it runs once per core).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from doorward.core.accounts import Accounts
    from doorward.core.admin import Admin, ImportReport, ImportRow
    from doorward.core.audit import AuditEvent, Auditor, AuditSink
    from doorward.core.clock import Clock, utc_now
    from doorward.core.deps import AccountPolicy, Deps, SessionPolicy
    from doorward.core.hashing import PasswordHasher, Scheme, Verdict, identify
    from doorward.core.hashpool import HashPool
    from doorward.core.models import Client, LoginResult, NewUser, Session, User
    from doorward.core.passwords import Password, PasswordPolicy
    from doorward.core.profiles import DEFAULT_PROFILE, PROFILES, Profile
    from doorward.core.service import Authenticator
    from doorward.core.throttle import AttemptState, Throttle, ThrottlePolicy, ThrottleStore

_WHERE = {
    "Accounts": "doorward.core.accounts",
    "Admin": "doorward.core.admin",
    "ImportReport": "doorward.core.admin",
    "ImportRow": "doorward.core.admin",
    "AuditEvent": "doorward.core.audit",
    "Auditor": "doorward.core.audit",
    "AuditSink": "doorward.core.audit",
    "Clock": "doorward.core.clock",
    "utc_now": "doorward.core.clock",
    "AccountPolicy": "doorward.core.deps",
    "Deps": "doorward.core.deps",
    "SessionPolicy": "doorward.core.deps",
    "PasswordHasher": "doorward.core.hashing",
    "Scheme": "doorward.core.hashing",
    "Verdict": "doorward.core.hashing",
    "identify": "doorward.core.hashing",
    "HashPool": "doorward.core.hashpool",
    "Client": "doorward.core.models",
    "LoginResult": "doorward.core.models",
    "NewUser": "doorward.core.models",
    "Session": "doorward.core.models",
    "User": "doorward.core.models",
    "Password": "doorward.core.passwords",
    "PasswordPolicy": "doorward.core.passwords",
    "DEFAULT_PROFILE": "doorward.core.profiles",
    "PROFILES": "doorward.core.profiles",
    "Profile": "doorward.core.profiles",
    "Authenticator": "doorward.core.service",
    "AttemptState": "doorward.core.throttle",
    "Throttle": "doorward.core.throttle",
    "ThrottlePolicy": "doorward.core.throttle",
    "ThrottleStore": "doorward.core.throttle",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_PROFILE",
    "PROFILES",
    "AccountPolicy",
    "Accounts",
    "Admin",
    "AttemptState",
    "AuditEvent",
    "AuditSink",
    "Auditor",
    "Authenticator",
    "Client",
    "Clock",
    "Deps",
    "HashPool",
    "ImportReport",
    "ImportRow",
    "LoginResult",
    "NewUser",
    "Password",
    "PasswordHasher",
    "PasswordPolicy",
    "Profile",
    "Scheme",
    "Session",
    "SessionPolicy",
    "Throttle",
    "ThrottlePolicy",
    "ThrottleStore",
    "User",
    "Verdict",
    "identify",
    "utc_now",
]
