"""What a clip is: its life as one state, the frames it shares with other clips, its markers."""

from __future__ import annotations

import collections
import enum
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recorder._base.frames import FrameFormat, Image
from recorder._base.info import Info
from recorder._base.results import ClipHandle, ClipKind

if TYPE_CHECKING:
    from recorder._base.codec import Encoder


class Item:
    """One copied frame, shared by every clip that wants it (*refs* of them); *nbytes*
    counts its *info* (checked per-frame data) too."""

    __slots__ = ("buffer", "info", "nbytes", "refs")

    def __init__(self, buffer: Image, nbytes: int, refs: int = 0, info: Info | None = None) -> None:
        self.buffer = buffer
        self.nbytes = nbytes
        self.refs = refs
        self.info = info


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


class State(enum.Enum):
    """A clip's life. Moves only as :data:`MOVES` says, under the queue's lock.

    ``OPEN`` takes frames; ``ENDED`` has its END queued; ``PUBLISHED`` is being renamed into
    place (or handed to a sink) and can no longer be dropped. ``SAVED``, ``DROPPED`` and
    ``FAILED`` are outcomes, counted when they are decided; the clip then leaves the queue's
    live set once its handle is resolved (retired).
    """

    OPEN = "open"
    ENDED = "ended"
    PUBLISHED = "published"
    SAVED = "saved"
    DROPPED = "dropped"
    FAILED = "failed"


MOVES: dict[State, frozenset[State]] = {
    State.OPEN: frozenset({State.ENDED, State.DROPPED, State.FAILED}),
    State.ENDED: frozenset({State.PUBLISHED, State.DROPPED, State.FAILED}),
    # A sink's answer decides: saved, or failed (the delivery).
    State.PUBLISHED: frozenset({State.SAVED, State.FAILED}),
    State.SAVED: frozenset(),
    State.DROPPED: frozenset(),
    State.FAILED: frozenset(),
}


def moved(clip: Clip, to: State) -> State:
    """*to*, once checked to be a move of *clip*'s state (the caller assigns it)."""
    if to not in MOVES[clip.state]:
        raise RuntimeError(f"clip {clip.name}: {clip.state.value} -> {to.value} is not a move")
    return to


class Custody(enum.Enum):
    """Where a live clip is for the workers: nobody's, on the ready list, or one worker's."""

    IDLE = "idle"
    READY = "ready"
    OWNED = "owned"


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
    whole: bool = False  # all its frames are given at once (submit): work in hand, no backlog
    source: object = None  # who numbers its episode: None (the Recorder's calls), a wrapper's
    # Ended by its length before its episode did (a wrapper's video_length, which it counts
    # itself: the clip's limit is inf), set before its END is queued: the health check's.
    cut_by_length: bool = False
    started: float = field(default_factory=time.time)
    state: State = State.OPEN
    drop_reason: str = ""  # why, once DROPPED
    custody: Custody = Custody.IDLE
    items: collections.deque[Work] = field(default_factory=collections.deque)
    frames: int = 0  # frames enqueued
    enqueued: int = 0  # work units enqueued (frames and END)
    processed: int = 0
    wake_at: float = math.inf  # a flush() waits for processed >= wake_at: notify it then
    # The owning worker's state:
    frame_format: FrameFormat | None = None
    encoder: Encoder | None = None
    tmp_path: str | None = None
    tmp_fd: int | None = None  # held open from creation to rename: it names our own file
    # Frames passed to an encoder that reads them later (an encoder process), not yet
    # released; the encoder's count of frames it is done with, and how many were released.
    held: collections.deque[Item] = field(default_factory=collections.deque)
    released: Callable[[], int] | None = None
    overlay_failed: bool = False  # the overlay raised for one of its frames (reported once)
    freed: int = 0
    written: int = 0
    encode_seconds: float = 0.0
    # The info of each frame encoded, in order: the video's timeline (recorder._encode.timeline).
    infos: list[Info | None] = field(default_factory=list)

    @property
    def accepting(self) -> bool:
        """Whether frames may still be appended (a hint without the lock)."""
        return self.state is State.OPEN

    @property
    def dropped(self) -> bool:
        """Whether the clip was dropped (a hint without the lock)."""
        return self.state is State.DROPPED
