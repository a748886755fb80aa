"""When a dead process's successor starts (doorward/serve/restarts.py): serve's workers and hashers."""

from __future__ import annotations

from doorward.serve.restarts import RESTART_WAITS, STABLE_SECONDS, Restarts


def test_waits_double_while_successors_die_and_reset_once_one_lives() -> None:
    restarts = Restarts(2)
    now = 0.0
    restarts.started(0, now)
    waits = []
    for _ in range(len(RESTART_WAITS) + 1):
        wait = restarts.died(0, now)
        waits.append(wait)
        assert restarts.waiting(0)
        assert restarts.due(0, now + wait) and (wait == 0 or not restarts.due(0, now + wait - 0.1))
        now += wait
        restarts.started(0, now)
        assert not restarts.waiting(0)
    assert waits == [*RESTART_WAITS, RESTART_WAITS[-1]]  # capped at half a minute
    assert not restarts.waiting(1)  # the other place is untouched

    restarts.alive(0, now + STABLE_SECONDS / 2)
    assert restarts.died(0, now + STABLE_SECONDS / 2) == RESTART_WAITS[-1]  # not stable yet
    restarts.started(0, now)
    restarts.alive(0, now + STABLE_SECONDS + 1)
    assert restarts.died(0, now + STABLE_SECONDS + 1) == 0.0  # lived long enough: at once again
