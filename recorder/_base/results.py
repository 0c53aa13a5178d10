"""What callers get back: handles, video infos, statistics and the errors of the recorder."""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

ClipKind = Literal["episode", "step", "clip"]


class RecorderClosedError(RuntimeError):
    """The recorder was used after ``close()``."""


class QueueFullError(RuntimeError):
    """``on_full="raise"``: a frame did not fit in ``max_queue_bytes``; its clips were dropped."""


class ClipDroppedError(Exception):
    """The result of a clip that was dropped whole (queue full, cancelled close, no frames).

    Not an error of the recorder: ``flush()`` and ``close()`` do not raise it; the clip's
    handle does, and ``stats().videos_dropped`` counts it.
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: dropped ({reason})")
        self.name = name
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from both arguments (args holds the message only): pickled by process
        # pools and Ray, copied by copy.copy.
        return type(self), (self.name, self.reason), self.__dict__


@dataclass(frozen=True, slots=True)
class VideoHealth:
    """What the recorder saw of a saved video's frames (``Recorder(health=True)``, the default).

    Looked at in the encoder, off the training thread: rows of pixels of each frame, evenly
    spaced (every 8th row, but at least 32 and at most 64 rows; a frame of at most 32 KiB whole).

    Attributes:
        suspect: the video likely does not show what was meant: every frame is blank, or one
            image repeats for most of it (at least 10 frames). It is saved all the same.
        why: for a suspect video, what is wrong and its likely cause, in a sentence; else None.
        frames: frames looked at (all of the video's).
        blank_frames: frames of one flat colour (black, white, a clear colour).
        longest_frozen: frames in the longest run of identical consecutive frames (1 when no
            frame repeats the one before).
        stale_first_frame: whether the first frame repeats the last frame of the previous
            episode's video (a render taken before ``reset()`` took effect); None when there is
            no such video to compare with (not an episode video, the previous episode not
            recorded, cut by ``video_length``, or not saved yet).
    """

    suspect: bool
    why: str | None
    frames: int
    blank_frames: int
    longest_frozen: int
    stale_first_frame: bool | None


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """A saved video.

    Attributes:
        path: the final file.
        name: the file name without extension (``rl-video-episode-0``).
        kind: ``"episode"``, ``"step"`` or ``"clip"`` (a wrapper clip named by the caller).
        index: the episode or step index in the name.
        frames: number of frames.
        fps: frames per second.
        width, height: size of the frames given (the video is padded to even sizes).
        encoded_width, encoded_height: size of the video stream.
        codec: the codec name (``"h264"``...).
        size_bytes: size of the file.
        encode_seconds: worker time spent encoding and writing this video (or feeding its
            encoder process, waits included).
        episode_index: the episode the clip starts in (None for a wrapper clip named freely).
        first_step: the step index of the clip's first frame; for a clip that starts with
            the reset frame, of the step after it (None for a wrapper clip named freely).
        metadata: the user metadata given with the episode, as it was when the clip ended.
        created: when the file was complete (seconds since the epoch).
        wall_seconds: from the clip's first frame to the file being complete.
        health: what the recorder saw of the frames (:class:`VideoHealth`); None with
            ``Recorder(health=False)`` or an encoder of ``encoder_factory`` that does not look.
        partial: the clip was cut short: ended while its episode was still going, by a
            ``close()`` (the episode's, a wrapper's or the Recorder's) as Ctrl-C (or
            ``SystemExit``) unwound, or by the Recorder's close while its episode was open.
        preset: the encoder preset the video starts with (None for gif); with adaptive
            quality (no preset given), the one the backlog allowed.
        preset_changes: ``(frame, preset)`` for each change of preset within the video
            (adaptive h264: at a keyframe, as the backlog grew or shrank); usually none. The
            fastest rung (``"ultrafast"``) converts with ``"point"`` chroma from its change on.
    """

    path: Path
    name: str
    kind: ClipKind
    index: int | None
    frames: int
    fps: float
    width: int
    height: int
    encoded_width: int
    encoded_height: int
    codec: str
    size_bytes: int
    encode_seconds: float
    episode_index: int | None = None
    first_step: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    created: float = 0.0
    wall_seconds: float = 0.0
    health: VideoHealth | None = None
    partial: bool = False
    preset: str | None = None
    preset_changes: tuple[tuple[int, str], ...] = ()

    @property
    def duration(self) -> float:
        """Duration in seconds (frames / fps)."""
        return self.frames / self.fps


class HandleOwner(Protocol):
    """What a :class:`ClipHandle` asks of the recorder that made it."""

    def own_thread(self) -> bool:
        """Whether the calling thread is one of the recorder's (where callbacks run)."""

    def callback_failed(self, error: BaseException, handle: ClipHandle) -> bool:
        """A done-callback of *handle* raised *error*: True if it was reported (to flush()
        and close()), False if it must go on (a Ctrl-C in the caller's thread)."""


class ClipHandle(concurrent.futures.Future[VideoInfo]):
    """The future of one clip: ``result()`` is its :class:`VideoInfo`.

    ``result()`` raises :class:`ClipDroppedError` when the clip was dropped and the encoding
    error when it failed. As with any :class:`~concurrent.futures.Future`, ``cancel()``
    succeeds only before a worker has begun the clip: the clip is then dropped (counted in
    ``stats().videos_dropped``, no error) and ``result()`` raises ``CancelledError``. An error
    a done-callback raises reaches the recorder's ``flush()`` and ``close()``.
    """

    def __init__(
        self,
        name: str,
        path: Path,
        kind: ClipKind,
        index: int | None,
        owner: HandleOwner | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.path = path
        self.kind: ClipKind = kind
        self.index = index
        self._began: bool | None = None  # set once, by the clip's owner (_begin)
        self._owner = owner

    def add_done_callback(
        self, fn: Callable[[concurrent.futures.Future[VideoInfo]], object]
    ) -> None:
        """As :meth:`Future.add_done_callback <concurrent.futures.Future.add_done_callback>`;
        what *fn* raises is reported by the recorder's ``flush()`` and ``close()`` (a Future
        would only log it, and a ``SystemExit`` would stop the recorder's thread).

        Raises:
            TypeError: *fn* is not callable.
        """
        if not callable(fn):
            raise TypeError(f"add_done_callback() takes a callable, got {type(fn).__name__}")
        super().add_done_callback(functools.partial(_call_back, fn))

    def result(self, timeout: float | None = None) -> VideoInfo:
        """The clip's :class:`VideoInfo`, waiting at most *timeout* seconds.

        Raises:
            RuntimeError: waited for without a timeout on the recorder's own thread (an
                ``on_saved`` or done-callback), which would wait for itself for ever.
        """
        self._not_from_owner("result", timeout)
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """As :meth:`result`, the clip's error (None when it was saved)."""
        self._not_from_owner("exception", timeout)
        return super().exception(timeout)

    def _not_from_owner(self, call: str, timeout: float | None) -> None:
        owner = self._owner
        if timeout is None and owner is not None and not self.done() and owner.own_thread():
            raise RuntimeError(
                f"{call}() of a pending clip cannot be waited for on the recorder's own thread "
                "(an on_saved callback or a handle's done-callback): it would wait for itself"
            )

    @property
    def dropped(self) -> bool:
        """True once the clip is known to have been dropped (or cancelled)."""
        if not self.done():
            return False
        return self.cancelled() or isinstance(self.exception(), ClipDroppedError)

    def __repr__(self) -> str:
        state = "pending"
        if self.cancelled():
            state = "cancelled"
        elif self.done():
            exc = self.exception()
            state = "saved" if exc is None else ("dropped" if self.dropped else "failed")
        return f"<ClipHandle {self.name} {state}>"

    def _begin(self) -> bool:
        """Mark the clip's work begun (no cancel from now on); False if it was cancelled.

        Called by whoever owns the clip (under the queue's lock), any number of times.
        """
        if self._began is None:
            self._began = self.set_running_or_notify_cancel()
        return self._began

    def _resolve(self, outcome: VideoInfo | BaseException) -> None:
        """Set the clip's info or error, unless it was cancelled before it began."""
        if not self._begin():
            return
        if isinstance(outcome, BaseException):
            self.set_exception(outcome)
        else:
            self.set_result(outcome)


def _call_back(
    fn: Callable[[concurrent.futures.Future[VideoInfo]], object],
    handle: concurrent.futures.Future[VideoInfo],
) -> None:
    try:
        fn(handle)
    except BaseException as e:
        assert isinstance(handle, ClipHandle)
        owner = handle._owner
        if owner is None or not owner.callback_failed(e, handle):
            raise


@dataclass(frozen=True, slots=True)
class RecorderStats:
    """A snapshot of a recorder's counters (like trio's ``MemoryChannelStatistics``).

    Attributes:
        queued_bytes: frame bytes waiting for a worker now.
        peak_queued_bytes: the most that ever waited.
        max_queue_bytes: the budget.
        queued_frames: frames waiting now (a frame shared by overlapping clips counts once).
        pooled_bytes: frame memory written before and free now: the shared-memory arena's
            pages stay resident for the next frames (counted in the budget too).
        frames_submitted: frames accepted into the queue.
        frames_encoded: frames written into videos (a shared frame counts once per video).
        frames_dropped: frames that will not be in a saved video: the frame that did not fit
            the budget and the frames, queued or already encoded, of dropped or failed clips
            (per clip: a frame shared by two dropped clips counts twice).
        videos_started / videos_saved / videos_dropped / videos_failed: clip counts;
            ``videos_started - saved - dropped - failed`` are still in progress.
        bytes_written: total size of the saved videos.
        encode_seconds: worker time spent encoding (or feeding encoder processes).
        errors: the errors of the newest 100 failed videos (or callbacks), oldest first.
        episodes_stalled: streamed episodes closed before they advanced at all while a clip
            could have started (see :class:`recorder.Episode`): nothing was recorded of
            them; the first is logged as a warning.
        videos_suspect: saved videos whose :class:`VideoHealth` is suspect (all blank, or
            frozen for most of their length); each is logged as a warning.
        videos_stale_first_frame: saved videos whose first frame repeats the last frame of
            the previous episode's video; the first is logged as a warning.
        videos_deleted: saved videos a keep policy deleted since (``Recorder(keep=...)``):
            ``videos_saved - videos_deleted`` are on disk.
    """

    queued_bytes: int
    peak_queued_bytes: int
    max_queue_bytes: int
    queued_frames: int
    pooled_bytes: int
    frames_submitted: int
    frames_encoded: int
    frames_dropped: int
    videos_started: int
    videos_saved: int
    videos_dropped: int
    videos_failed: int
    bytes_written: int
    encode_seconds: float
    errors: tuple[BaseException, ...]
    # With defaults: the queue's snapshot leaves them to the Recorder, which keeps the counts.
    episodes_stalled: int = 0
    videos_suspect: int = 0
    videos_stale_first_frame: int = 0
    videos_deleted: int = 0

    @property
    def videos_in_progress(self) -> int:
        """Clips started but not yet saved, dropped or failed."""
        return self.videos_started - self.videos_saved - self.videos_dropped - self.videos_failed
