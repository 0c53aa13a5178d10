"""Whether a video shows what was meant: blank frames, frozen runs, a stale first frame.

The encoder looks at each frame it encodes, off the training thread (in the encoder process,
or the worker thread with ``encode_in="thread"``): a :class:`Probe` copies every
:data:`ROW_STEP`-th row of pixels (:data:`MIN_ROWS` to :data:`MAX_ROWS` rows; a frame of at
most :data:`WHOLE_BYTES` whole) once and compares the copy whole with the previous frame's and
with pixels of one colour (two ``memcmp``), a few microseconds a frame. Only a frame whose rows
look blank, or unchanged for :data:`VERIFY_RUN` frames, is read whole, to be sure. At close it
gives what it saw (:class:`Seen`, small enough for the encoder process's reply); the Recorder's
:class:`Judge` turns that into the video's :class:`~recorder.VideoHealth`, comparing its first
frame with the last frame of the previous episode's video, counts the suspect videos and logs
them. A suspect video is saved all the same.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path

from recorder._base.frames import Image
from recorder._base.results import VideoHealth, VideoInfo
from recorder._queue.clip import Clip

logger = logging.getLogger("recorder")

#: rows of pixels between the rows a probe looks at: a thing on screen at least this tall is
#: always seen (CartPole's cart is 30 pixels tall). Each row read costs memory bandwidth
#: (frames lie in shared memory, rarely in this CPU's caches): every 8th row, and at most
#: MAX_ROWS rows (evenly spaced) of a taller frame, keep the probe near 1% of an encode
#: (scripts/bench_health.py); a small frame is read more densely, MIN_ROWS rows at least
#: (every row of a frame that short).
ROW_STEP = 8
MIN_ROWS = 32
MAX_ROWS = 64
#: a run of identical frames makes a video suspect from this many frames on, when it also
#: covers more than half of the video: a short clip of a still scene is not a frozen render.
FROZEN_MIN = 10
#: a run of frames whose rows repeat is judged by its rows up to this many frames, then
#: checked pixel by pixel: a thin thing moving between the rows is caught there, well before
#: FROZEN_MIN. Measured on CartPole (3000 random steps): 1 frame in 4 repeats the one before,
#: in runs of 2 (226), 3 (49), 4 (25), 5 (7) and 6 (3): from the 5th on, 0.4% of the frames
#: are read whole (from the 3rd, 4.4%, which doubled the probe's time at 1280x720).
VERIFY_RUN = 5
#: a frame of at most this many bytes (64x64 RGB: 12 KiB) is copied whole: one contiguous copy
#: costs less than picking its rows (numpy's strided copy, about 3 µs more a frame in an encode
#: loop), and every pixel is looked at.
WHOLE_BYTES = 32 * 1024
_DIGEST_BYTES = 16
_STALE = (
    "the first frame of %s repeats the last frame of the previous episode's video: "
    "rendered before reset() took effect?"
)


@dataclass(frozen=True, slots=True)
class Seen:
    """What a :class:`Probe` saw of one video's frames.

    Attributes:
        frames: frames looked at.
        blank_frames: frames of one flat colour.
        longest_frozen: frames in the longest run of identical consecutive frames.
        colour: the colour of the last blank frame (one value per channel), or None.
        first, last: digests of the pixels looked at of the first and last frames (compared
            across videos).
    """

    frames: int
    blank_frames: int
    longest_frozen: int
    colour: tuple[int, ...] | None
    first: bytes
    last: bytes


class Probe:
    """Looks at the frames of one video as they are encoded (:meth:`see`, once per frame)."""

    __slots__ = (
        "_blank",
        "_channels",
        "_colour",
        "_first",
        "_flat",
        "_flat_whole",
        "_frames",
        "_longest",
        "_pixel",
        "_previous",
        "_previous_whole",
        "_rows",
        "_run",
        "_whole",
    )

    def __init__(self, shape: tuple[int, ...]) -> None:
        height = shape[0]
        step = max(1, min(ROW_STEP, height // MIN_ROWS), -(-height // MAX_ROWS))
        self._rows = slice(step // 2, None, step)
        self._whole = math.prod(shape) <= WHOLE_BYTES
        self._channels = shape[2] if len(shape) == 3 else 1
        self._frames = self._blank = self._run = self._longest = 0
        self._previous = self._pixel = self._flat = self._flat_whole = self._first = b""
        self._previous_whole: bytes | None = None
        self._colour: bytes | None = None

    def see(self, image: Image) -> None:
        """Look at the next frame (the training thread never calls this)."""
        rows = image.tobytes() if self._whole else image[self._rows].tobytes()
        # Every pixel, read only when the rows say blank, or unchanged for VERIFY_RUN frames: a
        # thing thinner than the rows' spacing (a ball, a pole) must not look empty or frozen.
        whole = rows if self._whole else None
        pixel = rows[: self._channels]
        if pixel != self._pixel:  # rows of the first pixel's colour, kept while it stays
            self._pixel, self._flat = pixel, pixel * (len(rows) // self._channels)
            self._flat_whole = b""
        if rows == self._flat:
            if whole is None:
                whole = image.tobytes()
                if len(self._flat_whole) != len(whole):
                    self._flat_whole = pixel * (len(whole) // self._channels)
            if whole is rows or whole == self._flat_whole:
                self._blank += 1
                self._colour = pixel
        same = rows == self._previous
        if same and not self._whole:
            if self._previous_whole is not None:
                whole = image.tobytes() if whole is None else whole
                same = whole == self._previous_whole
            elif self._run + 1 >= VERIFY_RUN:  # long enough to matter: pixels from now on
                whole = image.tobytes() if whole is None else whole
        if same:
            self._run += 1
            self._longest = max(self._longest, self._run)
        else:
            self._run = 1
            if not self._frames:
                self._first, self._longest = _digest(rows), 1
        self._previous = rows
        self._previous_whole = None if self._whole else whole
        self._frames += 1

    def seen(self) -> Seen:
        """What the frames so far showed."""
        colour = None if self._colour is None else tuple(self._colour)
        last = _digest(self._previous) if self._frames else b""
        return Seen(self._frames, self._blank, self._longest, colour, self._first, last)


def _digest(rows: bytes) -> bytes:
    # The same in every process (unlike hash()): videos encoded by different encoder
    # processes are compared.
    return hashlib.blake2b(rows, digest_size=_DIGEST_BYTES).digest()


def judged(seen: Seen, stale_first_frame: bool | None) -> VideoHealth:
    """The :class:`VideoHealth` of a video whose frames showed *seen*."""
    n, frozen = seen.frames, seen.longest_frozen
    why = None
    if n and seen.blank_frames == n:
        colour = _colour_name(seen.colour)
        why = f"all {n} frames are blank (flat {colour}): " + (
            "a headless render that draws nothing? try MUJOCO_GL=egl (or osmesa)"
            if colour == "black"
            else "nothing drawn over the clear colour: a headless render, or a camera looking away?"
        )
    elif frozen >= FROZEN_MIN and 2 * frozen > n:
        why = (
            f"{frozen} of {n} frames are one image repeated: a render that returns a "
            "cached image, or an env not stepped between renders?"
        )
    return VideoHealth(
        suspect=why is not None,
        why=why,
        frames=n,
        blank_frames=seen.blank_frames,
        longest_frozen=frozen,
        stale_first_frame=stale_first_frame,
    )


def _colour_name(colour: tuple[int, ...] | None) -> str:
    if colour is None:
        return "colour"
    if max(colour) == 0:
        return "black"
    if min(colour) == 255:
        return "white"
    return "gray " + str(colour[0]) if len(colour) == 1 else "rgb" + str(colour)


class Judge:
    """The health of the videos of one Recorder: verdicts, counts, warnings (any thread).

    Episode videos are compared with the previous episode's of the same name prefix and folder
    (``{prefix}-episode-{i}``): the first frame of episode i against the last frame of episode
    i - 1, when that video was saved first and ended with its episode (not cut by
    ``video_length``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (folder, name prefix) -> (episode index, digest of its video's last frame)
        self._last: dict[tuple[Path, str], tuple[int, bytes]] = {}
        self._suspect = 0
        self._stale = 0

    def verdict(self, clip: Clip, seen: Seen) -> VideoHealth:
        """The health of *clip*, finished, whose encoder saw *seen* (a worker, at close)."""
        stale = None
        series = _series(clip)
        if series is not None:
            assert clip.index is not None
            with self._lock:
                before = self._last.get(series)
                ended_with_episode = seen.frames < clip.limit and not clip.cut_by_length
                if ended_with_episode and (before is None or before[0] < clip.index):
                    self._last[series] = (clip.index, seen.last)
            if before is not None and before[0] == clip.index - 1:
                stale = before[1] == seen.first
        return judged(seen, stale)

    def saved(self, info: VideoInfo) -> None:
        """Count and log the health of the saved video *info* (before its handle resolves)."""
        health = info.health
        if health is None:
            return
        with self._lock:
            self._suspect += int(health.suspect)
            self._stale += int(bool(health.stale_first_frame))
            first_stale = self._stale == 1
        if health.suspect:
            logger.warning(
                "%s looks wrong: %s (saved all the same; Recorder(health=False) turns this "
                "check off)",
                info.path,
                health.why,
            )
        if not health.stale_first_frame:
            return
        if first_stale:
            logger.warning(f"{_STALE} (further ones are counted in stats(), at DEBUG)", info.path)
        else:
            logger.debug(_STALE, info.path)

    def counts(self) -> tuple[int, int]:
        """(suspect videos, videos whose first frame was stale) saved so far."""
        with self._lock:
            return self._suspect, self._stale


def _series(clip: Clip) -> tuple[Path, str] | None:
    """(folder, name prefix) of an episode video named ``{prefix}-episode-{i}``, else None."""
    suffix = f"-episode-{clip.index}"
    if clip.kind != "episode" or clip.index is None or not clip.name.endswith(suffix):
        return None
    return clip.path.parent, clip.name.removesuffix(suffix)
