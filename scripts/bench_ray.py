"""Ray: videos per second arriving at one recorder.ray sink from 1, 2 and 4 producer actors,
against the same producers writing to local folders; bytes sent per video."""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import asdict
from functools import partial
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import numpy as np

import recorder

TITLE = "Ray: videos per second into one sink, against local folders"
COUNTS, MODES = (1, 2, 4), ("local", "sink")
FULL, QUICK = (12, 60, 3), (2, 8, 1)  # videos per producer and run, frames per video, rounds


class Producer:
    """A producer actor (made with ``ray.remote`` in :func:`run`): it records one clip."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames = frames

    def run(self, folder: str, sink: Any, videos: int) -> int:
        """Submit the clip *videos* times into a new Recorder; the bytes of the saved videos."""
        rec = recorder.Recorder(folder, episode_trigger=bu.always, on_full="block", sink=sink)
        with rec:
            handles = [h for i in range(videos) for h in rec.submit(self.frames, i)]
        return sum(h.result().size_bytes for h in handles)


def measure(bench: bu.Bench) -> dict[str, Any]:
    """Every (mode, producers) variant once a round, the order rotating."""
    import ray

    import recorder.ray  # needs ray

    videos, frames, rounds = bench.cfg
    clip = bu.cartpole_frames(frames)
    raw = frames * clip[0].nbytes
    # Ray's sockets live under its temp dir, whose path must stay short (AF_UNIX: 107 bytes).
    os.environ.setdefault("RAY_TMPDIR", "/tmp")
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        actor = ray.remote(num_cpus=0)(Producer)
        actors = [actor.remote(clip) for _ in range(max(COUNTS))]
        # Warm-up: each actor's first Recorder starts its encoder process.
        ray.get([a.run.remote(str(bench.tmp / f"warm{i}"), None, 1) for i, a in enumerate(actors)])
        busy: list[float] = []  # sink seconds per video
        sizes: list[float] = []  # mean bytes per video of each run
        rates: dict[tuple[str, int], list[float]] = {(m, n): [] for n in COUNTS for m in MODES}

        def once(mode: str, n: int) -> None:
            out = bench.tmp / f"{mode}-{n}-{time.monotonic_ns()}"
            sink = recorder.ray.start_sink(out / "sink") if mode == "sink" else None
            start = time.perf_counter()
            refs = [
                a.run.remote(str(out / f"p{i}"), sink and sink.producer(f"p{i}"), videos)
                for i, a in enumerate(actors[:n])
            ]
            sizes.append(sum(ray.get(refs)) / (n * videos))
            rates[mode, n].append(n * videos / (time.perf_counter() - start))
            if sink is not None:
                stats = sink.stats()
                assert stats.videos == n * videos, stats
                busy.append(stats.busy_seconds / stats.videos)
                sink.shutdown()
            shutil.rmtree(out, ignore_errors=True)

        bu.interleave(rounds, [bu.Variant(f"{m} {n}", partial(once, m, n)) for m, n in rates])
    finally:
        ray.shutdown()
    figures = {}
    for n in COUNTS:
        local, sink = rates["local", n], rates["sink", n]
        lr, sr, ratio = bu.spread(local), bu.spread(sink), bu.paired_ratios(sink, local)
        figures[str(n)] = {"local": asdict(lr), "sink": asdict(sr), "ratio": asdict(ratio)}
    return {
        "videos": videos, "frames": frames, "rounds": rounds, "cores": os.cpu_count(),
        "rates": figures, "bytes_per_video": float(np.median(sizes)), "raw_bytes_per_video": raw,
        "sink_ms_per_video": 1e3 * float(np.median(busy)),
    }  # fmt: skip


def report(doc: bu.Report, data: dict[str, Any]) -> None:
    doc.say("setup", header=doc.short_header(), videos=data["videos"], frames=data["frames"],
            rounds=data["rounds"])  # fmt: skip
    rows = []
    for n, rates in data["rates"].items():
        lr, sr, ratio = (bu.Spread(**rates[k]) for k in ("local", "sink", "ratio"))
        rows.append([n, lr.fmt(1), sr.fmt(1), ratio.fmt(2), f"{sr.median / int(n):.1f}"])
    doc.add(
        bu.markdown_table(
            "producers | local videos/s | sink videos/s | sink / local | "
            "sink videos/s per producer",
            rows,
        )
    )
    size, raw, per_video_ms = (data[k] for k in ("bytes_per_video", "raw_bytes_per_video",
                                                 "sink_ms_per_video"))  # fmt: skip
    doc.say(
        "bytes", size_kb=size / 1e3, raw_mb=raw / 1e6, less=raw / size, cores=data["cores"],
        per_video_ms=per_video_ms, sink_rate=1e3 / per_video_ms,
    )  # fmt: skip
    doc.footer()


if __name__ == "__main__":
    raise SystemExit(bu.main(sys.modules[__name__]))
