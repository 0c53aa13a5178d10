"""Filtering a list in a frame of its own, for code under a lock or in a ``try``.

On Python 3.13 a list comprehension is inlined into its caller's frame, and the jumps of its
``if`` filter lie outside the frame's exception table: a Ctrl-C whose ``KeyboardInterrupt``
lands on one leaves the frame without running the caller's ``with lock:`` exit or ``finally``
(the lock stays held; every later call waits for it). Called, the comprehension runs in this
module's frame and the exception comes out of the call, which the caller's handlers cover.
``tests/test_layout.py`` keeps filtered comprehensions out of ``with`` and ``try`` bodies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def kept(items: Iterable[T], keep: Callable[[T], object]) -> list[T]:
    """The items of *items* for which *keep* is true, in order."""
    return [item for item in items if keep(item)]
