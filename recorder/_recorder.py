"""The Recorder service: its lifecycle, its worker threads, flush and close.

Clip planning (which clips a frame belongs to) is :mod:`recorder._episode`'s; each clip's file
is written by :mod:`recorder._writer` on a thread of :mod:`recorder._worker`.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np

from recorder._clip import Clip
from recorder._encoder import Codec, EncoderFactory, PyAVEncoder
from recorder._episode import ClipPlan, Episode
from recorder._frames import FrameFormat, Image, check_size, image_and_format
from recorder._keep import Keep, Keeper
from recorder._metadata import append_manifest
from recorder._process import EncodeIn, EncoderProcesses
from recorder._process import available as processes_available
from recorder._queue import ClipQueue, OnFull
from recorder._reporting import WarnOnce, logger, note_close_error, raise_errors
from recorder._results import ClipHandle, ClipKind, RecorderClosedError, RecorderStats, VideoInfo
from recorder._schedule import capped_cubic_video_schedule
from recorder._sink import Deliveries, Sink
from recorder._validate import (
    Trigger,
    check_callable,
    check_fps,
    check_name_prefix,
    check_timeout,
    check_triggers,
    check_video_length,
    is_int,
    make_folder,
    shape_changed,
    validate_frames,
)
from recorder._worker import Workers
from recorder._writer import ClipWriter

# Also imported from here by the wrappers.
__all__ = ["Episode", "Recorder", "Trigger", "check_fps", "check_name_prefix"]

# Recorders not yet closed, closed by the interpreter before it joins non-daemon threads.
_live: set[Recorder] = set()
_live_lock = threading.Lock()


class _ClipService:
    """The Recorder's internal interface: what Episode, the wrappers and the async facade call.

    They never touch the queue or the recorder's own state, so each can change alone.
    """

    fps: float
    video_folder: Path
    codec: Codec
    on_full: OnFull
    _queue: ClipQueue
    _closed: bool
    _pid: int
    _stalls: WarnOnce
    _drops: WarnOnce
    _workers: Workers
    _keeper: Keeper | None
    _plan: ClipPlan
    _threads: list[threading.Thread]
    _deliveries: Deliveries | None

    def _plan_for(self, fps: float | None) -> ClipPlan:
        """The clip plan of an episode with its own *fps* (None: the Recorder's)."""
        return (
            self._plan if fps is None else replace(self._plan, fps=check_fps(fps, self.codec.name))
        )

    def _not_from_own_thread(self, call: str) -> None:
        # on_saved and a handle's done-callbacks run there: the call would wait for itself.
        own = self._deliveries.thread if self._deliveries is not None else None
        if threading.current_thread() in (*self._threads, own):
            raise RuntimeError(
                f"{call}() cannot be called from the recorder's own worker thread (an on_saved "
                "callback or a handle's done-callback): it would wait for itself"
            )

    def _abandon(self) -> None:
        """The owner (a wrapper's private Recorder's wrapper) went away without close(): the
        Recorder closes itself once its workers are idle. Takes no lock (called by __del__)."""
        self._queue.abandoned = True

    def _check_usable(self) -> None:
        """Raise :class:`RecorderClosedError` when the recorder is closed or forked."""
        if self._queue.forked or os.getpid() != self._pid:
            raise RecorderClosedError("a Recorder cannot be used in a forked child process")
        if self._closed or self._queue.closed:
            raise RecorderClosedError("this Recorder is closed")

    @property
    def _usable(self) -> bool:
        """Whether clips and frames are still taken (no system call: read for every frame)."""
        return not (self._closed or self._queue.closed)

    @property
    def _forked(self) -> bool:
        """Whether this is the parent's recorder seen in a forked child (the parent closes it)."""
        return self._queue.forked

    def _new_clip(
        self,
        name: str,
        kind: ClipKind,
        index: int | None,
        fps: float | None = None,
        *,
        folder: Path | None = None,
        length: int | None = None,
        episode_index: int | None = None,
        first_step: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Clip:
        """Open a clip named *name* (no extension) in *folder* (default: video_folder).

        It takes at most *length* frames (None: no limit). A live clip of the same path is
        dropped: the last one wins, as when gymnasium overwrites a file.
        """
        path = (folder or self.video_folder) / f"{name}{self.codec.extension}"
        clip = Clip(
            name=name,
            path=path,
            kind=kind,
            index=index,
            fps=self.fps if fps is None else fps,
            handle=ClipHandle(name, path, kind, index),
            limit=math.inf if length is None else length,
            metadata=metadata,
            episode_index=episode_index,
            first_step=first_step,
        )
        self._queue.open_clip(clip)
        return clip

    def _admit(self, image: Image, fmt: FrameFormat, clips: Sequence[Clip]) -> list[Clip]:
        """Queue the validated *image* for *clips* (on_full applies); the clips still accepting."""
        return self._queue.admit(image, fmt, clips)

    def _append_frame(self, clips: Sequence[Clip], frame: Any) -> None:
        """Validate *frame* and queue it once for every clip in *clips* still accepting."""
        image, fmt = image_and_format(frame)
        for clip in clips:
            known = clip.frame_format
            if known is None:
                check_size(fmt, self.codec.name)
            elif known is not fmt and known != fmt:
                raise shape_changed(clip.name, known, fmt)
        self._queue.admit(image, fmt, clips)

    def _end_clip(self, clip: Clip) -> None:
        """No more frames for *clip*; it is finished in the background."""
        self._queue.end(clip)

    def _drop_clip(self, clip: Clip, reason: str) -> None:
        """Drop *clip* whole: its file is discarded, its handle raises ClipDroppedError."""
        self._queue.drop(clip, reason)

    @property
    def _keeps(self) -> bool:
        """Whether a keep policy ranks the episodes (``Recorder(keep=...)``)."""
        return self._keeper is not None

    def _episode_ended(self, episode_index: int, metadata: Mapping[str, Any]) -> None:
        """An episode that made clips ended: the keep policy scores it (may delete videos)."""
        if self._keeper is not None:
            try:
                self._keeper.episode_ended(episode_index, metadata)
            except OSError as e:
                e.add_note(f"deleting the videos of episode {episode_index} (keep)")
                logger.error("keep: %s", e)
                self._queue.report(e)

    def _stalled(self, episode_index: int, why: str) -> None:
        """Count (and log, the first time as a warning) an episode that recorded nothing."""
        self._stalls("episode %d recorded nothing: %s", episode_index, why)

    # For the async facade: it admits frames on the event loop only once they cannot wait,
    # and waits (stoppably) on its own threads.

    @property
    def _may_block(self) -> bool:
        """Whether admitting a frame can wait now: ``on_full="block"``, open and not broken."""
        queue = self._queue
        return self.on_full == "block" and not queue.closed and queue.broken is None

    def _fits(self, nbytes: int) -> bool:
        """Whether a frame of *nbytes* would be admitted now without waiting or dropping."""
        return self._queue.fits(nbytes)

    def _wait_for_room(self, nbytes: int, stop: threading.Event) -> None:
        """Wait until a frame of *nbytes* fits, the recorder closes or breaks, or *stop* is set."""
        self._queue.wait_for_room(nbytes, stop)

    def _pending(self) -> list[tuple[Clip, int]]:
        """What "everything so far" is for :meth:`_wait_until`: each live clip's work."""
        return self._queue.snapshot()

    def _wait_until(self, targets: list[tuple[Clip, int]] | None, stop: threading.Event) -> None:
        """Wait until *targets* (from :meth:`_pending`; None: every clip) are done, or *stop*."""
        self._queue.wait(None, targets=targets, everything=targets is None, stop=stop)

    def _wake(self) -> None:
        """Make the threads in :meth:`_wait_for_room` / :meth:`_wait_until` look at *stop*."""
        self._queue.wake()

    def _end_all(self) -> None:
        """Refuse new clips and frames, and end every live clip where it is."""
        queue = self._queue
        queue.close()
        for clip in queue.live_clips():
            queue.end(clip)

    def _drop_all(self, reason: str) -> None:
        """Refuse new clips and frames, and drop every live clip (fast close)."""
        self._queue.close()
        self._queue.drop_all(reason)

    def _log_drop(self, clip: Clip, reason: str) -> None:
        self._drops("dropped video %s: %s", clip.name, reason)

    def _raise_errors(self) -> None:
        raise_errors(*self._queue.take_unreported())

    # The workers' per-clip finish: tests replace it to make a worker die.

    @property
    def _finish(self) -> Callable[[Clip], None]:
        return self._workers.finish

    @_finish.setter
    def _finish(self, finish: Callable[[Clip], None]) -> None:
        self._workers.finish = finish


def _close_abandoned(rec: Recorder) -> None:
    """Close *rec*, abandoned by its owner, on a thread of its own (an idle worker calls this);
    an error is logged: nobody is left to raise it to."""

    def close() -> None:
        try:
            rec.close()
        except Exception as e:
            logger.error("an unclosed wrapper's Recorder (%s) failed: %r", rec.video_folder, e)

    threading.Thread(target=close, name="recorder-close-abandoned").start()


class Recorder(_ClipService):
    """Records videos of episodes in the background.

    Frames are validated and copied on the calling thread (microseconds); triggers decide which
    clips want them, exactly as :func:`gymnasium.utils.save_video.save_video` does; worker
    threads have them encoded with PyAV (in encoder processes by default, see *encode_in*) into
    a temporary file per video, renamed when complete. Leaving the ``with`` block (or
    :meth:`close`) waits until everything is on disk.

    Args:
        video_folder: where videos go; created if missing.
        fps: frames per second of the videos.
        episode_trigger: ``episode_index -> bool``: record this episode. With neither trigger,
            :func:`capped_cubic_video_schedule`.
        step_trigger: ``step_index -> bool``: start a clip at this step.
        video_length: ``None`` records whole episodes; ``n > 0`` clips of at most n frames.
        name_prefix: file names are ``{name_prefix}-episode-{i}`` / ``-step-{i}``.
        workers: encoder threads (with *encode_in* ``"process"``, up to as many encoder
            processes).
        max_queue_bytes: budget for frames waiting to be encoded: the size of the shared
            memory (the arena, ~3% more for alignment) that the frames are copied into once.
        on_full: when the budget is full: ``"drop"`` the clips that want the frame (never
            waits), ``"block"`` until there is room (lossless), or ``"raise"``
            :class:`QueueFullError` (the clips are dropped too).
        codec: ``"h264"`` (mp4), ``"h265"``, ``"vp9"`` (webm), ``"gif"`` or a :class:`Codec`.
        crf: quality, lower is better (codec default when ``None``).
        preset: encoder speed preset (codec default when ``None``).
        worker_nice: how much workers lower their own scheduling priority (Linux per-thread
            nice) so that the training loop wins a contended core; 0 leaves it.
        encode_in: ``"process"`` (default where the OS allows it: Linux) runs PyAV in up to
            *workers* child processes, started at the first video, which encode each frame
            where it lies in the arena (PyAV holds the GIL at moments that would stop the
            training loop). Idle ones are kept for the next Recorder (up to 2). Where none
            can be started, videos are encoded in the worker threads, with a warning;
            ``"thread"`` does that by choice. With processes, ``encode_seconds`` (stats,
            :class:`VideoInfo`) is the workers' time feeding them.
        encoder_factory: makes the encoder of each video (for tests); PyAV by default.
        on_saved: called on a worker thread with the :class:`VideoInfo` of each saved video;
            an exception it raises is reported like an encoding error.
        sidecars: write ``{name}.json`` beside each video (its :class:`VideoInfo` and the
            episode's metadata) and append a line to ``manifest.jsonl`` in the folder.
        sink: deliver each finished video to this sink (:func:`recorder.ray.start_sink`)
            instead of renaming it into *video_folder*, which then holds only the temporary
            files being written. A handle resolves once the video is on the sink's disk
            (``VideoInfo.path`` is the sink's path); the sink writes sidecar and manifest.
            Videos waiting for the sink's answer count against *max_queue_bytes*.
        keep: keep only the videos of the best and worst episodes, e.g.
            ``{"best": 5, "worst": 2, "by": "return"}`` (a :class:`Keep`): every episode is
            recorded (unless a trigger says otherwise) and, when it ends, scored by
            ``ep.metadata[by]``; the videos of episodes out of both rankings are deleted,
            and the manifest says which were kept and why.

    Raises:
        TypeError, ValueError: for an invalid argument.
    """

    def __init__(
        self,
        video_folder: str | os.PathLike[str],
        fps: float = 30,
        episode_trigger: Trigger | None = None,
        step_trigger: Trigger | None = None,
        video_length: int | None = None,
        name_prefix: str = "rl-video",
        workers: int = 1,
        max_queue_bytes: int = 256 * 2**20,
        on_full: OnFull = "drop",
        *,
        codec: str | Codec = "h264",
        crf: int | None = None,
        preset: str | None = None,
        worker_nice: int = 10,
        encode_in: EncodeIn = "process",
        encoder_factory: EncoderFactory | None = None,
        on_saved: Callable[[VideoInfo], object] | None = None,
        sidecars: bool = True,
        sink: Sink | None = None,
        keep: Keep | Mapping[str, Any] | None = None,
    ) -> None:
        self.fps = check_fps(fps)
        self.video_length = check_video_length(video_length)
        self.name_prefix = check_name_prefix(name_prefix)
        check_triggers(episode_trigger, step_trigger)
        keep = None if keep is None else Keep.of(keep)
        if sink is not None and not isinstance(sink, Sink):
            raise TypeError(f"sink must have an open() method (a recorder.ray sink), got {sink!r}")
        if keep is not None and sink is not None:
            raise ValueError("keep cannot be combined with a sink yet: the sink's folder is remote")
        if episode_trigger is None and step_trigger is None:
            # With keep, every episode is a candidate; else gymnasium's default schedule.
            episode_trigger = capped_cubic_video_schedule if keep is None else _always
        self.episode_trigger = episode_trigger
        self.step_trigger = step_trigger
        _check_service(workers, max_queue_bytes, on_full, worker_nice, encode_in)
        self.codec = _codec_of(codec, crf, preset)
        check_fps(fps, self.codec.name)
        check_callable("on_saved", on_saved)
        self.on_saved = on_saved
        self.sidecars = bool(sidecars)
        self.video_folder = make_folder(video_folder)
        plan = (self.video_folder, self.name_prefix, episode_trigger, step_trigger)
        self._plan = ClipPlan(*plan, self.video_length, self.fps)
        self.workers = workers
        self.max_queue_bytes = max_queue_bytes
        self.on_full: OnFull = on_full
        self._drops = WarnOnce("further drops are counted in stats(), logged at DEBUG")
        self._queue = ClipQueue(max_queue_bytes, on_full, self._log_drop)
        self._deliveries = None
        try:
            self._processes: EncoderProcesses | None = None
            if encoder_factory is None and encode_in == "process" and processes_available():
                self._processes = EncoderProcesses(workers, worker_nice, self._queue.arena)
            self.encode_in: EncodeIn = "process" if self._processes is not None else "thread"
            # Episodes closed before they could start a clip (see Episode); any thread closes one.
            self._stalls = WarnOnce(
                "further stalled episodes are counted in stats().episodes_stalled, logged at DEBUG"
            )
            self._pid = os.getpid()
            self._close_lock = threading.Lock()
            self._closed = False
            factory = encoder_factory or self._processes or PyAVEncoder
            self._keeper = None if keep is None else Keeper(keep, self._record)
            self._deliveries = None if sink is None else Deliveries(sink.open())
            writer = ClipWriter(
                self._queue,
                self.codec,
                factory,
                on_saved,
                self.sidecars,
                deliveries=self._deliveries,
                keeper=self._keeper,
            )
            self._workers = Workers(self._queue, writer, workers, worker_nice)
        except BaseException:  # e.g. a dead sink: nothing started, the arena's memfd goes
            self._stop_deliveries("the Recorder could not be created")
            self._queue.close_arena()
            raise
        self._threads = self._workers.threads
        self._queue.on_abandoned = partial(_close_abandoned, self)
        with _live_lock:
            _live.add(self)
        self._workers.start()

    # -- the training thread's API ------------------------------------------------------------

    def episode(
        self,
        episode_index: int = 0,
        step_starting_index: int = 0,
        *,
        fps: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Episode:
        """Stream one episode frame by frame (a context manager; see :class:`Episode`).

        Args:
            episode_index: index of the episode (for episode_trigger and the file name).
            step_starting_index: step index of the first frame after the reset frame.
            fps: this episode's videos' fps, if not the recorder's.
            metadata: JSON-able facts about the episode (seed, policy checkpoint...) for the
                sidecars and :class:`VideoInfo`; more can be added to ``ep.metadata`` until the
                episode ends (its return, say).

        Raises:
            RecorderClosedError: the recorder is closed.
            Exception: whatever episode_trigger raises.
        """
        self._check_usable()
        plan = self._plan_for(fps)
        return Episode(self, plan, episode_index, step_starting_index, metadata)

    def submit(
        self,
        frames: Sequence[Any] | np.ndarray[Any, Any],
        episode_index: int = 0,
        step_starting_index: int = 0,
        *,
        fps: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> list[ClipHandle]:
        """Record a whole episode's frames; returns at once, one handle per clip.

        Produces the clips :func:`gymnasium.utils.save_video.save_video` would: the episode
        clip (``frames[:video_length]``) when episode_trigger fires, and a clip from each frame
        ``k >= 1`` whose step ``step_starting_index + k - 1`` fires step_trigger. Frame 0 is
        the reset frame.

        Raises:
            TypeError, ValueError: bad frames or indices, before anything is queued.
            QueueFullError: ``on_full="raise"`` and the budget is full.
        """
        self._check_usable()
        images = validate_frames(frames)
        plan = self._plan_for(fps)
        return self._submit(images, plan, episode_index, step_starting_index, metadata)

    def _submit(
        self,
        images: list[Image],
        plan: ClipPlan,
        episode_index: int,
        step_starting_index: int,
        metadata: Mapping[str, Any] | None = None,
    ) -> list[ClipHandle]:
        ep = Episode(self, plan, episode_index, step_starting_index, metadata)
        return ep._record_all(images)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every video ended so far is on disk, and every frame given so far encoded.

        Raises:
            TimeoutError: *timeout* seconds passed first.
            TypeError, ValueError: *timeout* is not a number >= 0 (None, inf: no limit).
            Exception: the error of a video that failed since the last flush()/close(), or an
                :class:`ExceptionGroup` of them.
        """
        if os.getpid() != self._pid:
            raise RecorderClosedError("a Recorder cannot be used in a forked child process")
        self._not_from_own_thread("flush")
        timeout = check_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._queue.wait(deadline):
            pending = len(self._queue.live_clips())
            raise TimeoutError(f"flush() timed out after {timeout} s; {pending} videos pending")
        self._raise_errors()

    def stats(self) -> RecorderStats:
        """A snapshot of the counters: queue bytes and peak, frames, videos, errors."""
        return replace(self._queue.stats(), episodes_stalled=self._stalls.count)

    def close(self, timeout: float | None = None, *, cancel: bool = False) -> None:
        """Finish every clip, stop the workers and report errors. Idempotent, any thread.

        Open episodes are ended where they are. Then waits until every video is on disk, or,
        with ``cancel=True``, drops what is queued (no file is left half-written).

        Args:
            timeout: after this many seconds, what is left is dropped and TimeoutError raised.
            cancel: drop queued frames instead of encoding them (fast shutdown).

        Raises:
            TimeoutError: *timeout* passed (the rest was dropped).
            TypeError, ValueError: *timeout* is not a number >= 0 (None, inf: no limit);
                nothing is closed then.
            Exception: errors of failed videos not yet raised by flush(), one as itself,
                several as an :class:`ExceptionGroup`.
        """
        self._not_from_own_thread("close")
        timeout = check_timeout(timeout)
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            if os.getpid() != self._pid:
                return  # the workers live in the parent; nothing here to flush
            self._shutdown(timeout, cancel)
        self._raise_errors()

    def _shutdown(self, timeout: float | None, cancel: bool) -> None:
        queue = self._queue
        queue.close()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            for clip in queue.live_clips():
                queue.end(clip)
            if cancel:
                queue.drop_all("the recorder was closed with cancel=True")
                self._stop_deliveries("the recorder was closed with cancel=True")
            if not queue.wait(deadline, everything=True):
                queue.drop_all(f"close() timed out after {timeout} s")
                raise TimeoutError(
                    f"close() timed out after {timeout} s; the videos left were dropped"
                )
        except BaseException:
            # KeyboardInterrupt (a second Ctrl-C), a timeout: drop the rest quickly; workers
            # delete what they had half-written, and the interruption propagates.
            queue.drop_all("close() was interrupted")
            deadline = time.monotonic()  # the workers get a grace, then their encoders die
            raise
        finally:
            self._workers.stop(deadline, self._processes)
            self._stop_deliveries("the recorder closed before the sink acknowledged the video")
            with _live_lock:
                _live.discard(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        try:
            self.close()
        except Exception as e:  # the block's exception goes first
            note_close_error(exc, e)

    @property
    def closed(self) -> bool:
        """Whether close() has begun."""
        return self._closed

    def _stop_deliveries(self, reason: str) -> None:
        if self._deliveries is not None:
            self._deliveries.stop(reason)

    def _record(self, record: dict[str, Any]) -> None:
        append_manifest(self.video_folder, record)


def _always(_episode: int) -> bool:
    return True


def _codec_of(codec: str | Codec, crf: int | None, preset: str | None) -> Codec:
    if isinstance(codec, Codec):
        if crf is not None or preset is not None:
            raise TypeError("give crf and preset inside the Codec, not beside it")
        return codec
    return Codec(codec, crf=crf, preset=preset)


def _check_service(
    workers: int, max_queue_bytes: int, on_full: str, nice: int, encode_in: str
) -> None:
    """Raise for an invalid argument of the Recorder's workers and queue."""
    if not is_int(workers) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    if not is_int(max_queue_bytes) or max_queue_bytes <= 0:
        raise ValueError(f"max_queue_bytes must be an int > 0, got {max_queue_bytes!r}")
    if on_full not in ("drop", "block", "raise"):
        raise ValueError(f"on_full must be 'drop', 'block' or 'raise', got {on_full!r}")
    if not is_int(nice):
        raise TypeError(f"worker_nice must be an int, got {nice!r}")
    if encode_in not in ("process", "thread"):
        raise ValueError(f"encode_in must be 'process' or 'thread', got {encode_in!r}")


# -- process-wide plumbing ---------------------------------------------------------------------


def _close_all_at_exit() -> None:
    with _live_lock:
        recorders = list(_live)
    for rec in recorders:
        try:
            rec.close()
        except Exception:
            logger.exception("closing a Recorder at interpreter exit")


def _forget_all_in_child() -> None:
    # The workers did not survive fork(); the parent's recorders are its business. Using one
    # here must fail clearly rather than queue frames no worker will ever take.
    global _live_lock
    _live_lock = threading.Lock()
    for rec in _live:
        rec._queue.mark_forked()
    _live.clear()


# Runs before the interpreter joins non-daemon threads (like concurrent.futures does), so a
# Recorder that was never closed still flushes instead of hanging the exit.
threading._register_atexit(_close_all_at_exit)  # type: ignore[attr-defined]
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_all_in_child)
