"""What a clip is: the state its episode, the queue and its worker share, and its frames."""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recorder._frames import FrameFormat, Image
from recorder._results import ClipHandle, ClipKind

if TYPE_CHECKING:
    from recorder._encoder import Encoder
    from recorder._lane import Lane


class Item:
    """One copied frame, shared by every clip that wants it."""

    __slots__ = ("buffer", "nbytes", "refs")

    def __init__(self, buffer: Image, nbytes: int) -> None:
        self.buffer = buffer
        self.nbytes = nbytes
        self.refs = 0


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


END = _Marker("END")  #: in ``clip.items``: the clip is complete, finish the file.
DROP = _Marker("DROP")  #: handed to a worker for a dropped clip: discard the file.
#: handed to a worker that holds frames of its clip and should move on: let the encoder
#: finish with them, release them, then take work again (see :meth:`ClipQueue.take`).
YIELD = _Marker("YIELD")
Work = Item | _Marker


@dataclass(eq=False)
class Clip:
    """One video on its way to disk. Fields below ``handle`` belong to the queue's lock."""

    name: str
    path: Path
    kind: ClipKind
    index: int | None
    fps: float
    handle: ClipHandle
    limit: float  # frames this clip takes at most (video_length or inf)
    # The episode's user metadata: shared with the caller until the clip ends, then a copy.
    metadata: dict[str, Any] | None = None
    episode_index: int | None = None
    first_step: int | None = None
    started: float = field(default_factory=time.time)
    items: collections.deque[Work] = field(default_factory=collections.deque)
    frames: int = 0  # frames enqueued
    enqueued: int = 0  # work units enqueued (frames and END)
    processed: int = 0
    wake_at: float = math.inf  # a flush() waits for processed >= wake_at: notify it then
    ended: bool = False
    drop_reason: str | None = None
    failed: bool = False
    owned: bool = False
    ready: bool = False
    finished: bool = False
    published: bool = False  # renamed to its final name: too late to drop
    lane: Lane | None = None  # blocks reserved for its next frames (recorder._lane)
    # The owning worker's state:
    frame_format: FrameFormat | None = None
    encoder: Encoder | None = None
    tmp_path: str | None = None
    tmp_fd: int | None = None  # held open from creation to rename: it names our own file
    # Frames passed to an encoder that reads them later (an encoder process), not yet
    # released; the encoder's count of frames it is done with, and how many were released.
    held: collections.deque[Item] = field(default_factory=collections.deque)
    released: Callable[[], int] | None = None
    freed: int = 0
    written: int = 0
    encode_seconds: float = 0.0

    @property
    def accepting(self) -> bool:
        """Whether frames may still be appended."""
        return not (self.ended or self.drop_reason is not None or self.failed)
