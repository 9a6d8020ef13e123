"""Waiting on a condition with a deadline, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_for"]


def wait_for(
    condition: Callable[[], bool], what: str, seconds: float, every_s: float = 0.01
) -> None:
    """Call ``condition`` every ``every_s`` until it is true; fail naming ``what`` after
    ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(every_s)
