"""Counting what use cases end in, for the Metrics port: ``counted`` on the method, and ``NoMetrics``.

One decorator per use case, rather than a count beside each of its ``raise``: the outcome is
"success" or the raised DoorwardError's ``code`` (a class attribute: a fixed set of words), so a
new failure a use case learns is counted without anyone remembering to.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Concatenate, ParamSpec, Protocol, TypeVar

from doorward.core.errors import DoorwardError
from doorward.core.password_hashes import HashOp
from doorward.core.ports import Action

if TYPE_CHECKING:
    from doorward.core.deps import Deps

P = ParamSpec("P")
R = TypeVar("R")


class NoMetrics:
    """The Metrics port when metrics are off (and in the CLI): every call does nothing."""

    def outcome(self, action: Action, outcome: str) -> None:
        """Nothing."""

    def hash_slots(self, busy: int, queued: int) -> None:
        """Nothing."""

    def hash_refused(self) -> None:
        """Nothing."""

    def hashed(self, op: HashOp, seconds: float) -> None:
        """Nothing."""


def outcome_of(exc: BaseException) -> str:
    """The outcome label of a use case that raised ``exc``: its code, or "error" for a bug."""
    return exc.code if isinstance(exc, DoorwardError) else "error"


class _UseCase(Protocol):
    _deps: Deps


S = TypeVar("S", bound=_UseCase)
UseCase = Callable[Concatenate[S, P], Awaitable[R]]


def counted(action: Action) -> Callable[[UseCase[S, P, R]], UseCase[S, P, R]]:
    """Count each call of the decorated use case (a method of a class holding ``_deps``) under
    ``action``, by outcome. A cancelled call (the client went away) is not an outcome: not counted."""

    def decorate(method: UseCase[S, P, R]) -> UseCase[S, P, R]:
        @functools.wraps(method)
        async def counting(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            try:
                result = await method(self, *args, **kwargs)
            except Exception as exc:
                self._deps.metrics.outcome(action, outcome_of(exc))
                raise
            self._deps.metrics.outcome(action, "success")
            return result

        return counting

    return decorate
