"""The one door through which tests and benchmarks reach the package's insides.

Tests of internal units (the queue, the frame memory, encoder processes, the gallery's pieces)
import those units from here, and read or patch a Recorder's inner state through the functions
below, so that moving a module changes this file and no test. Not part of the public API.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from recorder import _async as async_module
from recorder import _child as child_module
from recorder import _cli as cli_module
from recorder import _cli_record as cli_record_module
from recorder import _default as default_module
from recorder import _encoder as encoder_module
from recorder import _live as live_module
from recorder import _process as process_module
from recorder import _queue as queue_module
from recorder import _recorder as recorder_module
from recorder import _writer as writer_module
from recorder._arena import ALIGN, Arena, arena_size
from recorder._child import ENCODER_HOOK
from recorder._child import _error_reply as error_reply
from recorder._clip import Clip, Item, State
from recorder._counters import MAX_ERRORS
from recorder._default import _close_default as close_default
from recorder._encoder import (
    FRAGMENT_SUFFIX,
    TMP_SUFFIX,
    Codec,
    EncoderFactory,
    PyAVEncoder,
    VideoSpec,
    keyframe_interval,
    remux,
)
from recorder._frames import as_image, format_of
from recorder._gallery import INDEX, build_gallery, scan
from recorder._keep import Keep, Ranking
from recorder._live import LiveFolder
from recorder._memory import MAX_SPARE_SHAPES, FrameMemory
from recorder._metadata import MANIFEST, append_manifest, read_manifest
from recorder._process import EncoderProcessError, EncoderProcesses, ProcessEncoder
from recorder._queue import QUANTUM, ClipQueue
from recorder._recover import RECOVER_SUFFIX
from recorder._results import ClipHandle
from recorder._serve import serve
from recorder._validate import MAX_PREFIX_BYTES, NAME_MAX
from recorder._worker import GRACE_SECONDS, Worker
from recorder._writer import ClipWriter

if TYPE_CHECKING:
    from recorder._async import AsyncRecorder
    from recorder._recorder import Recorder

__all__ = [
    "ALIGN",
    "ENCODER_HOOK",
    "FRAGMENT_SUFFIX",
    "GRACE_SECONDS",
    "INDEX",
    "MANIFEST",
    "MAX_ERRORS",
    "MAX_PREFIX_BYTES",
    "MAX_SPARE_SHAPES",
    "NAME_MAX",
    "QUANTUM",
    "RECOVER_SUFFIX",
    "TMP_SUFFIX",
    "Arena",
    "Clip",
    "ClipHandle",
    "ClipQueue",
    "ClipWriter",
    "Codec",
    "EncoderFactory",
    "EncoderProcessError",
    "EncoderProcesses",
    "FrameMemory",
    "Item",
    "Keep",
    "LiveFolder",
    "ProcessEncoder",
    "PyAVEncoder",
    "Ranking",
    "State",
    "VideoSpec",
    "Worker",
    "abandon",
    "append_manifest",
    "arena_size",
    "as_image",
    "async_module",
    "build_gallery",
    "child_module",
    "cli_module",
    "cli_record_module",
    "close_default",
    "count_budget_waits",
    "default_module",
    "default_options",
    "default_recorder",
    "encoder_module",
    "encoder_processes",
    "error_reply",
    "every_encoder_process",
    "finish_seam",
    "format_of",
    "give_back_arena_blocks",
    "idle_encoder_pids",
    "keyframe_interval",
    "live_module",
    "process_module",
    "queue_module",
    "queue_of",
    "read_manifest",
    "recorder_module",
    "remux",
    "scan",
    "serve",
    "set_finish_seam",
    "set_prefault",
    "stop_idle_encoders",
    "take_arena_blocks",
    "threads_of",
    "waiting_for_room",
    "writer_module",
]


def queue_of(rec: Recorder) -> ClipQueue:
    """The Recorder's queue."""
    return rec._queue


def threads_of(rec: Recorder) -> list[threading.Thread]:
    """The Recorder's own threads (workers, prefault)."""
    return rec._threads


def encoder_processes(rec: Recorder) -> EncoderProcesses | None:
    """The Recorder's encoder processes (None when it encodes in threads)."""
    return rec._processes


def idle_encoder_pids() -> list[int]:
    """The encoder processes kept idle for the next Recorder."""
    return [child.proc.pid for child in process_module._idle]


def every_encoder_process() -> list[Any]:
    """Every encoder process this process started and has not reaped."""
    return list(process_module._every_child)


def stop_idle_encoders() -> None:
    """Stop the idle encoder processes (a test's faults must not reach a later test)."""
    process_module._stop_idle()


def default_recorder() -> Recorder | None:
    """``save_video``'s process-wide Recorder, if one is open."""
    return default_module._default


def default_options() -> dict[str, Any]:
    """The settings ``save_video``'s Recorder is made with (patch them with monkeypatch)."""
    return default_module._options


def finish_seam(rec: Recorder) -> Callable[[Clip], None]:
    """How the Recorder's workers finish a clip whose frames are all written."""
    return rec._finish


def set_finish_seam(rec: Recorder, finish: Callable[[Clip], None]) -> None:
    """Replace it on a live Recorder (running workers use the new one): make a worker die."""
    rec._finish = finish


def abandon(rec: Recorder) -> None:
    """What a wrapper's ``__del__`` does to its private Recorder."""
    rec._abandon()


def waiting_for_room(rec: AsyncRecorder) -> int:
    """Tasks of an AsyncRecorder waiting for room in its budget."""
    return rec._waiting


def set_prefault(enabled: bool) -> None:
    """Whether Recorders made from now on run the prefault thread (a benchmark's switch)."""
    queue_module.PREFAULT = enabled


def count_budget_waits(rec: Recorder) -> list[float]:
    """[times, seconds] producers of *rec* waited for room in its budget from now on."""
    condition = rec._queue._not_full
    total = [0.0, 0.0]
    original = condition.wait

    def wait(timeout: float | None = None) -> bool:
        start = time.perf_counter()
        try:
            return bool(original(timeout))
        finally:
            total[0] += 1
            total[1] += time.perf_counter() - start

    condition.wait = wait  # type: ignore[method-assign]
    return total


def take_arena_blocks(rec: Recorder, shape: tuple[int, ...], count: int) -> list[Any]:
    """*count* blocks of *shape* (uint8) from the Recorder's frame memory, charged to its
    budget until :func:`give_back_arena_blocks` (a benchmark's copy into the same arena)."""
    queue = rec._queue
    with queue._lock:
        blocks = [queue.memory.alloc(shape) for _ in range(count)]
    if any(block is None for block in blocks):
        give_back_arena_blocks(rec, [block for block in blocks if block is not None])
        raise ValueError(f"{count} blocks of {shape} do not fit the budget")
    return blocks


def give_back_arena_blocks(rec: Recorder, blocks: list[Any]) -> None:
    """Give back blocks from :func:`take_arena_blocks`."""
    queue = rec._queue
    with queue._lock:
        for block in blocks:
            queue.memory.release(block, block.nbytes)
