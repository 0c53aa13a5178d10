"""The recorder's worker threads: each takes a clip's frames from the queue and has them written."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import cast

from recorder._base.kept import kept
from recorder._encode.process import EncoderProcesses
from recorder._queue.clip import DROP, END, YIELD, Clip, Item, Work
from recorder._queue.queue import ClipQueue
from recorder._service.writer import ClipWriter

logger = logging.getLogger("recorder")

#: seconds a worker still has after close()'s deadline (or a Ctrl-C) to leave the frame it is
#: encoding, before its encoder process is killed; and to leave once it is.
GRACE_SECONDS = 1.0


class Workers:
    """The encoder threads (and the arena's prefault thread) of one Recorder."""

    def __init__(self, queue: ClipQueue, writer: ClipWriter, count: int, nice: int) -> None:
        self.queue = queue  # given by the Recorder: where the work comes from
        self.writer = writer
        #: how a worker finishes a clip whose frames are all written (a seam for tests).
        self.finish: Callable[[Clip], None] = writer.finish
        self._nice = nice
        self._alive = count
        self._alive_lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._work, name=f"recorder-worker-{i}") for i in range(count)
        ]
        if queue.memory.prefaulting:
            self.threads.append(threading.Thread(target=self._prefault, name="recorder-prefault"))

    def start(self) -> None:
        """Start the threads."""
        for thread in self.threads:
            thread.start()

    def stop(self, deadline: float | None, processes: EncoderProcesses | None) -> None:
        """Let the threads exit once nothing is ready, and join them (bounded after *deadline*).

        Without a deadline, waits for the threads as long as they work, unless interrupted
        (Ctrl-C). After the deadline, or interrupted, a worker stuck waiting for its encoder
        process is freed by killing that process. Frees the arena once every thread (and so
        every encoder process) let go of it.
        """
        self.queue.stop_workers()
        # A worker stuck inside one frame's encode gets a short grace after a timeout.
        until = None if deadline is None else deadline + GRACE_SECONDS
        try:
            _join(self.threads, until)
        finally:
            hung = any(t.is_alive() for t in self.threads)
            if processes is not None and processes.close(hung=hung, until=until):
                # A worker waiting for a process killed now leaves; one stuck elsewhere (a slow
                # on_saved) had its grace already.
                _join(self.threads, time.monotonic() + GRACE_SECONDS)
            stuck = [t.name for t in kept(self.threads, threading.Thread.is_alive)]
            if stuck:
                logger.warning("close(): worker threads still busy: %s", ", ".join(stuck))
            else:
                self.queue.close_arena()

    def _prefault(self) -> None:
        lower_thread_priority(self._nice)
        self.queue.prefault()

    def _work(self) -> None:
        lower_thread_priority(self._nice)
        worker = Worker(self.queue, self.writer, self)
        try:
            while worker.step():
                pass
        except BaseException as e:  # a bug of ours: never leave flush()/close() hanging
            logger.critical("a recorder worker thread died", exc_info=True)
            with self._alive_lock:
                self._alive -= 1
                alive = self._alive
            worker.died(e, alive)


class Worker:
    """One worker's loop, a step at a time: the clip it holds, what it took, what to release."""

    def __init__(self, queue: ClipQueue, writer: ClipWriter, workers: Workers) -> None:
        self.queue = queue
        self.writer = writer
        self._workers = workers  # for its finish seam
        self.current: Clip | None = None
        self.done: list[Item] = []  # frames of current to release: encoded, or left out
        self.written = 0  # ... of which encoded
        self.batch: list[Work] = []  # taken from the queue, not yet accounted for

    def step(self) -> bool:
        """Take the next work and do it (waits for it); False when the worker should exit."""
        writer, current = self.writer, self.current
        got = self.queue.take(
            current, self.done, self.written, holding=current is not None and bool(current.held)
        )
        if got is None:
            return False
        current, batch = got
        self.current, self.batch = current, batch
        self.done, self.written = [], 0
        first = batch[0]
        if first is YIELD:
            try:
                self.done = writer.drain(current)
            except BaseException as e:
                writer.fail(current, e)
                self.current = None
            else:
                self.written = len(self.done)
        elif first is END:
            self._workers.finish(current)
            self.current = None
        elif first is DROP:
            writer.discard(current)
            self.current = None
        else:
            try:
                self.done, self.written = writer.write(current, cast(list[Item], batch))
            except BaseException as e:
                writer.fail(current, e, batch)
                self.current = None
                # The error is kept (a handle, stats()) with its traceback, which holds this
                # frame: its locals must not keep the frames' memory (the arena) alive.
                del got, batch, first
        self.batch = []
        return True

    def died(self, error: BaseException, alive: int) -> None:
        """This worker's thread dies of *error* (*alive* workers are left): fail its clips."""
        current = self.current
        for clip in self.queue.worker_exited(current, error, alive):
            held = self.batch if clip is current else ()
            died = RuntimeError("a recorder worker thread died")
            died.__cause__ = error  # the handle shows the real bug
            self.writer.fail(clip, died, held)


def _join(threads: list[threading.Thread], deadline: float | None) -> None:
    """Join *threads*, all by *deadline* (``time.monotonic()``), or without a limit."""
    for thread in threads:
        if thread.ident is None:
            continue  # never started (a Ctrl-C in Recorder())
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))


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
