"""The encoder process: runs :class:`PyAVEncoder` for the videos a recorder sends it.

Started by :mod:`recorder._encode.process` as ``python -c ...``; see there for the protocol. It
ignores SIGINT, SIGTERM and SIGHUP (sent to the whole process group by a terminal, timeout,
systemd, Slurm or a Jupyter kernel; the recorder decides what happens to its videos) and exits
when asked, aborting any video still open, or when the
recorder's end of the socket closes (the training process died): then it finishes the fragment
file of each open video and leaves it for ``recorder recover``.
"""

from __future__ import annotations

import contextlib
import importlib
import mmap
import os
import pickle
import socket
import traceback
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from recorder._base.codec import VideoSpec
from recorder._encode.encoder import PyAVEncoder
from recorder._encode.health import Seen
from recorder._encode.process import MAX_MESSAGE

#: A test hook (docs/design.md): ``module:name`` of the :class:`PyAVEncoder` subclass (or
#: factory) this process uses instead of PyAVEncoder, read once at start; the fault tests set
#: it to inject errors here.
ENCODER_HOOK = "RECORDER_TEST_ENCODER"

EncoderMaker = Callable[[VideoSpec], PyAVEncoder]


def _encoder_maker() -> EncoderMaker:
    hook = os.environ.get(ENCODER_HOOK)
    if not hook:
        return PyAVEncoder
    module, _, name = hook.partition(":")
    maker: EncoderMaker = getattr(importlib.import_module(module), name)
    return maker


class _Video:
    def __init__(self, spec: VideoSpec, file_fd: int | None, make: EncoderMaker) -> None:
        self.file_fd = file_fd
        self.shape = spec.frame_format.shape
        self.nbytes = spec.frame_format.nbytes
        # The parent's descriptor number means nothing here: this process's own copy, or none.
        self.encoder: PyAVEncoder | None = make(replace(spec, fd=file_fd))

    def write(
        self, arena: _Arena, offsets: tuple[int, ...], texts: tuple[str | None, ...] | None
    ) -> None:
        """Encode the frames at *offsets* in *arena*, with their overlay *texts* (if any).

        A function of its own: no view of the arena outlives it (a local of the serving loop
        would, and a mapped view keeps ``forget`` from unmapping the arena).
        """
        assert self.encoder is not None
        memory, shape, nbytes, write = arena.memory, self.shape, self.nbytes, self.encoder.write
        if texts is None:
            for offset in offsets:
                write(memory[offset : offset + nbytes].reshape(shape))
        else:
            for offset, text in zip(offsets, texts, strict=True):
                write(memory[offset : offset + nbytes].reshape(shape), text)

    def release(self, finish: bool, salvage: bool = False) -> Seen | None:
        """Finish, salvage or abort the video; what its frames showed, once finished."""
        seen = None
        try:
            if self.encoder is not None:
                encoder, self.encoder = self.encoder, None
                if finish:
                    try:
                        encoder.close()
                    except BaseException:
                        # As a worker thread does: a failed close still releases the encoder.
                        with contextlib.suppress(Exception):
                            encoder.abort()
                        raise
                    seen = encoder.seen
                elif salvage:
                    encoder.salvage()
                else:
                    encoder.abort()
        finally:
            if self.file_fd is not None:
                os.close(self.file_fd)
                self.file_fd = None
        return seen


class _Arena:
    """The parent's frame memory, mapped here."""

    def __init__(self, fd: int) -> None:
        try:
            self.map = mmap.mmap(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)
        self.memory: np.ndarray[Any, np.dtype[np.uint8]] = np.frombuffer(self.map, np.uint8)

    def close(self) -> None:
        self.memory = np.empty(0, np.uint8)
        with contextlib.suppress(BufferError):
            self.map.close()


def _error_reply(vid: int, error: BaseException) -> tuple[str, int, bytes]:
    """The reply carrying *error*: itself if it pickles, else a RuntimeError naming it."""
    where = f"in the encoder process (pid {os.getpid()}):\n"
    trace = "".join(traceback.format_exception(error)).rstrip()
    error.add_note(where + trace)
    error.__traceback__ = None
    try:
        data = pickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(data)
    except Exception:
        data = b""
    if not data or len(data) > MAX_MESSAGE // 2:  # the rest of the reply fits around it
        limit = MAX_MESSAGE // 8
        plain = RuntimeError(f"{type(error).__qualname__}: {str(error)[:limit]}")
        plain.add_note(where + trace[-limit:])
        data = pickle.dumps(plain, protocol=pickle.HIGHEST_PROTOCOL)
    return ("err", vid, data)


def main(fd: int, nice: int) -> None:
    """Serve the recorder at the other end of socket *fd* until told to exit, at *nice*."""
    with contextlib.suppress(OSError, AttributeError):
        if os.getpriority(os.PRIO_PROCESS, 0) < nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
    sock = socket.socket(fileno=fd)
    videos: dict[int, _Video] = {}
    arenas: dict[int, _Arena] = {}
    orphaned = True  # until told to exit: the recorder died, its videos are left to recover
    make = _encoder_maker()
    try:
        sock.send(pickle.dumps(("ready", 0, None)))  # PyAV is imported: videos can come
    except ConnectionError:
        return  # the recorder's process died while this one started: nothing to do
    try:
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, 2)
            except ConnectionError:
                return
            if not data:
                return
            message: tuple[Any, ...] = pickle.loads(data)
            kind = message[0]
            if kind == "exit":
                orphaned = False
                return
            vid = message[1]
            reply: tuple[str, int, Any] = ("ok", vid, None)
            try:
                if kind == "write":
                    video = videos.get(vid)
                    if video is None or video.encoder is None:
                        reply = ("skip", vid, None)
                    else:
                        video.write(arenas[message[2]], message[3], message[4])
                elif kind == "tune":
                    video = videos.get(vid)
                    if video is not None and video.encoder is not None:
                        video.encoder.retune(message[2], message[3])
                elif kind == "arena":
                    arenas[vid] = _Arena(fds[0])
                    reply = ("ok", 0, None)
                elif kind == "forget":
                    arena = arenas.pop(vid, None)
                    if arena is not None:
                        arena.close()
                    reply = ("ok", 0, None)
                elif kind == "open":
                    spec = message[2]
                    try:
                        videos[vid] = _Video(spec, fds[0] if fds else None, make)
                    except BaseException:
                        if fds:
                            os.close(fds[0])
                        raise
                elif kind in ("close", "abort"):
                    video = videos.pop(vid, None)
                    if video is not None:
                        reply = ("ok", vid, video.release(finish=kind == "close"))
            except Exception as e:
                broken = videos.pop(vid, None) if kind not in ("arena", "forget") else None
                if broken is not None:
                    with contextlib.suppress(Exception):
                        broken.release(finish=False)
                reply = _error_reply(vid, e)
            try:
                sock.send(pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))
            except OSError:
                return  # the recorder is gone
    finally:
        for video in videos.values():
            with contextlib.suppress(Exception):
                video.release(finish=False, salvage=orphaned)
        sock.close()
