"""The one door through which tests and benchmarks reach the package's insides.

Tests of internal units (the queue, the frame memory, encoder processes, the gallery's pieces)
import those units from here, and read or patch a Recorder's inner state through the functions
below, so that moving a module changes this file and no test. Not part of the public API.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from recorder._base.codec import LADDERS, Codec, EncoderFactory, VideoSpec
from recorder._base.frames import as_image, format_of
from recorder._base.info import MAX_INFO_BYTES, check_info
from recorder._base.results import ClipHandle
from recorder._base.validate import MAX_PREFIX_BYTES, NAME_MAX
from recorder._cli import doctor as doctor_module
from recorder._cli import main as cli_module
from recorder._cli import record as cli_record_module
from recorder._encode import child as child_module
from recorder._encode import encoder as encoder_module
from recorder._encode import health as health_module
from recorder._encode import overlay as overlay_module
from recorder._encode import process as process_module
from recorder._encode import sidecars as sidecars_module
from recorder._encode.child import ENCODER_HOOK
from recorder._encode.child import _error_reply as error_reply
from recorder._encode.encoder import (
    FRAGMENT_SUFFIX,
    TMP_SUFFIX,
    PyAVEncoder,
    keyframe_interval,
    remux,
)
from recorder._encode.health import (
    FROZEN_MIN,
    MAX_ROWS,
    MIN_ROWS,
    ROW_STEP,
    VERIFY_RUN,
    WHOLE_BYTES,
    Probe,
)
from recorder._encode.overlay import PLANES_FROM as overlay_planes_from
from recorder._encode.overlay import TextBand
from recorder._encode.overlay import font_size as overlay_font_size
from recorder._encode.process import (
    MAX_FAILED_STARTS,
    EncoderProcessError,
    EncoderProcesses,
    ProcessEncoder,
)
from recorder._encode.sidecars import MANIFEST, append_manifest, publishing, read_manifest
from recorder._folder import live as live_module
from recorder._folder import recover as recover_module
from recorder._folder.gallery import INDEX, build_gallery, scan
from recorder._folder.live import LiveFolder
from recorder._folder.recover import RECOVER_SUFFIX
from recorder._folder.serve import serve
from recorder._front import aio as async_module
from recorder._front import default as default_module
from recorder._front.default import _close_default as close_default
from recorder._queue import queue as queue_module
from recorder._queue.arena import ALIGN, Arena, arena_size
from recorder._queue.clip import Clip, Item, State
from recorder._queue.counters import MAX_ERRORS
from recorder._queue.memory import MAX_SPARE_SHAPES, FrameMemory
from recorder._queue.queue import QUANTUM, ClipQueue
from recorder._service import keep as keep_module
from recorder._service import service as recorder_module
from recorder._service import worker as worker_module
from recorder._service import writer as writer_module
from recorder._service.keep import MAX_PENDING, MAX_REMEMBERED, Keep, Keeper, Ranking
from recorder._service.presets import (
    FASTER,
    FASTEST_INTERPOLATION,
    RUSH,
    SLOWER,
    Adaptive,
    Pinned,
    next_rung,
)
from recorder._service.service import ClipService
from recorder._service.worker import GRACE_SECONDS, Worker
from recorder._service.writer import ClipWriter
from recorder.wrappers._info import step_info

if TYPE_CHECKING:
    from recorder._front.aio import AsyncRecorder
    from recorder._front.episode import Episode
    from recorder._front.recorder import Recorder

__all__ = [
    "ALIGN",
    "ENCODER_HOOK",
    "FASTER",
    "FASTEST_INTERPOLATION",
    "FRAGMENT_SUFFIX",
    "FROZEN_MIN",
    "GRACE_SECONDS",
    "INDEX",
    "LADDERS",
    "MANIFEST",
    "MAX_ERRORS",
    "MAX_FAILED_STARTS",
    "MAX_INFO_BYTES",
    "MAX_PENDING",
    "MAX_PREFIX_BYTES",
    "MAX_REMEMBERED",
    "MAX_ROWS",
    "MAX_SPARE_SHAPES",
    "MIN_ROWS",
    "NAME_MAX",
    "QUANTUM",
    "RECOVER_SUFFIX",
    "ROW_STEP",
    "RUSH",
    "SLOWER",
    "TMP_SUFFIX",
    "VERIFY_RUN",
    "WHOLE_BYTES",
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
    "Keeper",
    "LiveFolder",
    "Probe",
    "ProcessEncoder",
    "PyAVEncoder",
    "Ranking",
    "State",
    "VideoSpec",
    "Worker",
    "abandon",
    "adaptive_rungs",
    "append_manifest",
    "arena_of",
    "arena_released",
    "arena_size",
    "as_image",
    "async_module",
    "began",
    "build_gallery",
    "check_info",
    "child_module",
    "cli_module",
    "cli_record_module",
    "close_default",
    "count_budget_waits",
    "default_module",
    "default_options",
    "default_recorder",
    "doctor_module",
    "drop_episode",
    "encoder_module",
    "encoder_pids",
    "encoder_process_code",
    "encoder_processes",
    "error_reply",
    "every_encoder_process",
    "finish_seam",
    "folder_locked",
    "format_of",
    "free_blocks",
    "give_back_arena_blocks",
    "health_module",
    "idle_encoder_max",
    "idle_encoder_pids",
    "keep_module",
    "keeper_held",
    "keeper_remembered",
    "keyframe_interval",
    "live_cached",
    "live_module",
    "live_services",
    "merge_spares",
    "next_rung",
    "overlay_band",
    "overlay_font_size",
    "overlay_module",
    "overlay_planes_from",
    "patch_close_abandoned",
    "patch_private_send",
    "patch_wait_stoppable",
    "process_module",
    "process_of",
    "publishing",
    "quality_of",
    "queue_locked",
    "queue_module",
    "queue_of",
    "read_manifest",
    "recorder_module",
    "recorder_of",
    "recover_module",
    "releasing",
    "remux",
    "scan",
    "serve",
    "service_of",
    "set_finish_seam",
    "set_prefault",
    "spare_blocks",
    "step_info",
    "stop_idle_encoders",
    "take_arena_blocks",
    "threads_of",
    "waiting_for_room",
    "waiting_tasks",
    "watch_close_waiters",
    "worker_module",
    "wrapper_held",
    "writer_module",
]


def service_of(rec: Recorder | ClipService) -> ClipService:
    """The ClipService behind a Recorder (a ClipService is its own)."""
    return rec if isinstance(rec, ClipService) else rec._service


def queue_of(rec: Recorder | ClipService) -> ClipQueue:
    """The Recorder's queue."""
    return service_of(rec)._queue


def arena_released(rec: Recorder) -> bool:
    """Whether the Recorder's frame memory (its arena's mapping) was released."""
    return bool(queue_of(rec).memory.arena._map.closed)


def recorder_of(rec: AsyncRecorder) -> Recorder:
    """The Recorder behind an AsyncRecorder."""
    return rec._rec


def live_cached(live: LiveFolder) -> set[str]:
    """The files a live folder keeps probed."""
    return set(live._cache)


def wrapper_held(env: Any) -> int:
    """Handles and errors a wrapper keeps for its close() (a shared Recorder's videos)."""
    sink = env._sink
    return len(sink._pending) + len(sink._errors)


def live_services() -> set[ClipService]:
    """The services of the Recorders not yet closed (closed at exit)."""
    with recorder_module._live_lock:
        return set(recorder_module._live)


def threads_of(rec: Recorder) -> list[threading.Thread]:
    """The Recorder's own threads (workers, prefault)."""
    return service_of(rec)._threads


def encoder_processes(rec: Recorder) -> EncoderProcesses | None:
    """The Recorder's encoder processes (None when it encodes in threads)."""
    return service_of(rec)._processes


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
    return service_of(rec).finish


def set_finish_seam(rec: Recorder, finish: Callable[[Clip], None]) -> None:
    """Replace it on a live Recorder (running workers use the new one): make a worker die."""
    service_of(rec).finish = finish


def abandon(rec: Recorder) -> None:
    """What a wrapper's ``__del__`` does to its private Recorder."""
    service_of(rec).abandon()


def waiting_for_room(rec: AsyncRecorder) -> int:
    """Tasks of an AsyncRecorder waiting for room in its budget."""
    return rec._waiting


def watch_close_waiters(rec: AsyncRecorder) -> threading.Event:
    """An Event set when an aclose() call starts waiting for the one closing *rec*."""
    event = threading.Event()

    class Watched(list[Any]):
        def append(self, item: Any) -> None:
            super().append(item)
            event.set()

    assert rec._close_waiters == []
    rec._close_waiters = Watched()
    return event


def waiting_tasks(future: Any) -> tuple[int, int]:
    """(tasks awaiting a clip's *future*, done callbacks the future holds)."""
    with async_module._waiting_lock:
        tasks = len(async_module._waiting.get(future, ()))
    return tasks, len(future._done_callbacks)


def keeper_remembered(keeper: Keeper) -> tuple[int, int]:
    """Episodes a Keeper remembers: (deleted, unscored)."""
    return len(keeper._out), len(keeper._unscored)


def keeper_held(keeper: Keeper) -> tuple[int, int, int]:
    """What a Keeper holds per episode: (open episodes, episodes by seq, pending episodes)."""
    return len(keeper._open), len(keeper._by_seq), len(keeper._pending)


def set_prefault(enabled: bool) -> None:
    """Whether Recorders made from now on run the prefault thread (a benchmark's switch)."""
    queue_module.PREFAULT = enabled


def count_budget_waits(rec: Recorder) -> list[float]:
    """[times, seconds] producers of *rec* waited for room in its budget from now on."""
    condition = service_of(rec)._queue._not_full
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


def encoder_pids(rec: Recorder) -> list[int]:
    """The process ids of the Recorder's encoder processes ([] when it encodes in threads)."""
    processes = service_of(rec)._processes
    return [] if processes is None else processes.pids()


def idle_encoder_max() -> int:
    """How many idle encoder processes are kept for the next Recorder."""
    return process_module._IDLE_MAX


def encoder_process_code() -> str:
    """The code an encoder process runs (``python -c``)."""
    return process_module._CHILD_CODE


def process_of(encoder: ProcessEncoder) -> Any:
    """The encoder process *encoder* writes to (``proc``: its Popen, ``lock``: its lock)."""
    return encoder._child


def arena_of(encoder: ProcessEncoder) -> Arena:
    """The arena in which *encoder*'s encoder process reads the frames."""
    return encoder._arena


def patch_private_send(monkeypatch: Any, send: Callable[..., None]) -> Any:
    """Replace (with pytest's *monkeypatch*) how a ProcessEncoder sends a frame that is not in
    the arena (``send(encoder, image, text)``); returns the original."""
    original = ProcessEncoder._send_private
    monkeypatch.setattr(ProcessEncoder, "_send_private", send)
    return original


def folder_locked(folder: Any) -> tuple[bool, bool]:
    """Whether *folder*'s publish lock is held: (by a thread of this process, by an open file
    of the folder: what another process sees)."""
    lock = sidecars_module._folder_locks.get(os.path.abspath(folder))
    threads = lock is not None and not lock.acquire(blocking=False)
    if lock is not None and not threads:
        lock.release()
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)  # its own open file: flock sees another
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return threads, True
    finally:
        os.close(fd)
    return threads, False


def free_blocks(memory: FrameMemory) -> list[tuple[int, int]]:
    """(offset, size) of each free block of *memory*'s arena."""
    return list(memory._free)


def spare_blocks(memory: FrameMemory) -> dict[tuple[int, ...], list[Any]]:
    """The blocks *memory* keeps whole for the next frames of their shape, by shape."""
    return {shape: list(blocks) for shape, blocks in memory._spare.items()}


def merge_spares(memory: FrameMemory) -> None:
    """Give *memory*'s spare blocks back to the free list, as a frame finding no room does."""
    memory._unspare()


def releasing(queue: ClipQueue) -> Item | None:
    """The frame *queue* is releasing (None between two of its calls)."""
    return queue._releasing


def began(handle: ClipHandle) -> bool | None:
    """Whether a worker has begun *handle*'s clip (False: it was cancelled; None: not yet)."""
    return handle._began


def queue_locked(rec: Recorder | ClipService) -> bool:
    """Whether the lock of the Recorder's queue is held (by any thread)."""
    return queue_of(rec)._lock.locked()


def patch_close_abandoned(monkeypatch: Any, close: Callable[[ClipService], None]) -> Any:
    """Replace (with *monkeypatch*) how an idle worker closes a Recorder (its ClipService)
    whose wrapper was dropped unclosed; returns the original."""
    original = recorder_module._close_abandoned
    monkeypatch.setattr(recorder_module, "_close_abandoned", close)
    return original


def patch_wait_stoppable(monkeypatch: Any, wait: Callable[..., None]) -> Any:
    """Replace (with *monkeypatch*) the AsyncRecorder's blocking wait, run in a thread for
    flush and close; returns the original."""
    original = async_module._wait_stoppable
    monkeypatch.setattr(async_module, "_wait_stoppable", wait)
    return original


def drop_episode(episode: Episode, reason: str) -> None:
    """Drop every clip *episode* started, as submit() drops one it cannot finish."""
    episode._abort(reason)


def take_arena_blocks(rec: Recorder, shape: tuple[int, ...], count: int) -> list[Any]:
    """*count* blocks of *shape* (uint8) from the Recorder's frame memory, charged to its
    budget until :func:`give_back_arena_blocks` (a benchmark's copy into the same arena)."""
    queue = queue_of(rec)
    with queue._lock:
        blocks = [queue.memory.alloc(shape) for _ in range(count)]
        queue.memory.inflight = None
    if any(block is None for block in blocks):
        give_back_arena_blocks(rec, [block for block in blocks if block is not None])
        raise ValueError(f"{count} blocks of {shape} do not fit the budget")
    return blocks


def give_back_arena_blocks(rec: Recorder, blocks: list[Any]) -> None:
    """Give back blocks from :func:`take_arena_blocks`."""
    queue = queue_of(rec)
    with queue._lock:
        for block in blocks:
            queue.memory.release(block, block.nbytes)


def quality_of(rec: Recorder) -> Pinned:
    """How the Recorder's videos get their preset (adaptive or pinned); its ``_fill`` (when
    adaptive) is the queue fill it reads."""
    return service_of(rec)._workers.writer.quality


def adaptive_rungs(codec: Codec) -> tuple[Codec, ...]:
    """The settings adaptive quality writes *codec*'s videos at, its most size-efficient rung
    first (the fastest rung's conversion included)."""
    return Adaptive(codec, lambda: 0.0, 1)._codecs


# -- per-frame info and overlays (issue 31) ----------------------------------------------------


def overlay_band(shape: tuple[int, ...], text: str) -> tuple[int, int]:
    """(height, width) of the top-left band an overlay of *text* covers on frames of *shape*."""
    height, width = TextBand(shape).mask(text).shape[:2]
    return height, width
