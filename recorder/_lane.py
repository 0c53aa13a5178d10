"""The training thread's fast path: a clip's next frames copied into blocks reserved for it.

Right after ``env.render()`` the interpreter's caches are cold, so every object an append
touches costs about a microsecond (docs/design.md). A clip fed by one producer therefore gets
a :class:`Lane`: a few arena blocks charged to the budget ahead of time. :func:`put` only
copies the frame into the next of them, without the queue's lock: ``spare`` and ``out`` are
deques, whose appends and pops are atomic, the producer pops ``spare`` and appends to ``out``,
everyone else only under the lock. The queue counts the lane's frames into their clip when
its blocks run out, and before anyone else looks (stats, flush, end, drop, close): see
:mod:`recorder._queue_core`.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

import numpy as np

from recorder._frames import FrameFormat, Image

if TYPE_CHECKING:
    from recorder._clip import Clip
    from recorder._queue_core import QueueCore

#: what the fast path takes (anything else takes the full path, which validates).
NDARRAY = np.ndarray
UINT8 = np.dtype(np.uint8)


class Lane:
    """Blocks reserved for one clip's next frames, and the frames copied into them.

    A *spent* lane takes no more frames (its spare blocks went back to the budget); a frame
    its producer copied while it was being spent is counted by :meth:`QueueCore._settle`.
    """

    __slots__ = ("clip", "fmt", "out", "queue", "shape", "spare", "spent")

    def __init__(self, queue: QueueCore, clip: Clip, fmt: FrameFormat) -> None:
        self.queue = queue
        self.clip = clip
        self.fmt = fmt
        self.shape = fmt.shape
        #: reserved blocks, each with its byte view (made once: the copy's destination).
        self.spare: collections.deque[tuple[Image, memoryview]] = collections.deque()
        self.out: collections.deque[Image] = collections.deque()  # frames not yet counted
        self.spent = False


def suits(image: Image, fmt: FrameFormat) -> bool:
    """Whether :func:`put` takes frames like *image* (the caller's own array) for *fmt*."""
    return type(image) is NDARRAY and image.shape == fmt.shape and image.flags.c_contiguous


def put(lane: Lane, frame: Any) -> bool:
    """Copy *frame* into *lane*'s next block: the whole append, when it returns True.

    False, with nothing done, for anything but a C-contiguous uint8 ndarray of the clip's
    shape, or a spent lane: the caller then takes the full path, which validates and raises.
    """
    if type(frame) is not NDARRAY or frame.dtype is not UINT8 or frame.shape != lane.shape:
        return False
    try:
        source = frame.data.cast("B")  # TypeError: not C-contiguous
        block, view = lane.spare.pop()  # IndexError: none left
    except (TypeError, IndexError):
        return False
    try:
        # A memoryview copy keeps the GIL (see copy_into): no worker cuts in mid-append.
        view[:] = source
        lane.out.append(block)
    except BaseException:  # KeyboardInterrupt: the block must not be lost to the budget
        lane.queue._give_back(lane, block, view)
        raise
    if lane.spent or not lane.spare:
        lane.queue._settle(lane)
    return True
