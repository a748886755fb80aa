"""Named, dated argon2id cost profiles: production uses OWASP's, tests the cheapest."""

from __future__ import annotations

from dataclasses import dataclass

import argon2


@dataclass(frozen=True)
class Profile:
    """Argon2id parameters. ``memory_cost`` is in KiB."""

    name: str
    time_cost: int
    memory_cost: int
    parallelism: int
    hash_len: int = 32
    salt_len: int = 16

    def argon2id(self) -> argon2.PasswordHasher:
        """argon2-cffi's hasher with exactly these parameters (doorward's, and the benchmark's reference)."""
        return argon2.PasswordHasher(
            time_cost=self.time_cost,
            memory_cost=self.memory_cost,
            parallelism=self.parallelism,
            hash_len=self.hash_len,
            salt_len=self.salt_len,
            type=argon2.Type.ID,
        )


OWASP_2023 = Profile("owasp-2023", time_cost=2, memory_cost=19_456, parallelism=1)
"""OWASP Password Storage Cheat Sheet (2023 revision) and ASVS 5.0 appendix C: 19 MiB, 2 passes."""

RFC_9106_LOW_MEMORY = Profile("rfc9106-low-memory", time_cost=3, memory_cost=65_536, parallelism=4)
"""RFC 9106's second recommendation: 64 MiB, 3 passes, 4 lanes. Costs ~3x the memory of OWASP's."""

TESTING = Profile("testing", time_cost=1, memory_cost=8, parallelism=1, hash_len=16, salt_len=8)
"""Testing only: the cheapest parameters argon2 accepts. Never use it for real accounts."""

PROFILES: dict[str, Profile] = {p.name: p for p in (OWASP_2023, RFC_9106_LOW_MEMORY, TESTING)}
DEFAULT_PROFILE = OWASP_2023
