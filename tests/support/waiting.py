"""Polling for a condition in tests, bounded in time."""

from __future__ import annotations

import time


def wait_until(predicate, timeout: float, what, interval: float = 0.2):
    """predicate()'s first truthy value; fails the test after `timeout` seconds saying
    `what` (a string, or a callable giving it, so the failure shows the final state)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, (
            f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(interval)
