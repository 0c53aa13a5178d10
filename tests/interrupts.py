"""KeyboardInterrupt at every point where CPython could raise it in a call, for the tests.

CPython runs a signal handler (and so raises KeyboardInterrupt) in the main thread only where
it checks for pending signals: at a function's start, after a call returns, at a loop's
backward jump. :class:`Interrupts` traces a call and counts those points in every Python frame
it runs (any call's return counts, a Python function's too: stricter than CPython); with
``at=k`` it raises KeyboardInterrupt at the k-th of them.

A trace function can raise only before an instruction: after a call, it raises at the next
one, which stands for the call's own check when both are in the same try block (a ``with``
block's, say). Where they are not, the point is left out: CPython would raise inside the
block, the tracer outside it.
"""

from __future__ import annotations

import dis
import gc
import sys
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

_CALLS = {"CALL", "CALL_FUNCTION_EX", "CALL_INTRINSIC_1", "CALL_KW"}
_BACK = {"JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT"}
_points: dict[CodeType, frozenset[int]] = {}


def _handler(table: list[Any], offset: int) -> int | None:
    """Where an exception raised at *offset* goes (the try block's handler), if anywhere."""
    for entry in table:
        if entry.start <= offset < entry.end:
            return int(entry.target)
    return None


def _checked_offsets(code: CodeType) -> frozenset[int]:
    """Offsets of the instructions run right after a call, and of backward jumps."""
    found = _points.get(code)
    if found is None:
        table = dis._parse_exception_table(code)  # type: ignore[attr-defined]
        offsets: set[int] = set()
        previous = None
        for ins in dis.get_instructions(code):
            if ins.opname in _BACK or (
                previous is not None
                and previous.opname in _CALLS
                and _handler(table, previous.offset) == _handler(table, ins.offset)
            ):
                offsets.add(ins.offset)
            previous = ins
        found = _points[code] = frozenset(offsets)
    return found


class Interrupts:
    """Count the interruption points of a call, or raise KeyboardInterrupt at one of them.

    Args:
        at: the point to raise at (0-based); None only counts.
        skip: files (path endings) whose points are left out.
    """

    def __init__(self, at: int | None = None, skip: tuple[str, ...] = ()) -> None:
        self.at = at
        self.skip = skip
        self.count = 0
        self.raised = False
        self.where = ""  # the function and line it raised at

    def run(self, call: Callable[[], Any]) -> Any:
        """Run *call* traced (in this thread only), without garbage collection: a finalizer
        run by a collection would add points to one run and not the next."""
        gc.disable()
        sys.settrace(self._global)
        try:
            return call()
        finally:
            sys.settrace(None)
            gc.enable()

    def _point(self, frame: FrameType) -> None:
        if self.skip and frame.f_code.co_filename.endswith(self.skip):
            return
        k = self.count
        self.count += 1
        if k == self.at:
            self.raised = True
            self.where = f"{frame.f_code.co_qualname}:{frame.f_lineno}"
            raise KeyboardInterrupt(self.where)

    def _global(self, frame: FrameType, event: str, arg: object) -> Any:
        if event != "call":
            return None
        frame.f_trace_opcodes = True
        self._point(frame)  # a function's start
        return self._local

    def _local(self, frame: FrameType, event: str, arg: object) -> Any:
        if event == "opcode" and frame.f_lasti in _checked_offsets(frame.f_code):
            self._point(frame)
        return self._local
