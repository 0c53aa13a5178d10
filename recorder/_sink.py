"""Delivering finished videos to a sink (another process or machine) instead of a local rename."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

logger = logging.getLogger("recorder")


class SinkSession(Protocol):
    """One producer's connection to a sink (made by :meth:`Sink.open` in the producer)."""

    producer: str

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
    ``recorder-delivery`` thread, so that user callbacks never run on those.
    """

    def __init__(self, session: SinkSession) -> None:
        self.session = session
        self._lock = threading.Lock()
        self._pending: set[Delivery] = set()
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
            self._pending.add(delivery)
        try:
            future = self.session.send(name, data, record)
        except BaseException:
            with self._lock:
                self._pending.discard(delivery)
            raise
        delivery.future = future
        future.add_done_callback(lambda _f: self._answers.put(delivery))

    def _run(self) -> None:
        while True:
            delivery = self._answers.get()
            if delivery is None:
                return
            with self._lock:
                if delivery not in self._pending:
                    continue  # already failed by stop()
                self._pending.discard(delivery)
            self._answer(delivery)

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
        for delivery in left:
            if delivery.future is not None:
                delivery.future.cancel()
            delivery.done(delivery, None, TimeoutError(reason))
        self._answers.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join()
        close = getattr(self.session, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()
