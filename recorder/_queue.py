"""The bounded queue between the training thread and the encoder threads: clip bookkeeping.

One lock and named conditions, the way CPython's ``queue.Queue`` does it. Frames wait per
clip (one video is encoded by one worker at a time, in order); clips with work wait in a FIFO
ready list that workers take from round-robin, so more live clips than workers cannot starve
one another. The frames' memory and its budget are :class:`FrameMemory`'s, under the same lock.

Invariants, all under ``_lock``:

* A frame is released (its block freed, ``processed`` counted) only once the encoder no
  longer reads it: an encoder process may still be encoding frames its worker has passed on.
* A clip with work and no owner is made ready once the work is worth a wake-up: its first
  frames, QUANTUM frames, its END or DROP, a half-full budget, or a thread waiting (flush,
  close, "block").
* A clip is in ``_ready`` iff ``clip.ready``; a ready clip is owned by no worker; only the
  owning worker touches a clip's encoder.
* ``clip.enqueued - clip.processed`` work units are still to be done for a live clip.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal

from recorder._arena import Arena
from recorder._clip import DROP, END, YIELD, Clip, Item, Work
from recorder._counters import MAX_ERRORS, Counters
from recorder._frames import FrameFormat, Image, copy_into
from recorder._memory import FrameMemory
from recorder._results import QueueFullError, RecorderClosedError, RecorderStats

# Also imported from here by the wrappers.
__all__ = ["DROP", "END", "MAX_ERRORS", "QUANTUM", "YIELD", "Clip", "ClipQueue", "Item", "OnFull"]

OnFull = Literal["drop", "block", "raise"]

#: frames a worker takes from a clip at once, and encodes before a waiting clip has its turn.
QUANTUM = 8
#: whether recorders start the prefault thread (a switch for the benchmark that measures it).
PREFAULT = True


class ClipQueue:
    """Per-clip frame queues under one byte budget, and the counters of :class:`RecorderStats`."""

    def __init__(
        self, max_bytes: int, on_full: OnFull, on_drop: Callable[[Clip, str], None]
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
        self.memory = FrameMemory(self._lock, max_bytes, prefault=PREFAULT)
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

    # -- producer side -------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            if self.forked:
                raise RecorderClosedError("a Recorder cannot be used in a forked child process")
            raise RecorderClosedError("this Recorder is closed")
        if self.broken is not None:
            raise RuntimeError("the Recorder's worker threads died") from self.broken

    def open_clip(self, clip: Clip) -> None:
        """Register a new clip (it gets frames through :meth:`admit`).

        A live clip with the same path is dropped: the last one wins, as when a file is
        overwritten, instead of whichever finishes last.
        """
        if self._closed:
            self._check_usable()
        with self._lock:
            self._check_usable()
            earlier = self._by_path.get(clip.path)
            if earlier is not None:
                self._drop(earlier, "replaced by a later clip of the same name")
            self._by_path[clip.path] = clip
            self._live.add(clip)
            self.counts.videos_started += 1

    def publish(self, clip: Clip, rename: Callable[[], None]) -> bool:
        """Run *rename* (temporary name to final) unless *clip* was dropped meanwhile.

        The rename runs outside the lock (on a slow file system it would stall every
        ``append``); from here on the clip can no longer be dropped.
        """
        with self._lock:
            if clip.drop_reason is not None:
                return False
            clip.published = True
        rename()
        return True

    def admit(self, image: Image, fmt: FrameFormat, clips: Iterable[Clip]) -> list[Clip]:
        """Copy *image* once into the queue for every accepting clip in *clips*.

        Applies the on_full policy when the budget is exhausted. Ends clips that reach their
        length. Returns the clips of *clips* still accepting frames afterwards.
        """
        if self._closed:
            self._check_usable()
        with self._lock:
            self._check_usable()
            targets = [c for c in clips if c.accepting]
            if not targets:
                return targets
            buffer = self._reserve(fmt, targets)
            if buffer is None:
                return [c for c in targets if c.accepting]
            nbytes = fmt.nbytes
            try:
                # Under the lock: the copy holds the GIL anyway (see copy_into), so no worker
                # could use the lock meanwhile; one acquisition instead of two.
                copy_into(buffer, image)
            except BaseException:
                self.memory.release(buffer, nbytes)
                self._not_full.notify_all()
                raise
            item = Item(buffer, nbytes)
            item.refs = len(targets)
            for clip in targets:
                if clip.frame_format is None:
                    clip.frame_format = fmt
                clip.items.append(item)
                clip.frames += 1
                clip.enqueued += 1
                if clip.frames >= clip.limit:
                    self._end(clip)
                if not (clip.owned or clip.ready) and (
                    clip.ended
                    or len(clip.items) >= QUANTUM
                    or clip.processed == 0  # its first frames: open the file, fail early
                    or self._waiters
                    or 2 * self.memory.queued_bytes >= self.max_bytes
                ):
                    # A worker is woken for a batch, not for every frame: each wake-up is a
                    # GIL hand-over that the training thread pays for.
                    self._schedule(clip)
            self.counts.frames_submitted += 1
            self.counts.queued_frames += 1
            return [c for c in targets if not c.ended]

    def _reserve(self, fmt: FrameFormat, targets: list[Clip]) -> Image | None:
        """Charge one frame to the budget and return a buffer for it, or apply on_full."""
        nbytes = fmt.nbytes
        while True:
            buffer = self.memory.alloc(fmt)
            if buffer is not None:
                return buffer
            if self.on_full == "block":
                self._wait_for(self._not_full, None)
                self._check_usable()
                targets[:] = [c for c in targets if c.accepting]
                if not targets:
                    return None
                continue
            reason = (
                f"max_queue_bytes={self.max_bytes} full "
                f"({self.memory.queued_bytes} bytes waiting, frame of {nbytes})"
            )
            for clip in targets:
                self._drop(clip, reason)
                self.counts.frames_dropped += 1  # the frame that did not fit
            if self.on_full == "raise":
                names = ", ".join(c.name for c in targets)
                raise QueueFullError(f"{reason}; dropped {names}")
            return None

    def prefault(self) -> None:
        """The prefault thread's loop (see :meth:`FrameMemory.prefault`)."""
        self.memory.prefault()

    def _unref(self, item: Item) -> None:
        item.refs -= 1
        if item.refs == 0:
            self.counts.queued_frames -= 1
            self.memory.release(item.buffer, item.nbytes)
            self._not_full.notify_all()

    def end(self, clip: Clip) -> None:
        """No more frames for *clip*: once its frames are encoded, the file is finished."""
        if self.forked:
            return  # the parent finishes its clips
        with self._lock:
            if clip.accepting:
                self._end(clip)
                self._schedule(clip)

    @staticmethod
    def _end(clip: Clip) -> None:
        clip.ended = True
        clip.items.append(END)
        clip.enqueued += 1
        if clip.metadata is not None:
            clip.metadata = dict(clip.metadata)  # what the caller had set when the clip ended

    def drop(self, clip: Clip, reason: str) -> None:
        """Drop *clip* whole (its file is discarded)."""
        with self._lock:
            self._drop(clip, reason)

    def _drop(self, clip: Clip, reason: str) -> None:
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

    def _schedule(self, clip: Clip) -> None:
        if not (clip.owned or clip.ready or clip.finished) and self._has_work(clip):
            clip.ready = True
            self._ready.append(clip)
            self._work.notify()

    # -- worker side ---------------------------------------------------------------------

    def take(
        self,
        current: Clip | None,
        done: Sequence[Item] = (),
        written: int = 0,
        *,
        holding: bool = False,
    ) -> tuple[Clip, list[Work]] | None:
        """Release *done*, the frames of *current* the worker is through with, of which the
        first *written* were encoded (the rest were left out: the clip was dropped).

        The next work is up to :data:`QUANTUM` frames of one clip, or its END or DROP alone:
        batches keep the per-frame Python work (and so the GIL) off the workers' path. A
        worker *holding* frames of *current* that its encoder still reads keeps the clip and
        gets :data:`YIELD` where it would move on: another worker could take the clip, and
        its frames must not wait for a worker that does not come back to them.
        Returns ``None`` when the worker should exit.
        """
        with self._lock:
            if current is not None:
                if done:
                    self._account(current, done, written)
                # An ended clip is finished without a break: a preempted one would keep its
                # encoder (megabytes of x264 state the budget does not count) open meanwhile.
                if self._has_work(current) and (current.ended or not self._ready):
                    return current, self._pop(current)
                if holding:
                    return current, [YIELD]
                current.owned = False
                if self._has_work(current):
                    self._schedule(current)
            while not self._ready:
                if self._stopping:
                    return None
                self._work.wait()
            clip = self._ready.popleft()
            clip.ready = False
            clip.owned = True
            return clip, self._pop(clip)

    def release(self, clip: Clip, done: Sequence[Item], written: int) -> None:
        """Release frames of *clip* as :meth:`take` does, without taking more work."""
        if done:
            with self._lock:
                self._account(clip, done, written)

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

    @staticmethod
    def _has_work(clip: Clip) -> bool:
        return not clip.finished and (clip.drop_reason is not None or bool(clip.items))

    @staticmethod
    def _pop(clip: Clip) -> list[Work]:
        if clip.drop_reason is not None:
            return [DROP]
        items = clip.items
        if items[0] is END:
            return [items.popleft()]
        batch: list[Work] = []
        while items and len(batch) < QUANTUM and items[0] is not END:
            batch.append(items.popleft())
        return batch

    def finish(
        self,
        clip: Clip,
        outcome: Literal["saved", "dropped", "failed"],
        *,
        error: BaseException | None = None,
        held: Sequence[Work] = (),
        encoded: Sequence[Item] = (),
        size: int = 0,
    ) -> None:
        """The owning worker is done with *clip*: count it (its handle is resolved next).

        *held*: frames taken but not encoded; *encoded*: frames encoded, not yet released.
        """
        with self._lock:
            if encoded:
                self._account(clip, encoded, len(encoded))
            for item in held:
                if isinstance(item, Item):
                    self._unref(item)
                    self.counts.frames_dropped += 1
            if outcome == "failed":
                clip.failed = True
                self._discard_items(clip)
                assert error is not None
                self.counts.keep(error)
                self.counts.videos_failed += 1
                self.counts.frames_dropped += clip.written
            elif outcome == "dropped":
                self.counts.videos_dropped += 1
                self.counts.frames_dropped += clip.written
            else:
                self.counts.videos_saved += 1
                self.counts.bytes_written += size
            self.counts.encode_seconds += clip.encode_seconds

    def report(self, error: BaseException) -> None:
        """An error of background work that is not a video's own (an on_saved callback)."""
        with self._lock:
            self.counts.keep(error)

    def retire(self, clip: Clip) -> None:
        """After its handle is resolved: *clip* no longer counts as pending for flush()."""
        with self._lock:
            clip.processed = clip.enqueued  # the END unit, or what a drop discarded
            clip.finished = True
            clip.owned = False
            self._live.discard(clip)
            if self._by_path.get(clip.path) is clip:
                del self._by_path[clip.path]
            self._progress.notify_all()

    def worker_exited(self, clip: Clip | None, error: BaseException, alive: int) -> list[Clip]:
        """A worker died of *error*; returns the clips the caller must now fail."""
        with self._lock:
            orphans = [clip] if clip is not None and not clip.finished else []
            if alive == 0:
                self.broken = error
                orphans += [c for c in self._live if not c.finished and c not in orphans]
                self._ready.clear()
                for c in orphans:
                    c.ready = False
            for c in orphans:
                c.owned = True  # nobody else may touch them now
            self._not_full.notify_all()
            return orphans

    # -- flush and shutdown ----------------------------------------------------------------

    def live_clips(self) -> list[Clip]:
        """The clips not yet finished."""
        with self._lock:
            return list(self._live)

    def snapshot(self) -> list[tuple[Clip, int]]:
        """What "everything so far" means for :meth:`wait`: each live clip's work enqueued."""
        with self._lock:
            return [(c, c.enqueued) for c in self._live]

    def wait(
        self,
        deadline: float | None,
        *,
        targets: list[tuple[Clip, int]] | None = None,
        everything: bool = False,
        stop: threading.Event | None = None,
    ) -> bool:
        """Wait until *targets* (default: the work enqueued so far) is done.

        With ``everything``, until no clip is live. Returns False on timeout, or when *stop*
        is set (then :meth:`wake` makes it notice at once).
        """
        with self._lock:
            if targets is None:
                targets = [(c, c.enqueued) for c in self._live]
            while True:
                if everything:
                    pending = bool(self._live)
                else:
                    # A dropped clip counts until its handle is resolved, even when the
                    # worker has been through all its frames.
                    targets = [
                        (c, n)
                        for c, n in targets
                        if not c.finished and (c.processed < n or c.drop_reason is not None)
                    ]
                    pending = bool(targets)
                    for c, n in targets:
                        c.wake_at = min(c.wake_at, n)
                if not pending or self.broken is not None:
                    return True
                if stop is not None and stop.is_set():
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._wait_for(self._progress, remaining)

    def fits(self, nbytes: int) -> bool:
        """Whether a frame of *nbytes* would be admitted now without waiting or dropping."""
        return self.memory.fits(nbytes)  # a hint: no lock needed

    def wait_for_room(self, nbytes: int, stop: threading.Event | None = None) -> None:
        """Wait until a frame of *nbytes* fits, the queue closes or breaks, or *stop* is set."""
        with self._lock:
            while not (
                (stop is not None and stop.is_set())
                or self._closed
                or self.broken is not None
                or self.fits(nbytes)
            ):
                self._wait_for(self._not_full, None)

    def wake(self) -> None:
        """Wake every thread in :meth:`wait` or :meth:`wait_for_room` to look at its *stop*."""
        with self._lock:
            self._not_full.notify_all()
            self._progress.notify_all()

    def take_unreported(self) -> tuple[list[BaseException], int]:
        """The errors not yet raised from flush()/close(), now reported, and how many more
        there were beyond the :data:`MAX_ERRORS` kept."""
        with self._lock:
            return self.counts.take_unreported()

    def mark_forked(self) -> None:
        """In a forked child: refuse everything, without the lock (a parent's thread may have
        held it at fork time)."""
        self.forked = True
        self._closed = True

    def close(self) -> None:
        """Refuse new clips and frames."""
        with self._lock:
            self._closed = True
            self._not_full.notify_all()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def drop_all(self, reason: str) -> None:
        """Drop every live clip (fast close)."""
        with self._lock:
            for clip in list(self._live):
                self._drop(clip, reason)
            self._not_full.notify_all()

    def stop_workers(self) -> None:
        """Let workers exit once nothing is ready."""
        with self._lock:
            self._stopping = True
            self._work.notify_all()
            self.memory.stop()

    def close_arena(self) -> None:
        """Release the frame memory (after the workers exited)."""
        with self._lock:
            self.memory.close()

    def stats(self) -> RecorderStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            memory = self.memory
            return self.counts.snapshot(
                memory.queued_bytes, memory.peak_queued_bytes, self.max_bytes, memory.pooled_bytes()
            )

    @property
    def arena(self) -> Arena:
        """The shared memory the frames are copied into (the encoder processes map it)."""
        return self.memory.arena

    @property
    def prefaulting(self) -> bool:
        """Whether a prefault thread is wanted (see :meth:`prefault`)."""
        return self.memory.prefaulting
