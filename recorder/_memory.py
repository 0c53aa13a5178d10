"""The frame memory: the byte budget, the shared-memory arena it lives in, and its prefaulting.

Not thread-safe by itself: every method runs under the queue's lock, which the memory shares
(its prefault loop takes it for itself). Invariants, under that lock:

* ``queued_bytes`` is the size of the frames not yet released, and of the blocks reserved for
  lanes (``reserved``, see :mod:`recorder._lane`); it never exceeds ``max_bytes``,
  except by a single frame larger than the whole budget, given its own buffer when nothing
  else is queued. Every other frame is a block of ``arena``.
* ``[0, prefaulted)`` of the arena is faulted in; the prefault thread moves it ahead of
  ``arena.high_water`` (outside the lock: the contents of the pages never change).
"""

from __future__ import annotations

import threading

import numpy as np

from recorder._arena import Arena, arena_size
from recorder._frames import FrameFormat, Image

#: arena memory the prefault thread keeps faulted in beyond the highest block used, in frames.
AHEAD_FRAMES = 16


class FrameMemory:
    """Blocks for copied frames, charged to ``max_bytes``; ``queued_bytes`` are in use."""

    def __init__(self, lock: threading.Lock, max_bytes: int, *, prefault: bool) -> None:
        self.max_bytes = max_bytes
        self.arena = Arena(arena_size(max_bytes))
        self.queued_bytes = 0
        self.peak_queued_bytes = 0
        #: of queued_bytes, blocks reserved for lanes and not holding a frame yet.
        self.reserved = 0
        # The prefault thread waiting for the queue to near the arena memory faulted in.
        self._low_stock = threading.Condition(lock)
        self.prefaulted = 0  # arena bytes [0, prefaulted) are faulted in
        self._ahead = 0  # bytes to keep faulted in beyond arena.high_water
        self.prefaulting = prefault
        self._asked = False  # the prefault thread was woken and has not taken a target yet
        self._stopping = False

    def alloc(self, fmt: FrameFormat) -> Image | None:
        """A block for one frame of *fmt*, charged to the budget; None when it does not fit.

        A frame larger than the whole budget gets its own buffer when nothing else is queued.
        """
        nbytes = fmt.nbytes
        if self.queued_bytes + nbytes <= self.max_bytes:
            buffer = self.arena.alloc(fmt.shape)
            if buffer is not None:
                self._charge(nbytes)
                if (
                    self.prefaulting
                    and not self._asked  # else a notify per frame while the thread waits
                    and self.arena.high_water + self._ahead > self.prefaulted
                ):
                    self._ahead = max(self._ahead, AHEAD_FRAMES * nbytes)
                    self._asked = True
                    self._low_stock.notify()
                return buffer
        if self.queued_bytes == 0:  # larger than the arena (or the whole budget)
            self._charge(nbytes)
            return np.empty(fmt.shape, np.uint8)
        return None

    def _charge(self, nbytes: int) -> None:
        self.queued_bytes += nbytes
        self.peak_queued_bytes = max(self.peak_queued_bytes, self.queued_bytes - self.reserved)

    def release(self, buffer: Image, nbytes: int) -> None:
        """Give back the block of one frame (uncharged from the budget)."""
        self.queued_bytes -= nbytes
        if self.arena.offset(buffer) is not None:
            self.arena.free(buffer)

    def fits(self, nbytes: int) -> bool:
        """Whether a frame of *nbytes* would get a block now (a hint: read without the lock)."""
        queued = self.queued_bytes - self.reserved  # a producer short of room reclaims those
        return queued == 0 or queued + nbytes <= self.max_bytes

    def prefault(self) -> None:
        """The prefault thread's loop: fault arena pages in ahead of the training thread's copy.

        A fresh page of shared memory costs the copy ~10x (zeroed and mapped by the kernel).
        Pages stay faulted in, up to the peak of the frames waiting plus the frames ahead.
        """
        arena = self.arena
        lock = self._low_stock
        while True:
            with lock:
                while True:
                    if self._stopping or not self.prefaulting:
                        return
                    target = min(arena.size, arena.high_water + self._ahead)
                    self._asked = False
                    if target > self.prefaulted:
                        break
                    self._low_stock.wait()
                start = self.prefaulted
            done = arena.populate(start, target)  # without the lock, and without the GIL
            with lock:
                if not done:
                    self.prefaulting = False  # an old kernel: the copy faults its pages
                self.prefaulted = max(self.prefaulted, target)

    def stop(self) -> None:
        """End the prefault loop."""
        self._stopping = True
        self._low_stock.notify_all()

    def pooled_bytes(self) -> int:
        """Arena memory written before and free now (resident until the arena is closed)."""
        arena = self.arena
        in_use = arena.size - arena.free_bytes
        # Blocks are rounded to the arena's alignment: clipped to the budget.
        return min(max(0, arena.high_water - in_use), max(0, self.max_bytes - self.queued_bytes))

    def close(self) -> None:
        """Release the shared memory (after the workers and encoder processes exited)."""
        self.arena.close()
