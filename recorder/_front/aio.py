"""An anyio facade over :class:`Recorder`, for training loops and env servers on asyncio or trio.

The sync core stays the one implementation: work of at most one frame's copy runs on the event
loop thread, waits run on worker threads that cancelling the task stops (docs/design.md).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import threading
import weakref
from collections.abc import Callable, Generator, Mapping, Sequence
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar

import anyio
import anyio.lowlevel
import numpy as np

from recorder._base.frames import Image, as_image, format_of
from recorder._base.info import Checked, check_info, check_infos
from recorder._base.results import (
    ClipHandle,
    ClipKind,
    QueueFullError,
    RecorderStats,
    VideoInfo,
)
from recorder._base.validate import check_cancel, check_timeout, describe, validate_frames
from recorder._front.episode import Episode
from recorder._front.recorder import Recorder
from recorder._service.service import Clip, OnFull, note_close_error

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")

#: frame lists longer than this are validated on a worker thread (it is O(frames) work).
_VALIDATE_INLINE = 32
#: frames submit() may skip (no clip wants them) between two checkpoints.
_SKIPS_PER_CHECKPOINT = 64


def _takes_arguments_of(
    source: Callable[Concatenate[Any, P], object],
) -> Callable[[Callable[..., R]], Callable[Concatenate[Any, P], R]]:
    """Give the decorated method *source*'s parameters, for type checkers and inspect."""

    def decorate(method: Callable[..., R]) -> Callable[Concatenate[Any, P], R]:
        # Its parameters, with its own return type (not __wrapped__: get_type_hints would
        # read the method's annotations in the source's module).
        own = inspect.signature(method).return_annotation
        method.__signature__ = inspect.signature(source).replace(return_annotation=own)  # type: ignore[attr-defined]
        return method

    return decorate


class _Forwarded(Generic[T]):
    """A read-only attribute that is the same-named attribute of the object in *via*."""

    def __init__(self, via: str, doc: str) -> None:
        self._via = via
        self.__doc__ = doc
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, obj: object, objtype: type | None = None) -> T:
        if obj is None:  # looked up on the class (help(), docs): the descriptor itself
            return self  # type: ignore[return-value]
        return getattr(getattr(obj, self._via), self._name)  # type: ignore[no-any-return]


class AsyncClipHandle:
    """The future of one clip, awaitable on asyncio and trio: ``info = await handle``.

    Awaiting gives the clip's :class:`VideoInfo`, or raises :class:`ClipDroppedError` when it
    was dropped and the encoding error when it failed. The sync future is :attr:`future`.
    """

    __slots__ = ("future",)

    def __init__(self, future: ClipHandle) -> None:
        self.future = future

    name = _Forwarded[str]("future", "File name without extension (``rl-video-episode-0``).")
    path = _Forwarded[Path]("future", "Where the video goes.")
    kind = _Forwarded[ClipKind]("future", '``"episode"`` or ``"step"``.')
    index = _Forwarded["int | None"]("future", "The episode or step index in the name.")
    dropped = _Forwarded[bool]("future", "True once the clip is known to have been dropped.")

    def done(self) -> bool:
        """Whether the clip is saved, dropped or failed."""
        return self.future.done()

    async def result(self) -> VideoInfo:
        """Wait for the clip (without occupying a thread) and return its :class:`VideoInfo`.

        Raises:
            ClipDroppedError: the clip was dropped.
            Exception: the error that made the clip fail.
        """
        await _wait_future(self.future)
        return self.future.result()

    async def exception(self) -> BaseException | None:
        """Wait for the clip; its error, or ``None`` when it was saved."""
        await _wait_future(self.future)
        return self.future.exception()

    def __await__(self) -> Generator[Any, None, VideoInfo]:
        return self.result().__await__()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncClipHandle) and other.future is self.future

    def __hash__(self) -> int:
        return hash(self.future)

    def __repr__(self) -> str:
        return f"<Async{repr(self.future)[1:]}"


class AsyncEpisode:
    """One episode streamed frame by frame; get it from :meth:`AsyncRecorder.episode`.

    ``async with rec.episode(i) as ep: await ep.offer(env.render)``, or check
    :attr:`wants_frame` before rendering and ``await ep.append(frame)``: the same rules as the
    sync :class:`Episode` (one :attr:`wants_frame` answer per frame; reading it again after a
    False answer means that frame went by). Leaving the block (or :meth:`close`) ends the
    episode's clips where they are: the frames given are saved, in order, and none is missing
    in between. One task appends to an episode at a time.
    """

    def __init__(self, owner: AsyncRecorder, episode: Episode) -> None:
        self._owner = owner
        self._ep = episode
        self._appending = False

    episode_index = _Forwarded[int]("_ep", "Index of the episode.")
    step_starting_index = _Forwarded[int](
        "_ep", "Step index of the first frame after the reset frame."
    )
    metadata = _Forwarded[dict[str, Any]](
        "_ep", "Facts about the episode for the sidecars; add to it until the episode ends."
    )

    @property
    def wants_frame(self) -> bool:
        """Whether a clip needs the next frame; read it once per frame (see :class:`Episode`)."""
        return self._ep.wants_frame

    frames_seen = _Forwarded[int]("_ep", "Frames appended or skipped so far.")

    @property
    def handles(self) -> list[AsyncClipHandle]:
        """Handles of the clips this episode has started, in order."""
        return [AsyncClipHandle(h) for h in self._ep.handles]

    async def append(self, frame: Any, info: Mapping[str, Any] | None = None) -> None:
        """Add the next frame (and its *info*, as :meth:`Episode.append` takes it): validated
        and copied now, encoded in the background.

        With ``on_full="block"`` and the budget full, the task (never the event loop) waits for
        room. If it is cancelled while waiting, the frame was not taken: the episode is as it was.

        Raises:
            TypeError, ValueError: a bad frame or info, or a frame whose shape differs from the
                first.
            QueueFullError: ``on_full="raise"`` and the budget is full (the clips are dropped).
            RecorderClosedError: the episode or the recorder is closed.
            anyio.BusyResourceError: another task is appending to this episode.
        """
        await anyio.lowlevel.checkpoint_if_cancelled()
        self._check_idle()
        await self._append(as_image(frame), check_info(info))

    async def _append(self, image: Image, info: Checked | None) -> None:
        ep = self._ep
        if ep._peek():
            self._appending = True
            try:
                nbytes = format_of(image).nbytes + (0 if info is None else info[1])
                if self._owner._would_wait(nbytes):
                    # Copied now, as documented: while this task waits for room, others run
                    # and may render into the caller's buffer.
                    image = image.copy()
                await self._owner._admit(nbytes, partial(ep._append_checked, image, info))
            finally:
                self._appending = False
        else:
            # No clip wants it: checked, then ignored, as the sync Episode does.
            ep._append_checked(image, info)
        await anyio.lowlevel.cancel_shielded_checkpoint()

    async def offer(self, render: Callable[[], Any], info: Mapping[str, Any] | None = None) -> bool:
        """Call ``render()`` and append its frame if a clip wants this frame; always advance.

        One call per frame, e.g. ``await ep.offer(env.render)``. *render* runs on the event
        loop thread; it may return an awaitable, which is awaited (a slow sync render can be
        moved off the loop: ``ep.offer(lambda: anyio.to_thread.run_sync(env.render))``).
        Appending waits as :meth:`append` does.

        Returns:
            Whether *render* was called (and its frame appended, with *info*).

        Raises:
            TypeError: *render* is not callable, or the frame is not an image.
            Exception: whatever *render* raises (the episode then stays at this frame); as
                :meth:`append` otherwise.
        """
        if not callable(render):
            raise TypeError(
                f"offer() takes a callable that renders a frame (env.render, not env.render()), "
                f"got {describe(render)}"
            )
        await anyio.lowlevel.checkpoint_if_cancelled()
        self._check_idle()
        if not self._ep._peek():
            self._ep.skip()
            await anyio.lowlevel.cancel_shielded_checkpoint()
            return False
        checked = check_info(info)  # before render(), as the sync Episode does
        self._appending = True  # until appended: render() may await, another task must wait
        try:
            frame = render()
            if inspect.isawaitable(frame):
                frame = await frame
        finally:
            self._appending = False
        await anyio.lowlevel.checkpoint_if_cancelled()
        self._check_idle()
        await self._append(as_image(frame), checked)
        return True

    def append_nowait(self, frame: Any, info: Mapping[str, Any] | None = None) -> None:
        """Add the next frame without waiting: copied at once, or refused.

        With ``on_full="drop"`` or ``"raise"`` this is :meth:`append` minus the checkpoint (the
        policy applies as usual). With ``on_full="block"`` and no room, nothing happens and
        :class:`QueueFullError` is raised: the frame was not taken, no clip was dropped, and
        ``await append(frame)`` would wait for room.

        Raises:
            QueueFullError: see above.
            TypeError, ValueError, RecorderClosedError, anyio.BusyResourceError: as
                :meth:`append`.
        """
        self._check_idle()
        image = as_image(frame)
        checked = check_info(info)
        ep = self._ep
        if ep._peek():
            nbytes = format_of(image).nbytes + (0 if checked is None else checked[1])
            if self._owner._would_wait(nbytes):
                rec = self._owner._rec
                raise QueueFullError(
                    f"max_queue_bytes={rec.max_queue_bytes} full "
                    f"({rec.stats().queued_bytes} bytes waiting, "
                    f"frame of {nbytes}): the frame was not taken and nothing was dropped; "
                    "await append() to wait for room"
                )
        ep._append_checked(image, checked)

    def skip(self) -> None:
        """Advance past a frame that was not rendered (when :attr:`wants_frame` is False)."""
        self._check_idle()
        self._ep.skip()

    def close(self) -> None:
        """End the episode: its clips are finished in the background. Idempotent; never waits.

        Raises:
            TypeError, ValueError: as :meth:`Episode.close`, for metadata that cannot be stored.
        """
        self._ep.close()

    def _check_idle(self) -> None:
        if self._appending:
            raise anyio.BusyResourceError("appending to")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, *_: object
    ) -> None:
        # As the sync Episode: an exception (a cancellation too) ends it early, not a stall;
        # metadata that cannot be stored is raised here, or noted on the exception. A
        # cancellation (asyncio.run's first Ctrl-C is one) cuts its open clips short.
        self._ep._exit(exc_type, exc, cut=_cancellation(exc))


class AsyncRecorder:
    """:class:`Recorder` for async code, on asyncio or trio (through anyio).

    Takes the same arguments as :class:`Recorder` and drives one; no call blocks the event loop
    for longer than the copy of one frame::

        async with recorder.AsyncRecorder("videos", episode_trigger=lambda i: True) as rec:
            handles = await rec.submit(frames, episode_index=0)
            async with rec.episode(1) as ep:
                await ep.append(frame)
            info = await handles[0]
            await rec.flush()

    Leaving the ``async with`` block (or :meth:`aclose`) waits until every video is on disk,
    shielded from cancellation: a cancelled task, or a timeout around the block, still gets
    everything it queued saved (the cancellation is delivered afterwards). An exception raised
    inside the block propagates once the videos are saved. To cut the wait short:
    ``aclose(cancel=True)`` (from any task, also while another task is closing),
    ``aclose(timeout=...)``, a KeyboardInterrupt (Ctrl-C under trio; the second Ctrl-C under
    ``asyncio.run``, whose first one is a cancellation), or on asyncio a second
    ``Task.cancel()``: what is still queued is then dropped (no file is left half-written).

    The wrapped recorder is driven from the event loop thread only; use one AsyncRecorder from
    one event loop.
    """

    @_takes_arguments_of(Recorder.__init__)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._rec = Recorder(*args, **kwargs)
        # Tasks waiting for room take turns (anyio locks are fair); one thread waits for them.
        self._room_lock = anyio.Lock()
        self._room_limiter = anyio.CapacityLimiter(1)
        # Threads waiting in flush() and aclose().
        self._wait_limiter = anyio.CapacityLimiter(2)
        self._waiting = 0  # tasks between "no room" and "frame admitted"
        # The first aclose() closes; the others wait for it, maybe on other event loops: each
        # is woken on its own loop (its token) when it is done. None once it is done.
        self._close_lock = threading.Lock()
        self._closing = False
        self._close_waiters: list[tuple[Any, anyio.Event]] | None = []

    # -- the sync recorder's read-only face ---------------------------------------------------

    video_folder = _Forwarded[Path]("_rec", "Where videos go.")
    on_full = _Forwarded[OnFull]("_rec", "The backpressure policy.")

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` has begun."""
        return self._closing or self._rec.closed

    def stats(self) -> RecorderStats:
        """A snapshot of the counters (see :meth:`Recorder.stats`)."""
        return self._rec.stats()

    # -- producing -----------------------------------------------------------------------------

    @_takes_arguments_of(Recorder.episode)
    def episode(self, *args: Any, **kwargs: Any) -> AsyncEpisode:
        """Stream one episode frame by frame (an async context manager; see :class:`AsyncEpisode`).

        Arguments as :meth:`Recorder.episode`.

        Raises:
            RecorderClosedError: the recorder is closed.
            Exception: whatever episode_trigger raises.
        """
        return AsyncEpisode(self, self._rec.episode(*args, **kwargs))

    @_takes_arguments_of(Recorder.submit)
    async def submit(
        self, frames: Sequence[Any] | np.ndarray[Any, Any], *args: Any, **kwargs: Any
    ) -> list[AsyncClipHandle]:
        """Record a whole episode's frames; returns once they are queued, one handle per clip.

        The clips are those :meth:`Recorder.submit` makes (same arguments). The frames are
        copied one at a time, with a checkpoint in between (so they must not change until this
        returns); with ``on_full="block"`` the task waits for room as needed. If the task is
        cancelled on the way, the episode's clips are dropped whole, as :meth:`Recorder.submit`
        does when interrupted: a cut clip would pass for a shorter episode.

        Raises:
            TypeError, ValueError: bad frames or indices, before anything is queued.
            QueueFullError: ``on_full="raise"`` and the budget is full.
            RecorderClosedError: the recorder is closed.
        """
        await anyio.lowlevel.checkpoint_if_cancelled()
        self._rec._service.check_usable()
        infos = kwargs.pop("infos", None)
        if isinstance(frames, Sequence | np.ndarray) and len(frames) > _VALIDATE_INLINE:
            images = await anyio.to_thread.run_sync(validate_frames, frames)
        else:
            images = validate_frames(frames)
        checked = check_infos(infos, len(images))
        ep = self._rec.episode(*args, **kwargs)  # the same parameters after frames
        try:
            skipped = 0
            for i, image in enumerate(images):
                if ep._peek():
                    info = None if checked is None else checked[i]
                    nbytes = format_of(image).nbytes + (0 if info is None else info[1])
                    await self._admit(nbytes, partial(ep._append_checked, image, info))
                    await anyio.lowlevel.checkpoint()
                else:
                    ep.skip()
                    skipped += 1
                    if skipped % _SKIPS_PER_CHECKPOINT == 0:
                        await anyio.lowlevel.checkpoint()
        except BaseException:
            ep._abort("submit() was interrupted")
            raise
        ep.close()
        return [AsyncClipHandle(h) for h in ep.handles]

    def _would_wait(self, nbytes: int) -> bool:
        rec = self._rec
        return rec._service.may_block and (bool(self._waiting) or not rec._service.fits(nbytes))

    async def _admit(self, nbytes: int, put: Callable[[], None]) -> None:
        """Run *put* (which queues one frame of *nbytes*) once it cannot block the loop."""
        if not self._would_wait(nbytes):
            put()
            return
        rec = self._rec
        self._waiting += 1
        try:
            async with self._room_lock:
                while self._would_wait_alone(nbytes):
                    await _run_stoppable(
                        rec, partial(rec._service.wait_for_room, nbytes), self._room_limiter
                    )
                # Still on the loop thread since the check: nobody else produced in between.
                put()
        finally:
            self._waiting -= 1

    def _would_wait_alone(self, nbytes: int) -> bool:
        return self._rec._service.may_block and not self._rec._service.fits(nbytes)

    # -- waiting -------------------------------------------------------------------------------

    async def flush(self) -> None:
        """Wait until every video ended so far is on disk and every frame given so far encoded.

        Cancelling it stops the wait only: nothing queued is lost.

        Raises:
            Exception: the error of a video that failed since the last flush()/aclose(), or an
                :class:`ExceptionGroup` of them.
        """
        rec = self._rec
        rec._service.end_orphans()  # episodes collected unclosed: their frames are given
        targets = rec._service.pending()
        if targets:
            await _run_stoppable(rec, partial(_wait_stoppable, rec, targets), self._wait_limiter)
        else:
            await anyio.lowlevel.checkpoint()
        self._rec._service.raise_errors()

    async def aclose(self, timeout: float | None = None, *, cancel: bool = False) -> None:
        """Finish every clip, stop the workers and report errors. Idempotent.

        Open episodes are ended where they are; then waits, shielded from cancellation, until
        every video is on disk. With ``cancel=True`` what is queued is dropped instead (also when
        another task is already closing: that close then finishes quickly). *timeout*, *cancel*
        and the errors raised are :meth:`Recorder.close`'s.
        """
        await self._aclose(check_timeout(timeout), cancel, cancelled=False)
        # A cancellation held off by the shield is delivered here.
        await anyio.lowlevel.checkpoint()

    async def _aclose(self, timeout: float | None, cancel: bool, *, cancelled: bool) -> None:
        cancel = check_cancel(cancel)
        if cancel:
            self._rec._service.drop_all("the recorder was closed with cancel=True")
        with self._close_lock:
            first = not self._closing
            self._closing = True
            done = anyio.Event()
            if not first and self._close_waiters is not None:
                self._close_waiters.append((anyio.lowlevel.current_token(), done))
            else:
                done.set()
        if not first:
            # Another task closes (and reports the errors); wait for it, like Recorder.close(),
            # at most this call's own timeout.
            with anyio.move_on_after(math.inf if timeout is None else timeout) as timer:
                await done.wait()
            if timer.cancelled_caught:
                self._rec._service.drop_all(f"aclose() timed out after {timeout} s")
                raise TimeoutError(
                    f"aclose() timed out after {timeout} s; the videos left were dropped"
                )
            return
        try:
            await self._shutdown(timeout, cancelled, cancel)
        finally:
            with self._close_lock:
                waiters, self._close_waiters = self._close_waiters or [], None
            for token, event in waiters:
                _call_soon(token, event.set)

    async def _shutdown(self, timeout: float | None, cancelled: bool, cancel: bool) -> None:
        rec = self._rec
        rec._service.end_all()
        interruption: BaseException | None = None
        # Task.cancel() and KeyboardInterrupt get through the shield: the first cancellation
        # waits until everything is saved; a second one or a Ctrl-C drops the rest.
        defer_cancel = not cancelled
        deadline = math.inf if timeout is None else anyio.current_time() + timeout
        timed_out = False
        # Once the rest is dropped (cancel=True, a timeout, an interruption) nothing is waited
        # for here: the close below gives the workers their grace, then kills an encoder
        # process that does not let go (a hung one would never let the clips retire).
        dropped = cancel
        with anyio.CancelScope(shield=True):
            while not dropped:
                try:
                    with anyio.CancelScope(deadline=deadline) as timer:
                        await _run_stoppable(
                            rec, partial(_wait_stoppable, rec, None), self._wait_limiter
                        )
                    if not timer.cancelled_caught:
                        dropped = rec._service.dropping.is_set()  # by another call meanwhile
                        break
                    timed_out = dropped = True
                    rec._service.drop_all(f"aclose() timed out after {timeout} s")
                except BaseException as e:
                    interruption = e
                    if defer_cancel and isinstance(e, anyio.get_cancelled_exc_class()):
                        defer_cancel = False
                        continue
                    dropped = True
                    rec._service.drop_all("aclose() was interrupted")
            # Every clip is finished or dropped: the workers' exit takes a moment, off the loop.
            error: BaseException | None = None
            try:
                await anyio.to_thread.run_sync(
                    partial(self._rec.close, cancel=dropped), limiter=self._wait_limiter
                )
            except BaseException as e:
                if not rec._service.close_error(e):
                    raise
                error = e  # (a SystemExit an on_saved callback raised, say)
        if interruption is not None:
            raise interruption
        if timed_out:
            raise TimeoutError(
                f"aclose() timed out after {timeout} s; the videos left were dropped"
            ) from error
        if error is not None:
            raise error

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._aclose(None, False, cancelled=_cancellation(exc))
        except BaseException as e:
            if exc is None or not self._rec._service.close_error(e):
                raise
            note_close_error(exc, e)  # the block's own exception goes first
            return
        if exc is None:
            # A cancellation held off by the shield is delivered here.
            await anyio.lowlevel.checkpoint()


def _cancellation(exc: BaseException | None) -> bool:
    """Whether *exc* is the event loop's cancellation (False outside any loop: a coroutine
    closed after its loop was abandoned, by a SIGTERM under trio say)."""
    try:
        return isinstance(exc, anyio.get_cancelled_exc_class())
    except RuntimeError:  # anyio.NoEventLoopError
        return False


def _wait_stoppable(
    rec: Recorder, targets: list[tuple[Clip, int]] | None, stop: threading.Event
) -> None:
    """Wait until *targets* are done (``None``: until no clip is live), or *stop* is set."""
    rec._service.wait_until(targets, stop)


async def _run_stoppable(
    rec: Recorder, wait: Callable[[threading.Event], None], limiter: anyio.CapacityLimiter
) -> None:
    """Run the blocking *wait* on a worker thread; cancelling the task stops the thread.

    The task is interrupted at once (cancellation, asyncio's ``Task.cancel()``, trio's
    KeyboardInterrupt), wakes the thread, and re-raises once the thread has let go: no thread
    stays blocked behind, and the loop never waits for one.
    """
    stop = threading.Event()
    started = threading.Event()
    exited = anyio.Event()
    token = anyio.lowlevel.current_token()

    def run() -> None:
        started.set()
        try:
            if not stop.is_set():
                wait(stop)
        finally:
            _call_soon(token, exited.set)

    try:
        await anyio.to_thread.run_sync(run, abandon_on_cancel=True, limiter=limiter)
    except BaseException:
        # Set `stop` before looking at `started`: a thread that starts later returns at once.
        stop.set()
        rec._service.wake()
        if started.is_set():
            with anyio.CancelScope(shield=True):
                await exited.wait()
        raise


def _call_soon(token: anyio.lowlevel.EventLoopToken, func: Callable[[], object]) -> None:
    """Schedule *func* on the event loop of *token* from any thread, without waiting for it."""
    # RunFinishedError: the event loop is gone, and nobody waits any more.
    with contextlib.suppress(anyio.RunFinishedError):
        token.backend_class.run_sync_soon(func, (), token.native_token)


# The tasks waiting for each clip's future, woken by one done callback per future: a task
# that stops waiting (a timeout around `await handle`, polled in a loop) leaves nothing behind.
_waiting_lock = threading.Lock()
_waiting: weakref.WeakKeyDictionary[Future[Any], list[tuple[Any, anyio.Event]]] = (
    weakref.WeakKeyDictionary()
)


def _wake_waiting(future: Future[Any]) -> None:
    """*future* is done: wake the tasks waiting for it (on the thread that resolved it)."""
    with _waiting_lock:
        waiters = _waiting.pop(future, [])
    for token, event in waiters:
        _call_soon(token, event.set)


async def _wait_future(future: Future[Any]) -> None:
    """Wait until *future* is done without occupying a thread (asyncio and trio)."""
    if future.done():
        await anyio.lowlevel.checkpoint()
        return
    waiter = (anyio.lowlevel.current_token(), anyio.Event())
    with _waiting_lock:
        waiters = _waiting.get(future)
        first = waiters is None
        if waiters is None:
            waiters = _waiting[future] = []
        waiters.append(waiter)
    if first:  # runs at once if the future is done meanwhile
        future.add_done_callback(_wake_waiting)
    try:
        await waiter[1].wait()
    finally:
        with _waiting_lock:
            if waiter in waiters:
                waiters.remove(waiter)
