"""Adaptive quality: the encoder preset of each video, chosen from the backlog.

The encoder shares the machine with the training loop. While the queue has room, a worker can
afford a size-efficient preset; as frames pile up it needs a faster one, or the budget fills
(``on_full``: the loop waits, or clips are dropped). With no preset given (``preset=None``, a
codec with a :class:`~recorder._base.codec.Ladder`), each video starts at the rung the backlog
allows when its encoder opens, and an h264 video moves between rungs at its keyframes as the
backlog changes (every rung writes the same SPS and PPS). The rule reads one number, the queue
fill (queued bytes / budget; for a video given whole, as ``submit()`` does, less its own
frames: they are work in hand, not a backlog building up), and one state, the Recorder's
current rung:

* fill >= :data:`RUSH`: the fastest rung at once (a video opening then gets plain x264
  ultrafast, without the shared options, and keeps it; one under way changes at the next frame);
  the fastest rung converts frames with :data:`FASTEST_INTERPOLATION` chroma, whatever the
  codec's ``interpolation``;
* fill >= :data:`FASTER`: one rung faster;
* fill <= :data:`SLOWER`: one rung slower (more size-efficient);
* in between: no change.

It is evaluated when a video's encoder opens and before each batch of a video's frames (8),
so a backlog that grows within a long episode is met within one keyframe interval (2 s of
video). A preset given (``preset="ultrafast"``, or in a :class:`Codec`) pins it: :class:`Pinned`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from recorder._base.codec import LADDERS, Codec
from recorder._encode.encoder import keyframe_interval
from recorder._queue.clip import Clip, State
from recorder._queue.queue import ClipQueue

#: queue fill at or above which videos go straight to the fastest preset.
RUSH = 1 / 4
#: ... at or above which they step one preset faster.
FASTER = 1 / 8
#: ... at or below which they step one preset slower (the backlog is short). Low: a backlog
#: made at a slow preset must still be worked off at the fast one, which may barely keep up.
SLOWER = 1 / 16
#: the RGB to YUV conversion of the fastest rung: swscale's "area" chroma costs about as much
#: as x264 ultrafast itself, "point" a third less (600x400: 590 vs 410 µs a frame); quality
#: stays above the floor (docs/benchmarks.md, "Quality").
FASTEST_INTERPOLATION = "point"


def next_rung(rung: int, fill: float, fastest: int) -> int:
    """The rung (0: the most size-efficient .. *fastest*) after *rung* at queue *fill*."""
    if fill >= RUSH:
        return fastest
    if fill >= FASTER:
        return min(rung + 1, fastest)
    if fill <= SLOWER:
        return max(rung - 1, 0)
    return rung


@dataclass
class _Tuning:
    """One video's rungs: the one it started at, its changes, the frames passed so far."""

    start: int
    keyint: int
    rung: int  # in force from the last change on (maybe not reached yet: see changes)
    changes: list[tuple[int, int]] = field(default_factory=list)  # (frame, rung)
    passed: int = 0  # frames given to the encoder
    fixed: bool = False  # opened in a rush at the plain fastest preset: it stays


@dataclass(frozen=True, slots=True)
class Settings:
    """What a saved video was encoded at."""

    codec: Codec  # the settings of its first frame
    preset: str | None
    changes: tuple[tuple[int, str], ...] = ()


class Pinned:
    """A preset given by the user: every video at *codec*, as it is."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        _, _, _, options = codec.ffmpeg_settings()
        self._settings = Settings(codec, options.get("preset", options.get("cpu-used")))

    def open(self, clip: Clip, frames: int) -> Codec:
        """The settings of *clip*'s encoder, which opens now for its first *frames*."""
        return self.codec

    def tune(self, clip: Clip, frames: int) -> None:
        """*clip*'s next *frames* are about to be written: change its encoder's settings if
        the backlog says so."""

    def finish(self, clip: Clip) -> Settings:
        """What *clip*, complete now, was encoded at (and forget it)."""
        return self._settings

    def forget(self, clip: Clip) -> None:
        """*clip* ends without a file."""


class Adaptive(Pinned):
    """Adaptive quality for one Recorder's videos (see the module docstring).

    Args:
        codec: an adaptive codec (``codec.adaptive``).
        fill: the queue's fill now, queued bytes / budget (read without its lock: a hint).
        budget: the budget's bytes.
    """

    def __init__(self, codec: Codec, fill: Callable[[], float], budget: int) -> None:
        super().__init__(codec)
        ladder = LADDERS[codec.name]
        self.presets = ladder.presets
        # The fastest rung also converts with FASTEST_INTERPOLATION.
        *slower, fastest = (codec.at(preset) for preset in ladder.presets)
        self._codecs = (*slower, replace(fastest, interpolation=FASTEST_INTERPOLATION))
        self._fastest = len(ladder.presets) - 1
        # A video that opens in a rush gets the fastest preset as it is, without the options
        # the rungs share (plain x264 ultrafast is a few percent faster): it stays there.
        self._rushed = replace(
            codec, preset=ladder.presets[-1], interpolation=FASTEST_INTERPOLATION
        )
        # Options of the user's own could change the stream's headers between rungs.
        self.within_video = ladder.within_video and not codec.options
        self._fill = fill
        self._budget = budget
        self._lock = threading.Lock()
        self._rung = 0  # the Recorder's current rung: where the next video starts
        self._videos: dict[Clip, _Tuning] = {}  # each touched by its clip's owning worker only

    def _step(self, clip: Clip) -> tuple[int, bool]:
        """The current rung after the rule, and whether the backlog is a rush."""
        fill = self._fill()
        fmt = clip.frame_format
        if (clip.whole or clip.state is not State.OPEN) and fmt is not None:
            # A clip given whole (submit(), save_video, an episode ended before its encoder
            # opened) is work in hand, not a backlog building up: only the others' frames
            # are. Its frames still in the budget: enqueued, less those its owner (this
            # thread) released.
            own = (clip.frames - clip.written) * fmt.nbytes
            fill = max(fill - own / self._budget, 0.0)
        with self._lock:
            self._rung = rung = next_rung(self._rung, fill, self._fastest)
        return rung, fill >= RUSH

    def open(self, clip: Clip, frames: int) -> Codec:
        rung, rush = self._step(clip)
        tuning = _Tuning(rung, keyframe_interval(clip.fps), rung, passed=frames, fixed=rush)
        self._videos[clip] = tuning
        return self._rushed if rush else self._codecs[rung]

    def tune(self, clip: Clip, frames: int) -> None:
        tuning = self._videos[clip]
        passed = tuning.passed
        tuning.passed += frames
        retune = getattr(clip.encoder, "retune", None)
        # Not every frame a keyframe, and an encoder that can change (the tests' may not).
        if tuning.fixed or not self.within_video or tuning.keyint < 2 or retune is None:
            return
        rung, rush = self._step(clip)
        if rung == tuning.rung:
            return
        changes = tuning.changes
        while changes and changes[-1][0] >= passed:  # asked for, not reached: replaced
            changes.pop()
        start, current = changes[-1] if changes else (0, tuning.start)
        # In a rush at once (the next frame, a keyframe more); else at the encoder's next
        # keyframe, as PyAVEncoder.retune does.
        at = passed if rush else start + -(-(passed - start) // tuning.keyint) * tuning.keyint
        if current != rung:
            changes.append((at, rung))
        tuning.rung = rung
        retune(self._codecs[rung], at_once=rush)

    def finish(self, clip: Clip) -> Settings:
        tuning = self._videos.pop(clip)
        presets = self.presets
        made = tuple((at, presets[rung]) for at, rung in tuning.changes if at < tuning.passed)
        first = self._rushed if tuning.fixed else self._codecs[tuning.start]
        return Settings(first, presets[tuning.start], made)

    def forget(self, clip: Clip) -> None:
        self._videos.pop(clip, None)


def fill_of(queue: ClipQueue) -> Callable[[], float]:
    """The fill the rule reads: *queue*'s queued bytes / budget, without its lock (a hint)."""
    memory, budget = queue.memory, queue.max_bytes
    return lambda: memory.queued_bytes / budget


def quality_of(codec: Codec, fill: Callable[[], float], budget: int) -> Pinned:
    """How a Recorder's videos get their settings: adaptive, or pinned to *codec*."""
    return Adaptive(codec, fill, budget) if codec.adaptive else Pinned(codec)
