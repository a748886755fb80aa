"""doorward's core: accounts, passwords, tokens and sessions in plain Python (no framework, no driver)."""

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
