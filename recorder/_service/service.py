"""The ClipService port: what the front ends ask of the core, by name, and the service behind
it: the queue, the worker threads and encoder processes, flush, close and the counters.

The public :class:`~recorder._front.recorder.Recorder`, :class:`~recorder._front.episode.Episode`,
the wrappers, the async facade and ``save_video`` hold a ClipService and call only its methods;
none of them touches the queue, so each side can change alone.
"""

from __future__ import annotations

import collections
import math
import os
import reprlib
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from recorder._base.codec import Codec, EncoderFactory
from recorder._base.frames import FrameFormat, Image, check_size, image_and_format
from recorder._base.info import Checked, TextOf
from recorder._base.results import (
    ClipHandle,
    ClipKind,
    RecorderClosedError,
    RecorderStats,
    VideoInfo,
)
from recorder._base.validate import (
    MAX_NAME_BYTES,
    Trigger,
    check_cancel,
    check_fps,
    check_timeout,
    shape_changed,
)
from recorder._encode.encoder import PyAVEncoder
from recorder._encode.health import Judge
from recorder._encode.overlay import require_pillow
from recorder._encode.process import EncodeIn, EncoderProcesses
from recorder._encode.process import available as processes_available
from recorder._encode.sidecars import append_manifest
from recorder._queue.clip import Clip
from recorder._queue.queue import MAX_ERRORS, ClipQueue, OnFull
from recorder._service.keep import Keep, Keeper
from recorder._service.reporting import WarnOnce, logger, note_close_error, raise_errors
from recorder._service.sink import Deliveries, Sink
from recorder._service.worker import Workers
from recorder._service.writer import ClipWriter

# What the front ends need of the core comes from here, the port.
__all__ = [
    "MAX_ERRORS",
    "Clip",
    "ClipPlan",
    "ClipService",
    "EncodeIn",
    "Keep",
    "OnFull",
    "Sink",
    "note_close_error",
]

# Services not yet closed, closed by the interpreter before it joins non-daemon threads.
_live: set[ClipService] = set()
_live_lock = threading.Lock()
#: how often a close() waiting for another one checks whether that one is done.
_CLOSE_POLL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class ClipPlan:
    """Which clips an episode makes, and where: gymnasium.utils.save_video's rules."""

    folder: Path
    name_prefix: str
    episode_trigger: Trigger | None
    step_trigger: Trigger | None
    video_length: int | None
    fps: float
    #: record every k-th frame of each clip (recorder._base.stride), at fps / k
    frame_stride: int = 1


class ClipService:
    """The core behind a Recorder, and the port the front ends use (arguments checked by them).

    Args:
        plan: the Recorder's clip plan (folder, name prefix, triggers, length, fps).
        codec: how videos are encoded.
        workers, max_queue_bytes, on_full, worker_nice, encode_in, encoder_factory, on_saved,
            sidecars, sink, keep, health: as :class:`~recorder.Recorder` takes them.
        overlay: a frame's overlay text from its info (checked by
            :func:`~recorder._base.info.check_overlay`); None: no overlay.
        made: gets the service once it runs (a caller interrupted before it has the service
            closes it from there).

    Raises:
        ModuleNotFoundError: an overlay without Pillow (with the install hint).
    """

    def __init__(
        self,
        plan: ClipPlan,
        codec: Codec,
        *,
        workers: int,
        max_queue_bytes: int,
        on_full: OnFull,
        worker_nice: int,
        encode_in: EncodeIn,
        encoder_factory: EncoderFactory | None,
        on_saved: Callable[[VideoInfo], object] | None,
        sidecars: bool,
        sink: Sink | None,
        keep: Keep | None,
        health: bool,
        overlay: TextOf | None = None,
        made: list[ClipService] | None = None,
    ) -> None:
        if overlay is not None:
            require_pillow()  # here, at the Recorder's call, not in an encoder
        self.plan = plan
        self.fps = plan.fps
        self.video_folder = plan.folder
        self.codec = codec
        self.on_full: OnFull = on_full
        self._drops = WarnOnce("further drops are counted in stats(), logged at DEBUG")
        self._queue = ClipQueue(max_queue_bytes, on_full, self._log_drop)
        self._deliveries: Deliveries | None = None
        try:
            self._processes: EncoderProcesses | None = None
            if encoder_factory is None and encode_in == "process":
                if processes_available():
                    self._processes = EncoderProcesses(workers, worker_nice, self._queue.arena)
                else:
                    _warn_no_processes()
            self.encode_in: EncodeIn = "process" if self._processes is not None else "thread"
            # Episodes closed before they could start a clip (see Episode); any thread closes one.
            self._stalls = WarnOnce(
                "further stalled episodes are counted in stats().episodes_stalled, logged at DEBUG"
            )
            self._pid = os.getpid()
            # The close() in progress: no lock is held across a close, so a Ctrl-C at any
            # point of one cannot leave the next waiting for ever (see _take_turn). The lock
            # guards it, for a few lines at a time.
            self._close_lock = threading.Lock()
            self._closer: _Turn | None = None
            self._closed = False  # close() has begun: no new clips or frames
            self._shut_down = False  # ... and has stopped the workers
            #: set by drop_all(): what is left is being dropped, so a close (or an aclose()
            #: waiting meanwhile) has nothing more to wait for than the workers' grace
            self.dropping = threading.Event()
            # The clips of episodes collected unclosed (see orphan()), and their warning.
            self._orphans: collections.deque[tuple[int, list[Clip]]] = collections.deque()
            self._orphaned = WarnOnce("further ones are logged at DEBUG")
            # Clips cut short (see VideoInfo.partial): their sidecars say so.
            self._cut: weakref.WeakSet[Clip] = weakref.WeakSet()
            factory = encoder_factory or self._processes or PyAVEncoder
            self._keeper = None if keep is None else Keeper(keep, self._record)
            self._deliveries = None if sink is None else Deliveries(sink.open())
            self._judge = Judge() if health else None
            writer = ClipWriter(
                self._queue,
                codec,
                factory,
                on_saved,
                sidecars,
                deliveries=self._deliveries,
                keeper=self._keeper,
                judge=self._judge,
                cut=self._cut,
                overlay=overlay,
            )
            self._workers = Workers(self._queue, writer, workers, worker_nice)
        except BaseException:  # e.g. a dead sink: nothing started, the arena's memfd goes
            self._stop_deliveries("the Recorder could not be created")
            self._queue.close_arena()
            raise
        #: whether per-frame info is used: written as timelines (sidecars, without a sink) or
        #: drawn (overlay). The wrappers make none when it is not.
        self.keeps_info = overlay is not None or writer.timelines
        self._threads = self._workers.threads
        self._raised: list[BaseException] = []  # the errors raise_errors() raised last
        self._queue.own_thread = self.own_thread
        self._queue.on_abandoned = lambda: _close_abandoned(self)
        try:
            with _live_lock:
                _live.add(self)
            self._workers.start()
            if made is not None:
                made.append(self)  # the caller's to close if it is interrupted before it has it
        except BaseException as e:  # a Ctrl-C: the threads started so far go, as at a close
            self._closed = True
            self._shutdown(None, time.monotonic(), cancel=True)  # (its end_all closes the queue)
            if isinstance(e, RuntimeError) and "shutdown" in str(e):
                raise RuntimeError(
                    "the Recorder cannot start its worker threads: the interpreter is shutting "
                    "down (Python 3.12.0-3.12.2 start no thread once the main thread has ended; "
                    "3.11 and 3.12.3 or later do): record before the main thread ends, or use "
                    "a newer Python"
                ) from e
            raise

    # -- state ---------------------------------------------------------------------------------

    def check_usable(self) -> None:
        """Raise :class:`RecorderClosedError` when the recorder is closed or forked."""
        if self._queue.forked or os.getpid() != self._pid:
            raise RecorderClosedError("a Recorder cannot be used in a forked child process")
        if self._closed or self._queue.closed:
            raise RecorderClosedError("this Recorder is closed")

    @property
    def usable(self) -> bool:
        """Whether clips and frames are still taken (no system call: read for every frame)."""
        return not (self._closed or self._queue.closed)

    @property
    def closed(self) -> bool:
        """Whether close() has begun."""
        return self._closed

    @property
    def forked(self) -> bool:
        """Whether this is the parent's recorder seen in a forked child (the parent closes it)."""
        return self._queue.forked

    @property
    def in_this_process(self) -> bool:
        """Whether it was made in this process (not inherited through fork)."""
        return self._pid == os.getpid()

    @property
    def keeps(self) -> bool:
        """Whether a keep policy ranks the episodes (``Recorder(keep=...)`` with best or worst)."""
        return self._keeper is not None and self._keeper.keep.ranks

    def abandon(self) -> None:
        """The owner (a wrapper's private Recorder's wrapper) went away without close(): the
        Recorder closes itself once its workers are idle. Takes no lock (called by __del__)."""
        self._queue.abandoned = True

    def plan_for(self, fps: float | None) -> ClipPlan:
        """The clip plan of an episode with its own *fps* (None: the Recorder's)."""
        if fps is None:
            return self.plan
        value = check_fps(fps)
        check_fps(value / self.plan.frame_stride, self.codec.name)  # what the videos get
        return replace(self.plan, fps=value)

    # -- clips and frames ----------------------------------------------------------------------

    def new_clip(
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
        whole: bool = False,
        source: object = None,
    ) -> Clip:
        """Open a clip named *name* (no extension) in *folder* (default: video_folder).

        It takes at most *length* frames (None: no limit); *whole*: they are all given at
        once (``submit``). A live clip of the same path is dropped: the last one wins, as when
        gymnasium overwrites a file. *source*: who numbers its episode (None: the Recorder's
        own calls; a wrapper's recording slot), for the keep policy.
        """
        file = name
        if self._deliveries is not None:  # a spool: the producer's name survives recover
            file = f"{self._deliveries.session.producer}-{name}"
            if len(os.fsencode(file)) > MAX_NAME_BYTES:  # else ENAMETOOLONG in the worker
                raise ValueError(
                    f"the video name {reprlib.repr(file)} (the sink's producer name, '-', "
                    f"the clip's name) is over {MAX_NAME_BYTES} bytes: use a shorter "
                    "name_prefix or producer name"
                )
        self.end_orphans()
        path = (folder or self.video_folder) / f"{file}{self.codec.extension}"
        clip = Clip(
            name=name,
            path=path,
            kind=kind,
            index=index,
            fps=self.fps if fps is None else fps,
            handle=ClipHandle(name, path, kind, index, self),
            limit=math.inf if length is None else length,
            metadata=metadata,
            episode_index=episode_index,
            first_step=first_step,
            whole=whole,
            source=source,
        )
        self._queue.open_clip(clip)
        return clip

    def admit(
        self, image: Image, fmt: FrameFormat, clips: Sequence[Clip], info: Checked | None = None
    ) -> list[Clip]:
        """Queue the validated *image* and its checked *info* for *clips* (on_full applies);
        the clips still accepting."""
        return self._queue.admit(image, fmt, clips, info)

    def append_frame(self, clips: Sequence[Clip], frame: Any, info: Checked | None = None) -> None:
        """Validate *frame* and queue it, with its checked *info*, once for every clip in
        *clips* still accepting."""
        image, fmt = image_and_format(frame)
        for clip in clips:
            known = clip.frame_format
            if known is None:
                check_size(fmt, self.codec.name)
            elif known is not fmt and known != fmt:
                raise shape_changed(clip.name, known, fmt)
        self._queue.admit(image, fmt, clips, info)

    def end_clip(self, clip: Clip, *, cut: bool = False) -> None:
        """No more frames for *clip*; it is finished in the background.

        Ended while Ctrl-C (or SystemExit) unwinds or is handled, or with *cut* (a cancelled
        task), an open clip was cut short.
        """
        interrupted = isinstance(sys.exc_info()[1], KeyboardInterrupt | SystemExit)
        if clip.accepting and (cut or interrupted):
            self._cut.add(clip)
        self._queue.end(clip)

    def orphan(self, index: int, clips: list[Clip]) -> None:
        """Episode *index* was garbage-collected unclosed: its *clips* end at the next clip,
        flush or close. Takes no lock: the collector may run inside a call that holds one."""
        self._orphans.append((index, clips))  # atomic: no lock

    def end_orphans(self) -> None:
        """End the clips of the episodes collected unclosed, where they are (cut short)."""
        while self._orphans:
            try:
                index, clips = self._orphans.popleft()
            except IndexError:  # another thread took the last one
                return
            ended = [clip for clip in clips if clip.accepting]
            for clip in ended:
                self._cut.add(clip)  # its episode never ended: partial
                self._queue.end(clip)
            if ended:
                self._orphaned(
                    "episode %d was garbage-collected without close() (use `with "
                    "rec.episode(...)`): its videos are ended where they are, marked partial",
                    index,
                )

    def drop_clip(self, clip: Clip, reason: str) -> None:
        """Drop *clip* whole: its file is discarded, its handle raises ClipDroppedError."""
        self._queue.drop(clip, reason)

    def episode_ended(
        self, episode_index: int, metadata: Mapping[str, Any], source: object = None
    ) -> None:
        """An episode that made clips ended: the keep policy scores it (may delete videos).

        *source*: who numbers the episode (None: the Recorder's own calls), as its clips say.
        """
        if self._keeper is not None:
            try:
                self._keeper.episode_ended(episode_index, metadata, source)
            except OSError as e:
                e.add_note(f"deleting the videos of episode {episode_index} (keep)")
                logger.error("keep: %s", e)
                self._queue.report(e)

    def stalled(self, episode_index: int, why: str) -> None:
        """Count (and log, the first time as a warning) an episode that recorded nothing."""
        self._stalls("episode %d recorded nothing: %s", episode_index, why)

    # -- waiting, for the async facade: it admits frames on the event loop only once they
    # cannot wait, and waits (stoppably) on its own threads -----------------------------------

    @property
    def may_block(self) -> bool:
        """Whether admitting a frame can wait now: ``on_full="block"``, open and not broken."""
        queue = self._queue
        return self.on_full == "block" and not queue.closed and queue.broken is None

    def fits(self, nbytes: int) -> bool:
        """Whether a frame of *nbytes* would be admitted now without waiting or dropping."""
        return self._queue.fits(nbytes)

    def wait_for_room(self, nbytes: int, stop: threading.Event) -> None:
        """Wait until a frame of *nbytes* fits, the recorder closes or breaks, or *stop* is set."""
        self._queue.wait_for_room(nbytes, stop)

    def pending(self) -> list[tuple[Clip, int]]:
        """What "everything so far" is for :meth:`wait_until`: each live clip's work."""
        return self._queue.snapshot()

    def wait_until(self, targets: list[tuple[Clip, int]] | None, stop: threading.Event) -> None:
        """Wait until *targets* (from :meth:`pending`; None: every clip, or once what is left
        is dropped (:attr:`dropping`), every clip not dropped) are done, or *stop*."""
        dropping = self.dropping if targets is None else None
        self._queue.wait(
            None, targets=targets, everything=targets is None, stop=stop, dropping=dropping
        )

    def wake(self) -> None:
        """Make the threads in :meth:`wait_for_room` / :meth:`wait_until` look at *stop*."""
        self._queue.wake()

    def end_all(self) -> None:
        """Refuse new clips and frames, and end every live clip where it is (an open one is
        cut short, as at :meth:`close`)."""
        queue = self._queue
        queue.close()
        for clip in queue.live_clips():
            if clip.accepting:  # its episode never ended
                self._cut.add(clip)
            queue.end(clip)

    def drop_all(self, reason: str) -> None:
        """Refuse new clips and frames, and drop every live clip (fast close)."""
        self.dropping.set()  # before the drop: a close that sees none live waits no more
        self._queue.close()
        self._queue.drop_all(reason)
        self._queue.wake()  # a close waiting (without a timeout) sees it now

    def raise_errors(self) -> None:
        """Raise the errors of background work not yet raised (one, or an ExceptionGroup)."""
        errors, more, other = self._queue.take_unreported()
        self._raised = errors
        raise_errors(errors, more, other)

    def close_error(self, error: BaseException) -> bool:
        """Whether *error*, raised by :meth:`close`, is one to report (an Exception, or a
        background error :meth:`raise_errors` raised: an on_saved callback's SystemExit) rather
        than an interruption of the call itself (a Ctrl-C), which must go on."""
        if isinstance(error, Exception):
            return True
        if isinstance(error, BaseExceptionGroup):
            return all(self.close_error(e) for e in error.exceptions)
        return any(error is e for e in self._raised)

    # -- flush, stats, close -------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """:meth:`Recorder.flush <recorder.Recorder.flush>`."""
        if os.getpid() != self._pid:
            raise RecorderClosedError("a Recorder cannot be used in a forked child process")
        self._not_from_own_thread("flush")
        timeout = check_timeout(timeout)
        self.end_orphans()  # their frames are given: wait for them too
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._queue.wait(deadline):
            pending = len(self._queue.live_clips())
            raise TimeoutError(f"flush() timed out after {timeout} s; {pending} videos pending")
        self.raise_errors()

    def stats(self) -> RecorderStats:
        """:meth:`Recorder.stats <recorder.Recorder.stats>`."""
        if os.getpid() != self._pid:
            # The queue's lock may have been held by a parent's thread at fork: never taken.
            raise RecorderClosedError("a Recorder cannot be used in a forked child process")
        suspect, stale = (0, 0) if self._judge is None else self._judge.counts()
        deleted = 0 if self._keeper is None else self._keeper.deleted
        return replace(
            self._queue.stats(),
            episodes_stalled=self._stalls.count,
            videos_suspect=suspect,
            videos_stale_first_frame=stale,
            videos_deleted=deleted,
        )

    def close(self, timeout: float | None = None, *, cancel: bool = False) -> None:
        """:meth:`Recorder.close <recorder.Recorder.close>`."""
        self._not_from_own_thread("close")
        timeout = check_timeout(timeout)
        cancel = check_cancel(cancel)
        if os.getpid() != self._pid:
            self._closed = True  # the workers live in the parent; nothing here to flush
            return
        # One timeout for the whole call: waiting for another close, then its own.
        deadline = None if timeout is None else time.monotonic() + timeout
        turn = _Turn()
        try:
            mine = self._take_turn(turn, deadline)
            if mine is None:
                return  # closed already
            if not mine:
                # As when this call's own wait times out: what is left is dropped (which also
                # lets the other close finish soon).
                self.drop_all(f"close() timed out after {timeout} s")
                raise TimeoutError(
                    f"close() timed out after {timeout} s; the videos left were dropped"
                )
            self._closed = True
            self._shutdown(timeout, deadline, cancel)
        finally:
            # First, with no call before it: however this call is left (a Ctrl-C included),
            # the next close no longer waits for it.
            turn.left = True
            with self._close_lock:
                if self._closer is turn:
                    self._closer = None
        self.raise_errors()

    def _take_turn(self, turn: _Turn, deadline: float | None) -> bool | None:
        """Wait until no other close is in progress, then make *turn* the one (True); None
        when the workers are stopped already, False when *deadline* passed.

        A close that has left its call (a Ctrl-C, say), whatever it got to, leaves the job
        to the next close. So does one in the same thread: a close nested in a signal handler
        would otherwise wait for the one it interrupted.
        """
        while True:
            with self._close_lock:
                if self._shut_down:
                    return None
                other = self._closer
                if other is None or other.left or other.thread == turn.thread:
                    self._closer = turn
                    return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            # Polled, not notified: a Condition's Python-level code could be interrupted
            # holding its lock (two closes at once are rare; 50 ms is nothing at a close).
            time.sleep(min(left or _CLOSE_POLL_SECONDS, _CLOSE_POLL_SECONDS))

    def _shutdown(self, timeout: float | None, deadline: float | None, cancel: bool) -> None:
        queue = self._queue
        try:
            self.end_all()
            if cancel:
                self.dropping.set()
                queue.drop_all("the recorder was closed with cancel=True")
                self._stop_deliveries("the recorder was closed with cancel=True")
            # Once dropped (cancel=True, or by another call meanwhile), the videos a worker is
            # finishing are still waited for (their files are in place), the dropped ones not.
            if not queue.wait(deadline, everything=True, dropping=self.dropping):
                if not self.dropping.is_set():
                    queue.drop_all(f"close() timed out after {timeout} s")
                raise TimeoutError(
                    f"close() timed out after {timeout} s; the videos left were dropped"
                )
            if self.dropping.is_set():
                # The workers get a grace to delete what they had half-written, then an
                # encoder process that does not let go is killed.
                deadline = time.monotonic()
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
            self._shut_down = True

    def own_thread(self) -> bool:
        """Whether the calling thread is one of the recorder's (a worker, the delivery
        thread): on_saved and the handles' done-callbacks run there."""
        own = self._deliveries.thread if self._deliveries is not None else None
        return threading.current_thread() in (*self._threads, own)

    def callback_failed(self, error: BaseException, handle: ClipHandle) -> bool:
        """A done-callback of *handle* raised *error*: reported as an on_saved error is
        (flush() and close() raise it). A KeyboardInterrupt or SystemExit in the caller's own
        thread (a ``cancel()``, a callback added to a done handle) goes on instead."""
        if not isinstance(error, Exception) and not self.own_thread():
            return False
        error.add_note(f"in a done-callback of the handle of {handle.name}")
        logger.error("a done-callback of %s failed", handle.name, exc_info=error)
        self._queue.report(error)
        return True

    def _not_from_own_thread(self, call: str) -> None:
        # on_saved and a handle's done-callbacks run there: the call would wait for itself.
        if self.own_thread():
            raise RuntimeError(
                f"{call}() cannot be called from the recorder's own worker thread (an on_saved "
                "callback or a handle's done-callback): it would wait for itself"
            )

    def _log_drop(self, clip: Clip, reason: str) -> None:
        self._drops("dropped video %s: %s", clip.name, reason)

    def _stop_deliveries(self, reason: str) -> None:
        if self._deliveries is not None:
            self._deliveries.stop(reason)

    def _record(self, record: dict[str, Any], folder: Path | None = None) -> None:
        append_manifest(self.video_folder if folder is None else folder, record)

    # The workers' per-clip finish: tests replace it to make a worker die.

    @property
    def finish(self) -> Callable[[Clip], None]:
        """How the workers finish a clip whose frames are all written (a seam for tests)."""
        return self._workers.finish

    @finish.setter
    def finish(self, finish: Callable[[Clip], None]) -> None:
        self._workers.finish = finish


_no_processes_said = False


def _warn_no_processes() -> None:
    """Say once per process that videos are encoded in worker threads, not processes."""
    global _no_processes_said
    if not _no_processes_said:
        _no_processes_said = True
        logger.warning(
            "encoder processes are not available here (they need memfd_create, fd passing "
            "and sys.executable): videos are encoded in the recorder's worker threads"
        )


class _Turn:
    """A close() call (see ClipService._take_turn): its thread, and whether it has left."""

    __slots__ = ("left", "thread")

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.left = False


def _close_abandoned(service: ClipService) -> None:
    """Close *service*, abandoned by its owner, on a thread of its own (an idle worker calls
    this); an error is logged: nobody is left to raise it to."""

    def close() -> None:
        try:
            service.close()
        except Exception as e:
            logger.error("an unclosed wrapper's Recorder (%s) failed: %r", service.video_folder, e)

    threading.Thread(target=close, name="recorder-close-abandoned").start()


# -- process-wide plumbing ---------------------------------------------------------------------


_closing_at_exit = False  # the interpreter's exit is closing the live Recorders


def closing_at_exit() -> bool:
    """Whether the interpreter's exit is closing (flushing) the live Recorders now."""
    return _closing_at_exit


def _close_all_at_exit() -> None:
    global _closing_at_exit
    _closing_at_exit = True
    try:
        with _live_lock:
            services = list(_live)
        for service in services:
            try:
                service.close()
            except BaseException as e:  # a callback's SystemExit too: the next ones close
                if not service.close_error(e):
                    raise  # a Ctrl-C
                logger.exception("closing a Recorder at interpreter exit")
    finally:
        _closing_at_exit = False  # a SIGTERM after it (a hung thread joined) ends the process


def drop_all_live(why: str) -> None:
    """Drop what every live Recorder has left (a second signal: *why*); their closes then
    wait only for the workers' grace."""
    with _live_lock:
        services = list(_live)
    for service in services:
        service.drop_all(f"{why}: what was left is dropped")


def _forget_all_in_child() -> None:
    # The workers did not survive fork(); the parent's recorders are its business. Using one
    # here must fail clearly rather than queue frames no worker will ever take.
    global _live_lock, _closing_at_exit
    _live_lock = threading.Lock()
    _closing_at_exit = False  # forked by a callback of the parent's exit: the child is not leaving
    for service in _live:
        service._queue.mark_forked()
    _live.clear()


# Runs before the interpreter joins non-daemon threads (like concurrent.futures does), so a
# Recorder that was never closed still flushes instead of hanging the exit.
threading._register_atexit(_close_all_at_exit)  # type: ignore[attr-defined]
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_all_in_child)
