"""Encoding in child processes, so that the training process never waits for PyAV's GIL.

Each worker thread feeds a child process that maps the queue's arena (a memfd) once and
encodes each frame where it lies; a frame stays the queue's until the child has answered for
it (:meth:`ProcessEncoder.released`). Why: docs/design.md.

Protocol (``SOCK_SEQPACKET``, one pickled tuple per message, each answered by exactly one
reply, in order; at most ``_IN_FLIGHT`` unanswered per child, so neither side can fill the
other's socket buffer and block):

    parent -> child                          child -> parent
    (the child has started)                  ("ready", 0, None)
    ("arena", aid) + [memfd]                 ("ok", 0, None): map it (once per arena)
    ("forget", aid)                          ("ok", 0, None): unmap it
    ("open", vid, spec) + [file]             ("ok", vid, None) | ("err", vid, exc)
    ("write", vid, aid, offsets, texts)      ("ok", vid, None) | ("err", vid, exc) | ("skip", ...)
    ("tune", vid, codec, at_once)            ("ok", vid, None): PyAVEncoder.retune, in order
    ("close", vid)                           ("ok", vid, seen) | ("err", vid, exc)
    ("abort", vid)                           ("ok", vid, None) | ("err", vid, exc)
    ("exit",)                                (none: the child exits)

*seen*: what the video's frames showed (:class:`~recorder._encode.health.Seen`), or None when
the spec did not ask (``VideoSpec.health``).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import mmap
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
import weakref
from typing import Any, Literal

import numpy as np

from recorder._base.codec import Codec, Encoder, VideoSpec
from recorder._base.frames import Image
from recorder._base.kept import kept
from recorder._encode.encoder import PyAVEncoder
from recorder._encode.health import Seen
from recorder._queue.arena import Arena

logger = logging.getLogger("recorder")

EncodeIn = Literal["process", "thread"]

#: frames of one video passed to the child and not yet encoded, at most: the worker stays
#: this far ahead (a GIL wait of the worker's does not starve the child), and holds them.
AHEAD = 16
#: frames announced to the child in one message: fewer messages, so fewer GIL hand-overs
#: between the worker thread and the training thread.
BATCH = 4
_IN_FLIGHT = 64  # unanswered messages per child
#: encoder processes that fail to start in a row before a Recorder encodes in its worker
#: threads for good (one killed while starting, by the OOM killer say, is tried again).
MAX_FAILED_STARTS = 3
_START_TIMEOUT = 120.0  # seconds for a new encoder process to import PyAV (a loaded machine)
#: seconds an idle encoder process has to answer (to unmap an arena, or to exit when asked);
#: one that does not is killed: it holds no video, so nothing is lost.
IDLE_ANSWER_SECONDS = 5.0
#: how often a worker waiting for a new encoder process checks whether close() gave up.
_START_POLL = 0.1
#: the largest message either way (the child keeps error replies below it).
MAX_MESSAGE = 1 << 16

# The signals a process group gets (a terminal's Ctrl-C or hang-up, timeout, systemd, Slurm,
# a Jupyter kernel's shutdown) are the recorder's to act on: the child exits with its socket.
_CHILD_CODE = (
    "import signal, sys; "
    "[signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)]; "
    "sys.path[:0] = sys.argv[3:]; "
    "from recorder._encode.child import main; main(int(sys.argv[1]), int(sys.argv[2]))"
)


def available() -> bool:
    """Whether this platform can encode in child processes (memfd and fd passing: Linux)."""
    return (
        hasattr(os, "memfd_create")
        and hasattr(socket, "send_fds")
        and hasattr(socket, "SOCK_SEQPACKET")
        and bool(sys.executable)
        and not getattr(sys, "frozen", False)
    )


def target_nice(nice: int) -> int:
    """The nice value of an encoder process: the training process's plus *nice* (max 19).

    Absolute, because the process is started from a worker thread whose own (per-thread) nice
    value it inherits.
    """
    base = os.getpriority(os.PRIO_PROCESS, os.getpid()) if hasattr(os, "getpriority") else 0
    return min(19, base + max(0, nice))


class EncoderProcessError(RuntimeError):
    """An encoder process exited while it had videos open."""


class _Child:
    """One encoder process, its socket, and the videos it has open."""

    def __init__(self, nice: int, cancel: threading.Event | None = None) -> None:
        self.nice = nice
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            fd, level = str(child.fileno()), str(target_nice(nice))
            paths = kept(sys.path, bool)
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD_CODE, fd, level, *paths],
                pass_fds=[child.fileno()],
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self.sock = parent
        # The child says "ready" once PyAV is imported: one that cannot start (an interpreter
        # that cannot import this package, say) fails here, where the recorder can fall back.
        ready, cause = _wait_ready(parent, cancel)
        if not ready or pickle.loads(ready)[0] != "ready":
            self.proc.kill()
            code = self.proc.wait()
            parent.close()
            if cancel is not None and cancel.is_set():
                raise RuntimeError("the recorder's encoder processes were stopped") from cause
            raise EncoderProcessError(
                f"the encoder process (pid {self.proc.pid}) did not start (exit code {code})"
            ) from cause
        # Held for a whole request and its reply: one thread talks to the child at a time.
        # Nothing waits for the process itself under it (see settle() and stop()).
        self.lock = threading.Lock()
        self.videos: dict[int, ProcessEncoder] = {}
        self.next_id = 0
        self.arenas: set[int] = set()  # arenas the child has mapped
        # (encoder, frames announced) per message sent, oldest first
        self.unanswered: list[tuple[ProcessEncoder | None, int]] = []
        # The lifecycle: running (dead is None) -> dead (the error every user gets) ->
        # settled (the exit code is in that error). Only the first step happens under lock.
        self.dead: EncoderProcessError | None = None
        self._settled = False
        self._settle_lock = threading.Lock()
        _every_child.add(self)

    def request(
        self,
        encoder: ProcessEncoder | None,
        message: tuple[Any, ...],
        fds: list[int] | None = None,
        frames: int = 0,
    ) -> None:
        """Send *message* for *encoder* (lock held); its reply is read later, in order."""
        while len(self.unanswered) >= _IN_FLIGHT and self.dead is None:
            self.read_reply()
        if self.dead is not None:
            raise self.dead
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            if fds:
                socket.send_fds(self.sock, [data], fds)
            else:
                self.sock.send(data)
        except OSError as e:
            self._died(e)
            raise self.dead from e  # type: ignore[misc]
        self.unanswered.append((encoder, frames))
        if encoder is not None:
            encoder.sent += 1

    def read_reply(self, block: bool = True) -> bool:
        """Read the oldest reply (lock held) and hand it to its encoder.

        Returns False when *block* is False and no reply has arrived yet.
        """
        try:
            data = self.sock.recv(MAX_MESSAGE, 0 if block else socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError as e:
            self._died(e)
            return True
        if not data or not self.unanswered:
            self._died(None)
            return True
        kind, _vid, value = pickle.loads(data)
        encoder, frames = self.unanswered.pop(0)
        if encoder is not None:
            encoder.answered += 1
            encoder.frames_done += frames
            if kind == "err" and encoder.error is None:
                encoder.error = _unpickle_error(value)
            elif kind == "ok" and value is not None:  # a close's
                encoder.seen = value
        return True

    def share(self, arena: Arena, encoder: ProcessEncoder) -> None:
        """Have the child map *arena* unless it has already (lock held)."""
        if arena.id not in self.arenas and arena.fd is not None:
            self.request(encoder, ("arena", arena.id), [arena.fd])
            self.arenas.add(arena.id)

    def forget(self, arena: Arena, patience: float) -> bool:
        """Have the child unmap *arena* (an idle child kept for another recorder).

        Returns whether it did within *patience* seconds; one that did not answer is marked
        dead (then :meth:`kill` it).
        """
        if not self.lock.acquire(timeout=patience):
            return False  # a worker still talks to it
        try:
            if arena.id in self.arenas and self.dead is None:
                self.arenas.discard(arena.id)
                with contextlib.suppress(EncoderProcessError):
                    self.request(None, ("forget", arena.id))
            if self.unanswered and self.dead is None:
                self.sock.settimeout(patience)  # a timeout marks it dead
                while self.unanswered and self.dead is None:
                    self.read_reply()
                if self.dead is None:
                    self.sock.settimeout(None)
            return self.dead is None
        finally:
            self.lock.release()

    def _died(self, cause: BaseException | None) -> None:
        # Lock held: mark the child dead and release everything waiting on it; the exit code
        # is read later, outside the lock (settle()), so no other worker waits for it here.
        if self.dead is not None:
            return
        self.dead = EncoderProcessError(f"the encoder process (pid {self.proc.pid}) exited")
        if cause is not None:
            self.dead.__cause__ = cause
        for encoder, frames in self.unanswered:
            if encoder is not None:
                encoder.answered += 1
                encoder.frames_done += frames
        self.unanswered.clear()
        self.sock.close()  # nothing reads it again: every loop that would checks self.dead
        for encoder in self.videos.values():
            if encoder.error is None:
                encoder.error = self.dead

    def settle(self) -> None:
        """Once dead: wait (up to 5 s, lock not held) for the exit code and put it in the error."""
        dead = self.dead
        if dead is None or self._settled:
            return
        with self._settle_lock:
            if self._settled:
                return
            try:
                code: int | None = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
            how = "stopped answering" if code is None else f"exited with code {code}"
            dead.args = (f"the encoder process (pid {self.proc.pid}) {how}",)
            self._settled = True

    def stop(self, timeout: float) -> None:
        """Ask the child to exit; kill it after *timeout* seconds.

        A worker stuck waiting for a hung child holds the lock: then the child is killed
        first, which ends that wait (the worker sees the socket close).
        """
        if self.lock.acquire(timeout=1.0):
            try:
                if self.dead is None:
                    with contextlib.suppress(OSError):
                        self.sock.send(pickle.dumps(("exit",)))
                    self.dead = EncoderProcessError(
                        f"the encoder process (pid {self.proc.pid}) was stopped"
                    )
                    self._settled = True
                    self.sock.close()
            finally:
                self.lock.release()
            try:
                self.proc.wait(timeout)
                return
            except subprocess.TimeoutExpired:
                self.kill("it did not exit")
        else:
            self.kill("it is not answering")

    def kill(self, why: str) -> None:
        """Kill the child at once: a worker waiting for its answer sees its socket close."""
        if self.proc.poll() is not None:
            return
        logger.warning("killing encoder process %d: %s", self.proc.pid, why)
        self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(IDLE_ANSWER_SECONDS)  # SIGKILL: at once, unless the kernel is stuck


def _wait_ready(
    sock: socket.socket, cancel: threading.Event | None
) -> tuple[bytes, BaseException | None]:
    """The new child's first message (b"" if none), waiting at most :data:`_START_TIMEOUT`
    seconds, or until *cancel* is set (close() gave up); and why there was none."""
    deadline = time.monotonic() + _START_TIMEOUT
    sock.settimeout(_START_POLL)
    try:
        while True:
            try:
                return sock.recv(MAX_MESSAGE), None
            except TimeoutError as e:
                if time.monotonic() >= deadline or (cancel is not None and cancel.is_set()):
                    return b"", e
            except OSError as e:
                return b"", e
    finally:
        sock.settimeout(None)


def _unpickle_error(data: bytes) -> BaseException:
    try:
        error = pickle.loads(data)
    except Exception as e:  # the child checked it, but a class may differ here
        return RuntimeError(f"an encoder error that could not be unpickled: {e!r}")
    return error if isinstance(error, BaseException) else RuntimeError(repr(error))


_private_ids = itertools.count(-1, -1)  # arenas of one frame (not in the queue's arena)


class ProcessEncoder:
    """The :class:`Encoder` of one video, encoded by an encoder process.

    Frames must stay unchanged until :meth:`released` counts them: the child reads them
    from the arena after :meth:`write` returns.
    """

    def __init__(self, child: _Child, spec: VideoSpec, arena: Arena) -> None:
        self._child = child
        self._arena = arena
        self._nbytes = spec.frame_format.nbytes
        self.sent = 0  # messages sent for this video
        self.answered = 0  # ... and answered (or lost with the child)
        self.frames_done = 0  # frames the child has finished with
        self._pending: list[int] = []  # offsets of frames not yet announced to the child
        # ... and their overlay texts (all None without an overlay: then none are sent)
        self._texts: list[str | None] = []
        self.error: BaseException | None = None
        self.seen: Seen | None = None  # what the frames showed: the close's reply
        self._frames = 0
        # The child opens by path when there is no descriptor to share.
        fds = [] if spec.fd is None else [spec.fd]
        with child.lock:
            self._id = child.next_id
            child.next_id += 1
            child.videos[self._id] = self
            try:
                child.share(arena, self)
                child.request(self, ("open", self._id, spec), fds)
            except BaseException:
                del child.videos[self._id]
                error: BaseException | None = sys.exc_info()[1]
            else:
                error = None
        if error is not None:
            child.settle()
            raise error

    def _announce(self) -> None:
        pending, self._pending = self._pending, []
        texts, self._texts = self._texts, []
        drawn = tuple(texts) if any(texts) else None
        message = ("write", self._id, self._arena.id, tuple(pending), drawn)
        self._child.request(self, message, frames=len(pending))

    def _send_private(self, image: Image, text: str | None = None) -> None:
        # A frame outside the arena (larger than the whole budget): its own memfd, once.
        if self._pending:
            self._announce()
        fd = os.memfd_create("recorder-frame", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, image.nbytes)
            with mmap.mmap(fd, image.nbytes) as memory:
                view = np.frombuffer(memory, np.uint8).reshape(image.shape)
                np.copyto(view, image)
                del view
            aid = next(_private_ids)
            child = self._child
            child.request(self, ("arena", aid), [fd])
            texts = None if text is None else (text,)
            child.request(self, ("write", self._id, aid, (0,), texts), frames=1)
            child.request(self, ("forget", aid))
        finally:
            os.close(fd)

    def write(self, image: Image, text: str | None = None) -> None:
        """Have the child encode *image*, a frame in the arena (where it reads it), with
        *text* drawn onto a copy of it (see :meth:`PyAVEncoder.write`)."""
        child = self._child
        with child.lock:
            while self.error is None and self._frames - self.frames_done >= AHEAD:
                if self._pending:
                    self._announce()  # the child cannot finish frames it was not told of
                else:
                    child.read_reply()
            error = self.error
            if error is None:
                offset = self._arena.offset(image) if self._arena.fd is not None else None
                try:
                    if offset is None or image.nbytes != self._nbytes:
                        self._send_private(image, text)
                    else:
                        self._pending.append(offset)
                        self._texts.append(text)
                        if len(self._pending) >= BATCH:
                            self._announce()
                except EncoderProcessError as e:
                    error = e
                else:
                    self._frames += 1
        if error is not None:
            child.settle()
            raise error

    def retune(self, codec: Codec, at_once: bool = False) -> None:
        """Have the child change the video's settings at its next keyframe, or at once
        (:meth:`PyAVEncoder.retune`), after the frames written so far."""
        child = self._child
        with child.lock:
            if self.error is None:
                with contextlib.suppress(EncoderProcessError):  # write() raises it next
                    if self._pending:
                        self._announce()
                    child.request(self, ("tune", self._id, codec, at_once))

    def released(self) -> int:
        """How many of the frames written the child is done with (frames in order)."""
        child = self._child
        if self._frames > self.frames_done:
            with child.lock:
                if self._pending and self.error is None:
                    with contextlib.suppress(EncoderProcessError):
                        self._announce()  # the batch is over: let the child go on meanwhile
                while child.unanswered and child.read_reply(block=False):
                    pass
        return self.frames_done

    def drain(self) -> None:
        """Wait until the child no longer reads any frame written (errors are kept)."""
        child = self._child
        with child.lock:
            if self._pending and self.error is None:
                with contextlib.suppress(EncoderProcessError):
                    self._announce()
            while self.answered < self.sent and child.dead is None:
                child.read_reply()

    def close(self) -> None:
        """Have the child finish the file; returns once it is complete (or raises its error)."""
        self._finish("close")
        if self.error is not None:
            self._child.settle()
            raise self.error

    def abort(self) -> None:
        """Have the child drop the video without finishing it."""
        self._finish("abort")

    def _finish(self, kind: str) -> None:
        child = self._child
        with child.lock:
            try:
                if child.dead is None:
                    with contextlib.suppress(EncoderProcessError):
                        if kind == "close" and self._pending and self.error is None:
                            self._announce()
                        child.request(self, (kind, self._id))
                while self.answered < self.sent and child.dead is None:
                    child.read_reply()
            finally:
                child.videos.pop(self._id, None)


class EncoderProcesses:
    """The encoder factory of one Recorder: up to *size* encoder processes, started lazily.

    A new video goes to the process with the fewest open videos, a new process while fewer
    than *size* run and all have one. A process that died is replaced at the next video. When
    no encoder process can be started at all, the videos are encoded in the worker threads
    (``PyAVEncoder``), with one warning: they are saved either way.
    """

    def __init__(self, size: int, nice: int, arena: Arena) -> None:
        self._size = size
        self._nice = nice
        self._arena = arena
        self._lock = threading.Lock()
        self._children: list[_Child] = []
        self._closed = False
        # Set by close() before it takes the lock, which a worker starting a process holds.
        self._stopping = threading.Event()
        self.fallback: BaseException | None = None  # why videos are encoded in threads
        self._failed_starts = 0  # in a row: a process killed while starting is not the rule

    def __call__(self, spec: VideoSpec) -> Encoder:
        with self._lock:
            if self._closed:
                raise RuntimeError("the recorder's encoder processes were stopped")
            if self.fallback is not None:
                return PyAVEncoder(spec)
            self._children = kept(self._children, lambda c: c.dead is None or c.videos)
            live = kept(self._children, lambda c: c.dead is None and c.proc.poll() is None)
            child = min(live, key=lambda c: len(c.videos), default=None)
            if child is None or (child.videos and len(self._children) < self._size):
                try:
                    child = _take_idle(self._nice) or _Child(self._nice, self._stopping)
                except (OSError, subprocess.SubprocessError, EncoderProcessError) as e:
                    if child is None:
                        self._failed_starts += 1
                        if self._failed_starts >= MAX_FAILED_STARTS:
                            self.fallback = e
                        logger.warning(
                            "could not start an encoder process (%s); %s",
                            e,
                            "encoding in the worker threads from now on"
                            if self.fallback is not None
                            else "this video is encoded in its worker thread",
                        )
                        return PyAVEncoder(spec)
                    # else: share a running one rather than give up on it
                else:
                    self._failed_starts = 0
                    self._children.append(child)
        return ProcessEncoder(child, spec, self._arena)

    def pids(self) -> list[int]:
        """Process ids of this recorder's encoder processes running now (for tests)."""
        with self._lock:
            return [c.proc.pid for c in kept(self._children, lambda c: c.dead is None)]

    def close(
        self, timeout: float = 10.0, *, hung: bool = False, until: float | None = None
    ) -> bool:
        """Give idle processes back for the next recorder, having them unmap its arena; stop
        the others. Returns whether a busy process was killed for a hung worker (which then
        needs a moment to see it).

        A process still busy (its worker died) is asked to exit and killed after *timeout*
        seconds; with *hung* (close() gave up on a worker stuck waiting for one), killed at
        once, which frees that worker. An idle process has :data:`IDLE_ANSWER_SECONDS` to
        answer, or until *until* (``time.monotonic()``: close()'s deadline) if sooner, but
        a tenth of a second at least (it answers at once); one that does not is killed.
        """
        self._stopping.set()  # a process being started is given up
        with self._lock:
            self._closed = True
            children, self._children = self._children, []
        killed = False
        for child in children:
            idle = child.dead is None and not child.videos and not child.unanswered
            patience = IDLE_ANSWER_SECONDS
            if until is not None:
                patience = min(patience, max(0.1, until - time.monotonic()))
            if idle and child.forget(self._arena, patience):
                _give_back(child)
            elif hung or idle:  # idle: it did not answer
                child.kill("it is not answering")
                killed = killed or not idle
            else:
                child.stop(timeout)
        return killed


# Encoder processes of closed recorders, kept for the next one (starting one takes ~0.2 s);
# stopped at exit, and they exit by themselves when this process does (their socket closes).
_IDLE_MAX = 2
_idle: list[_Child] = []
_idle_lock = threading.Lock()
_every_child: weakref.WeakSet[_Child] = weakref.WeakSet()


def _take_idle(nice: int) -> _Child | None:
    with _idle_lock:
        for i, child in enumerate(_idle):
            if child.nice == nice and child.proc.poll() is None:
                return _idle.pop(i)
    return None


def _give_back(child: _Child) -> None:
    with _idle_lock:
        if len(_idle) < _IDLE_MAX and child.proc.poll() is None:
            _idle.append(child)
            return
    child.stop(IDLE_ANSWER_SECONDS)


def _stop_idle() -> None:
    with _idle_lock:
        children = list(_idle)
        _idle.clear()
    for child in children:
        child.stop(IDLE_ANSWER_SECONDS)


def _forget_all_in_child() -> None:
    # A forked copy of this process must not talk to the parent's encoder processes, nor keep
    # their sockets open (they exit when the parent's end closes).
    global _idle_lock
    _idle_lock = threading.Lock()
    _idle.clear()
    for child in list(_every_child):
        child.lock = threading.Lock()
        child.dead = EncoderProcessError("encoder processes do not survive fork()")
        with contextlib.suppress(OSError):
            child.sock.close()


atexit.register(_stop_idle)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_all_in_child)
