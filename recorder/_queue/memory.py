"""The frame memory: the byte budget, the blocks of the arena it hands out, and prefaulting.

Not thread-safe by itself: every method runs under the queue's lock, which the memory shares
(its prefault loop takes it for itself).

Blocks are placed first-fit from the lowest offset, so the memory reused is the memory most
recently touched: after warm-up the training thread's copy lands on resident pages, and the
pages touched stay about the peak of the frames waiting, never more than the arena. Freed
blocks are kept whole per shape (a few shapes) for the next frame of that shape.

A KeyboardInterrupt can land in the training thread wherever CPython checks for signals: at
a function's start, after a call returns, at a loop's turn. :meth:`FrameMemory.alloc` makes
all its changes after its last call, so an interrupted allocation changed nothing or is
complete (and ``inflight`` says which block); a release is charged off the budget first, so
an interrupted one can only leave a block unused until the arena is closed.

Invariants, under the lock:

* ``queued_bytes`` is the size of the frames not yet released (and of finished videos held
  for a sink); it never exceeds ``max_bytes``, except by a single frame larger than the
  whole budget, given its own buffer when nothing else is queued.
* A frame that fits the budget always gets a block: of ``arena`` when it has a free one
  large enough, else (the arena fragmented by frames of several sizes) memory of its own.
* ``inflight`` is the last block handed out, until the queue has put its frame in a clip.
* ``[0, prefaulted)`` of the arena is faulted in; the prefault thread moves it ahead of
  ``high_water`` (outside the lock: the contents of the pages never change).
"""

from __future__ import annotations

import bisect
import math
import threading

import numpy as np

from recorder._base.frames import Image
from recorder._queue.arena import Arena, arena_size, rounded

#: frame shapes whose freed blocks are kept whole.
MAX_SPARE_SHAPES = 4

#: arena memory the prefault thread keeps faulted in beyond the highest block used, in frames.
AHEAD_FRAMES = 16


class FrameMemory:
    """Blocks for copied frames, charged to ``max_bytes``; ``queued_bytes`` are in use."""

    def __init__(self, lock: threading.Lock, max_bytes: int, *, prefault: bool) -> None:
        self.max_bytes = max_bytes
        self.arena = Arena(arena_size(max_bytes))
        self.queued_bytes = 0
        self.peak_queued_bytes = 0
        #: the block :meth:`alloc` handed out last, until its frame is queued (the queue clears
        #: it): what a KeyboardInterrupt in between gives back (recorder._queue.queue); and the
        #: bytes it was charged.
        self.inflight: Image | None = None
        self.inflight_bytes = 0
        # Free blocks of the arena as (start, size) pairs, sorted by start.
        self._free: list[tuple[int, int]] = [(0, self.arena.size)]
        self.high_water = 0  # end of the highest block ever handed out
        # Freed blocks kept whole, by shape, for the next frame of that shape: a list pop on
        # the training thread's path instead of a free-list search and a new view.
        self._spare: dict[tuple[int, ...], list[Image]] = {}
        self._spare_bytes = 0
        # The prefault thread waiting for the queue to near the arena memory faulted in.
        self._low_stock = threading.Condition(lock)
        self.prefaulted = 0  # arena bytes [0, prefaulted) are faulted in
        self._ahead = 0  # bytes to keep faulted in beyond high_water
        self.prefaulting = prefault
        self._asked = False  # the prefault thread was woken and has not taken a target yet
        self._stopping = False

    def alloc(self, shape: tuple[int, ...], extra: int = 0) -> Image | None:
        """A block for one frame of *shape*, charged to the budget with *extra* bytes (its
        per-frame info); None when it does not fit.

        A frame that fits the budget always gets a block: of the arena when a free one is
        large enough, else memory of its own (the arena fragmented by frames of several
        sizes: the frame then costs one more copy for an encoder process, never a drop).
        A frame larger than the whole budget gets memory of its own when nothing else is
        queued. The block is ``inflight`` until the caller clears it.
        """
        frame_bytes = math.prod(shape)
        nbytes = frame_bytes + extra
        size = rounded(frame_bytes)
        fits = self.queued_bytes + nbytes <= self.max_bytes
        if not fits and self.queued_bytes:
            return None
        spare = self._spare.get(shape) if fits else None
        place = None
        if spare:
            block = spare[-1]
        else:
            place = self._first_fit(shape, frame_bytes, size) if fits else None
            block = np.empty(shape, np.uint8) if place is None else place[2]
        # No call from here to the return: interrupted before, nothing changed.
        if spare:
            self._spare_bytes -= size
            del spare[-1]
        elif place is not None:
            i, start, _ = place
            free = self._free[i][1]
            if free > size:
                self._free[i] = (start + size, free - size)
            else:
                del self._free[i]
            if start + size > self.high_water:  # noqa: PLR1730 (max() is a call)
                self.high_water = start + size
        self.queued_bytes += nbytes
        if self.queued_bytes > self.peak_queued_bytes:  # noqa: PLR1730 (max() is a call)
            self.peak_queued_bytes = self.queued_bytes
        self.inflight = block
        self.inflight_bytes = nbytes
        return block

    def _first_fit(
        self, shape: tuple[int, ...], nbytes: int, size: int
    ) -> tuple[int, int, Image] | None:
        """Where a block of *size* bytes goes (free-list index, start) and its view; merges
        the spares back when nothing else fits."""
        for attempt in range(2):
            for i, (start, free) in enumerate(self._free):
                if free >= size:
                    return i, start, self.arena.memory[start : start + nbytes].reshape(shape)
            if attempt or not self._spare_bytes:
                break
            self._unspare()
        return None

    def prefault_ahead(self, nbytes: int) -> None:
        """A block of *nbytes* was handed out: have the prefault thread keep ahead of it."""
        if (
            self.prefaulting
            and not self._asked  # else a notify per frame while the thread waits
            and self.high_water + self._ahead > self.prefaulted
        ):
            self._ahead = max(self._ahead, AHEAD_FRAMES * nbytes)
            self._asked = True
            self._low_stock.notify()

    def charge(self, nbytes: int) -> None:
        """Count *nbytes* held outside the arena (a video on its way to a sink)."""
        self.queued_bytes += nbytes
        self.peak_queued_bytes = max(self.peak_queued_bytes, self.queued_bytes)

    def uncharge(self, nbytes: int) -> None:
        """Those bytes are gone."""
        self.queued_bytes -= nbytes

    def release(self, block: Image, nbytes: int) -> None:
        """Give back the block of one frame: uncharged from the budget, then freed."""
        self.queued_bytes -= nbytes
        self.free(block)

    def free(self, block: Image) -> None:
        """Put an uncharged *block* back for the next frames (interrupted: unused until close)."""
        if self.arena.offset(block) is None:
            return  # memory of its own
        spare = self._spare.get(block.shape)
        if spare is None:
            if len(self._spare) >= MAX_SPARE_SHAPES:
                self._merge(block)
                return
            spare = self._spare[block.shape] = []
        size = rounded(block.nbytes)
        self._spare_bytes += size
        spare.append(block)

    def _unspare(self) -> None:
        for spare in list(self._spare.values()):
            while spare:
                block = spare[-1]
                size = rounded(block.nbytes)
                self._spare_bytes -= size
                del spare[-1]
                self._merge(block)  # (interrupted here: the block is unused until close)
        self._spare.clear()

    def _merge(self, block: Image) -> None:
        """Return *block* to the free list, merged with its free neighbours."""
        start = block.ctypes.data - self.arena.base
        size = rounded(block.nbytes)
        free = self._free
        i = j = bisect.bisect_left(free, (start,))
        if i > 0 and free[i - 1][0] + free[i - 1][1] == start:  # merge with the block before
            i -= 1
            start = free[i][0]
            size += free[i][1]
        if j < len(free) and start + size == free[j][0]:  # ... and the one after
            size += free[j][1]
            j += 1
        free[i:j] = [(start, size)]

    @property
    def free_bytes(self) -> int:
        """Bytes of the arena in free blocks (spares included)."""
        return sum(size for _, size in self._free) + self._spare_bytes

    def fits(self, nbytes: int) -> bool:
        """Whether a frame of *nbytes* would get a block now (a hint: read without the lock)."""
        queued = self.queued_bytes
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
                    target = min(arena.size, self.high_water + self._ahead)
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
        in_use = self.arena.size - self.free_bytes
        # Blocks are rounded to the arena's alignment: clipped to the budget.
        return min(max(0, self.high_water - in_use), max(0, self.max_bytes - self.queued_bytes))

    def close(self) -> None:
        """Release the shared memory (after the workers and encoder processes exited)."""
        self._spare.clear()
        self.arena.close()
