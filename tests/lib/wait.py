"""The one place where the Python tests wait (tests/lib/wait.sh's twin).

A test waits for the event it needs, never for time: wait_until() runs a condition until it
holds, with a short growing pause between tries, and its deadline only bounds a hang. The
deadline is multiplied by $AVATARD_TEST_TIME_SCALE (scripts/test sets it per leg), so a slow
leg waits longer but asserts the same things. scripts/lint-test-waits rejects any other sleep
in tests/.
"""

import os
import time

__all__ = ["TIME_SCALE", "scaled", "wait_until"]


def _scale() -> int:
    try:
        n = int(os.environ.get("AVATARD_TEST_TIME_SCALE", "1"))
    except ValueError:
        return 1
    return n if n >= 1 else 1


#: The deadline factor (a whole number, at least 1).
TIME_SCALE = _scale()


def scaled(seconds: float) -> float:
    """seconds times the deadline factor, for a deadline handed to the code under test."""
    return seconds * TIME_SCALE


def wait_until(seconds: float, cond, *args) -> bool:
    """Calls cond(*args) until it returns a true value; False once seconds (scaled) passed."""
    deadline = time.monotonic() + seconds * TIME_SCALE
    pause = 0.01
    while True:
        if cond(*args):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(0.1, pause * 2)
