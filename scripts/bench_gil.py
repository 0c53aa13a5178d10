"""GIL benchmark: how long an encoder thread keeps a pure-Python training thread from running.

PyAV releases the GIL in ``encode``, swscale and ``mux``, but in PyAV 18 ``avcodec_open2``
(x264's initialisation, on a video's first ``encode``), ``avformat_write_header`` and
``av_write_trailer`` (the ``+faststart`` rewrite) run with it held (see ``av/codec/context.py``
and ``av/container/output.py`` in site-packages, and PyAV-Org/PyAV#1053 for
``container.close()``): meanwhile a training thread that needs the GIL cannot run at all.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import numpy as np

import recorder
from recorder._testing import EncoderProcesses, FrameMemory, PyAVEncoder, format_of

TITLE = "GIL: how long the encoder thread stops a Python-bound training thread"
GAP_S = 0.0005
PHASES = ("create (av.open, add_stream)", "1st write (x264 opens)", "other writes", "close")
FULL, QUICK = (20, 20), (3, 5)  # videos, frames per video
Spans = list[tuple[float, float]]


def timed(spans: Spans, call: Callable[..., Any], *args: Any) -> Any:
    """``call(*args)``, its start and end appended to *spans*."""
    t0 = time.perf_counter()
    result = call(*args)
    spans.append((t0, time.perf_counter()))
    return result


def measure_calls(
    mode: str,
    factory: recorder.EncoderFactory,
    memory: FrameMemory,
    size: tuple[int, int],
    videos: int,
    frames: int,
) -> list[dict[str, Any]]:
    """Per encoder call (phase): its calls, median ms, the gaps it overlapped (count, longest
    ms, total ms per video)."""
    image = memory.alloc((*size, 3))  # where the recorder's frames lie: its shared arena
    assert image is not None
    image[:] = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    spans: dict[str, Spans] = {p: [] for p in PHASES}
    create, first, other, close = spans.values()
    gaps: Spans = []

    def work(folder: str) -> None:
        for v in range(videos):
            path = os.path.join(folder, f"{v}.mp4")
            codec = recorder.Codec(preset="ultrafast")
            spec = recorder.VideoSpec(path, 30, codec, format_of(image))
            enc = timed(create, factory, spec)
            for i in range(frames):
                timed(other if i else first, enc.write, image)
            timed(close, enc.close)
            os.unlink(path)

    with tempfile.TemporaryDirectory() as folder:
        thread = threading.Thread(target=work, args=(folder,))
        thread.start()
        last = time.perf_counter()
        while thread.is_alive():
            now = time.perf_counter()
            if now - last > GAP_S:
                gaps.append((last, now))
            last = now
    rows = []
    for phase, calls in spans.items():
        hit = [b - a for a, b in gaps if any(s <= b and e >= a for s, e in calls)]
        rows.append({
            "mode": mode, "frame": f"{size[1]}x{size[0]}", "phase": phase, "calls": len(calls),
            "median_ms": statistics.median(e - s for s, e in calls) * 1e3, "gaps": len(hit),
            "longest_ms": max(hit, default=0) * 1e3, "per_video_ms": sum(hit) * 1e3 / videos,
        })  # fmt: skip
    return rows


def measure(bench: bu.Bench) -> dict[str, Any]:
    """Thread, then process; each after a warm-up video."""
    videos, frames = bench.cfg
    memory = FrameMemory(threading.Lock(), 1 << 24, prefault=False)  # the recorder's memory
    processes = EncoderProcesses(1, 0, memory.arena)
    rows: list[dict[str, Any]] = []
    try:
        for mode, factory in (("thread", PyAVEncoder), ("process", processes)):
            bu.log(f"{mode} ...")
            measure_calls(mode, factory, memory, (64, 64), 1, 2)
            for size in ((400, 600), (64, 64)):
                rows += measure_calls(mode, factory, memory, size, videos, frames)
    finally:
        processes.close()
    return {"videos": videos, "frames": frames, "rows": rows}


def report(doc: bu.Report, data: dict[str, Any]) -> None:
    doc.say(
        "setup", header=doc.short_header(), videos=data["videos"], frames=data["frames"],
        gap_ms=GAP_S * 1e3,
    )  # fmt: skip
    rows = [
        [r["mode"], r["frame"], r["phase"], r["calls"], f"{r['median_ms']:.2f}", r["gaps"],
         f"{r['longest_ms']:.2f}", f"{r['per_video_ms']:.2f}"]
        for r in data["rows"]
    ]  # fmt: skip
    doc.add(
        bu.markdown_table(
            "encode in | frame | encoder call | calls | median call ms | gaps > 0.5 ms | "
            "longest gap ms | gap ms per video",
            rows,
        )
    )


if __name__ == "__main__":
    raise SystemExit(bu.main(sys.modules[__name__]))
