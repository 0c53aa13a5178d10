"""GIL benchmark: how long an encoder thread keeps a pure-Python training thread from running.

PyAV releases the GIL in ``encode``, swscale and ``mux``, but not everywhere: in PyAV 18
``avcodec_open2`` (x264's initialisation, on the first ``encode`` of a video),
``avformat_write_header`` and ``av_write_trailer`` (the ``+faststart`` rewrite) run with the
GIL held (see ``av/codec/context.py`` and ``av/container/output.py`` in site-packages, and
PyAV-Org/PyAV#1053 for ``container.close()``). While they run, a training thread that needs
the GIL cannot run at all. This script measures those stretches: the main thread spins on
``time.perf_counter()`` (as a Python-bound loop would hold the GIL) while a second thread
writes short videos with the recorder's own encoder, and every gap of more than 0.5 ms in the
main thread's progress is attributed to the encoder call that overlapped it. Both ways the
recorder can encode are measured: PyAV in the worker thread (``encode_in="thread"``), and the
worker thread feeding an encoder process (``encode_in="process"``, the default on Linux).

Usage: ``python scripts/bench_gil.py [--quick] [--out FILE] [--json FILE]``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import numpy as np

import recorder
from recorder._arena import Arena
from recorder._encoder import EncoderFactory, PyAVEncoder, VideoSpec
from recorder._frames import format_of
from recorder._process import EncoderProcesses

TITLE = "GIL: how long the encoder thread stops a Python-bound training thread"
GAP_S = 0.0005
ARENA = Arena(1 << 24)
PHASES = ("create (av.open, add_stream)", "1st write (x264 opens)", "other writes", "close")


def encode_videos(
    factory: EncoderFactory,
    folder: str,
    image: np.ndarray,
    videos: int,
    frames: int,
    spans: dict[str, list[tuple[float, float]]],
) -> None:
    """Write *videos* videos of *frames* frames, recording when each encoder call ran."""
    fmt = format_of(image)
    for v in range(videos):
        path = os.path.join(folder, f"{v}.mp4")
        t0 = time.perf_counter()
        enc = factory(VideoSpec(path, 30, recorder.Codec(), fmt))
        spans[PHASES[0]].append((t0, time.perf_counter()))
        for i in range(frames):
            t0 = time.perf_counter()
            enc.write(image)
            spans[PHASES[1] if i == 0 else PHASES[2]].append((t0, time.perf_counter()))
        t0 = time.perf_counter()
        enc.close()
        spans[PHASES[3]].append((t0, time.perf_counter()))
        os.unlink(path)


def measure(
    mode: str, factory: EncoderFactory, size: tuple[int, int], videos: int, frames: int
) -> list[list[object]]:
    """Rows of (mode, frame, phase, calls, median call ms, gaps, longest gap ms, gap ms/video)."""
    rng = np.random.default_rng(0)
    image = ARENA.alloc((*size, 3))  # where the recorder's frames lie: its shared arena
    assert image is not None
    image[:] = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    spans: dict[str, list[tuple[float, float]]] = {p: [] for p in PHASES}
    gaps: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        done = threading.Event()

        def work() -> None:
            try:
                encode_videos(factory, folder, image, videos, frames, spans)
            finally:
                done.set()

        thread = threading.Thread(target=work)
        thread.start()
        last = time.perf_counter()
        while not done.is_set():
            now = time.perf_counter()
            if now - last > GAP_S:
                gaps.append((last, now))
            last = now
        thread.join()
    rows: list[list[object]] = []
    for phase in PHASES:
        calls = spans[phase]
        hit = [g for g in gaps if any(a <= g[1] and b >= g[0] for a, b in calls)]
        rows.append(
            [mode, f"{size[1]}x{size[0]}", phase, len(calls),
             f"{statistics.median(b - a for a, b in calls) * 1e3:.2f}", len(hit),
             f"{max((b - a for a, b in hit), default=0) * 1e3:.2f}",
             f"{sum(b - a for a, b in hit) * 1e3 / videos:.2f}"]
        )  # fmt: skip
    return rows


FULL, QUICK = (20, 20), (3, 5)  # videos, frames per video


def run(bench: bu.Bench) -> dict[str, Any]:
    """Thread, then process; each size after a warm-up video."""
    videos, frames = bench.cfg
    bench.add(
        f"{bench.short_header()}{videos} videos x {frames} frames per size, with the default "
        "codec (h264, ultrafast, 1 thread), written from a second thread: by the recorder's "
        "`PyAVEncoder` (`thread`) or its `ProcessEncoder` (`process`: the thread passes each "
        "frame's place in the shared-memory arena to an encoder process, started before the "
        "measurement); the main thread spins "
        f"on `time.perf_counter()` and logs every gap over {GAP_S * 1e3:.1f} ms in its progress "
        "(time it could not run: the GIL was held by the encoder thread, or the OS ran "
        "something else). *Gap ms per video*: the gaps' total divided by the videos. The "
        "*other writes* gaps are mostly the GIL hand-over at the switch interval; the *1st "
        "write* gaps (thread) are x264's initialisation under the GIL, once per video. In "
        "the process mode the encoder's own calls hold the encoder process's GIL, not this "
        "one's: what is left is the worker thread's own Python (the messages)."
    )
    processes = EncoderProcesses(1, 0, ARENA)
    modes: list[tuple[str, EncoderFactory]] = [("thread", PyAVEncoder), ("process", processes)]
    rows: list[list[object]] = []
    try:
        for mode, factory in modes:
            bu.log(f"{mode}: warm-up ...")
            measure(mode, factory, (64, 64), 1, 2)
            for size in ((400, 600), (64, 64)):
                bu.log(f"{mode}: {size[1]}x{size[0]} ...")
                rows += measure(mode, factory, size, videos, frames)
    finally:
        processes.close()
    bench.add(
        bu.markdown_table(
            "encode in | frame | encoder call | calls | median call ms | gaps > 0.5 ms | "
            "longest gap ms | gap ms per video",
            rows,
        )
    )
    return {"rows": rows}


if __name__ == "__main__":
    raise SystemExit(bu.main(sys.modules[__name__]))
