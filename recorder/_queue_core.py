"""The state the queue's producers, workers and waiters share, and the moves all of them make.

One lock and named conditions, the way CPython's ``queue.Queue`` does it. Frames wait per
clip (one video is encoded by one worker at a time, in order); clips with work wait in a FIFO
ready list that workers take from round-robin, so more live clips than workers cannot starve
one another. The frames' memory and its budget are :class:`FrameMemory`'s, under the same lock.

Invariants of the queue, all under ``_lock``:

* A frame is released (its block freed, ``processed`` counted) only once the encoder no
  longer reads it: an encoder process may still be encoding frames its worker has passed on.
* A clip with work and no owner is made ready once the work is worth a wake-up: its first
  frames, QUANTUM frames, its END or DROP, a half-full budget, or a thread waiting (flush,
  close, "block").
* A clip is in ``_ready`` iff ``clip.ready``; a ready clip is owned by no worker; only the
  owning worker touches a clip's encoder.
* ``clip.enqueued - clip.processed`` work units are still to be done for a live clip.
* A clip has at most one :class:`~recorder._lane.Lane`, in ``_lanes`` until it is spent; its
  frames are counted into the clip (:meth:`_sync`) before anything reads or changes the
  clips' state, and its reserved blocks are charged to the budget (``memory.reserved``).
"""

from __future__ import annotations

import collections
import math
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from recorder._clip import END, Clip, Item
from recorder._counters import Counters
from recorder._frames import FrameFormat, Image
from recorder._lane import Lane
from recorder._memory import FrameMemory
from recorder._results import RecorderClosedError

OnFull = Literal["drop", "block", "raise"]

#: frames a worker takes from a clip at once, and encodes before a waiting clip has its turn.
QUANTUM = 8
#: seconds a worker waits for work before it takes frames short of a batch (see _idle).
IDLE_SECONDS = 1.0


class QueueCore:
    """The clips, the ready list, the conditions of the one lock, and the counters."""

    def __init__(
        self,
        max_bytes: int,
        on_full: OnFull,
        on_drop: Callable[[Clip, str], None],
        *,
        prefault: bool,
    ) -> None:
        self.max_bytes = max_bytes
        self.on_full: OnFull = on_full
        self._on_drop = on_drop
        self._lock = threading.Lock()
        # Producers waiting for budget (on_full="block").
        self._not_full = threading.Condition(self._lock)
        # Workers waiting for a ready clip.
        self._work = threading.Condition(self._lock)
        # flush()/close() waiting for clips to progress.
        self._progress = threading.Condition(self._lock)
        self.memory = FrameMemory(self._lock, max_bytes, prefault=prefault)
        self._ready: collections.deque[Clip] = collections.deque()
        self._live: set[Clip] = set()
        self._by_path: dict[Path, Clip] = {}  # the live clip that will own each final path
        self._closed = False  # no new clips or frames
        self._waiters = 0  # threads in _wait_for: frames go to the workers at once meanwhile
        # Set in a forked child (with _closed): the lock may have been held by a parent's
        # thread at fork time, so producer calls check _closed before taking it.
        self.forked = False
        self._stopping = False  # workers exit once nothing is ready
        self.broken: BaseException | None = None  # set when no worker is left alive
        self.counts = Counters()
        self._lanes: set[Lane] = set()
        # Set without the lock (from a wrapper's __del__): the Recorder's owner is gone, and
        # on_abandoned (which must not block: the lock is held) closes it once it is idle.
        self.abandoned = False
        self.on_abandoned: Callable[[], None] | None = None

    def _check_usable(self) -> None:
        if self._closed:
            if self.forked:
                raise RecorderClosedError("a Recorder cannot be used in a forked child process")
            raise RecorderClosedError("this Recorder is closed")
        if self.broken is not None:
            raise RuntimeError("the Recorder's worker threads died") from self.broken

    def _unref(self, item: Item) -> None:
        item.refs -= 1
        if item.refs == 0:
            if self._lanes:
                self._note_peak()  # frames a lane holds are real: a peak is just before a release
            self.counts.queued_frames -= 1
            self.memory.release(item.buffer, item.nbytes)
            self._not_full.notify_all()

    def _end(self, clip: Clip) -> None:
        if clip.lane is not None:
            self._dissolve(clip.lane)
        clip.ended = True
        clip.items.append(END)
        clip.enqueued += 1
        if clip.metadata is not None:
            clip.metadata = dict(clip.metadata)  # what the caller had set when the clip ended

    def _drop(self, clip: Clip, reason: str) -> None:
        if clip.lane is not None:
            self._dissolve(clip.lane)  # its frames are the clip's, dropped with it
        if clip.finished or clip.published or clip.drop_reason is not None or clip.failed:
            return
        clip.drop_reason = reason
        self._discard_items(clip)
        self._schedule(clip)
        self._on_drop(clip, reason)

    def _discard_items(self, clip: Clip) -> None:
        for work in clip.items:
            if isinstance(work, Item):
                self._unref(work)
                self.counts.frames_dropped += 1
        clip.items.clear()

    def _wait_for(self, condition: threading.Condition, timeout: float | None) -> None:
        """Wait on *condition* (of ``_lock``) with every clip's frames handed to the workers:
        someone is waiting for them now, so no clip may sit waiting for a full batch."""
        self._waiters += 1
        try:
            for clip in self._live:
                if not (clip.owned or clip.ready):
                    self._schedule(clip)
            condition.wait(timeout)
        finally:
            self._waiters -= 1

    def _worth_waking(self, clip: Clip) -> bool:
        # A worker is woken for a batch, not for every frame: each wake-up is a GIL
        # hand-over that the training thread pays for.
        return not (clip.owned or clip.ready) and (
            clip.ended
            or len(clip.items) >= QUANTUM
            or clip.processed == 0  # its first frames: open the file, fail early
            or self._waiters > 0
            or 2 * self.memory.queued_bytes >= self.max_bytes
        )

    def _idle(self) -> None:
        """A worker waited :data:`IDLE_SECONDS` for work: the producer has paused (or feeds
        frames slowly), so frames short of a batch, a lane's among them, go to the workers
        now rather than wait in memory for the next append (and be lost with a crash)."""
        self._sync()
        for clip in list(self._live):
            self._schedule(clip)
        if self.abandoned and not self._closed and self.on_abandoned is not None:
            self.abandoned = False
            self.on_abandoned()

    # -- lanes (recorder._lane) ----------------------------------------------------------------

    def _open_lane(self, clip: Clip, fmt: FrameFormat) -> None:
        """Give *clip* a lane for its next frames of *fmt*, if the budget has blocks for it."""
        if clip.lane is None and clip.accepting and not self._closed:
            clip.lane = lane = Lane(self, clip, fmt)
            self._lanes.add(lane)
            self._refill(lane)

    def _settle(self, lane: Lane) -> None:
        """The producer's call when *lane* ran out of blocks or was spent meanwhile."""
        with self._lock:
            if not lane.spent:
                self._refill(lane)
            elif self._drain(lane) and self._closed:
                # Spent by close() on another thread while this frame was being copied.
                self._check_usable()

    def _refill(self, lane: Lane) -> None:
        """Count the lane's frames into its clip and reserve its next blocks (spent if none)."""
        self._drain(lane)
        clip, fmt, memory = lane.clip, lane.fmt, self.memory
        # Never the clip's last frame (the full path ends the clip); a small share of a small
        # budget, so that producers of other clips rarely wait for a lane's blocks.
        want = min(QUANTUM, clip.limit - 1 - clip.frames, self.max_bytes // fmt.nbytes // 8)
        if not clip.accepting or self._closed or self.broken is not None:
            want = 0
        while len(lane.spare) < want:
            memory.reserved += fmt.nbytes
            block = memory.alloc(fmt)
            if block is None:
                memory.reserved -= fmt.nbytes
                break
            lane.spare.append((block, block.data.cast("B")))
        if not lane.spare:
            self._dissolve(lane)

    def _drain(self, lane: Lane) -> int:
        """Count the frames copied into *lane* into its clip, as :meth:`admit` would have;
        the number of them dropped (their clip no longer accepting)."""
        out = lane.out
        n = len(out)  # the producer may append more meanwhile: the next drain's
        if not n:
            return 0
        blocks = [out.popleft() for _ in range(n)]
        clip, nbytes, memory, counts = lane.clip, lane.fmt.nbytes, self.memory, self.counts
        memory.reserved -= n * nbytes  # each came from the lane's reserved spares
        self._note_peak()
        counts.frames_submitted += n
        if not clip.accepting:  # failed, dropped or ended meanwhile: its frames go with it
            counts.frames_dropped += n
            for block in blocks:
                memory.release(block, nbytes)
            self._not_full.notify_all()
            return n
        if clip.frame_format is None:
            clip.frame_format = lane.fmt
        for block in blocks:
            item = Item(block, nbytes)
            item.refs = 1
            clip.items.append(item)
        clip.frames += n
        clip.enqueued += n
        counts.queued_frames += n
        if clip.frames >= clip.limit:
            self._end(clip)
        if self._worth_waking(clip):
            self._schedule(clip)
        return 0

    def _dissolve(self, lane: Lane) -> None:
        """Spend *lane*: count its frames, give its reserved blocks back to the budget."""
        lane.spent = True  # first: the producer settles any frame it copies from here on
        self._drain(lane)
        nbytes, memory, spare = lane.fmt.nbytes, self.memory, lane.spare
        freed = False
        while True:
            try:
                block, _ = spare.pop()  # the producer may pop one concurrently
            except IndexError:
                break
            memory.reserved -= nbytes
            memory.release(block, nbytes)
            freed = True
        # A block the producer popped just now stays reserved until its frame is drained.
        if freed:
            self._not_full.notify_all()
        self._lanes.discard(lane)
        if lane.clip.lane is lane:
            lane.clip.lane = None

    def _note_peak(self) -> None:
        """Update the peak with the frames in the budget now, those in lanes included."""
        memory = self.memory
        frames = memory.queued_bytes - memory.reserved
        frames += sum(len(lane.out) * lane.fmt.nbytes for lane in self._lanes)
        memory.peak_queued_bytes = max(memory.peak_queued_bytes, frames)

    def _give_back(self, lane: Lane, block: Image, view: memoryview) -> None:
        """*block*, popped by a producer interrupted before it queued the frame, back."""
        with self._lock:
            if any(b is block for b in lane.out):
                return  # queued after all: drained like the others
            if lane.spent:
                self.memory.reserved -= lane.fmt.nbytes
                self.memory.release(block, lane.fmt.nbytes)
                self._not_full.notify_all()
            else:
                lane.spare.append((block, view))

    def _sync(self) -> None:
        """Count every lane's frames into its clip: before reading or changing clip state."""
        for lane in list(self._lanes):
            if lane.clip.accepting:
                self._drain(lane)
            else:  # failed or dropped: nothing more to reserve for
                self._dissolve(lane)

    def _reclaim(self) -> None:
        """Spend every lane: its reserved blocks go back to the budget (someone needs room)."""
        for lane in list(self._lanes):
            self._dissolve(lane)

    def _schedule(self, clip: Clip) -> None:
        if not (clip.owned or clip.ready or clip.finished) and self._has_work(clip):
            clip.ready = True
            self._ready.append(clip)
            self._work.notify()

    @staticmethod
    def _has_work(clip: Clip) -> bool:
        return not clip.finished and (clip.drop_reason is not None or bool(clip.items))

    def _account(self, clip: Clip, done: Sequence[Item], written: int) -> None:
        clip.processed += len(done)
        clip.written += written
        self.counts.frames_encoded += written
        self.counts.frames_dropped += len(done) - written
        for item in done:
            self._unref(item)
        if clip.processed >= clip.wake_at:
            # Not every frame: each wake-up would take the GIL from the encoder.
            clip.wake_at = math.inf
            self._progress.notify_all()
