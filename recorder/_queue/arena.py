"""The frame arena: the queue's byte budget as one mapping of shared memory.

The training thread copies each frame once, into a block of the arena; encoder processes map
the same memory (a ``memfd`` passed once to each) and encode the frame where it lies, so a
worker thread only passes the block's offset. Encoding in threads reads the same blocks.
Which bytes hold which frame is :class:`~recorder._queue.memory.FrameMemory`'s business.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import logging
import mmap
import os
import sys
import threading
from typing import Any

import numpy as np

from recorder._base.frames import Image

#: block alignment: whole cache lines for the copy and for swscale's reads.
ALIGN = 64
_PAGE = mmap.PAGESIZE
_ids = itertools.count(1)
_MADV_POPULATE_WRITE = 23  # Linux >= 5.14: fault pages in, writable, contents unchanged
_MADV_REMOVE = 9  # Linux: free the pages of a shared mapping (they read as zeros after)
logger = logging.getLogger("recorder")


def rounded(nbytes: int) -> int:
    """*nbytes* rounded up to whole :data:`ALIGN` units (a block's size)."""
    return -(-nbytes // ALIGN) * ALIGN


def arena_size(budget: int) -> int:
    """The arena for a byte budget: the budget plus a little room for alignment, in pages.

    The queue charges frames at their own size; blocks are rounded up to :data:`ALIGN`, and
    the ~3% extra keeps that rounding from refusing a frame the budget has room for.
    """
    size = budget + budget // 32 + ALIGN
    return -(-size // _PAGE) * _PAGE


class Arena:
    """Shared memory for frames waiting to be encoded (a memfd where there is one).

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
        self._close_lock = threading.Lock()

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

    def close(self) -> None:
        """Release the memory (called once nobody reads a frame in it any more).

        A frame view still alive somewhere (an error kept with its traceback, say) keeps the
        mapping until it goes; its pages are given back now all the same (they read as zeros).
        """
        with self._close_lock:
            fd, self.fd = self.fd, None  # forgotten first: a Ctrl-C must not close it twice
            if fd is not None:
                os.close(fd)
            self.memory = np.empty(0, np.uint8)
            try:
                self._map.close()
            except BufferError:
                if _madvise is not None and not self._map.closed:
                    _madvise(ctypes.c_void_p(self.base), self.size, _MADV_REMOVE)


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
