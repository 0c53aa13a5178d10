"""Delivering finished videos to a sink (another process or machine) instead of a local rename."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

logger = logging.getLogger("recorder")


class SinkSession(Protocol):
    """One producer's connection to a sink (made by :meth:`Sink.open` in the producer)."""

    producer: str
    #: seconds the sink may leave every delivery waiting unanswered: then they fail with
    #: TimeoutError, so that nothing (close() included) waits for it for ever. None: no limit.
    timeout: float | None

    def send(
        self, name: str, data: bytes, record: dict[str, Any]
    ) -> concurrent.futures.Future[str]:
        """Send one finished video; the future resolves to its path once it is on the sink's
        disk, or fails with the sink's error."""
        ...


@runtime_checkable
class Sink(Protocol):
    """Where a Recorder given ``sink=`` delivers its finished videos (see recorder.ray)."""

    def open(self) -> SinkSession:
        """Connect from the producer's process (called once by the Recorder)."""
        ...


@dataclass(eq=False)
class Delivery:
    """A finished video on its way to the sink: *clip* and what it needs once answered."""

    clip: Any
    info: Any
    size: int
    done: Callable[[Delivery, str | None, BaseException | None], None]
    future: concurrent.futures.Future[str] | None = None


def read_all(fd: int) -> bytes:
    """The whole file behind *fd*, from its start."""
    size = os.fstat(fd).st_size
    chunks = []
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(size - offset, 1 << 24), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


class Deliveries:
    """The videos a Recorder has handed to its sink and not yet seen acknowledged.

    The sink's answers arrive on threads of the transport (Ray's); they are handled on the
    ``recorder-delivery`` thread, so that user callbacks never run on those. That thread also
    fails the deliveries waiting once the sink has answered none for ``session.timeout``.
    """

    def __init__(self, session: SinkSession) -> None:
        self.session = session
        self._patience = session.timeout
        self._lock = threading.Lock()
        self._pending: set[Delivery] = set()
        self._heard = time.monotonic()  # the sink's last answer, or when deliveries began waiting
        self._answers: queue.SimpleQueue[Delivery | None] = queue.SimpleQueue()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="recorder-delivery", daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def send(self, delivery: Delivery, name: str, data: bytes, record: dict[str, Any]) -> None:
        """Hand *data* to the sink; ``delivery.done`` is called on the delivery thread."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("the recorder's sink connection is closed")
            if not self._pending:
                self._heard = time.monotonic()  # the sink's time to answer starts now
            self._pending.add(delivery)
        try:
            future = self.session.send(name, data, record)
            if not isinstance(future, concurrent.futures.Future):
                raise TypeError(
                    "a sink's send() must return a concurrent.futures.Future of the path, got "
                    f"{type(future).__name__}"
                )
            delivery.future = future
            future.add_done_callback(lambda _f: self._answers.put(delivery))
        except BaseException:
            with self._lock:
                self._pending.discard(delivery)
            raise

    def _run(self) -> None:
        while True:
            try:
                delivery = self._answers.get(timeout=self._patience_left())
            except queue.Empty:
                self._expire()
                continue
            if delivery is None:
                return
            with self._lock:
                self._heard = time.monotonic()
                if delivery not in self._pending:
                    continue  # already failed by stop() or _expire()
                self._pending.discard(delivery)
            self._answer(delivery)

    def _patience_left(self) -> float | None:
        if self._patience is None:
            return None
        with self._lock:
            if not self._pending:
                return self._patience  # send() restarts the clock: check again by then
            return max(0.0, self._heard + self._patience - time.monotonic())

    def _expire(self) -> None:
        """Fail the deliveries waiting if the sink has answered none for its timeout."""
        assert self._patience is not None
        with self._lock:
            if not self._pending or time.monotonic() - self._heard < self._patience:
                return
            left = list(self._pending)
            self._pending.clear()
        _fail(left, f"the recorder's sink answered nothing for {self._patience:g} s")

    @staticmethod
    def _answer(delivery: Delivery) -> None:
        future = delivery.future
        assert future is not None
        try:
            path = future.result(timeout=0)
        except BaseException as e:
            delivery.done(delivery, None, e)
        else:
            delivery.done(delivery, path, None)

    def stop(self, reason: str) -> None:
        """Fail what the sink has not answered (close() gave up on it) and end the thread."""
        with self._lock:
            self._stopped = True
            left = list(self._pending)
            self._pending.clear()
        _fail(left, reason)
        self._answers.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join()
        close = getattr(self.session, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()


def _fail(deliveries: list[Delivery], reason: str) -> None:
    """Fail *deliveries* (no longer waited for) with ``TimeoutError(reason)``."""
    for delivery in deliveries:
        if delivery.future is not None:
            delivery.future.cancel()
        delivery.done(delivery, None, TimeoutError(reason))
