"""The bounded queue between the training thread and the encoder threads.

What producers (admit, end, drop) and waiters (flush, close, "block") call. The state and its
invariants are :mod:`recorder._queue_core`'s; the workers' calls :mod:`recorder._queue_workers`'.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from recorder._clip import DROP, END, YIELD, Clip, Item
from recorder._counters import MAX_ERRORS
from recorder._frames import FrameFormat, Image, copy_into
from recorder._queue_core import QUANTUM, OnFull
from recorder._queue_workers import WorkerSide
from recorder._results import QueueFullError, RecorderStats

# Also imported from here by the Recorder, the wrappers and the benchmarks.
__all__ = ["DROP", "END", "MAX_ERRORS", "QUANTUM", "YIELD", "Clip", "ClipQueue", "Item", "OnFull"]

#: whether recorders start the prefault thread (a switch for the benchmark that measures it).
PREFAULT = True


class ClipQueue(WorkerSide):
    """Per-clip frame queues under one byte budget: what producers and waiters call."""

    def __init__(
        self, max_bytes: int, on_full: OnFull, on_drop: Callable[[Clip, str], None]
    ) -> None:
        super().__init__(max_bytes, on_full, on_drop, prefault=PREFAULT)
        #: the shared memory the frames are copied into (the encoder processes map it).
        self.arena = self.memory.arena

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

    def admit(
        self, image: Image, fmt: FrameFormat, clips: Iterable[Clip], *, lane: bool = False
    ) -> list[Clip]:
        """Copy *image* once into the queue for every accepting clip in *clips*.

        Applies the on_full policy when the budget is exhausted. Ends clips that reach their
        length. Returns the clips of *clips* still accepting frames afterwards. With *lane*
        (the caller feeds one clip and will :func:`~recorder._lane.put` its next frames),
        a sole target clip gets a lane if it has none.
        """
        if self._closed:
            self._check_usable()
        with self._lock:
            self._check_usable()
            self._sync()  # the lanes' frames come first
            targets = [c for c in clips if c.accepting]
            for clip in targets:
                if clip.lane is not None:  # a frame its lane could not take: no more lane
                    self._dissolve(clip.lane)  # (its blocks were counted against the length)
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
                if self._worth_waking(clip):
                    self._schedule(clip)
            self.counts.frames_submitted += 1
            self.counts.queued_frames += 1
            if lane and len(targets) == 1:
                self._open_lane(targets[0], fmt)
            return [c for c in targets if not c.ended]

    def _reserve(self, fmt: FrameFormat, targets: list[Clip]) -> Image | None:
        """Charge one frame to the budget and return a buffer for it, or apply on_full."""
        nbytes = fmt.nbytes
        while True:
            buffer = self.memory.alloc(fmt)
            if buffer is not None:
                return buffer
            if self._lanes:
                self._reclaim()  # blocks reserved for other frames: this one needs them now
                continue
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

    def hold(self, nbytes: int) -> None:
        """Count *nbytes* held outside the arena (a video on its way to a sink)."""
        with self._lock:
            self.memory._charge(nbytes)

    def unhold(self, nbytes: int) -> None:
        """Those bytes are gone: room for frames again."""
        with self._lock:
            self.memory.queued_bytes -= nbytes
            self._not_full.notify_all()

    def end(self, clip: Clip) -> None:
        """No more frames for *clip*: once its frames are encoded, the file is finished."""
        if self.forked:
            return  # the parent finishes its clips
        with self._lock:
            self._sync()
            if clip.accepting:
                self._end(clip)
                self._schedule(clip)

    def drop(self, clip: Clip, reason: str) -> None:
        """Drop *clip* whole (its file is discarded)."""
        with self._lock:
            self._drop(clip, reason)

    def live_clips(self) -> list[Clip]:
        """The clips not yet finished."""
        with self._lock:
            return list(self._live)

    def snapshot(self) -> list[tuple[Clip, int]]:
        """What "everything so far" means for :meth:`wait`: each live clip's work enqueued."""
        with self._lock:
            self._sync()
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
            self._sync()
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
            self._reclaim()
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
        for lane in self._lanes:  # their blocks are the parent's, in memory it shares
            lane.spent = True
            lane.spare.clear()

    def close(self) -> None:
        """Refuse new clips and frames."""
        with self._lock:
            self._closed = True
            self._reclaim()
            self._not_full.notify_all()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def drop_all(self, reason: str) -> None:
        """Drop every live clip (fast close)."""
        with self._lock:
            self._reclaim()
            for clip in list(self._live):
                self._drop(clip, reason)
            self._not_full.notify_all()

    def stats(self) -> RecorderStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            self._sync()
            memory = self.memory
            queued = memory.queued_bytes - memory.reserved
            return self.counts.snapshot(
                queued, memory.peak_queued_bytes, self.max_bytes, memory.pooled_bytes()
            )
