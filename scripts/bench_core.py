"""Core benchmark (issue 2): append latency, encode throughput vs the ffmpeg CLI, peak RSS.

Usage: ``python scripts/bench_core.py [--quick] [--preset P] [--out FILE] [--json FILE]``.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import numpy as np

import recorder
from recorder import _queue
from recorder._encoder import keyframe_interval
from recorder._metadata import read_manifest as recorder_manifest
from recorder._queue import QUANTUM

TITLE = "Core benchmark (issue 2)"
OPTIONS = [
    (("--preset",), {"help": "x264 preset for the encode benchmark (default: the recorder's)"})
]
FRAME = (400, 600)  # CartPole-v1 rgb_array
LATENCY_SIZES = [(64, 64), (256, 256), FRAME, (720, 1280)]
ENCODE_SIZES = [FRAME, (256, 256)]
RSS_CYCLE = 32  # distinct CartPole frames the RSS child cycles through
QUIET_CORES = 0.25  # a round is "quiet" when other processes used less CPU than this


@dataclass(frozen=True)
class Config:
    """How much to measure."""

    append_n: int  # appends per size and mode
    burst_block_bytes: int  # frames kept alive at once in the burst mode
    encode_frames: int  # frames per size in the encode benchmark
    encode_videos: int  # ... split into this many videos
    rounds: int
    rss_runs: tuple[tuple[int, int], ...]  # (max_queue_bytes, frames)


M = bu.MiB
RSS_FULL = ((64 * M, 10_000), (128 * M, 10_000), (256 * M, 10_000), (64 * M, 2000), (256 * M, 2000))
FULL = Config(3000, 512 * M, 600, 4, 7, RSS_FULL)
QUICK = Config(150, 64 * M, 48, 2, 1, ((64 * M, 300), (256 * M, 300)))


@dataclass(frozen=True)
class H264:
    """The h264 settings both the recorder and the ffmpeg CLI get in the encode benchmark."""

    crf: int
    preset: str
    threads: int

    @classmethod
    def recorder_default(cls, preset: str | None = None) -> H264:
        """The recorder's defaults (read from it, not assumed), *preset* overriding."""
        codec = recorder.Codec("h264")
        opts = codec.ffmpeg_settings()[3]
        return cls(int(opts["crf"]), preset or opts["preset"], codec.threads)

    def codec(self) -> recorder.Codec:
        return recorder.Codec("h264", crf=self.crf, preset=self.preset, threads=self.threads)


def size_name(size: tuple[int, int]) -> str:
    return f"{size[1]}x{size[0]}"


# -- 1. append latency -----------------------------------------------------------------------


#: arena blocks the copy reference rotates over: more than the caches hold, like the blocks
#: of a queue that grows while the encoder lags (each written once before, as those are).
REF_BLOCKS = 64


def append_after_render(
    size: tuple[int, int], n: int, folder: Path
) -> tuple[bu.Latency, bu.Latency, bu.Latency, recorder.RecorderStats]:
    """Appends as a training loop makes them: each frame just rendered by CartPole-v1.

    ``env.step`` + ``env.render`` (and, for other sizes, a numpy resize of the render) are
    untimed; the frame is fresh in the CPU caches, as the one a wrapper appends is. Steps
    rotate between ``ep.append(frame)`` and two references, a plain ``np.copyto`` of the frame
    into blocks of the same recorder's arena reserved for them: the next of REF_BLOCKS (a
    destination not in the caches) and always the same one (in the caches). *n* of each. The
    budget holds every frame: none is dropped (a dropped clip's appends would copy nothing).
    """
    import gymnasium as gym

    env = gym.make("CartPole-v1", render_mode="rgb_array")
    rng = np.random.default_rng(0)
    lat, cold, hot = (np.empty(n, np.int64) for _ in range(3))
    nbytes = size[0] * size[1] * 3
    try:
        env.reset(seed=0)
        with recorder.Recorder(
            folder, episode_trigger=bu.always, max_queue_bytes=(n + REF_BLOCKS + 2) * nbytes
        ) as rec:
            queue = rec._queue
            with queue._lock:
                blocks = [queue.arena.alloc((*size, 3)) for _ in range(REF_BLOCKS)]
            refs = [b for b in blocks if b is not None]
            assert len(refs) == REF_BLOCKS
            for block in refs:
                block.fill(0)  # faulted in, as the queue's blocks are once reused
            with rec.episode(0) as ep:
                for i in range(3 * n):
                    _, _, terminated, truncated, _ = env.step(int(rng.integers(2)))
                    if terminated or truncated:
                        env.reset()
                    frame = env.render()
                    if frame.shape[:2] != size:
                        frame = bu.resize_nearest(frame, *size)
                    k, which = divmod(i, 3)
                    t0 = time.perf_counter_ns()
                    if which == 0:
                        ep.append(frame)
                    elif which == 1:
                        np.copyto(refs[k % REF_BLOCKS], frame)
                    else:
                        np.copyto(refs[0], frame)
                    (lat, cold, hot)[which][k] = time.perf_counter_ns() - t0
            rec.flush()
            stats = rec.stats()
            with queue._lock:
                for block in refs:
                    queue.arena.free(block)
    finally:
        env.close()
    return bu.latency_us(lat), bu.latency_us(cold), bu.latency_us(hot), stats


def append_paced(
    frames: Sequence[np.ndarray], n: int, folder: Path
) -> tuple[bu.Latency, recorder.RecorderStats]:
    """Appends from a loop slower than the encoder: buffers are recycled, nothing drops.

    Before each (timed) append the loop waits, untimed, until fewer than QUANTUM are queued.
    """
    lat = np.empty(n, np.int64)
    with recorder.Recorder(folder, episode_trigger=bu.always) as rec:
        with rec.episode(0) as ep:
            for i in range(n):
                # Workers take frames in batches of QUANTUM: fewer than that may wait.
                while rec.stats().queued_frames >= QUANTUM:
                    time.sleep(0.0002)
                frame = frames[i % len(frames)]
                t0 = time.perf_counter_ns()
                ep.append(frame)
                lat[i] = time.perf_counter_ns() - t0
        rec.flush()
        stats = rec.stats()
    return bu.latency_us(lat), stats


def append_burst(
    frames: Sequence[np.ndarray], n: int, block_bytes: int, folder: Path
) -> tuple[bu.Latency, int]:
    """Back-to-back appends into a budget that holds them all: most need a fresh buffer.

    Runs in blocks of at most *block_bytes* of frames (a new Recorder each, closed with
    cancel=True), so that the machine is not asked for gigabytes. Returns frames dropped.
    """
    lat = np.empty(n, np.int64)
    nbytes = frames[0].nbytes
    done = dropped = 0
    while done < n:
        k = min(n - done, max(1, block_bytes // nbytes))
        rec = recorder.Recorder(
            folder, episode_trigger=bu.always, max_queue_bytes=(k + 1) * nbytes, on_full="drop"
        )
        try:
            with rec.episode(done) as ep:
                for i in range(done, done + k):
                    frame = frames[i % len(frames)]
                    t0 = time.perf_counter_ns()
                    ep.append(frame)
                    lat[i] = time.perf_counter_ns() - t0
            dropped += rec.stats().frames_dropped
        finally:
            rec.close(cancel=True)
        done += k
    return bu.latency_us(lat), dropped


def numpy_references(
    frames: Sequence[np.ndarray], n: int, block_bytes: int
) -> tuple[bu.Latency, bu.Latency]:
    """What the machine charges for the copy alone: into a reused buffer, into fresh memory."""
    dst = np.empty_like(frames[0])
    lat = np.empty(n, np.int64)
    for i in range(n):
        src = frames[i % len(frames)]
        t0 = time.perf_counter_ns()
        np.copyto(dst, src)
        lat[i] = time.perf_counter_ns() - t0
    reused = bu.latency_us(lat)
    keep: list[np.ndarray] = []
    per_block = max(1, block_bytes // frames[0].nbytes)
    for i in range(n):
        if len(keep) >= per_block:
            keep.clear()
        src = frames[i % len(frames)]
        t0 = time.perf_counter_ns()
        buf = np.empty_like(src)
        np.copyto(buf, src)
        lat[i] = time.perf_counter_ns() - t0
        keep.append(buf)
    keep.clear()
    return reused, bu.latency_us(lat)


def bench_latency(
    by_size: dict[tuple[int, int], list[np.ndarray]], cfg: Config, tmp: Path
) -> list[list[object]]:
    rows: list[list[object]] = []
    n = cfg.append_n
    for size in LATENCY_SIZES:
        frames = by_size[size]
        name = size_name(size)
        bu.log(f"latency {name}: after render")
        with bu.measure() as render_use:
            rendered, copied, hot, render_stats = append_after_render(
                size, n, tmp / f"render-{name}"
            )
        bu.log(f"latency {name}: after render, no prefault thread")
        _queue.PREFAULT = False
        try:
            with bu.measure() as bare_use:
                bare, _, _, bare_stats = append_after_render(size, n, tmp / f"bare-{name}")
        finally:
            _queue.PREFAULT = True
        bu.log(f"latency {name}: paced")
        with bu.measure() as paced_use:
            paced, stats = append_paced(frames, n, tmp / f"paced-{name}")
        bu.log(f"latency {name}: burst")
        with bu.measure() as burst_use:
            burst, burst_drops = append_burst(
                frames, n, cfg.burst_block_bytes, tmp / f"burst-{name}"
            )
        targeted = size == FRAME
        for mode, lat, drops, use in (
            ("after render (a training loop)", rendered, render_stats.frames_dropped, render_use),
            ("after render, without the prefault thread (the copy faults fresh pages in)", bare,
             bare_stats.frames_dropped, bare_use),
            ("paced, frames from RAM (recycled buffers)", paced, stats.frames_dropped, paced_use),
            ("burst (fresh buffers)", burst, burst_drops, burst_use),
        ):  # fmt: skip
            rows.append(
                [name, f"`Episode.append`, {mode}", lat.n, _verdict(lat.median, 30, targeted),
                 _verdict(lat.p99, 100, targeted), f"{lat.max:.0f}", drops,
                 f"{use.others_cores:.2f}"]
            )  # fmt: skip
        ratio = rendered.median / copied.median
        what = "numpy copy of the same just-rendered frames into a block of the same arena"
        after = "reference, steps interleaved with the appends above"
        refs = [
            (f"{what}, the next of {REF_BLOCKS} blocks (not in the caches): {after}", copied,
             render_use),
            (f"{what}, always the same block (in the caches): {after}", hot, render_use),
        ]  # fmt: skip
        rows += reference_rows(name, refs)
        rows.append(
            [name, (f"**append / copy into the next of {REF_BLOCKS} blocks, medians** (target ≤ "
             f"1.15)"), "-", f"{ratio:.2f}" + (f" {bu.mark(ratio <= 1.15)}" if targeted else ""),
             *["-"] * 4]
        )  # fmt: skip
        if targeted:
            bu.log("latency: numpy references")
            with bu.measure() as ref_use:
                reused, fresh = numpy_references(frames, n, cfg.burst_block_bytes)
            rows += reference_rows(name, [
                ("numpy copy into a reused buffer (reference)", reused, ref_use),
                ("numpy `empty` + copy, fresh memory (reference)", fresh, ref_use),
            ])  # fmt: skip
    return rows


def reference_rows(name: str, refs: list[tuple[str, bu.Latency, bu.Usage]]) -> list[list[object]]:
    return [
        [name, label, lat.n, f"{lat.median:.1f}", f"{lat.p99:.1f}", f"{lat.max:.0f}", "-",
         f"{use.others_cores:.2f}"]
        for label, lat, use in refs
    ]  # fmt: skip


def _verdict(value: float, limit: float, targeted: bool) -> str:
    if not targeted:
        return f"{value:.1f}"
    return f"{value:.1f} " + ("✅" if value <= limit else "❌")


# -- 2. encode throughput ----------------------------------------------------------------------


def split(frames: Sequence[np.ndarray], parts: int) -> list[list[np.ndarray]]:
    size = len(frames) // parts
    return [list(frames[i * size : (i + 1) * size]) for i in range(parts)]


class RecorderRuns:
    """Encodes the video set with Recorders; keeps one warm recorder per worker count."""

    def __init__(self, folder: Path, videos: list[list[np.ndarray]], h264: H264) -> None:
        self.folder, self.videos, self.codec = folder, videos, h264.codec()
        # The pool keeps up to a quarter of the budget: sized so every buffer is recycled.
        self.budget = 2 * sum(sum(f.nbytes for f in v) for v in videos) + 64 * bu.MiB
        self.counter = 0
        self.warm: dict[int, recorder.Recorder] = {}
        self.last_path: Path | None = None

    def new(self, workers: int) -> recorder.Recorder:
        return recorder.Recorder(
            self.folder, episode_trigger=bu.always, workers=workers, max_queue_bytes=self.budget,
            on_full="block", codec=self.codec,
        )  # fmt: skip

    def encode(self, rec: recorder.Recorder) -> bu.Usage:
        """Submit every video, flush; the time from the first submit until flush returned."""
        expected = sum(len(v) for v in self.videos)
        before = rec.stats()
        handles = []
        with bu.measure() as usage:
            for video in self.videos:
                self.counter += 1
                handles += rec.submit(video, episode_index=self.counter)
            rec.flush()
        infos = [h.result() for h in handles]
        encoded = rec.stats().frames_encoded - before.frames_encoded
        if encoded != expected or sum(i.frames for i in infos) != expected:
            raise RuntimeError(f"encoded {encoded} frames, expected {expected}")
        self.last_path = infos[-1].path
        return usage

    def start_warm(self, workers: int) -> None:
        self.warm[workers] = self.new(workers)
        self.encode(self.warm[workers])  # warm-up: threads, buffer pool, codec tables

    def cold_run(self, workers: int) -> bu.Usage:
        with self.new(workers) as rec:
            return self.encode(rec)

    def pinned_run(self) -> bu.Usage:
        # Created while pinned: the worker threads and a new encoder process inherit the
        # single-CPU affinity (so no idle one, unpinned, is reused; nor this one later).
        bu.stop_idle_encoder_processes()
        try:
            with bu.pinned_to_one_cpu():
                return self.cold_run(1)
        finally:
            bu.stop_idle_encoder_processes()

    def close(self) -> None:
        for rec in self.warm.values():
            rec.close()


class FfmpegRuns:
    """Encodes the video set with the ffmpeg CLI, one process per video."""

    def __init__(self, folder: Path, videos: list[list[np.ndarray]], h264: H264) -> None:
        self.exe, self.h264, self.folder, self.videos = bu.ffmpeg_exe(), h264, folder, videos
        self.last_path = folder / "ffmpeg-0.mp4"

    def sequential(self, start: int = 0, step: int = 1) -> None:
        h = self.h264
        for i in range(start, len(self.videos), step):
            path = self.folder / f"ffmpeg-{i}.mp4"
            bu.ffmpeg_encode(self.exe, self.videos[i], path, crf=h.crf, preset=h.preset,
                             threads=h.threads)  # fmt: skip

    def parallel2(self) -> None:
        with ThreadPoolExecutor(2) as pool:  # every other video each; re-raises an error
            list(pool.map(lambda start: self.sequential(start, 2), (0, 1)))

    def pinned(self) -> None:
        with bu.pinned_to_one_cpu():  # ffmpeg inherits the single-CPU affinity
            self.sequential()


def bench_encode(
    by_size: dict[tuple[int, int], list[np.ndarray]], cfg: Config, h264: H264, tmp: Path
) -> tuple[list[list[object]], list[list[object]], list[str]]:
    rows: list[list[object]] = []
    ratio_rows: list[list[object]] = []
    notes: list[str] = []
    for size in ENCODE_SIZES:
        r, q, n = encode_one_size(size, by_size[size][: cfg.encode_frames], cfg, h264, tmp)
        rows += r
        ratio_rows += q
        notes.append(n)
    return rows, ratio_rows, notes


def encode_one_size(
    size: tuple[int, int], frames: list[np.ndarray], cfg: Config, h264: H264, tmp: Path
) -> tuple[list[list[object]], list[list[object]], str]:
    name = size_name(size)
    videos = split(frames, cfg.encode_videos)
    total = sum(len(v) for v in videos)
    folder = tmp / f"encode-{name}"
    folder.mkdir()
    recs = RecorderRuns(folder, videos, h264)
    ff = FfmpegRuns(folder, videos, h264)
    V = bu.Variant
    runs = [
        V("recorder, 1 worker (warm)", lambda: recs.encode(recs.warm[1])),
        V("recorder, 2 workers (warm)", lambda: recs.encode(recs.warm[2])),
        V("recorder, 1 worker (new Recorder)", lambda: recs.cold_run(1)),
        V("recorder, 2 workers (new Recorder)", lambda: recs.cold_run(2)),
        V("ffmpeg CLI, videos in sequence", ff.sequential),
        V("ffmpeg CLI, 2 processes in parallel", ff.parallel2),
        V("recorder, 1 worker, pinned to 1 CPU", recs.pinned_run),
        V("ffmpeg CLI, in sequence, pinned to 1 CPU", ff.pinned),
    ]
    try:
        bu.log(f"encode {name}: warming up")
        recs.start_warm(1)
        recs.start_warm(2)
        bu.log(f"encode {name}: {cfg.rounds} interleaved rounds")
        bu.interleave(cfg.rounds, runs)
    finally:
        recs.close()
    fps = {r.label: [total / u.wall for u in r.usages] for r in runs}
    rows: list[list[object]] = []
    by_label = {r.label: r for r in runs}
    for r in runs:
        cpu_ms = bu.spread(u.cpu / total * 1e3 for u in r.usages)
        others = bu.spread(u.others_cores for u in r.usages)
        rows.append(
            [name, r.label, f"{len(videos)} x {len(videos[0])}",
             bu.spread(fps[r.label]).fmt(0), f"{cpu_ms.median:.2f}", others.fmt(2)]
        )  # fmt: skip
    labels = [r.label for r in runs]
    ratio_rows: list[list[object]] = []
    for num, den, target in (
        (labels[0], labels[4], 1.0),
        (labels[2], labels[4], 1.0),
        (labels[6], labels[7], 1.0),
        (labels[1], labels[0], 1.6),
        (labels[3], labels[2], 1.6),
        (labels[5], labels[4], None),
    ):
        ratio = bu.paired_ratios(fps[num], fps[den])
        quiet = [
            (a, b)
            for a, b, ua, ub in zip(
                fps[num], fps[den], by_label[num].usages, by_label[den].usages, strict=True
            )
            if max(ua.others_cores, ub.others_cores) < QUIET_CORES
        ]
        quiet_text = (
            bu.paired_ratios([a for a, _ in quiet], [b for _, b in quiet]).fmt(2)
            + f", {len(quiet)} of {len(fps[num])}"
            if quiet
            else f"none of {len(fps[num])}"
        )
        verdict = "-" if target is None else ("✅" if ratio.median >= target else "❌")
        goal = "-" if target is None else f">= {target}"
        ratio_rows.append([name, f"{num} / {den}", ratio.fmt(2), quiet_text, goal, verdict])
    assert recs.last_path is not None
    ours, theirs = bu.x264_options(recs.last_path), bu.x264_options(ff.last_path)
    if ours is not None and ours == theirs:
        note = f"{name}: the x264 options in both streams are identical (`{_short_x264(ours)}`)."
    else:
        note = f"{name}: x264 options DIFFER: recorder `{ours}`, ffmpeg `{theirs}`."
    return rows, ratio_rows, note


def _short_x264(options: str) -> str:
    return bu.short_x264(options, "threads lookahead_threads crf bframes ref subme me rc")


# -- 3. peak RSS --------------------------------------------------------------------------------


def child(budget: int, count: int) -> dict[str, Any]:
    """In a fresh process: stream *count* 600x400 frames with on_full="block"."""
    frames = bu.cartpole_frames(RSS_CYCLE)
    gc.collect()
    baseline, baseline_max = bu.rss_mb(), bu.maxrss_mb()
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        with (
            recorder.Recorder(
                folder, episode_trigger=bu.always, max_queue_bytes=budget, on_full="block"
            ) as rec,
            rec.episode(0) as ep,
        ):
            for i in range(count):
                ep.append(frames[i % RSS_CYCLE])
        wall = time.perf_counter() - start
        info, stats = ep.handles[0].result(), rec.stats()
    return {
        "encoder_process_mb": bu.encoder_processes_hwm_mb(),  # idle now, kept for a next one
        "baseline_mb": baseline, "baseline_maxrss_mb": baseline_max, "maxrss_mb": bu.maxrss_mb(),
        "hwm_mb": bu.rss_mb("VmHWM"), "peak_queued_mb": stats.peak_queued_bytes / bu.MiB,
        "frames": info.frames, "dropped": stats.frames_dropped, "fps": count / wall,
        "wall_s": wall, "budget_mib": budget // bu.MiB, "count": count,
    }  # fmt: skip


def bench_rss(cfg: Config) -> list[dict[str, Any]]:
    results = []
    for budget, count in cfg.rss_runs:
        bu.log(f"rss: {count} frames, max_queue_bytes={budget // bu.MiB} MiB")
        results.append(bu.in_child(__file__, budget, count, timeout=600))
    return results


def _bound(peak: float, bound: float) -> str:
    return f"{bound:.0f} {bu.mark(peak <= bound)}"


def rss_rows(results: list[dict[str, Any]]) -> list[list[object]]:
    h, w = FRAME
    rows: list[list[object]] = []
    for r in results:
        raw_gb = r["count"] * h * w * 3 / 1e9
        peak = r["maxrss_mb"]
        rows.append(
            [f"{r['count']:,}", f"{raw_gb:.1f}", r["budget_mib"], f"{r['baseline_mb']:.0f}",
             f"{peak:.0f} {bu.mark(peak < 300)}", f"{r['hwm_mb']:.0f}",
             f"{peak - r['baseline_mb']:.0f}",
             _bound(peak, r["baseline_mb"] + r["budget_mib"] * bu.MiB / 1e6),
             f"{r['encoder_process_mb']:.0f}", f"{r['peak_queued_mb']:.0f}", f"{r['frames']:,}",
             r["dropped"], f"{r['fps']:.0f}"]
        )  # fmt: skip
    return rows


# -- main ---------------------------------------------------------------------------------------


def bench_keep(frames: Sequence[np.ndarray], episodes: int, tmp: Path) -> dict[str, Any]:
    """Keep best 5 / worst 2 by return: every episode is encoded as a candidate, most deleted.

    Returns: episodes, candidates encoded, videos kept on disk, deleted, and the encode
    seconds (worker time, VideoInfo.encode_seconds) of all candidates and of the kept ones.
    """
    rng = np.random.default_rng(0)
    folder = tmp / "keep"
    keep = recorder.Keep(best=5, worst=2, by="return")
    start = time.perf_counter()
    # "block": a dropped candidate would still be ranked, and the kept count would lie.
    with recorder.Recorder(folder, episode_trigger=bu.always, keep=keep, on_full="block") as rec:
        for e in range(episodes):
            with rec.episode(e, metadata={"return": float(rng.normal())}) as ep:
                for frame in frames[(e * 7) % 30 : (e * 7) % 30 + 30]:
                    ep.append(frame)
    wall = time.perf_counter() - start
    # The manifest has a line for every candidate saved, and one for each deletion.
    saved = [r for r in recorder_manifest(folder) if "event" not in r]
    kept = {p.name for p in folder.glob("*.mp4")}
    return {
        "episodes": episodes,
        "candidates": len(saved),
        "kept": len(kept),
        "deleted": rec.stats().videos_saved - len(kept),
        "encode_all_s": sum(r["encode_seconds"] for r in saved),
        "encode_kept_s": sum(r["encode_seconds"] for r in saved if r["path"] in kept),
        "wall_s": wall,
    }


def revision() -> str:
    """The commit the recorder was measured at, and whether recorder/ had local changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
            check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "recorder"], cwd=root, capture_output=True,
            text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown revision"
    return f"commit {head}" + (" with uncommitted changes in recorder/" if dirty else "")


def run(bench: bu.Bench) -> dict[str, Any]:
    """Peak RSS first, while this process is small: ru_maxrss survives exec, so a child would
    otherwise report at least the parent's size at spawn time."""
    cfg, tmp = bench.cfg, bench.tmp
    h264 = H264.recorder_default(bench.args.preset)
    rss = bench_rss(cfg)
    bu.log("collecting CartPole frames")
    base = bu.cartpole_frames(max(cfg.encode_frames, 300 if not bench.args.quick else 60))
    by_size = {size: bu.resized(base, *size) for size in {*LATENCY_SIZES, *ENCODE_SIZES}}
    latency = bench_latency(by_size, cfg, tmp)
    encode_rows, ratio_rows, x264_notes = bench_encode(by_size, cfg, h264, tmp)
    bu.log("keep best/worst")
    keep = bench_keep(by_size[FRAME], 12 if bench.args.quick else 60, tmp)
    bench.header(before=f"Recorder at {revision()}. ")
    bench.add(
        "## 1. Append latency\n\n"
        "Time of one `Episode.append(frame)` call (validation, the copy, queueing) of "
        "CartPole-v1 `rgb_array` frames (other sizes resized from them with numpy), one worker "
        "encoding meanwhile on the other core. *After render*: the training loop's case: each "
        "frame is rendered by a live env just before its append (untimed), so it is still in "
        "the CPU caches; the loop is paced by the env. *Paced, frames from RAM*: "
        f"{len(base)} renders prepared beforehand and cycled (each read from DRAM, the copy's "
        "worst case); before each append the loop waits (untimed) until fewer than a "
        f"worker's batch ({QUANTUM} frames) are queued; frame buffers then are blocks of the "
        "recorder's arena freed just before. "
        "*Burst*: back-to-back appends into a budget that holds them all "
        f"(blocks of ≤ {cfg.burst_block_bytes // bu.MiB} MiB, a new Recorder per block, "
        '`on_full="drop"`): most appends need a fresh buffer, whose pages the kernel must '
        "fault in (in the arena, memory not touched before). Targets (600x400): median ≤ 30 "
        "µs, p99 ≤ 100 µs (issue 2); append / a plain numpy copy of the same just-rendered "
        "frames into a block of the same arena, medians of one run: ≤ 1.15 (issue 13: the "
        "copy is then the only work left on the training thread).\n\n"
        + bu.markdown_table(
            "frame | what | n | median µs | p99 µs | max µs | frames dropped | "
            "other processes' CPU load (cores)",
            latency,
        )
    )
    bench.add(
        "## 2. Encode throughput\n\n"
        f"The same {cfg.encode_frames} frames per size, as {cfg.encode_videos} videos, "
        f"h264 (libx264) preset {h264.preset}, crf {h264.crf}, {h264.threads} codec "
        "thread(s) per video (the recorder's defaults unless `--preset` says otherwise), "
        "yuv420p, +faststart, for every row. Recorder: wall time from the first `submit` until "
        '`flush()` returns (`on_full="block"`, a budget holding every frame); *warm* reuses '
        "one Recorder across rounds (threads and frame buffers exist, as in a training run), "
        "*new Recorder* creates one per run (every frame buffer is fresh memory). ffmpeg CLI: "
        "the imageio-ffmpeg binary, raw rgb24 piped on stdin, "
        f"`-c:v libx264 -preset {h264.preset} -crf {h264.crf} -threads {h264.threads} "
        f"-g {keyframe_interval(30)} -pix_fmt yuv420p -movflags +faststart`, one process per "
        "video (wall time includes process start); "
        "`-threads` limits the codec only, the CLI still runs reading, conversion to yuv420p "
        "and encoding on threads of their own. *Pinned to 1 CPU*: every thread of the run "
        "(this process's and ffmpeg's) confined to one CPU with sched_setaffinity, equal "
        "compute for both. "
        f"{cfg.rounds} rounds, variants interleaved with the order rotated each round; "
        "median (min-max). CPU ms/frame: CPU time of this process (and of the ffmpeg "
        "children) per frame, median. Other processes' CPU load: CPUs kept busy by the rest of "
        "the machine during the runs (from /proc/stat), median (min-max): the noise of a shared "
        "machine, measured.\n\n"
        + bu.markdown_table(
            "frame | encoder | videos x frames | frames/s | CPU ms/frame | "
            "other processes' CPU load (cores)",
            encode_rows,
        )
        + "\n\nRatios of frames/s, per round (pairs measured close together), median (min-max); "
        f"*quiet rounds*: only the pairs during which other processes kept < {QUIET_CORES} CPU "
        "busy:\n\n"
        + bu.markdown_table(
            ["frame", "ratio", "all rounds", "quiet rounds", "target", "met (all rounds)"],
            ratio_rows,
        )
        + "\n\n"
        + "\n".join(f"- {note}" for note in x264_notes)
    )
    bench.add(
        "## 3. Peak RSS of one streamed episode\n\n"
        "A fresh subprocess per row streams one 600x400 episode through `rec.episode()` with "
        f'`on_full="block"` (lossless), 1 worker, cycling {RSS_CYCLE} CartPole frames. '
        "*Baseline*: its RSS after imports and frame preparation, before recording. *Peak*: "
        "`getrusage(RUSAGE_SELF).ru_maxrss` at the end (VmHWM from /proc alongside as a "
        "cross-check: ru_maxrss survives exec, so these children are spawned while the parent "
        "is still small). *Encoder process peak*: VmHWM of the encoder process "
        '(`encode_in="process"`, the default), a separate process with its own memory; '
        "peak RSS counts the training process only. Targets: peak < 300 MB (issue 2); peak ≤ "
        "baseline + max_queue_bytes (issue 13: the budget bounds all frame memory).\n\n"
        + bu.markdown_table(
            "frames | raw GB | max_queue_bytes MiB | baseline MB | peak RSS MB | VmHWM MB | "
            "peak - baseline MB | baseline + budget MB (peak ≤ it: issue 13) | "
            "encoder process peak MB | peak queued MiB | frames in video | dropped | frames/s",
            rss_rows(rss),
        )
    )
    bench.add(
        "## 4. Keep the best and worst episodes: what the candidates cost\n\n"
        '`Recorder(keep=Keep(best=5, worst=2, by="return"))`, every episode recorded (30 '
        "CartPole frames, 600x400, a random return): each is encoded as a candidate while "
        "its score is unknown (frames are never held to decide), then the videos of episodes "
        "out of both rankings are deleted. Encode seconds: worker time "
        "(`VideoInfo.encode_seconds`) summed over the candidates and over the kept videos.\n\n"
        + bu.markdown_table(
            "episodes | candidates encoded | kept on disk | deleted | candidates / kept | "
            "encode s, all candidates | encode s, kept only | wall s",
            [
                [
                    keep["episodes"],
                    keep["candidates"],
                    keep["kept"],
                    keep["deleted"],
                    f"{keep['candidates'] / max(keep['kept'], 1):.1f}",
                    f"{keep['encode_all_s']:.2f}",
                    f"{keep['encode_kept_s']:.2f}",
                    f"{keep['wall_s']:.2f}",
                ]
            ],
        )
    )
    bench.footer()
    return {"latency": latency, "rss": rss, "keep": keep, "quick": bench.args.quick}


if __name__ == "__main__":
    raise SystemExit(bu.main(sys.modules[__name__]))
