"""The worker side of the queue: handing clips' frames out, and counting each clip's outcome."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from recorder import _queue_core as queue_core
from recorder._clip import DROP, END, YIELD, Clip, Item, Work
from recorder._queue_core import QUANTUM, QueueCore


class WorkerSide(QueueCore):
    """What the worker threads call; every method takes the queue's lock."""

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
                if not self._work.wait(queue_core.IDLE_SECONDS):
                    self._idle()
            clip = self._ready.popleft()
            clip.ready = False
            clip.owned = True
            return clip, self._pop(clip)

    def release(self, clip: Clip, done: Sequence[Item], written: int) -> None:
        """Release frames of *clip* as :meth:`take` does, without taking more work."""
        if done:
            with self._lock:
                self._account(clip, done, written)

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
                if clip.lane is not None:
                    self._dissolve(clip.lane)  # its frames are counted, then discarded below
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
                self._reclaim()  # no more frames: appends take the full path, which raises
                orphans += [c for c in self._live if not c.finished and c not in orphans]
                self._ready.clear()
                for c in orphans:
                    c.ready = False
            for c in orphans:
                c.owned = True  # nobody else may touch them now
            self._not_full.notify_all()
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
