"""Ray: videos per second arriving at one recorder.ray sink from 1, 2 and 4 producer actors,
against the same producers writing to local folders; bytes sent per video.

Each producer is a Ray actor (``num_cpus=0``) with its own Recorder (defaults, ``on_full=
"block"``), submitting CartPole-v1 episodes; a round runs every (mode, producers) variant once,
rotating the order. Rate: videos of all producers / wall time from the first submit until every
handle resolved (for the sink: until the sink has every file on its disk).

Usage: ``python scripts/bench_ray.py [--quick] [--out FILE] [--json FILE]``.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import numpy as np

TITLE = "Ray: videos per second into one sink, against local folders"
COUNTS = (1, 2, 4)


@dataclass(frozen=True)
class Config:
    videos: int  # per producer and run
    frames: int  # per video
    rounds: int


FULL = Config(videos=12, frames=60, rounds=3)
QUICK = Config(videos=2, frames=8, rounds=1)


@dataclass
class Run:
    rate: float  # videos per second, all producers
    size: float  # mean bytes per video


def producer_class() -> Any:
    import ray

    import recorder

    @ray.remote(num_cpus=0)
    class Producer:
        def __init__(self, frames: list[np.ndarray]) -> None:
            self.frames = frames

        def run(self, folder: str, sink: Any, videos: int) -> int:
            extra = {} if sink is None else {"sink": sink}
            with recorder.Recorder(
                folder, episode_trigger=bu.always, on_full="block", **extra
            ) as rec:
                handles = [h for i in range(videos) for h in rec.submit(self.frames, i)]
            return sum(h.result().size_bytes for h in handles)

    return Producer


def run(bench: bu.Bench) -> dict[str, Any]:
    import ray

    import recorder.ray

    cfg: Config = bench.cfg
    clip = bu.cartpole_frames(cfg.frames)
    raw = cfg.frames * clip[0].nbytes
    bench.add(
        f"{bench.short_header()}Each run: n producer actors submit {cfg.videos} episodes of "
        f"{cfg.frames} CartPole-v1 frames (600x400) each, with default encoding, and wait for "
        "every handle; *local*: each into its own folder, *sink*: with `sink=` one sink actor "
        "(started before the run) on the same machine. Median of "
        f"{cfg.rounds} interleaved rounds (range in brackets). Producers and sink share this "
        "machine's cores with their encoder processes."
    )
    # Ray's sockets live under its temp dir, whose path must stay short (AF_UNIX: 107 bytes).
    os.environ.setdefault("RAY_TMPDIR", "/tmp")
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        actors = [producer_class().remote(clip) for _ in range(max(COUNTS))]
        # Warm-up: each actor's first Recorder starts its encoder process.
        ray.get([a.run.remote(str(bench.tmp / f"warm{i}"), None, 1) for i, a in enumerate(actors)])
        busy: list[float] = []

        def variant(mode: str, n: int) -> bu.Variant:
            def once() -> Run:
                out = bench.tmp / f"{mode}-{n}-{time.monotonic_ns()}"
                sink = recorder.ray.start_sink(out / "sink") if mode == "sink" else None
                start = time.perf_counter()
                refs = [
                    a.run.remote(str(out / f"p{i}"), sink and sink.producer(f"p{i}"), cfg.videos)
                    for i, a in enumerate(actors[:n])
                ]
                sizes = ray.get(refs)
                seconds = time.perf_counter() - start
                if sink is not None:
                    stats = sink.stats()
                    assert stats.videos == n * cfg.videos, stats
                    busy.append(stats.busy_seconds / stats.videos)
                    sink.shutdown()
                shutil.rmtree(out, ignore_errors=True)
                return Run(n * cfg.videos / seconds, sum(sizes) / (n * cfg.videos))

            return bu.Variant(f"{mode} {n}", once, group=str(n), kind=mode)

        variants = [variant(m, n) for n in COUNTS for m in ("local", "sink")]
        bu.interleave(cfg.rounds, variants)
    finally:
        ray.shutdown()
    rows, figures = [], {}
    for n in COUNTS:
        local, sink = (
            next(v for v in variants if v.label == f"{m} {n}") for m in ("local", "sink")
        )
        lr, sr = bu.spread(local.values("rate")), bu.spread(sink.values("rate"))
        ratio = bu.paired_ratios(sink.values("rate"), local.values("rate"))
        figures[str(n)] = {"local": lr.__dict__, "sink": sr.__dict__, "ratio": ratio.__dict__}
        rows.append([n, lr.fmt(1), sr.fmt(1), ratio.fmt(2), f"{sr.median / n:.1f}"])
    size = float(np.median([r.size for v in variants for r in v.results]))
    per_video_ms = 1e3 * float(np.median(busy))
    bench.add(
        bu.markdown_table(
            "producers | local videos/s | sink videos/s | sink / local | "
            "sink videos/s per producer",
            rows,
        )
    )
    bench.add(
        f"Bytes sent per video: {size / 1e3:.1f} kB of mp4 for {raw / 1e6:.1f} MB of raw frames "
        f"({raw / size:,.0f}x less; only encoded videos cross the network). The sink spends "
        f"{per_video_ms:.1f} ms per video writing it (file, sidecar, manifest line): one sink "
        f"takes up to ~{1e3 / per_video_ms:,.0f} videos/s before it is the bottleneck. On this "
        f"{os.cpu_count()}-core machine the producers' encoders share the cores, so adding "
        "producers beyond the cores adds no rate; on a cluster each node's producers encode on "
        "that node's cores (the *local* rate per core, per node), and the sink's cost per "
        "video bounds the total."
    )
    bench.footer()
    return {"rates": figures, "bytes_per_video": size, "raw_bytes_per_video": raw,
            "sink_ms_per_video": per_video_ms}  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(bu.main(sys.modules[__name__]))
