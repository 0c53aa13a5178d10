"""The bounded queue between the training thread and the workers, and each clip's life in it.

One lock and named conditions, the way CPython's ``queue.Queue`` does it. Frames wait per
clip (one video is encoded by one worker at a time, in order); clips with work wait in a FIFO
ready list that workers take from round-robin, so more live clips than workers cannot starve
one another. The frames' memory and its budget are :class:`FrameMemory`'s, under the same lock.

A clip's life is one :class:`~recorder._queue.clip.State`, changed only here, under the lock. A
method that changes it collects the effects of the change (log lines, a thread to start) and
runs them once the lock is released: nothing but state changes happens under the lock.

Invariants, all under ``_lock``:

* A frame is released (its block freed, ``processed`` counted) only once the encoder no
  longer reads it: an encoder process may still be encoding frames its worker has passed on.
* A clip is on ``_ready`` iff its custody is READY; a READY clip is owned by no worker; only
  the owning worker touches a clip's encoder and file.
* ``clip.enqueued - clip.processed`` work units are still to be done for a live clip.
* A live clip with work and no owner is made ready once the work is worth a wake-up: its
  first frames, QUANTUM frames, its END or DROP, a half-full budget, or a thread waiting
  (flush, close, "block").
* Outcomes are counted when they are decided; a clip leaves ``_live`` (retires) only after
  its handle is resolved, so a flush() that returns finds its handles done.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

from recorder._base.frames import FrameFormat, Image, copy_into
from recorder._base.info import Checked
from recorder._base.kept import kept
from recorder._base.results import QueueFullError, RecorderClosedError, RecorderStats
from recorder._queue.clip import DROP, END, YIELD, Clip, Custody, Item, State, Work, moved
from recorder._queue.counters import MAX_ERRORS, Counters
from recorder._queue.memory import FrameMemory

# Also imported from here by the Recorder, the wrappers and the benchmarks.
__all__ = ["DROP", "END", "MAX_ERRORS", "QUANTUM", "YIELD", "Clip", "ClipQueue", "Item", "OnFull"]

#: frames a worker takes from a clip at once, and encodes before a waiting clip has its turn.
QUANTUM = 8
#: seconds a worker waits for work before it takes frames short of a batch (see _idle).
IDLE_SECONDS = 1.0
#: whether recorders start the prefault thread (a switch for the benchmark that measures it).
PREFAULT = True

OnFull = Literal["drop", "block", "raise"]
Effect = Callable[[], object]
#: what the Recorder is told of a clip dropped: the clip, why, and whether to warn about it.
OnDrop = Callable[[Clip, str], None]


def _is_open(clip: Clip) -> bool:
    return clip.state is State.OPEN


def run(effects: list[Effect]) -> None:
    """Run the effects a state change collected (after the lock is released)."""
    for effect in effects:
        effect()


class ClipQueue:
    """Per-clip frame queues under one byte budget, and the clips' state."""

    def __init__(self, max_bytes: int, on_full: OnFull, on_drop: OnDrop) -> None:
        self.max_bytes = max_bytes
        self.on_full: OnFull = on_full
        self._on_drop = on_drop
        self._lock = threading.Lock()
        # Producers waiting for room (on_full="block", the async facade). Notified whenever
        # bytes are released, and when the queue closes or breaks.
        self._not_full = threading.Condition(self._lock)
        # Idle workers. Notified when a clip is made ready, and when the workers must stop or
        # the queue breaks.
        self._work = threading.Condition(self._lock)
        # flush()/close(). Notified when a clip's processed work reaches its wake_at, when a
        # clip retires, when wake() is called, and when a worker dies.
        self._progress = threading.Condition(self._lock)
        self.memory = FrameMemory(self._lock, max_bytes, prefault=PREFAULT)
        #: the shared memory the frames are copied into (the encoder processes map it).
        self.arena = self.memory.arena
        self._ready: collections.deque[Clip] = collections.deque()
        self._live: set[Clip] = set()
        self._by_path: dict[object, Clip] = {}  # the live clip that will own each final path
        self._closed = False  # no new clips or frames
        self._waiters = 0  # threads in _wait_for: frames go to the workers at once meanwhile
        # Set in a forked child (with _closed): the lock may have been held by a parent's
        # thread at fork time, so producer calls check _closed before taking it.
        self.forked = False
        self._stopping = False  # workers exit once nothing is ready
        self.broken: BaseException | None = None  # set when no worker is left alive
        self.counts = Counters()
        # A frame being let go of by a producer's thread, until it is: what a
        # KeyboardInterrupt in between leaves for _finish_interrupted (see FrameMemory).
        self._releasing: Item | None = None
        # Set without the lock (from a wrapper's __del__): the Recorder's owner is gone, and
        # on_abandoned (run after the lock is released) closes it once it is idle.
        self.abandoned = False
        self.on_abandoned: Callable[[], object] | None = None
        #: whether the calling thread is one of the recorder's own (set by it): a producer
        #: there (an on_saved callback) must not wait for room only that thread can free.
        self.own_thread: Callable[[], bool] = lambda: False

    # -- producers -----------------------------------------------------------------------------

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
        effects: list[Effect] = []
        with self._lock:
            self._check_usable()
            try:
                earlier = self._by_path.get(clip.path)
                if earlier is not None:
                    self._drop(earlier, "replaced by a later clip of the same name", effects)
                self._by_path[clip.path] = clip
                self._live.add(clip)
                self.counts.videos_started += 1
            except BaseException:
                self._finish_interrupted()
                raise
        run(effects)

    def admit(
        self,
        image: Image,
        fmt: FrameFormat,
        clips: Iterable[Clip],
        info: Checked | None = None,
    ) -> list[Clip]:
        """Copy *image* once into the queue for every clip of *clips* still open, with its
        checked per-frame *info* (its bytes charged to the budget too).

        Applies the on_full policy when the budget is exhausted. Ends clips that reach their
        length. Returns the clips of *clips* still open afterwards.
        """
        if self._closed:
            self._check_usable()
        effects: list[Effect] = []
        try:
            with self._lock:
                self._check_usable()
                targets = kept(clips, _is_open)
                if targets:
                    self._admit(image, fmt, targets, effects, info)
                return kept(targets, _is_open)
        finally:
            run(effects)

    def _admit(
        self,
        image: Image,
        fmt: FrameFormat,
        targets: list[Clip],
        effects: list[Effect],
        info: Checked | None,
    ) -> None:
        memory = self.memory
        data, extra = (None, 0) if info is None else info
        nbytes = fmt.nbytes + extra
        try:
            block = self._reserve(fmt, targets, effects, extra)
            if block is None:
                return
            # Under the lock: the copy holds the GIL anyway (see copy_into), so no worker
            # could use the lock meanwhile; one acquisition instead of two.
            copy_into(block, image)
            item = Item(block, nbytes, len(targets), data)
            for clip in targets:
                if clip.frame_format is None:
                    clip.frame_format = fmt
                # No call between these and the append: interrupted, the clip has it or not.
                clip.frames += 1
                clip.enqueued += 1
                clip.items.append(item)
                if clip.frames >= clip.limit:
                    self._end(clip)
                self._schedule_if_worth(clip)
            # No call in these three lines: the frame is counted and no longer in flight.
            self.counts.frames_submitted += 1
            self.counts.queued_frames += 1
            memory.inflight = None
        except BaseException:  # KeyboardInterrupt: the frame is queued for some clips or none
            self._finish_interrupted(targets)
            raise

    def _finish_inflight(self, targets: Sequence[Clip]) -> None:
        """After an interrupted :meth:`_admit`: the frame in flight is queued for the clips
        that got it (counted as a whole frame for them) or, if none did, given back."""
        memory = self.memory
        block = memory.inflight
        assert block is not None
        holders: list[Clip] = []
        item: Item | None = None
        for clip in targets:
            for work in list(clip.items)[-2:]:  # the frame, maybe its END after it
                if isinstance(work, Item) and work.buffer is block:
                    holders.append(clip)
                    item = work
        if item is None:
            # No call in these two lines: uncharged and no longer in flight, or neither.
            memory.queued_bytes -= memory.inflight_bytes
            memory.inflight = None
            memory.free(block)
            self._not_full.notify_all()
            return
        refs = len(holders)
        # No call in these lines: counted as queued for its holders, or not yet.
        item.refs = refs
        self.counts.frames_submitted += 1
        self.counts.queued_frames += 1
        memory.inflight = None
        for clip in holders:
            if clip.frames >= clip.limit and clip.state is State.OPEN:
                self._end(clip)
            self._schedule_if_worth(clip)

    def _reserve(
        self, fmt: FrameFormat, targets: list[Clip], effects: list[Effect], extra: int = 0
    ) -> Image | None:
        """Charge one frame (and *extra* bytes of its info) to the budget and return its
        block, or apply on_full (then None)."""
        while True:
            block = self.memory.alloc(fmt.shape, extra)
            if block is not None:
                self.memory.prefault_ahead(fmt.nbytes)
                return block
            own = self.on_full == "block" and self.own_thread()
            if self.on_full == "block" and not own:
                self._wait_for(self._not_full, None)
                self._check_usable()
                targets[:] = [c for c in targets if c.state is State.OPEN]
                if not targets:
                    return None
                continue
            reason = (
                f"max_queue_bytes={self.max_bytes} full "
                f"({self.memory.queued_bytes} bytes waiting, frame of {fmt.nbytes + extra})"
            )
            if own:
                reason += (
                    "; on_full='block' cannot wait on the recorder's own thread (an on_saved "
                    "or done-callback): it would wait for itself"
                )
            for clip in targets:
                self._drop(clip, reason, effects)
                self.counts.frames_dropped += 1  # the frame that did not fit
            if self.on_full == "raise" or own:
                names = ", ".join(c.name for c in targets)
                raise QueueFullError(f"{reason}; dropped {names}")
            return None

    def end(self, clip: Clip) -> None:
        """No more frames for *clip*: once its frames are encoded, the file is finished."""
        if self.forked:
            return  # the parent finishes its clips
        with self._lock:
            if clip.state is State.OPEN:
                self._end(clip)
                self._schedule(clip)

    def drop(self, clip: Clip, reason: str) -> None:
        """Drop *clip* whole (its file is discarded)."""
        self.drop_all(reason, [clip])

    def close(self) -> None:
        """Refuse new clips and frames."""
        with self._lock:
            self._closed = True
            self._not_full.notify_all()

    def drop_all(self, reason: str, clips: Iterable[Clip] | None = None) -> None:
        """Drop *clips* (default: every live clip) whole: their files are discarded."""
        effects: list[Effect] = []
        try:
            with self._lock:
                try:
                    for clip in list(self._live if clips is None else clips):
                        self._drop(clip, reason, effects)
                except BaseException:
                    self._finish_interrupted()
                    raise
        finally:
            run(effects)

    def mark_forked(self) -> None:
        """In a forked child: refuse everything, without the lock (a parent's thread may have
        held it at fork time)."""
        self.forked = True
        self._closed = True

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def charge(self, nbytes: int) -> None:
        """Count *nbytes* held outside the arena (a video on its way to a sink)."""
        with self._lock:
            self.memory.charge(nbytes)

    def uncharge(self, nbytes: int) -> None:
        """Those bytes are gone: room for frames again."""
        with self._lock:
            self.memory.uncharge(nbytes)
            self._not_full.notify_all()

    def fits(self, nbytes: int) -> bool:
        """Whether a frame of *nbytes* would be admitted now without waiting or dropping."""
        return self.memory.fits(nbytes)  # a hint: no lock needed

    # -- waiting -------------------------------------------------------------------------------

    def live_clips(self) -> list[Clip]:
        """The clips not yet retired."""
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
        dropping: threading.Event | None = None,
    ) -> bool:
        """Wait until *targets* (default: the work enqueued so far) is done.

        With ``everything``, until no clip is live; once *dropping* is set, until no clip is
        live that was not dropped (a clip being finished still counts: its file is in place,
        its sidecars and on_saved to come). Returns False on timeout, or when *stop* is set
        (then :meth:`wake` makes it notice at once).
        """
        with self._lock:
            if targets is None:
                targets = [(c, c.enqueued) for c in self._live]
            while True:
                if everything:
                    if dropping is not None and dropping.is_set():
                        pending = any(c.state is not State.DROPPED for c in self._live)
                    else:
                        pending = bool(self._live)
                else:
                    # A clip counts until it retires (its handle resolved), even when the
                    # worker has been through all its frames.
                    targets = kept(
                        targets,
                        lambda t: (
                            t[0] in self._live
                            and (t[0].processed < t[1] or t[0].state is not State.OPEN)
                        ),
                    )
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

    def _wait_for(self, condition: threading.Condition, timeout: float | None) -> None:
        """Wait on *condition* (of ``_lock``) with every clip's frames handed to the workers:
        someone is waiting for them now, so no clip may sit waiting for a full batch."""
        self._waiters += 1
        try:
            for clip in self._live:
                self._schedule(clip)
            condition.wait(timeout)
        finally:
            self._waiters -= 1

    # -- workers -------------------------------------------------------------------------------

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
        its frames must not wait for a worker that does not come back to them. Taking a
        clip begins its handle: a handle cancelled before that drops the clip.
        Returns ``None`` when the worker should exit.
        """
        with self._lock:
            if current is not None:
                if done:
                    self._account(current, done, written)
                # An ended clip is finished without a break: a preempted one would keep its
                # encoder (megabytes of x264 state the budget does not count) open meanwhile.
                if self._has_work(current) and (current.state is not State.OPEN or not self._ready):
                    return current, self._pop(current)
                if holding:
                    return current, [YIELD]
                current.custody = Custody.IDLE
                self._schedule(current)
        while True:
            effects: list[Effect] = []
            with self._lock:
                got = self._next_work(effects)
            run(effects)
            if got is not None or self._stopping:  # (else: idle effects ran, wait again)
                return got

    def _next_work(self, effects: list[Effect]) -> tuple[Clip, list[Work]] | None:
        """The next ready clip's work, or None: stopping, or idle with effects to run."""
        while not self._ready:
            if self._stopping:
                return None
            if not self._work.wait(IDLE_SECONDS):
                self._idle(effects)
                if effects:
                    return None
        clip = self._ready.popleft()
        clip.custody = Custody.OWNED
        if not clip.handle._begin():  # cancelled before any work began
            self._drop(clip, "its handle was cancelled", effects, warn=False)
        return clip, self._pop(clip)

    @staticmethod
    def _pop(clip: Clip) -> list[Work]:
        if clip.state is State.DROPPED:
            return [DROP]
        items = clip.items
        if items[0] is END:
            return [items.popleft()]
        batch: list[Work] = []
        while items and len(batch) < QUANTUM and items[0] is not END:
            batch.append(items.popleft())
        return batch

    def release(self, clip: Clip, done: Sequence[Item], written: int) -> None:
        """Release frames of *clip* as :meth:`take` does, without taking more work."""
        if done:
            with self._lock:
                self._account(clip, done, written)

    def publish(self, clip: Clip, rename: Callable[[], None]) -> bool:
        """Run *rename* (temporary name to final) unless *clip* was dropped meanwhile.

        The rename runs outside the lock (on a slow file system it would stall every
        ``append``); from here on the clip can no longer be dropped.
        """
        with self._lock:
            if clip.state is State.DROPPED:
                return False
            clip.state = moved(clip, State.PUBLISHED)
        rename()
        return True

    def saved(self, clip: Clip, size: int, encoded: Sequence[Item] = ()) -> None:
        """*clip*'s video is in place (*size* bytes); *encoded*: its frames not yet released."""
        with self._lock:
            if encoded:
                self._account(clip, encoded, len(encoded))
            clip.state = moved(clip, State.SAVED)
            self.counts.videos_saved += 1
            self.counts.bytes_written += size
            self.counts.encode_seconds += clip.encode_seconds

    def discarded(self, clip: Clip, encoded: Sequence[Item] = ()) -> None:
        """The owning worker deleted the file of the dropped *clip* (*encoded*: its frames the
        encoder had, now free)."""
        with self._lock:
            if encoded:
                self._account(clip, encoded, len(encoded))
            self.counts.frames_dropped += clip.written
            self.counts.encode_seconds += clip.encode_seconds

    def failed(
        self,
        clip: Clip,
        error: BaseException,
        *,
        held: Sequence[Work] = (),
        encoded: Sequence[Item] = (),
    ) -> bool:
        """*clip* failed with *error*; its file is deleted. *held*: frames taken but not
        encoded; *encoded*: frames encoded, not yet released. False when the clip had been
        dropped meanwhile: that stays its outcome (and *error* is not kept)."""
        with self._lock:
            if encoded:
                self._account(clip, encoded, len(encoded))
            for work in held:
                if isinstance(work, Item):
                    self._release(work)
                    self.counts.frames_dropped += 1
            self._release_queued(clip)
            if clip.state is not State.DROPPED:
                clip.state = moved(clip, State.FAILED)
                self.counts.keep(error)
                self.counts.videos_failed += 1
            self.counts.frames_dropped += clip.written
            self.counts.encode_seconds += clip.encode_seconds
            return clip.state is State.FAILED

    def report(self, error: BaseException) -> None:
        """An error of background work that is not a video's own (an on_saved callback)."""
        with self._lock:
            self.counts.keep(error, video=False)

    def retire(self, clip: Clip) -> None:
        """After its handle is resolved: *clip* no longer counts as pending for flush()."""
        with self._lock:
            self._release_queued(clip)  # left by an interrupted drop, if any
            clip.processed = clip.enqueued  # the END unit, or what a drop discarded
            clip.custody = Custody.OWNED  # nobody takes it again
            self._live.discard(clip)
            if self._by_path.get(clip.path) is clip:
                del self._by_path[clip.path]
            self._progress.notify_all()

    def worker_exited(self, clip: Clip | None, error: BaseException, alive: int) -> list[Clip]:
        """A worker died of *error*; returns the clips the caller must now fail."""
        with self._lock:
            orphans = [clip] if clip is not None and clip in self._live else []
            if alive == 0:
                self.broken = error
                orphans += kept(self._live, lambda c: c not in orphans)
                self._ready.clear()
            for c in orphans:
                c.custody = Custody.OWNED  # nobody else may touch them now
            # Whoever waits must look again: producers, idle workers, flush() and close().
            self._not_full.notify_all()
            self._work.notify_all()
            self._progress.notify_all()
            return orphans

    def stop_workers(self) -> None:
        """Let workers exit once nothing is ready."""
        with self._lock:
            self._stopping = True
            self._work.notify_all()
            self.memory.stop()

    def prefault(self) -> None:
        """The prefault thread's loop (see :meth:`FrameMemory.prefault`)."""
        self.memory.prefault()

    def close_arena(self) -> None:
        """Release the frame memory (after the workers exited)."""
        with self._lock:
            self.memory.close()

    # -- reading -------------------------------------------------------------------------------

    def take_unreported(self) -> tuple[list[BaseException], int, int]:
        """The errors not yet raised from flush()/close(), now reported; how many more there
        were beyond the :data:`MAX_ERRORS` kept; and how many of all were no video's own."""
        with self._lock:
            return self.counts.take_unreported()

    def stats(self) -> RecorderStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            memory = self.memory
            return self.counts.snapshot(
                memory.queued_bytes, memory.peak_queued_bytes, self.max_bytes, memory.pooled_bytes()
            )

    # -- state changes (under the lock) --------------------------------------------------------

    def _end(self, clip: Clip) -> None:
        state = moved(clip, State.ENDED)
        # No call between these and the append: interrupted, the END is queued or not.
        clip.state = state
        clip.enqueued += 1
        clip.items.append(END)
        if clip.metadata is not None:
            clip.metadata = dict(clip.metadata)  # what the caller had set when the clip ended

    def _drop(self, clip: Clip, reason: str, effects: list[Effect], *, warn: bool = True) -> None:
        """Drop *clip* unless it is past that (published, or an outcome decided)."""
        if clip.state is not State.OPEN and clip.state is not State.ENDED:
            return
        clip.state = State.DROPPED
        clip.drop_reason = reason
        self.counts.videos_dropped += 1
        self._release_queued(clip)
        self._schedule(clip)
        if warn:
            effects.append(lambda: self._on_drop(clip, reason))

    def _release_queued(self, clip: Clip) -> None:
        items = clip.items
        while items:
            work = items[0]
            if not isinstance(work, Item):  # its END
                del items[0]
                continue
            # No call in these lines: the frame leaves the clip as one being released.
            self._releasing = work
            self.counts.frames_dropped += 1
            del items[0]
            self._release(work)

    def _release(self, item: Item) -> None:
        refs = item.refs - 1
        if refs:
            item.refs = refs
            self._releasing = None
            return
        # No call in these lines: the frame is counted off the budget, or not at all.
        item.refs = 0
        self.memory.queued_bytes -= item.nbytes
        self.counts.queued_frames -= 1
        self._releasing = None
        self.memory.free(item.buffer)
        self._not_full.notify_all()

    def _finish_interrupted(self, targets: Sequence[Clip] = ()) -> None:
        """After a KeyboardInterrupt in a producer's call (its thread is the main thread):
        finish letting go of the frame being released, and settle the frame in flight."""
        if self._releasing is not None:
            self._release(self._releasing)
        if self.memory.inflight is not None:
            self._finish_inflight(targets)

    def _account(self, clip: Clip, done: Sequence[Item], written: int) -> None:
        clip.processed += len(done)
        clip.written += written
        self.counts.frames_encoded += written
        self.counts.frames_dropped += len(done) - written
        for item in done:
            self._release(item)
        if clip.processed >= clip.wake_at:
            # Not every frame: each wake-up would take the GIL from the encoder.
            clip.wake_at = math.inf
            self._progress.notify_all()

    def _has_work(self, clip: Clip) -> bool:
        return clip in self._live and (clip.state is State.DROPPED or bool(clip.items))

    def _schedule(self, clip: Clip) -> None:
        if clip.custody is Custody.IDLE and self._has_work(clip):
            clip.custody = Custody.READY
            self._ready.append(clip)
            self._work.notify()

    def _schedule_if_worth(self, clip: Clip) -> None:
        # A worker is woken for a batch, not for every frame: each wake-up is a GIL
        # hand-over that the training thread pays for.
        if clip.custody is Custody.IDLE and (
            clip.state is not State.OPEN
            or len(clip.items) >= QUANTUM
            or clip.processed == 0  # its first frames: open the file, fail early
            or self._waiters > 0
            or 2 * self.memory.queued_bytes >= self.max_bytes
        ):
            self._schedule(clip)

    def _idle(self, effects: list[Effect]) -> None:
        """A worker waited :data:`IDLE_SECONDS` for work: the producer has paused (or feeds
        frames slowly), so frames short of a batch go to the workers now rather than wait in
        memory for the next append (and be lost with a crash)."""
        for clip in list(self._live):
            self._schedule(clip)
        if self.abandoned and not self._closed and self.on_abandoned is not None:
            self.abandoned = False
            effects.append(self.on_abandoned)
