"""The Recorder: clip planning on the caller's thread, encoding driven by worker threads."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

import numpy as np

from recorder._encoder import (
    TMP_SUFFIX,
    Codec,
    EncoderFactory,
    PyAVEncoder,
    VideoSpec,
    fragment_path,
    lock_file,
)
from recorder._frames import FrameFormat, Image, as_image, format_of
from recorder._keep import Keep, Keeper
from recorder._metadata import append_manifest, record_of, write_sidecar
from recorder._process import EncodeIn, EncoderProcesses
from recorder._process import available as processes_available
from recorder._queue import DROP, END, YIELD, Clip, ClipQueue, Item, OnFull, Work
from recorder._results import (
    ClipDroppedError,
    ClipHandle,
    ClipKind,
    RecorderClosedError,
    RecorderStats,
    VideoInfo,
)
from recorder._schedule import capped_cubic_video_schedule
from recorder._sink import Deliveries, Delivery, Sink, read_all

logger = logging.getLogger("recorder")

Trigger = Callable[[int], bool]


def _always(_episode: int) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class ClipPlan:
    """Which clips an episode makes, and where: gymnasium.utils.save_video's rules."""

    folder: Path
    name_prefix: str
    episode_trigger: Trigger | None
    step_trigger: Trigger | None
    video_length: int | None
    fps: float


# Recorders not yet closed, closed by the interpreter before it joins non-daemon threads.
_live: set[Recorder] = set()
_live_lock = threading.Lock()


class Recorder:
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
            *workers* child processes, started at the first video: PyAV holds the GIL while
            x264 opens (~3 ms per video) and between its per-frame calls, and in a thread of
            the training process each of those moments stops the training loop. They map
            the arena and encode each frame where it lies; the workers pass offsets only.
            Idle encoder processes are kept for the next
            Recorder (up to 2). Where none can be started, videos are encoded in the worker
            threads, with a warning; ``"thread"`` does that by choice. With encoder
            processes, ``encode_seconds`` (stats, :class:`VideoInfo`) is the workers' time
            feeding them, waits for the encoder included.
        encoder_factory: makes the encoder of each video (for tests); PyAV by default.
        on_saved: called on a worker thread with the :class:`VideoInfo` of each saved video;
            an exception it raises is reported like an encoding error.
        sidecars: write ``{name}.json`` beside each video (its :class:`VideoInfo` and the
            episode's metadata) and append a line to ``manifest.jsonl`` in the folder.
        sink: deliver each finished video to this sink (e.g. :func:`recorder.ray.start_sink`)
            instead of renaming it into *video_folder*, which then holds only the temporary
            files being written. A handle resolves once the video is on the sink's disk
            (``VideoInfo.path`` is the sink's path); the sink writes sidecar and manifest.
            Videos waiting for the sink's answer count against *max_queue_bytes*.
        keep: keep only the videos of the best and worst episodes, e.g.
            ``{"best": 5, "worst": 2, "by": "return"}`` (a :class:`Keep`): every episode is
            recorded (unless a trigger says otherwise) and, when it ends, scored by
            ``ep.metadata[by]``; the videos of episodes out of both rankings are deleted, and
            the manifest says which were kept and why.

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
        for name, trigger in (("episode_trigger", episode_trigger), ("step_trigger", step_trigger)):
            if trigger is not None and not callable(trigger):
                raise TypeError(f"{name} must be callable or None, got {trigger!r}")
        keep = None if keep is None else Keep.of(keep)
        if episode_trigger is None and step_trigger is None:
            # With keep, every episode is a candidate; else gymnasium's default schedule.
            episode_trigger = capped_cubic_video_schedule if keep is None else _always
        self.episode_trigger = episode_trigger
        self.step_trigger = step_trigger
        if not _is_int(workers) or workers < 1:
            raise ValueError(f"workers must be an int >= 1, got {workers!r}")
        if not _is_int(max_queue_bytes) or max_queue_bytes <= 0:
            raise ValueError(f"max_queue_bytes must be an int > 0, got {max_queue_bytes!r}")
        if on_full not in ("drop", "block", "raise"):
            raise ValueError(f"on_full must be 'drop', 'block' or 'raise', got {on_full!r}")
        if isinstance(codec, Codec):
            if crf is not None or preset is not None:
                raise TypeError("give crf and preset inside the Codec, not beside it")
            self.codec = codec
        else:
            self.codec = Codec(codec, crf=crf, preset=preset)
        if not _is_int(worker_nice):
            raise TypeError(f"worker_nice must be an int, got {worker_nice!r}")
        if encode_in not in ("process", "thread"):
            raise ValueError(f"encode_in must be 'process' or 'thread', got {encode_in!r}")
        self.on_saved = on_saved
        self.sidecars = bool(sidecars)
        if sink is not None and not isinstance(sink, Sink):
            raise TypeError(f"sink must have an open() method (a recorder.ray sink), got {sink!r}")
        self.video_folder = Path(os.path.abspath(os.fspath(video_folder)))
        self.video_folder.mkdir(parents=True, exist_ok=True)
        self._plan = ClipPlan(
            self.video_folder,
            self.name_prefix,
            self.episode_trigger,
            self.step_trigger,
            self.video_length,
            self.fps,
        )
        self.workers = workers
        self.max_queue_bytes = max_queue_bytes
        self.on_full: OnFull = on_full
        self._nice = worker_nice
        self._queue = ClipQueue(max_queue_bytes, on_full, self._log_drop)
        self._processes: EncoderProcesses | None = None
        if encoder_factory is None and encode_in == "process" and processes_available():
            self._processes = EncoderProcesses(workers, worker_nice, self._queue.arena)
        self.encode_in: EncodeIn = "process" if self._processes is not None else "thread"
        self._encoder_factory: EncoderFactory = encoder_factory or self._processes or PyAVEncoder
        self._dropped_logged = False
        if keep is not None and sink is not None:
            raise ValueError("keep cannot be combined with a sink yet: the sink's folder is remote")
        self._keeper = (
            None
            if keep is None
            else Keeper(keep, lambda record: append_manifest(self.video_folder, record))
        )
        self._deliveries = None if sink is None else Deliveries(sink.open())
        # Episodes closed before they could start a clip (see Episode); any thread closes one.
        self._stall_lock = threading.Lock()
        self._episodes_stalled = 0
        self._stalled_logged = False
        self._pid = os.getpid()
        self._close_lock = threading.Lock()
        self._closed = False
        self._alive = workers
        self._alive_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, name=f"recorder-worker-{i}") for i in range(workers)
        ]
        if self._queue.prefaulting:
            self._threads.append(threading.Thread(target=self._prefault, name="recorder-prefault"))
        with _live_lock:
            _live.add(self)
        for thread in self._threads:
            thread.start()

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
        plan = self._plan if fps is None else replace(self._plan, fps=check_fps(fps))
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
        plan = self._plan if fps is None else replace(self._plan, fps=check_fps(fps))
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
        try:
            for image in images:
                if ep._wants():
                    ep._append_image(image, format_of(image))
                else:
                    ep._skip()
        except BaseException:
            # The frames were all there: a clip cut short by a raising trigger, a full
            # budget (on_full="raise") or Ctrl-C would be a truncated video. Drop it whole.
            ep._abort("submit() was interrupted")
            raise
        ep.close()
        return ep.handles

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every video ended so far is on disk, and every frame given so far encoded.

        Raises:
            TimeoutError: *timeout* seconds passed first.
            Exception: the error of a video that failed since the last flush()/close(), or an
                :class:`ExceptionGroup` of them.
        """
        if os.getpid() != self._pid:
            raise RecorderClosedError("a Recorder cannot be used in a forked child process")
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._queue.wait(deadline):
            pending = len(self._queue.live_clips())
            raise TimeoutError(f"flush() timed out after {timeout} s; {pending} videos pending")
        self._raise_errors()

    def stats(self) -> RecorderStats:
        """A snapshot of the counters: queue bytes and peak, frames, videos, errors."""
        return replace(self._queue.stats(), episodes_stalled=self._episodes_stalled)

    def close(self, timeout: float | None = None, *, cancel: bool = False) -> None:
        """Finish every clip, stop the workers and report errors. Idempotent, any thread.

        Open episodes are ended where they are. Then waits until every video is on disk, or,
        with ``cancel=True``, drops what is queued (no file is left half-written).

        Args:
            timeout: after this many seconds, what is left is dropped and TimeoutError raised.
            cancel: drop queued frames instead of encoding them (fast shutdown).

        Raises:
            TimeoutError: *timeout* passed (the rest was dropped).
            Exception: errors of failed videos not yet raised by flush(), one as itself,
                several as an :class:`ExceptionGroup`.
        """
        if threading.current_thread() in self._threads or (
            self._deliveries is not None and threading.current_thread() is self._deliveries.thread
        ):
            raise RuntimeError("close() cannot be called from the recorder's own worker thread")
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
            raise
        finally:
            queue.stop_workers()
            # A worker stuck inside one frame's encode gets a short grace after a timeout;
            # close() must return in bounded time.
            grace = None if deadline is None else max(0.0, deadline - time.monotonic()) + 1.0
            for thread in self._threads:
                thread.join(grace)
            self._stop_deliveries("the recorder closed before the sink acknowledged the video")
            if self._processes is not None:
                # A worker still waiting for its encoder process is released when it is killed.
                hung = any(t.is_alive() for t in self._threads)
                self._processes.close(timeout=1.0 if hung else 10.0)
                for thread in self._threads:
                    thread.join(1.0 if hung else None)
            stuck = [t.name for t in self._threads if t.is_alive()]
            if stuck:
                logger.warning("close(): worker threads still busy: %s", ", ".join(stuck))
            else:
                self._queue.close_arena()
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
        self.close()

    @property
    def closed(self) -> bool:
        """Whether close() has begun."""
        return self._closed

    # -- the internal interface -------------------------------------------------------------
    # What Episode, the wrappers (recorder.wrappers) and the async facade (recorder._async)
    # call: they never touch the queue or the recorder's own state, so each can change alone.

    def _check_usable(self) -> None:
        """Raise :class:`RecorderClosedError` when the recorder is closed or forked."""
        if self._queue.forked or os.getpid() != self._pid:
            raise RecorderClosedError("a Recorder cannot be used in a forked child process")
        if self._closed or self._queue.closed:
            raise RecorderClosedError("this Recorder is closed")

    @property
    def _usable(self) -> bool:
        """Whether clips and frames are still taken: not closed, not the parent's after fork.

        Cheap (no system call): read for every frame by the wrappers.
        """
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

        Frames go in with :meth:`_admit` or :meth:`_append_frame`, at most *length* of them
        (None: no limit). A live clip of the same path is dropped: the last one wins, as when
        gymnasium overwrites a file.
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
        """Queue the validated *image* once for every clip of *clips* still accepting.

        Applies the on_full policy; returns the clips of *clips* still accepting afterwards.
        """
        return self._queue.admit(image, fmt, clips)

    def _append_frame(self, clips: Sequence[Clip], frame: Any) -> None:
        """Validate *frame* and queue it once for every clip in *clips* still accepting."""
        image = as_image(frame)
        fmt = format_of(image)
        for clip in clips:
            known = clip.frame_format
            if known is not None and known is not fmt and known != fmt:
                raise ValueError(
                    f"frame shape changed within {clip.name}: {_shape(known)} then {_shape(fmt)}"
                )
        self._queue.admit(image, fmt, clips)

    def _end_clip(self, clip: Clip) -> None:
        """No more frames for *clip*; it is finished in the background."""
        self._queue.end(clip)

    def _episode_ended(self, episode_index: int, metadata: Mapping[str, Any]) -> None:
        """An episode that made clips ended: the keep policy scores it (may delete videos)."""
        if self._keeper is not None:
            try:
                self._keeper.episode_ended(episode_index, metadata)
            except OSError as e:
                e.add_note(f"deleting the videos of episode {episode_index} (keep)")
                logger.error("keep: %s", e)
                self._queue.report(e)

    def _drop_clip(self, clip: Clip, reason: str) -> None:
        """Drop *clip* whole: its file is discarded, its handle raises ClipDroppedError."""
        self._queue.drop(clip, reason)

    def _stalled(self, episode_index: int, why: str) -> None:
        """Count (and log, the first time as a warning) an episode that recorded nothing."""
        with self._stall_lock:
            self._episodes_stalled += 1
            first = not self._stalled_logged
            self._stalled_logged = True
        if first:
            logger.warning(
                "episode %d recorded nothing: %s (further stalled episodes are counted in "
                "stats().episodes_stalled, logged at DEBUG)",
                episode_index,
                why,
            )
        else:
            logger.debug("episode %d recorded nothing: %s", episode_index, why)

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
        if not self._dropped_logged:
            self._dropped_logged = True
            logger.warning(
                "dropped video %s: %s (further drops are counted in stats(), logged at DEBUG)",
                clip.name,
                reason,
            )
        else:
            logger.debug("dropped video %s: %s", clip.name, reason)

    def _raise_errors(self) -> None:
        errors, more = self._queue.take_unreported()
        if len(errors) == 1:
            raise errors[0]
        if errors:
            group = BaseExceptionGroup(f"{len(errors) + more} videos failed", errors)
            if more:
                group.add_note(
                    f"the first {len(errors)} errors are attached; {more} more are "
                    "counted in stats().videos_failed"
                )
            raise group

    # -- worker threads --------------------------------------------------------------------

    def _prefault(self) -> None:
        lower_thread_priority(self._nice)
        self._queue.prefault()

    def _work(self) -> None:
        lower_thread_priority(self._nice)
        queue = self._queue
        current: Clip | None = None
        done: list[Item] = []  # frames of current to release: encoded, or left out
        written = 0  # ... of which encoded
        batch: list[Work] = []  # taken from the queue, not yet accounted for
        error: BaseException | None = None
        try:
            while (
                got := queue.take(
                    current, done, written, holding=current is not None and bool(current.held)
                )
            ) is not None:
                current, batch = got
                done, written = [], 0
                first = batch[0]
                if first is YIELD:
                    done = self._drain(current)
                    written = len(done)
                elif first is END:
                    self._finish(current)
                    current = None
                elif first is DROP:
                    self._discard(current)
                    current = None
                else:
                    try:
                        done, written = self._write(current, cast(list[Item], batch))
                    except BaseException as e:
                        self._fail(current, e, batch)
                        current = None
                batch = []
        except BaseException as e:  # a bug of ours: never leave flush()/close() hanging
            error = e
            logger.critical("a recorder worker thread died", exc_info=True)
        finally:
            if error is not None:
                with self._alive_lock:
                    self._alive -= 1
                    alive = self._alive
                for clip in queue.worker_exited(current, error, alive):
                    held = batch if clip is current else ()
                    died = RuntimeError("a recorder worker thread died")
                    died.__cause__ = error  # the handle shows the real bug
                    self._fail(clip, died, held)

    def _write(self, clip: Clip, frames: list[Item]) -> tuple[list[Item], int]:
        """Encode *frames* (a batch of one clip's), opening its encoder at the first.

        Returns the frames to release now, and how many of them were encoded: an encoder
        process may still read frames passed to it (they wait in ``clip.held``), and frames
        are left out when the clip is dropped meanwhile.
        """
        start = time.perf_counter()
        if clip.encoder is None:
            assert clip.frame_format is not None
            clip.tmp_fd, clip.tmp_path = _locked_tmp(clip.path)
            clip.encoder = self._encoder_factory(
                VideoSpec(clip.tmp_path, clip.fps, self.codec, clip.frame_format, clip.tmp_fd)
            )
            clip.released = getattr(clip.encoder, "released", None)
        write = clip.encoder.write
        released = clip.released
        n = 0
        try:
            for item in frames:
                if clip.drop_reason is not None:  # a read without the lock: a hint, checked again
                    break
                write(item.buffer)
                n += 1
        finally:
            if released is not None:
                clip.held.extend(frames[:n])
        if released is None:  # encoded on this thread: done with every frame
            done, written = frames, n
        else:
            held = clip.held
            freed = released() - clip.freed
            clip.freed += freed
            done = [held.popleft() for _ in range(freed)]
            written = freed
            done += frames[n:]
        clip.encode_seconds += time.perf_counter() - start
        return done, written

    @staticmethod
    def _drain(clip: Clip) -> list[Item]:
        """Wait until *clip*'s encoder no longer reads any frame; return them (all encoded)."""
        assert clip.encoder is not None
        drain = getattr(clip.encoder, "drain", None)
        if drain is not None:
            drain()
        held = list(clip.held)
        clip.held.clear()
        clip.freed += len(held)
        return held

    def _finish(self, clip: Clip) -> None:
        if clip.encoder is None:
            self._discard(clip, "no frames")
            return
        start = time.perf_counter()
        try:
            clip.encoder.close()
            clip.encoder = None
            held = list(clip.held)
            clip.held.clear()
            self._queue.release(clip, held, len(held))  # counted in clip.written below
            assert clip.tmp_path is not None
            assert clip.tmp_fd is not None
            tmp, fd = clip.tmp_path, clip.tmp_fd
            if self._deliveries is not None:
                self._deliver(clip, start)
                return
            size = os.fstat(fd).st_size

            def rename() -> None:
                if not os.path.samestat(os.lstat(tmp), os.fstat(fd)):
                    raise FileExistsError(
                        f"{tmp} was replaced by another file while the video was written"
                    )
                os.replace(tmp, clip.path)

            if not self._queue.publish(clip, rename):
                self._discard(clip)
                return
            clip.tmp_path = None
            clip.tmp_fd = None
            os.close(fd)
        except BaseException as e:
            self._fail(clip, e)
            return
        clip.encode_seconds += time.perf_counter() - start
        self._saved(clip, self._info(clip, size), sidecars=self.sidecars)

    def _info(self, clip: Clip, size: int) -> VideoInfo:
        fmt = clip.frame_format
        assert fmt is not None
        now = time.time()
        return VideoInfo(
            path=clip.path,
            name=clip.name,
            kind=clip.kind,
            index=clip.index,
            frames=clip.written,
            fps=clip.fps,
            width=fmt.width,
            height=fmt.height,
            encoded_width=fmt.shape[1],
            encoded_height=fmt.shape[0],
            codec=self.codec.name,
            size_bytes=size,
            encode_seconds=clip.encode_seconds,
            episode_index=clip.episode_index,
            first_step=clip.first_step,
            metadata=clip.metadata or {},
            created=now,
            wall_seconds=now - clip.started,
        )

    def _saved(self, clip: Clip, info: VideoInfo, *, sidecars: bool) -> None:
        """*clip* is saved as *info*: count it, write its metadata, resolve its handle."""
        self._queue.finish(clip, "saved", size=info.size_bytes)
        errors: list[BaseException] = []
        if sidecars:
            try:
                record = record_of(info, self.codec)
                write_sidecar(info, record)
                append_manifest(clip.path.parent, record)
            except BaseException as e:  # even SystemExit: the video is saved, count it once
                e.add_note(f"writing the sidecar or manifest of {clip.path}")
                logger.error("could not write the metadata of %s", clip.path, exc_info=True)
                errors.append(e)
        kept = True
        if self._keeper is not None:
            try:
                kept = self._keeper.saved(info)
            except OSError as e:
                e.add_note(f"deleting {clip.path} (keep)")
                errors.append(e)
        if self.on_saved is not None and kept:
            try:
                self.on_saved(info)
            except BaseException as e:  # sys.exit() in a callback must not kill the worker
                e.add_note(f"in on_saved for {info.path}")
                logger.error("on_saved failed for %s", info.path, exc_info=True)
                errors.append(e)
        clip.handle.set_result(info)
        for error in errors:
            self._queue.report(error)
        self._queue.retire(clip)

    def _deliver(self, clip: Clip, start: float) -> None:
        """Hand *clip*'s finished file to the sink; its handle resolves on the sink's answer.

        The bytes count against the budget until then, so a slow sink slows admission, not
        the caller (with on_full="drop", clips are dropped whole as when encoding lags).
        """
        assert self._deliveries is not None
        assert clip.tmp_path is not None
        assert clip.tmp_fd is not None
        data = read_all(clip.tmp_fd)
        if not self._queue.publish(clip, lambda: None):
            self._discard(clip)
            return
        self._cleanup(clip)  # the temporary file: the bytes are in *data*
        clip.encode_seconds += time.perf_counter() - start
        info = self._info(clip, len(data))
        record = record_of(info, self.codec)
        self._queue.hold(len(data))
        delivery = Delivery(clip, info, len(data), self._delivered)
        try:
            self._deliveries.send(delivery, clip.path.name, data, record)
        except BaseException as e:
            self._delivered(delivery, None, e)

    def _delivered(self, delivery: Delivery, path: str | None, error: BaseException | None) -> None:
        """The sink's answer for *delivery* (on the delivery thread)."""
        clip: Clip = delivery.clip
        self._queue.unhold(delivery.size)
        if error is not None or path is None:
            error = error or RuntimeError("the sink gave no path")
            error.add_note(f"delivering {clip.path.name} to the recorder's sink")
            self._fail(clip, error)
            return
        now = time.time()
        info = replace(delivery.info, path=Path(path), created=now, wall_seconds=now - clip.started)
        self._saved(clip, info, sidecars=False)  # the sink writes them, with its paths

    def _stop_deliveries(self, reason: str) -> None:
        if self._deliveries is not None:
            self._deliveries.stop(reason)

    def _discard(self, clip: Clip, reason: str | None = None) -> None:
        encoded = self._cleanup(clip)
        self._queue.finish(clip, "dropped", encoded=encoded)
        clip.handle.set_exception(ClipDroppedError(clip.name, reason or clip.drop_reason or ""))
        self._queue.retire(clip)

    def _fail(self, clip: Clip, error: BaseException, held: Sequence[Work] = ()) -> None:
        """Fail *clip*; *held* is the batch the worker had taken (some of it maybe passed
        to the encoder already, then in ``clip.held``)."""
        passed = {id(item) for item in clip.held}
        held = [work for work in held if id(work) not in passed]
        encoded = self._cleanup(clip)
        error.add_note(f"while recording {clip.path}")
        logger.error("failed to record %s", clip.path, exc_info=error)
        # The error is kept (stats(), flush()); its frames' locals must not keep the failed
        # video's encoder alive with it.
        traceback.clear_frames(error.__traceback__)
        self._queue.finish(clip, "failed", error=error, held=held, encoded=encoded)
        clip.handle.set_exception(error)
        self._queue.retire(clip)

    def _cleanup(self, clip: Clip) -> list[Item]:
        """Abort *clip*'s encoder and file; returns the frames the encoder had (now free)."""
        if clip.encoder is not None:
            with contextlib.suppress(Exception):
                clip.encoder.abort()  # returns once it no longer reads any frame
            clip.encoder = None
        encoded = list(clip.held)
        clip.held.clear()
        if clip.tmp_path is not None:
            # The fragment file an encoder process that died could not delete (its name is
            # ours alone while our temporary file exists).
            with contextlib.suppress(OSError):
                os.unlink(fragment_path(clip.tmp_path, self.codec.extension))
            with contextlib.suppress(OSError):
                os.unlink(clip.tmp_path)
            clip.tmp_path = None
        if clip.tmp_fd is not None:
            with contextlib.suppress(OSError):
                os.close(clip.tmp_fd)
            clip.tmp_fd = None
        return encoded


class Episode:
    """One episode streamed frame by frame; get it from :meth:`Recorder.episode`.

    Frame 0 is the reset frame; frame ``k >= 1`` is step ``step_starting_index + k - 1``.
    Three ways to stream, all recording exactly the clips, frames and names
    :func:`gymnasium.utils.save_video.save_video` makes of the same frames::

        ep.offer(env.render)            # renders only when a clip wants the frame

        if ep.wants_frame:              # no else branch needed
            ep.append(env.render())

        if ep.wants_frame:              # an explicit skip works as well
            ep.append(env.render())
        else:
            ep.skip()

    The rule that makes the second form work: **one** :attr:`wants_frame` answer per frame.
    Reading it again after it said False, with no :meth:`append`/:meth:`skip` in between,
    means that frame went by: the episode first advances past it (as :meth:`skip` does),
    then answers for the next frame. After a True answer it stays on the same frame until
    :meth:`append` (reading it again says True again, unless the clips that wanted the frame
    were dropped meanwhile), so "check before rendering, check again before appending" holds.
    A False answer does not let that pattern be repeated: the second read would be taken as
    the next frame. Keep the answer in a variable, or use :meth:`offer`. Why this way: the
    loop without an else branch is the one users write first (it is the one the design
    shows), and a loop that reads the answer once per frame, with or without ``skip()``,
    cannot tell a second read from the next frame any other way.

    :meth:`append` after a False answer advances too (the frame is ignored), and so does
    :meth:`skip`. Leaving the ``with`` block (or :meth:`close`) ends the episode's clips.

    An episode closed without having advanced at all (nothing appended, skipped or passed
    by), while a clip could have started (episode_trigger fired, or a step_trigger is set), is
    *stalled*: it is logged (a warning the first time per Recorder, on the ``recorder``
    logger, then at DEBUG) and counted in ``stats().episodes_stalled``. That is an episode
    whose episode_trigger fired but which got no frame, or one whose :attr:`wants_frame` was
    read once and which was then closed (its step clips could never start). Not when the
    ``with`` block is left by an exception. An episode of its reset frame alone, streamed
    without ``skip()``, looks the same, and is counted too.
    """

    def __init__(
        self,
        recorder: Recorder,
        plan: ClipPlan,
        episode_index: int,
        step_starting_index: int,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.episode_index = check_index("episode_index", episode_index)
        self.step_starting_index = check_index("step_starting_index", step_starting_index)
        if metadata is not None and not isinstance(metadata, Mapping):
            raise TypeError(f"metadata must be a mapping, got {type(metadata).__name__}")
        #: facts about the episode for the sidecars; add to it until the episode ends.
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._rec = recorder
        self._plan = plan
        trigger = plan.episode_trigger
        self._want_episode = trigger is not None and bool(trigger(episode_index))
        self._k = 0  # frames seen so far (appended, skipped or passed by)
        self._step_wanted: bool | None = None  # step_trigger for frame k, once evaluated
        # wants_frame's last answer for frame k (None: not asked since the last advance).
        self._answer: bool | None = None
        self._open: list[Clip] = []  # clips that may still want frames
        self._clips: list[Clip] = []  # every clip started
        self._format: FrameFormat | None = None
        self._closed = False

    @property
    def handles(self) -> list[ClipHandle]:
        """Handles of the clips this episode has started, in order."""
        return [clip.handle for clip in self._clips]

    @property
    def frames_seen(self) -> int:
        """Frames appended, skipped or passed by (see the class docstring) so far."""
        return self._k

    @property
    def wants_frame(self) -> bool:
        """Whether a clip needs the next frame; read it once per frame (see the class doc).

        After a False answer, reading it again advances past that frame first.
        """
        self._check_open()
        if self._answer is False:
            self._skip()  # the frame no clip wanted went by
        answer = self._wants()
        self._answer = answer
        return answer

    def offer(self, render: Callable[[], Any]) -> bool:
        """Call ``render()`` and append its frame if a clip wants this frame; always advance.

        One call per frame, e.g. ``ep.offer(env.render)``: nothing to get wrong. A False
        :attr:`wants_frame` answer just before counts for this frame.

        Args:
            render: a callable of no arguments returning the frame (called at most once).

        Returns:
            Whether *render* was called (and its frame appended).

        Raises:
            TypeError: *render* is not callable, or the frame is not an image.
            ValueError, QueueFullError, RecorderClosedError: as :meth:`append`.
            Exception: whatever *render* raises; the episode then stays at this frame.
        """
        if not callable(render):
            raise TypeError(f"offer() takes a callable that renders a frame, got {render!r}")
        self._check_open()
        if not self._wants():
            self._skip()
            return False
        image = as_image(render())
        self._append_image(image, format_of(image))
        return True

    def append(self, frame: Any) -> None:
        """Add the next frame: validated and copied now, encoded in the background.

        Raises:
            TypeError, ValueError: a bad frame, or one whose shape differs from the first.
            QueueFullError: ``on_full="raise"`` and the budget is full.
            RecorderClosedError: the episode or the recorder is closed.
        """
        self._check_open()
        image = as_image(frame)
        self._append_image(image, format_of(image))

    def skip(self) -> None:
        """Advance past a frame that was not rendered (when :attr:`wants_frame` is False)."""
        self._check_open()
        if self._wants():
            raise RuntimeError("skip() called for a frame that a clip wants; append it")
        self._skip()

    # -- the internal interface of the async facade (recorder._async) -------------------------

    def _peek(self) -> bool:
        """Whether a clip wants the frame :meth:`append` would add now (never advances)."""
        self._check_open()
        return self._wants()

    # -- the episode's own state ---------------------------------------------------------------

    def _wants(self) -> bool:
        if self._k == 0:
            return self._want_episode
        return any(c.accepting for c in self._open) or self._step_fires()

    def _skip(self) -> None:
        self._answer = None
        self._step_wanted = None
        self._k += 1
        self._open = [c for c in self._open if c.accepting]

    def _append_image(self, image: Image, fmt: FrameFormat) -> None:
        # The training thread's hot path: every line here costs each recorded frame.
        if fmt is not self._format:
            if self._format is None:
                self._format = fmt
            elif fmt != self._format:
                raise ValueError(
                    f"frame shape changed within episode {self.episode_index}: "
                    f"{_shape(self._format)} then {_shape(fmt)}"
                )
        k = self._k
        if k == 0:
            if self._want_episode:
                self._start("episode", self.episode_index)
        elif self._step_fires():
            self._start("step", self.step_starting_index + k - 1)
        self._k = k + 1
        self._step_wanted = None
        self._answer = None
        if self._open:
            self._open = self._rec._admit(image, fmt, self._open)

    def _step_fires(self) -> bool:
        if self._step_wanted is None:
            trigger = self._plan.step_trigger
            step = self.step_starting_index + self._k - 1
            self._step_wanted = trigger is not None and bool(trigger(step))
        return self._step_wanted

    def _start(self, kind: ClipKind, index: int) -> None:
        plan = self._plan
        clip = self._rec._new_clip(
            f"{plan.name_prefix}-{kind}-{index}",
            kind,
            index,
            folder=plan.folder,
            fps=plan.fps,
            length=plan.video_length,
            episode_index=self.episode_index,
            first_step=self.step_starting_index + max(self._k - 1, 0),
            metadata=self.metadata,
        )
        self._open.append(clip)
        self._clips.append(clip)

    def _abort(self, reason: str) -> None:
        """Drop every clip this episode started (the files are discarded)."""
        self._closed = True
        for clip in self._clips:
            self._rec._drop_clip(clip, reason)
        self._open = []

    def _check_open(self) -> None:
        if self._closed:
            raise RecorderClosedError(f"episode {self.episode_index} is closed")
        if self._rec.closed:
            raise RecorderClosedError("this Recorder is closed")

    def close(self) -> None:
        """End the episode: its clips are finished in the background. Idempotent.

        A stalled episode (see the class docstring) is logged and counted.
        """
        self._close(check_stalled=True)

    def _close(self, *, check_stalled: bool) -> None:
        if self._closed:
            return
        self._closed = True
        for clip in self._open:
            self._rec._end_clip(clip)
        self._open = []
        if self._clips:
            self._rec._episode_ended(self.episode_index, self.metadata)
        if (
            check_stalled
            and self._k == 0
            and (self._want_episode or self._plan.step_trigger is not None)
        ):
            if self._want_episode:
                why = "episode_trigger fired, but no frame was appended"
            else:
                why = (
                    "it never advanced past its reset frame, so no step clip could start "
                    "(read wants_frame once per frame, call skip() or append() for each "
                    "frame, or use offer())"
                )
            self._rec._stalled(self.episode_index, why)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # An exception ends the episode early on purpose: that is not a stall to report.
        self._close(check_stalled=exc_type is None)


def _locked_tmp(path: Path) -> tuple[int, str]:
    """Create the temporary file of the video *path*, under ``flock`` (its writer is alive).

    Beside the final file (os.replace cannot cross file systems). mkstemp creates it
    exclusively (O_EXCL): nothing already there is followed. ``recorder recover`` may take
    the lock of a file just created and delete it as a dead writer's: then a new one.
    """
    for attempt in range(3):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=TMP_SUFFIX, dir=path.parent)
        try:
            lock_file(fd)
            os.lstat(tmp)
        except FileNotFoundError:
            if attempt < 2:
                os.close(fd)
                continue
        except BaseException:
            os.close(fd)
            raise
        # Replaced by another file meanwhile: the rename's samestat check reports it.
        return fd, tmp
    raise AssertionError("unreachable")


# -- validation ----------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _shape(fmt: FrameFormat) -> tuple[int, ...]:
    return (fmt.height, fmt.width) if fmt.gray else (fmt.height, fmt.width, 3)


def check_fps(fps: object) -> float:
    """Return fps as a float, or raise for a non-number, NaN, inf or fps <= 0."""
    if isinstance(fps, bool) or not isinstance(fps, int | float | np.integer | np.floating):
        raise TypeError(f"fps must be a number, got {fps!r}")
    value = float(fps)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"fps must be a finite number > 0, got {fps!r}")
    return value


def check_video_length(video_length: object) -> int | None:
    """``None`` or an int > 0."""
    if video_length is None:
        return None
    if not _is_int(video_length):
        raise TypeError(f"video_length must be an int or None, got {video_length!r}")
    assert isinstance(video_length, int | np.integer)
    if video_length <= 0:
        raise ValueError(f"video_length must be > 0 (None: whole episodes), got {video_length}")
    return int(video_length)


def check_index(name: str, value: object) -> int:
    """A non-negative int."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r}")
    assert isinstance(value, int | np.integer)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def check_name_prefix(prefix: object) -> str:
    """A prefix that keeps every file inside video_folder."""
    if not isinstance(prefix, str):
        raise TypeError(f"name_prefix must be a str, got {prefix!r}")
    bad = [s for s in ("/", "\\", os.sep, os.altsep or "/", "\0", "..") if s in prefix]
    if bad:
        raise ValueError(
            f"name_prefix must not contain {bad[0]!r}: files stay inside video_folder "
            f"(got {prefix!r})"
        )
    return prefix


def validate_frames(frames: object) -> list[Image]:
    """Validate a whole episode's frames; they must share one shape."""
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise ValueError(
                "an array of frames must be NxHxWxC; "
                f"got shape {frames.shape} (pass a list for gray HxW frames)"
            )
    elif not isinstance(frames, Sequence) or isinstance(frames, str | bytes):
        raise TypeError(f"frames must be a list of frames, got {type(frames).__name__}")
    if len(frames) == 0:
        raise ValueError("frames is empty: an episode has at least its reset frame")
    images: list[Image] = []
    first: FrameFormat | None = None
    for i, frame in enumerate(frames):
        try:
            image = as_image(frame)
        except (TypeError, ValueError) as e:
            raise type(e)(f"frame {i}: {e}") from None
        fmt = format_of(image)
        if first is None:
            first = fmt
        elif fmt != first:
            raise ValueError(f"frame {i} has shape {_shape(fmt)}, frame 0 {_shape(first)}")
        images.append(image)
    return images


# -- process-wide plumbing ---------------------------------------------------------------------


def lower_thread_priority(nice: int) -> None:
    """Raise this thread's nice value by *nice* (Linux: per thread); a no-op where unsupported."""
    if nice == 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + nice))
    except OSError:
        logger.debug("could not lower the worker thread's priority", exc_info=True)


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
