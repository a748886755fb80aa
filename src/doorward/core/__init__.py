"""doorward's core: accounts, passwords, tokens and sessions in plain Python (no framework, no driver)."""

from doorward.core.clock import Clock, utc_now
from doorward.core.hashing import PasswordHasher, Scheme, Verdict, identify
from doorward.core.hashpool import HashPool
from doorward.core.models import Client, LoginResult, NewUser, Session, User
from doorward.core.passwords import Password, PasswordPolicy
from doorward.core.profiles import DEFAULT_PROFILE, PROFILES, Profile
from doorward.core.service import Authenticator, ImportReport, ImportRow, SessionPolicy

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILES",
    "Authenticator",
    "Client",
    "Clock",
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
    "User",
    "Verdict",
    "identify",
    "utc_now",
]
