"""The tests' fake and faulty encoders, in one place.

:class:`FakeEncoders` makes encoders that note the frames they are given and wait, fail or also
encode for real as a test asks; :class:`Faults` makes real PyAV encoders that fail or pause,
alike in worker threads and in encoder processes; :class:`HeldWrites` holds the writes to the
encoder processes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from helpers import FRAME, always

from recorder import VideoSpec
from recorder._testing import ProcessEncoder, PyAVEncoder


def video_name(spec: VideoSpec) -> str:
    """The name of the video *spec* is for (its temporary file is ``.{name}.{random}.rec-tmp``)."""
    return os.path.basename(spec.path)[1:].rsplit(".", 2)[0]


@dataclass
class FakeEncoder:
    """Notes the first value of each frame it is given; waits, fails or encodes as its owner
    says."""

    spec: VideoSpec
    owner: FakeEncoders
    faulty: bool = True  # fails as the owner says (fail_at, error)
    frames: list[int] = field(default_factory=list)
    closed: bool = False
    aborted: bool = False
    thread: str = field(default_factory=lambda: threading.current_thread().name)  # made in
    # (frames written, preset) of each retune() call: adaptive quality's changes asked for
    retunes: list[tuple[int, str | None]] = field(default_factory=list)
    name: str = field(init=False)  # the video's
    real: PyAVEncoder | None = field(init=False)

    def __post_init__(self) -> None:
        self.name = video_name(self.spec)
        self.real = PyAVEncoder(self.spec) if self.owner.real else None

    def write(self, image: np.ndarray) -> None:
        owner = self.owner
        owner.started.set()
        if not owner.gate.wait(timeout=5):
            raise TimeoutError("test gate never opened")
        if self.faulty and len(self.frames) == owner.fail_at:
            raise owner.error
        if self.name in owner.fail_next:
            owner.fail_next.discard(self.name)
            raise owner.error
        value = int(image.flat[0])
        if owner.uniform and not (image == value).all():
            value = -1  # a frame overwritten while it was queued
        if self.real is not None:
            self.real.write(image)
        self.frames.append(value)
        with owner.progress:
            owner.writes.append((self.name, threading.current_thread().name))
            owner.progress.notify_all()

    def retune(self, codec: Any, at_once: bool = False) -> None:
        self.retunes.append((len(self.frames), codec.preset))
        if self.real is not None:
            self.real.retune(codec, at_once)

    def close(self) -> None:
        try:
            if self.real is None:
                Path(self.spec.path).write_bytes(b"fake video")
            else:
                self.real.close()
            self.closed = True
        finally:
            self.owner.count_open(-1)

    def abort(self) -> None:
        owner = self.owner
        owner.aborting.set()
        if not owner.abort_gate.wait(timeout=5):
            raise TimeoutError("test gate never opened")
        if self.real is not None:
            self.real.abort()
        self.aborted = True
        owner.count_open(-1)


@dataclass
class FakeEncoders:
    """An encoder factory for ``Recorder(encoder_factory=...)`` whose encoders the test controls.

    Each write waits for *gate* (``started`` is set at the first) and fails with *error* at
    frame *fail_at* of the videos *fail_when* picks, or at once for a video named in
    *fail_next* (once); abort() waits for *abort_gate* (``aborting`` is set). With *real*, the
    frames are encoded with PyAV too (the files decode); with *uniform*, a frame that is not
    all of one value is noted as -1.
    """

    gate: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    fail_at: int | None = None
    error: BaseException = field(default_factory=lambda: OSError(28, "No space left on device"))
    made: list[FakeEncoder] = field(default_factory=list)
    fail_when: Callable[[VideoSpec], bool] = lambda spec: True
    progress: threading.Condition = field(default_factory=threading.Condition)  # each write
    fail_next: set[str] = field(default_factory=set)
    abort_gate: threading.Event = field(default_factory=threading.Event)
    aborting: threading.Event = field(default_factory=threading.Event)
    real: bool = False
    uniform: bool = False
    writes: list[tuple[str, str]] = field(default_factory=list)  # (video, thread) of each frame
    open: int = 0  # encoders made and not yet closed or aborted
    most_open: int = 0  # ... at once

    def __post_init__(self) -> None:
        self.gate.set()
        self.abort_gate.set()

    def __deepcopy__(self, memo: dict[int, Any]) -> FakeEncoders:
        """Itself: the wrappers deep-copy their arguments (as gymnasium's do), and the test
        watches the encoders this one makes."""
        return self

    def __call__(self, spec: VideoSpec) -> Any:
        enc = FakeEncoder(spec, self, faulty=self.fail_when(spec))
        self.made.append(enc)
        self.count_open(1)
        return enc

    def count_open(self, change: int) -> None:
        with self.progress:
            self.open += change
            self.most_open = max(self.most_open, self.open)

    def wait_for_frames(self, n: int, timeout: float = 10) -> bool:
        """Whether the encoders made so far were given *n* frames within *timeout* seconds."""
        with self.progress:
            return self.progress.wait_for(
                lambda: sum(len(e.frames) for e in self.made) >= n, timeout
            )

    def by_name(self, name: str) -> FakeEncoder:
        return next(e for e in self.made if e.name == name)

    def plan(self) -> dict[str, list[int]]:
        """{video name: the frames its encoder got}."""
        return {e.name: e.frames for e in self.made}


def gated(**kwargs: Any) -> FakeEncoders:
    """Fake encoders whose writes wait until the test sets ``gate``."""
    fake = FakeEncoders(**kwargs)
    fake.gate.clear()
    return fake


def budget(frames: int, fake: FakeEncoders, on_full: str = "block") -> dict[str, Any]:
    """Recorder keywords: record every episode with *fake*, room for *frames* flat() frames."""
    return {
        "episode_trigger": always,
        "max_queue_bytes": frames * FRAME,
        "on_full": on_full,
        "encoder_factory": fake,
    }


class HeldWrites:
    """Holds ProcessEncoder.write (patched with *monkeypatch*) from its *at*-th call on, until
    the test sets ``go``; ``reached`` is set when the *at*-th call comes."""

    def __init__(self, monkeypatch: Any, at: int = 1) -> None:
        self.reached, self.go = threading.Event(), threading.Event()
        self.calls = 0
        write = ProcessEncoder.write

        def held(encoder: ProcessEncoder, image: Any) -> None:
            self.calls += 1
            if self.calls >= at:
                self.reached.set()
                if not self.go.wait(60):
                    raise TimeoutError("the test never let the write go")
            write(encoder, image)

        monkeypatch.setattr(ProcessEncoder, "write", held)


# -- faults injected into real encoders, in worker threads or in encoder processes ------------

#: Where :func:`child_faults` finds its :class:`Faults` (JSON) in an encoder process.
FAULTS_ENV = "RECORDER_TEST_FAULTS"


@dataclass
class Faults:
    """An encoder factory for the fault tests: real PyAV encoders with injected faults.

    The video *video* (every video when None) raises ``OSError(errno)`` naming its file at its
    frame *fail_at*, or when it opens (*at_open*), or in close() (*at_close*). The video
    *pause* waits at its frame *pause_at* until the :class:`Gate` at *gate* opens. Each
    encoder notes in the file *log* what happens to it, and where (:meth:`events`).

    The same faults run in the worker threads (``encoder_factory=faults``) or in encoder
    processes, which make them from RECORDER_TEST_FAULTS through their test hook
    (``RECORDER_TEST_ENCODER=fakes:child_faults``).
    """

    log: str
    video: str | None = None
    fail_at: int | None = None
    errno: int = errno.ENOSPC
    at_open: bool = False
    at_close: bool = False
    pause: str | None = None
    pause_at: int = 0
    gate: str | None = None

    def __call__(self, spec: VideoSpec) -> FaultyEncoder:
        return FaultyEncoder(spec, self)

    def error(self, spec: VideoSpec) -> OSError:
        """The error to raise for *spec* (an OSError subclass by errno, as the system's)."""
        return OSError(self.errno, f"{os.strerror(self.errno)} ({os.path.basename(spec.path)})")

    def note(self, event: str, spec: VideoSpec) -> None:
        with open(self.log, "a") as f:  # one short append: whole lines from any process
            f.write(f"{event} {video_name(spec)} {os.getpid()}\n")

    def events(self, event: str) -> list[tuple[str, int]]:
        """(video name, process id) of each *event* ("made", "aborted"), in order."""
        lines = Path(self.log).read_text().splitlines() if os.path.exists(self.log) else []
        return [(name, int(pid)) for kind, name, pid in map(str.split, lines) if kind == event]


def child_faults(spec: VideoSpec) -> FaultyEncoder:
    """The encoder processes' test hook in the fault tests: the Faults of RECORDER_TEST_FAULTS."""
    return Faults(**json.loads(os.environ[FAULTS_ENV]))(spec)


class FaultyEncoder(PyAVEncoder):
    """A real PyAV encoder that fails or pauses as its :class:`Faults` say."""

    def __init__(self, spec: VideoSpec, faults: Faults) -> None:
        self.faults = faults
        self.spec = spec
        self.faulty = faults.video in (None, video_name(spec))
        self.paused = faults.pause == video_name(spec)
        if self.faulty and faults.at_open:
            assert os.path.exists(spec.path)  # the temporary file exists by then: it is removed
            raise faults.error(spec)
        super().__init__(spec)
        self.written = 0
        faults.note("made", spec)

    def write(self, image: Any) -> None:
        if self.paused and self.written == self.faults.pause_at:
            assert self.faults.gate is not None
            wait_at_gate(self.faults.gate)
        if self.faulty and self.written == self.faults.fail_at:
            raise self.faults.error(self.spec)
        super().write(image)
        self.written += 1

    def close(self) -> None:
        if self.faulty and self.faults.at_close:
            raise self.faults.error(self.spec)
        super().close()

    def abort(self) -> None:
        self.faults.note("aborted", self.spec)
        super().abort()


class Gate:
    """Where a paused :class:`FaultyEncoder` (or any :func:`wait_at_gate`), in a thread or
    another process, waits until the test opens it: an abstract Unix socket (Linux)."""

    def __init__(self) -> None:
        self.address = f"\0recorder-test-gate-{uuid.uuid4().hex}"
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.address)
        self._server.listen()
        self._held: list[socket.socket] = []

    def reached(self, timeout: float = 30) -> bool:
        """Whether an encoder came to the gate within *timeout* seconds (it waits there)."""
        self._server.settimeout(timeout)
        try:
            connection, _ = self._server.accept()
        except TimeoutError:
            return False
        self._held.append(connection)
        return True

    def open(self) -> None:
        """Let the encoders waiting at the gate go on."""
        for connection in self._held:
            # One killed at the gate needs no word.
            with connection, contextlib.suppress(OSError):
                connection.sendall(b"go")
        self._held.clear()

    def __enter__(self) -> Gate:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.open()
        self._server.close()


def wait_at_gate(address: str, timeout: float = 30) -> None:
    """Wait at the :class:`Gate` at *address* until the test opens it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        connection.connect(address)
        if connection.recv(2) != b"go":
            raise TimeoutError("the test's gate closed without opening")
