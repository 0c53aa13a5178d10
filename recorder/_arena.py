"""The frame arena: the queue's byte budget as one block of shared memory.

The training thread copies each frame once, into a block of the arena; encoder processes map
the same memory (a ``memfd`` passed once to each) and encode the frame where it lies, so a
worker thread only passes the block's offset. Encoding in threads reads the same blocks.

Blocks are placed first-fit from the lowest offset, so the memory reused is the memory most
recently touched: after warm-up the training thread's copy lands on resident pages, and the
pages touched stay about the peak of the frames waiting, never more than the arena.
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import ctypes.util
import itertools
import logging
import math
import mmap
import os
import sys
import threading
from typing import Any

import numpy as np

from recorder._frames import Image

#: block alignment: whole cache lines for the copy and for swscale's reads.
ALIGN = 64
_PAGE = mmap.PAGESIZE
_ids = itertools.count(1)
_MADV_POPULATE_WRITE = 23  # Linux >= 5.14: fault pages in, writable, contents unchanged
logger = logging.getLogger("recorder")


MAX_SPARE_SHAPES = 4  # frame shapes whose freed blocks are kept whole


def _rounded(nbytes: int) -> int:
    return -(-nbytes // ALIGN) * ALIGN


def arena_size(budget: int) -> int:
    """The arena for a byte budget: the budget plus a little room for alignment, in pages.

    The queue charges frames at their own size; blocks are rounded up to :data:`ALIGN`, and
    the ~3% extra keeps that rounding from refusing a frame the budget has room for.
    """
    size = budget + budget // 32 + ALIGN
    return -(-size // _PAGE) * _PAGE


class Arena:
    """Shared memory for frames waiting to be encoded, and its first-fit block allocator.

    Not thread-safe by itself: :class:`~recorder._queue.ClipQueue` calls it under its lock.

    Args:
        size: bytes of address space (mapped lazily: only touched pages use memory).
    """

    def __init__(self, size: int) -> None:
        #: identifies this arena to encoder processes (which cache its mapping by it).
        self.id = next(_ids)
        self.size = size
        #: the memfd encoder processes map; None where there is none (then each frame is
        #: copied once more, into memory of its own, for an encoder process).
        self.fd: int | None = None
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create("recorder-arena", os.MFD_CLOEXEC)
            try:
                os.ftruncate(fd, size)
                self._map = mmap.mmap(fd, size)
                self.fd = fd
            except OSError as e:  # e.g. EFBIG under a file-size limit (RLIMIT_FSIZE)
                os.close(fd)
                logger.info("frame memory not shareable (%s): using private memory", e)
            except BaseException:
                os.close(fd)
                raise
        if self.fd is None:  # thread-only platforms: the same allocator over private memory
            self._map = mmap.mmap(-1, size)
        self.memory: np.ndarray[Any, np.dtype[np.uint8]] = np.frombuffer(self._map, np.uint8)
        self.base = self.memory.ctypes.data
        # Free blocks as parallel sorted lists of start offsets and sizes.
        self._starts: list[int] = [0]
        self._sizes: list[int] = [size]
        self.high_water = 0  # end of the highest block ever handed out
        # Freed blocks kept whole, by shape, for the next frame of that shape: a list pop on
        # the training thread's path instead of a free-list search and a new view.
        self._spare: dict[tuple[int, ...], list[Image]] = {}
        self._spare_bytes = 0
        self._close_lock = threading.Lock()

    def alloc(self, shape: tuple[int, ...]) -> Image | None:
        """A block for one frame of *shape*, or None when no free block is large enough."""
        spare = self._spare.get(shape)
        if spare:
            reused = spare.pop()
            self._spare_bytes -= _rounded(reused.nbytes)
            return reused
        block = self._first_fit(shape)
        if block is None and self._spare_bytes:
            self._unspare()  # merged back, the spares may make room for this shape
            block = self._first_fit(shape)
        return block

    def _first_fit(self, shape: tuple[int, ...]) -> Image | None:
        size = math.prod(shape)
        nbytes = _rounded(size)
        sizes = self._sizes
        for i, free in enumerate(sizes):
            if free >= nbytes:
                start = self._starts[i]
                if free == nbytes:
                    del self._starts[i], sizes[i]
                else:
                    self._starts[i] = start + nbytes
                    sizes[i] = free - nbytes
                self.high_water = max(self.high_water, start + nbytes)
                return self.memory[start : start + size].reshape(shape)
        return None

    def free(self, block: Image) -> None:
        """Give a block from :meth:`alloc` back (kept for the next frame of its shape)."""
        spare = self._spare.get(block.shape)
        if spare is None:
            if len(self._spare) >= MAX_SPARE_SHAPES:
                self._merge(block)
                return
            spare = self._spare[block.shape] = []
        spare.append(block)
        self._spare_bytes += _rounded(block.nbytes)

    def _unspare(self) -> None:
        for spare in self._spare.values():
            for block in spare:
                self._merge(block)
        self._spare.clear()
        self._spare_bytes = 0

    def _merge(self, block: Image) -> None:
        """Return *block* to the free lists, merged with its free neighbours."""
        start = block.ctypes.data - self.base
        nbytes = _rounded(block.nbytes)
        starts, sizes = self._starts, self._sizes
        i = bisect.bisect_left(starts, start)
        if i > 0 and starts[i - 1] + sizes[i - 1] == start:  # merge with the block before
            i -= 1
            start = starts[i]
            nbytes += sizes[i]
            del starts[i], sizes[i]
        if i < len(starts) and start + nbytes == starts[i]:  # ... and the one after
            nbytes += sizes[i]
            del starts[i], sizes[i]
        starts.insert(i, start)
        sizes.insert(i, nbytes)

    def populate(self, start: int, end: int) -> bool:
        """Fault in the pages of ``[start, end)`` now, without changing what they hold.

        Runs without the GIL (a ctypes call), so the thread that does it stops nobody; the
        training thread's copy into those pages then takes no page fault. Returns False
        where the kernel cannot do it (then nothing was done).
        """
        start -= start % _PAGE
        end = min(self.size, -(-end // _PAGE) * _PAGE)
        if end <= start:
            return True
        if _madvise is None:
            return False
        address = ctypes.c_void_p(self.base + start)
        return bool(_madvise(address, end - start, _MADV_POPULATE_WRITE) == 0)

    def offset(self, image: Image) -> int | None:
        """Where *image* lies in the arena (a block of it), or None if it is not in it."""
        start = image.ctypes.data - self.base
        if start >= 0 and start + image.nbytes <= self.size and image.flags.c_contiguous:
            return start
        return None

    @property
    def free_bytes(self) -> int:
        """Bytes in free blocks."""
        return sum(self._sizes) + self._spare_bytes

    def close(self) -> None:
        """Release the memory (once no frame view of it is left; else when they are gone)."""
        with self._close_lock:
            self._spare.clear()
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None
            self.memory = np.empty(0, np.uint8)
            # A view still alive somewhere: the map goes with the last of them.
            with contextlib.suppress(BufferError):
                self._map.close()


def _libc_madvise() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        madvise = libc.madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise


# A CDLL function releases the GIL while it runs (mmap.madvise would hold it).
_madvise = _libc_madvise() if sys.platform == "linux" else None
