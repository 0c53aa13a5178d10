"""Core benchmark (issue 2): append latency, encode throughput vs the ffmpeg CLI, peak RSS.

Append latency per call (median, p99, max) with its own timer; the throughput comparisons (the
append against a numpy copy into the same arena, the encode against the ffmpeg CLI) on pyperf.

Usage: ``python scripts/bench_core.py [--quick] [--preset P] [--out FILE] [--json FILE]``.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from itertools import count, cycle, islice
from pathlib import Path
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import numpy as np

import recorder
from recorder._testing import (
    QUANTUM,
    give_back_arena_blocks,
    keyframe_interval,
    read_manifest,
    set_prefault,
    take_arena_blocks,
)

TITLE = "Core benchmark (issue 2)"
OPTIONS = [(("--preset",), {"help": "x264 preset for the encode benchmark (default: ultrafast)"})]
FRAME = (400, 600)  # CartPole-v1 rgb_array
LATENCY_SIZES = [(64, 64), (256, 256), FRAME, (720, 1280)]
ENCODE_SIZES = [FRAME, (256, 256)]
RSS_CYCLE = 32  # distinct CartPole frames the RSS child cycles through
QUIET = 0.25  # a value is "quiet" when other processes used less CPU than this meanwhile
#: arena blocks the copy reference rotates over: more than the caches hold, like the blocks
#: of a queue that grows while the encoder lags (each written once before, as those are).
REF_BLOCKS = 64
# Recorder() options: record every episode, block rather than drop a frame.
LOSSLESS: dict[str, Any] = {"episode_trigger": bu.always, "on_full": "block"}
RETIRED_PRESETS = ("ultrafast",)  # where 2 workers / 1 worker cannot settle (see the .md)
Row = list[object]
Frames = Sequence[np.ndarray]


@dataclass(frozen=True)
class Config:
    """How much to measure."""

    append_n: int  # appends per size and mode
    burst_block_bytes: int  # frames kept alive at once in the burst mode
    encode_frames: int  # frames per size in the encode benchmark
    encode_videos: int  # ... split into this many videos
    rss_runs: tuple[tuple[int, int], ...]  # (max_queue_bytes, frames)
    arena_perf: bu.PerfPlan  # pyperf: the append and the copy into the arena
    encode_perf: bu.PerfPlan  # pyperf: the encode


M = bu.MiB
RSS_FULL = ((64 * M, 10_000), (128 * M, 10_000), (256 * M, 10_000), (64 * M, 2000), (256 * M, 2000))
FULL = Config(3000, 512 * M, 600, 4, RSS_FULL, bu.PerfPlan(6, 3, 1), bu.PerfPlan(3, 2, 1, loops=1))
QUICK = Config(150, 64 * M, 48, 2, ((64 * M, 300), (256 * M, 300)), bu.PerfPlan(1, 2, 1, loops=64),
               bu.PerfPlan(1, 2, 1, loops=1))  # fmt: skip


def size_name(size: tuple[int, int]) -> str:
    """``WxH`` of a (height, width)."""
    return f"{size[1]}x{size[0]}"


def h264(preset: str | None) -> dict[str, Any]:
    """The recorder's h264 defaults (read from it, not assumed), the ffmpeg CLI's too, at
    *preset*, pinned: ultrafast when none is given (the default before adaptive quality, whose
    preset moves with the backlog)."""
    codec = recorder.Codec("h264")
    opts = codec.ffmpeg_settings()[3]
    return {"crf": int(opts["crf"]), "preset": preset or "ultrafast", "threads": codec.threads}


# -- 1. append latency -----------------------------------------------------------------------
def timed(call: Callable[[Any], object], args: Iterable[Any]) -> list[int]:
    """Nanoseconds of each ``call(arg)``; producing the next arg (the iterator) is untimed."""
    samples = []
    for arg in args:
        t0 = time.perf_counter_ns()
        call(arg)
        samples.append(time.perf_counter_ns() - t0)
    return samples


def append_after_render(
    folder: Path, size: tuple[int, int], n: int, prefault: bool = True
) -> tuple[list[bu.Latency], int]:
    """Appends of frames just rendered by CartPole-v1 (untimed, resized to *size*: in the
    caches), steps rotating with the table's two copy references; latencies, drops."""
    import gymnasium as gym

    env = gym.make("CartPole-v1", render_mode="rgb_array")
    rng = np.random.default_rng(0)
    lat, cold, hot = (np.empty(n, np.int64) for _ in range(3))
    # Every frame fits: a dropped clip's appends would copy nothing.
    budget = (n + REF_BLOCKS + 2) * size[0] * size[1] * 3
    set_prefault(prefault)
    try:
        env.reset(seed=0)
        with recorder.Recorder(folder, episode_trigger=bu.always, max_queue_bytes=budget) as rec:
            refs = take_arena_blocks(rec, (*size, 3), REF_BLOCKS)
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
            dropped = rec.stats().frames_dropped
            give_back_arena_blocks(rec, refs)
    finally:
        env.close()
        set_prefault(True)
    return [bu.latency_us(s) for s in (lat, cold, hot)], dropped


def paced(rec: recorder.Recorder, frames: Frames, n: int) -> Iterator[np.ndarray]:
    """*n* of *frames* in turn, each once fewer than a worker's batch (QUANTUM) are queued."""
    for frame in islice(cycle(frames), n):
        while rec.stats().queued_frames >= QUANTUM:
            time.sleep(0.0002)
        yield frame


def append_paced(folder: Path, frames: Frames, n: int) -> tuple[list[bu.Latency], int]:
    with recorder.Recorder(folder, episode_trigger=bu.always) as rec, rec.episode(0) as ep:
        lat = timed(ep.append, paced(rec, frames, n))
    return [bu.latency_us(lat)], rec.stats().frames_dropped


def append_burst(folder: Path, frames: Frames, n: int, block: int) -> tuple[list[bu.Latency], int]:
    """In blocks of *block* bytes, a new Recorder each, not to ask the machine for gigabytes."""
    k, lat, dropped = max(1, block // frames[0].nbytes), [], 0
    for start in range(0, n, k):
        stop = min(start + k, n)
        room = (stop - start + 1) * frames[0].nbytes  # every frame of the block fits
        rec = recorder.Recorder(
            folder, episode_trigger=bu.always, max_queue_bytes=room, on_full="drop"
        )
        try:
            with rec.episode(start) as ep:
                lat += timed(ep.append, islice(cycle(frames), start, stop))
            dropped += rec.stats().frames_dropped
        finally:
            rec.close(cancel=True)
    return [bu.latency_us(lat)], dropped


def numpy_references(frames: Frames, n: int, block: int) -> list[bu.Latency]:
    """The copy into a reused buffer; ``empty`` + copy, the fresh buffers kept alive in blocks
    of *block* bytes as the burst mode's frames are."""
    keep: list[np.ndarray] = []

    def fresh(src: np.ndarray) -> None:
        keep.append(np.empty_like(src))
        np.copyto(keep[-1], src)

    k = max(1, block // frames[0].nbytes)
    lat = [timed(partial(np.copyto, np.empty_like(frames[0])), islice(cycle(frames), n)), []]
    for start in range(0, n, k):
        keep.clear()
        lat[1] += timed(fresh, islice(cycle(frames), start, min(start + k, n)))
    return [bu.latency_us(s) for s in lat]


def latency_figures(
    name: str, mode: str, what: str, lat: bu.Latency, use: bu.Usage, drops: int | None = None
) -> dict[str, Any]:
    """One row of the latency table, as figures."""
    return {"size": name, "mode": mode, "what": what, **asdict(lat), "drops": drops,
            "others": use.others_cores}  # fmt: skip


def bench_latency(
    by_size: Mapping[tuple[int, int], Frames], cfg: Config, tmp: Path
) -> list[dict[str, Any]]:
    """The latency table's rows as figures: each append mode's µs per size (modes ``render``,
    ``bare``, ``paced``, ``burst``), the copies timed beside the appends after render (``next``,
    ``same``) and, at 600x400, numpy's own copies (``reused``, ``fresh``)."""
    rows: list[dict[str, Any]] = []
    n = cfg.append_n
    what = "numpy copy of the same just-rendered frames into a block of the same arena"
    for size in LATENCY_SIZES:
        name, frames = size_name(size), by_size[size]
        modes = [  # (label, scratch folder, function, its arguments after the folder)
            ("after render (a training loop)", "render", append_after_render, (size, n)),
            ("after render, without the prefault thread (the copy faults fresh pages in)",
             "bare", append_after_render, (size, n, False)),
            ("paced, frames from RAM (recycled buffers)", "paced", append_paced, (frames, n)),
            ("burst (fresh buffers)", "burst", append_burst, (frames, n, cfg.burst_block_bytes)),
        ]  # fmt: skip
        for mode, key, bench, args in modes:
            bu.log(f"latency {name}: {key}")
            with bu.measure() as use:
                lats, drops = bench(tmp / f"{key}-{name}", *args)
            rows.append(latency_figures(name, key, f"`Episode.append`, {mode}", lats[0], use,
                                        drops))  # fmt: skip
            if key == "render":
                (_, cold, hot), render_use = lats, use
        rows += [
            latency_figures(name, key, f"{what}, {where}: reference, steps interleaved with the "
                            "appends above", lat, render_use)
            for key, where, lat in (
                ("next", f"the next of {REF_BLOCKS} blocks (not in the caches)", cold),
                ("same", "always the same block (in the caches)", hot))
        ]  # fmt: skip
        if size == FRAME:
            bu.log("latency: numpy references")
            with bu.measure() as use:
                reused, fresh = numpy_references(frames, n, cfg.burst_block_bytes)
            rows += [
                latency_figures(name, "reused", "numpy copy into a reused buffer (reference)",
                                reused, use),
                latency_figures(name, "fresh", "numpy `empty` + copy, fresh memory (reference)",
                                fresh, use),
            ]  # fmt: skip
    return rows


# -- 1. the append against a numpy copy into the same arena (pyperf) ---------------------------
#: appends timed per episode (the blocks they fill stay in use): as many as the copy rotates over
CHUNK = REF_BLOCKS


class Parked:
    """An encoder that writes an empty file and parks its worker at a clip's first frame until
    :attr:`gate` opens: while a chunk is appended, every block it fills stays in use (as the
    blocks of a busy encoder do) and no worker thread competes for the GIL."""

    gate = threading.Event()

    def __init__(self, spec: recorder.VideoSpec) -> None:
        self.path = spec.path

    def write(self, image: np.ndarray) -> None:
        if not self.gate.wait(timeout=60):
            raise TimeoutError("the benchmark never opened the gate")

    def close(self) -> None:
        Path(self.path).write_bytes(b"")

    def abort(self) -> None:
        pass


def arena_run(
    variant: str, size: tuple[int, int], data: Path, stack: contextlib.ExitStack
) -> Callable[[int], float]:
    """What a value of *variant* (``admit``: ``Episode.append``; ``copy``: ``np.copyto`` into
    the next of REF_BLOCKS blocks of the same Recorder's arena) runs: *loops* calls of one
    CartPole frame at *size* (in the caches, as just rendered), their seconds."""
    frame = bu.resize_nearest(np.load(data / "frames.npy")[0], *size)
    folder = bu.scratch(stack, data, variant)
    rec = stack.enter_context(recorder.Recorder(
        folder, episode_trigger=bu.always, on_full="drop", encoder_factory=Parked,
        max_queue_bytes=(CHUNK + REF_BLOCKS + 2) * frame.nbytes, sidecars=False,
    ))  # fmt: skip
    stack.callback(Parked.gate.set)  # before the Recorder closes, even after an error
    if variant == "copy":
        blocks = take_arena_blocks(rec, frame.shape, REF_BLOCKS)
        stack.callback(give_back_arena_blocks, rec, blocks)
        for block in blocks:
            block.fill(0)  # faulted in, as the queue's blocks are once used

        def copy(loops: int) -> float:
            start = time.perf_counter()
            for i in range(loops):
                np.copyto(blocks[i % REF_BLOCKS], frame)
            return time.perf_counter() - start

        return copy
    return timed_appends(rec, frame)


def timed_appends(
    rec: recorder.Recorder, frame: np.ndarray, info: dict[str, Any] | None = None
) -> Callable[[int], float]:
    """*loops* calls of ``Episode.append(frame, info=info)`` on *rec* (its encoder
    :class:`Parked`), in episodes of :data:`CHUNK` frames; their seconds."""
    episodes = itertools.count()

    def append(loops: int) -> float:
        seconds = 0.0
        for first in range(0, loops, CHUNK):
            Parked.gate.clear()
            with rec.episode(next(episodes)) as ep:
                start = time.perf_counter()
                for _ in range(min(CHUNK, loops - first)):
                    ep.append(frame, info=info)
                seconds += time.perf_counter() - start
            Parked.gate.set()
            rec.flush()  # untimed: the blocks are free again for the next chunk
        if rec.stats().frames_dropped:
            raise RuntimeError("frames dropped: the budget must hold a chunk")
        return seconds

    return append


# -- 2. encode throughput (pyperf) --------------------------------------------------------------
ENCODERS = {  # variant: label
    "rec1-warm": "recorder, 1 worker (warm)",
    "rec2-warm": "recorder, 2 workers (warm)",
    "rec1-new": "recorder, 1 worker (new Recorder)",
    "rec2-new": "recorder, 2 workers (new Recorder)",
    "ffmpeg": "ffmpeg CLI, videos in sequence",
    "ffmpeg-parallel": "ffmpeg CLI, 2 processes in parallel",
    "rec1-pinned": "recorder, 1 worker, pinned to 1 CPU",
    "ffmpeg-pinned": "ffmpeg CLI, in sequence, pinned to 1 CPU",
}
#: the ratio rows: (numerator, denominator, target), of frames/s
RATIOS = (("rec1-warm", "ffmpeg", 1.0), ("rec1-new", "ffmpeg", 1.0),
          ("rec1-pinned", "ffmpeg-pinned", 1.0), ("rec2-warm", "rec1-warm", 1.6),
          ("rec2-new", "rec1-new", 1.6), ("ffmpeg-parallel", "ffmpeg", None))  # fmt: skip


def encode_run(
    variant: str, frames: Frames, videos: int, settings: dict[str, Any], folder: Path,
    stack: contextlib.ExitStack,
) -> Callable[[], bu.Usage | Path]:  # fmt: skip
    """What a value of *variant* runs (made at its worker's first call): every video encoded,
    a recorder's Usage from its first submit until ``flush()`` returned, else the last file."""
    per = len(frames) // videos
    clips = [frames[i * per : (i + 1) * per] for i in range(videos)]
    total, episodes, exe = per * videos, count(1), bu.ffmpeg_exe()
    codec = recorder.Codec("h264", **settings)
    # The pool keeps up to a quarter of the budget: sized so every buffer is recycled.
    budget = 2 * total * frames[0].nbytes + 64 * bu.MiB

    def new(workers: int) -> recorder.Recorder:
        return recorder.Recorder(folder, workers=workers, max_queue_bytes=budget, codec=codec,
                                 **LOSSLESS)  # fmt: skip

    def encode(rec: recorder.Recorder) -> bu.Usage:
        """Submit every video, flush: the time from the first submit until flush returned."""
        before = rec.stats().frames_encoded
        with bu.measure() as usage:
            handles = [h for v in clips for h in rec.submit(v, episode_index=next(episodes))]
            rec.flush()
        infos = [h.result() for h in handles]
        encoded = rec.stats().frames_encoded - before
        if encoded != total or sum(i.frames for i in infos) != total:
            raise RuntimeError(f"encoded {encoded} frames, expected {total}")
        bu.perf_notes["x264"] = bu.x264_options(infos[-1].path)
        return usage

    def cold(workers: int) -> bu.Usage:
        with new(workers) as rec:
            return encode(rec)

    def pinned() -> bu.Usage:
        # Created while pinned: the worker threads and a new encoder process inherit the
        # single-CPU affinity (so no idle one, unpinned, is reused; nor this one later).
        bu.stop_idle_encoder_processes()
        try:
            with bu.pinned_to_one_cpu():
                return cold(1)
        finally:
            bu.stop_idle_encoder_processes()

    def ffmpeg(start: int = 0, step: int = 1) -> Path:
        for i in range(start, len(clips), step):
            bu.ffmpeg_encode(exe, clips[i], folder / f"ffmpeg-{i}.mp4", **settings)
        bu.perf_notes["x264"] = bu.x264_options(folder / "ffmpeg-0.mp4")
        return folder / "ffmpeg-0.mp4"

    def ffmpeg_parallel() -> Path:
        with ThreadPoolExecutor(2) as pool:  # every other video each; re-raises an error
            list(pool.map(ffmpeg, (0, 1), (2, 2)))
        return folder / "ffmpeg-0.mp4"

    def ffmpeg_pinned() -> Path:
        with bu.pinned_to_one_cpu():  # ffmpeg inherits the single-CPU affinity
            return ffmpeg()

    if variant.endswith("-warm"):
        # One Recorder for every value, as in a training run: pyperf's warm-up made its
        # threads, buffer pool and codec tables.
        rec = stack.enter_context(new(1 if variant == "rec1-warm" else 2))
        return partial(encode, rec)
    runs: dict[str, Callable[[], bu.Usage | Path]] = {
        "rec1-new": partial(cold, 1), "rec2-new": partial(cold, 2), "ffmpeg": ffmpeg,
        "ffmpeg-parallel": ffmpeg_parallel, "rec1-pinned": pinned, "ffmpeg-pinned": ffmpeg_pinned,
    }  # fmt: skip
    return runs[variant]


def quiet_ratio(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Frames/s median of a's quiet values / b's (other processes kept < QUIET CPUs busy)."""
    qa, qb = ([r for r, u in zip(bu.perf_rates(x), bu.perf_usage(x), strict=True)
               if u.others_cores < QUIET] for x in (a, b))  # fmt: skip
    n = f"{len(qa)} + {len(qb)} of {len(a['values'])} + {len(b['values'])} values"
    if not (qa and qb):
        return f"none ({n})"
    return f"{bu.spread(qa).median / bu.spread(qb).median:.2f}, {n}"


def encode_size(
    name: str, runs: dict[str, dict[str, Any]], verdicts: dict[tuple[str, str], dict[str, str]]
) -> dict[str, Any]:
    """One size's figures: each variant's frames/s, CPU, other processes' load; the ratios
    with pyperf's verdicts; the x264 options of the recorder's and ffmpeg's last files."""
    benches = {k: runs[k][name] for k in ENCODERS}
    variants = {
        k: {"fps": asdict(bu.spread(bu.perf_rates(b))), "cpu_ms": bu.perf_cpu_ms(b),
            "others": asdict(bu.spread(u.others_cores for u in bu.perf_usage(b)))}
        for k, b in benches.items()
    }  # fmt: skip
    ratios = []
    for a, b, target in RATIOS:
        verdict = verdicts[a, b][name]
        ratios.append({"a": a, "b": b, "target": target,
                       "all": bu.speed_ratio(benches[a], benches[b], verdict),
                       "quiet": quiet_ratio(benches[a], benches[b])})  # fmt: skip
    x264 = {k: benches[k]["notes"][-1]["x264"] for k in ("rec1-warm", "ffmpeg")}
    return {"size": name, "variants": variants, "ratios": ratios, "x264": x264}


def time_perf(loops: int, make: Callable[[], Any], key: str, timer: bool) -> float:
    """pyperf's time function of every benchmark here: the run *make* makes at the worker's
    first call (kept under *key*), *loops* times; *timer*: the run times itself."""
    run = bu.made_once(key, make)
    return float(run(loops)) if timer else bu.perf_time(loops, run)


def perf(runner: Any, args: Any, stack: contextlib.ExitStack) -> None:
    """The benchmarks of variant ``args.variant``: ``admit`` / ``copy`` per latency size (in
    calls), or an encoder per encode size (in frames)."""
    cfg = QUICK if args.quick else FULL
    if args.variant in ("admit", "copy"):
        for size in LATENCY_SIZES:
            make = partial(arena_run, args.variant, size, args.data, stack)
            runner.bench_time_func(size_name(size), time_perf, make, size_name(size), True)
        return
    settings = h264(args.preset)
    for size in ENCODE_SIZES:
        name = size_name(size)

        def make(size: tuple[int, int] = size) -> Any:
            frames = bu.resized(list(np.load(args.data / "frames.npy")), *size)
            here = bu.scratch(stack, args.data, args.variant)
            return encode_run(args.variant, frames[: cfg.encode_frames], cfg.encode_videos,
                              settings, here, stack)  # fmt: skip

        total = cfg.encode_frames // cfg.encode_videos * cfg.encode_videos
        runner.bench_time_func(name, time_perf, make, name, False, inner_loops=total)


# -- 3. peak RSS, 4. keep ------------------------------------------------------------------------
def child(budget: int, n: int) -> dict[str, Any]:
    """In a fresh process: stream *n* 600x400 frames with on_full="block"."""
    frames = bu.cartpole_frames(RSS_CYCLE)
    gc.collect()
    baseline, baseline_max = bu.rss_mb(), bu.maxrss_mb()
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        rec = recorder.Recorder(folder, max_queue_bytes=budget, **LOSSLESS)
        with rec, rec.episode(0) as ep:
            for i in range(n):
                ep.append(frames[i % RSS_CYCLE])
        wall = time.perf_counter() - start
        info, stats = ep.handles[0].result(), rec.stats()
    return {
        "encoder_process_mb": bu.encoder_processes_hwm_mb(),  # idle now, kept for a next one
        "baseline_mb": baseline, "baseline_maxrss_mb": baseline_max, "maxrss_mb": bu.maxrss_mb(),
        "hwm_mb": bu.rss_mb("VmHWM"), "peak_queued_mb": stats.peak_queued_bytes / bu.MiB,
        "frames": info.frames, "dropped": stats.frames_dropped, "fps": n / wall,
        "wall_s": wall, "budget_mib": budget // bu.MiB, "count": n,
    }  # fmt: skip


def rss_row(r: dict[str, Any]) -> Row:
    peak, base = r["maxrss_mb"], r["baseline_mb"]
    bound = base + r["budget_mib"] * bu.MiB / 1e6
    return [f"{r['count']:,}", f"{r['count'] * FRAME[0] * FRAME[1] * 3 / 1e9:.1f}",
            r["budget_mib"], f"{base:.0f}", f"{peak:.0f} {bu.mark(peak < 300)}",
            f"{r['hwm_mb']:.0f}", f"{peak - base:.0f}", f"{bound:.0f} {bu.mark(peak <= bound)}",
            f"{r['encoder_process_mb']:.0f}", f"{r['peak_queued_mb']:.0f}", f"{r['frames']:,}",
            r["dropped"], f"{r['fps']:.0f}"]  # fmt: skip


def bench_keep(frames: Frames, episodes: int, tmp: Path) -> dict[str, Any]:
    """Keep best 5 / worst 2 by return: every episode is encoded as a candidate, most deleted."""
    rng, folder = np.random.default_rng(0), tmp / "keep"
    keep = recorder.Keep(best=5, worst=2, by="return")
    start = time.perf_counter()
    # Lossless: a dropped candidate would still be ranked, and the kept count would lie.
    with recorder.Recorder(folder, keep=keep, **LOSSLESS) as rec:
        for e in range(episodes):
            with rec.episode(e, metadata={"return": float(rng.normal())}) as ep:
                for frame in frames[(e * 7) % 30 : (e * 7) % 30 + 30]:
                    ep.append(frame)
    wall = time.perf_counter() - start
    # The manifest has a line for every candidate saved, and one for each deletion.
    saved = [r for r in read_manifest(folder) if "event" not in r]
    kept = {p.name for p in folder.glob("*.mp4")}
    return {
        "episodes": episodes, "candidates": len(saved), "kept": len(kept),
        "deleted": rec.stats().videos_saved - len(kept),
        "encode_all_s": sum(r["encode_seconds"] for r in saved),
        "encode_kept_s": sum(r["encode_seconds"] for r in saved if r["path"] in kept),
        "wall_s": wall,
    }  # fmt: skip


def revision() -> str:
    """The commit the recorder was measured at, and whether recorder/ had local changes."""
    git = partial(subprocess.run, cwd=Path(__file__).resolve().parent.parent, check=True,
                  capture_output=True, text=True)  # fmt: skip
    try:
        head = git(["git", "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = git(["git", "status", "--porcelain", "--", "recorder"]).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown revision"
    return f"commit {head}" + (" with uncommitted changes in recorder/" if dirty else "")


def measure(bench: bu.Bench) -> dict[str, Any]:
    """Peak RSS first, while this process is small: ru_maxrss survives exec, so a child would
    otherwise report at least the parent's size at spawn time."""
    cfg, tmp, quick = bench.cfg, bench.tmp, bench.args.quick
    bu.log(f"rss: {len(cfg.rss_runs)} children")
    rss = [bu.in_child(__file__, budget, frames, timeout=600) for budget, frames in cfg.rss_runs]
    bu.log("collecting CartPole frames")
    base = bu.cartpole_frames(max(cfg.encode_frames, 60 if quick else 300))
    np.save(tmp / "frames.npy", np.stack(base))  # for the pyperf workers
    by_size = {size: bu.resized(base, *size) for size in {*LATENCY_SIZES, *ENCODE_SIZES}}
    latency = bench_latency(by_size, cfg, tmp)
    arena_files = {k: bench.perf(k, *cfg.arena_perf.args()) for k in ("admit", "copy")}
    arena_runs = {k: bu.perf_load(path) for k, path in arena_files.items()}
    verdicts = bu.perf_compare(arena_files["copy"], arena_files["admit"])
    arena = {
        name: {"admit_us": admit["mean"] * 1e6, "copy_us": arena_runs["copy"][name]["mean"] * 1e6,
               "ratio": bu.compared(admit["mean"] / arena_runs["copy"][name]["mean"],
                                    verdicts[name])}
        for name, admit in arena_runs["admit"].items()
    }  # fmt: skip
    files = {k: bench.perf(k, *cfg.encode_perf.args()) for k in ENCODERS}
    runs = {k: bu.perf_load(path) for k, path in files.items()}
    encode_verdicts = {(a, b): bu.perf_compare(files[b], files[a]) for a, b, _ in RATIOS}
    encode = [encode_size(size_name(s), runs, encode_verdicts) for s in ENCODE_SIZES]
    bu.log("keep best/worst")
    keep = bench_keep(by_size[FRAME], 12 if quick else 60, tmp)
    return {
        "cfg": asdict(cfg), "renders": len(base), "quantum": QUANTUM,
        "h264": h264(bench.args.preset), "revision": revision(), "append": latency,
        "arena": arena, "encode": encode, "rss": rss, "keep": keep,
    }  # fmt: skip


def latency_table(data: dict[str, Any]) -> str:
    """The append latencies and their references; per size, the append / copy of pyperf."""
    rows: list[Row] = []
    for r in data["append"]:
        drops = "-" if r["drops"] is None else r["drops"]
        # issue 2's targets (median ≤ 30 µs, p99 ≤ 100 µs at 600x400) are retired: no marks
        rows.append([r["size"], r["what"], r["n"], f"{r['median']:.1f}", f"{r['p99']:.1f}",
                     f"{r['max']:.0f}", drops, f"{r['others']:.2f}"])  # fmt: skip
        if r["mode"] == "same":
            ratio = data["arena"][r["size"]]["ratio"]
            met = f" {bu.mark(ratio['ratio'] <= 1.15)}" if r["size"] == size_name(FRAME) else ""
            rows.append([r["size"], (f"**append / copy into the next of {REF_BLOCKS} blocks, "
                         "pyperf mean times** (target ≤ 1.15)"), "-",
                         bu.fmt_compared(ratio) + met, *["-"] * 4])  # fmt: skip
    return bu.markdown_table(
        "frame | what | n | median µs | p99 µs | max µs | frames dropped | "
        "other processes' CPU load (cores)", rows)  # fmt: skip


def encode_tables(data: dict[str, Any]) -> tuple[str, str, str]:
    """The encoders' frames/s, the ratios, and the notes comparing the x264 options."""
    cfg, rows, ratio_rows, notes = data["cfg"], [], [], []
    per = cfg["encode_frames"] // cfg["encode_videos"]
    retired = data["h264"]["preset"] in RETIRED_PRESETS
    for size in data["encode"]:
        name = size["size"]
        rows += [[name, ENCODERS[k], f"{cfg['encode_videos']} x {per}",
                  bu.fmt_spread(v["fps"], 0), f"{v['cpu_ms']:.2f}", bu.fmt_spread(v["others"], 2)]
                 for k, v in size["variants"].items()]  # fmt: skip
        for r in size["ratios"]:
            target, ratio = r["target"], r["all"]
            met = "-" if target is None else bu.mark(ratio["ratio"] >= target)
            if target == 1.6 and retired:
                met = "retired"  # 2 workers / 1 worker at ultrafast: see the report's words
            ratio_rows.append([name, f"{ENCODERS[r['a']]} / {ENCODERS[r['b']]}",
                               bu.fmt_compared(ratio), r["quiet"],
                               "-" if target is None else f">= {target}", met])  # fmt: skip
        ours, theirs = size["x264"]["rec1-warm"], size["x264"]["ffmpeg"]
        if ours is not None and ours == theirs:
            short = bu.short_x264(ours, "threads lookahead_threads crf bframes ref subme me rc")
            notes.append(f"{name}: the x264 options in both streams are identical (`{short}`).")
        else:
            notes.append(f"{name}: x264 options DIFFER: recorder `{ours}`, ffmpeg `{theirs}`.")
    table = bu.markdown_table(
        "frame | encoder | videos x frames | frames/s | CPU ms/frame | "
        "other processes' CPU load (cores)", rows)  # fmt: skip
    ratios = bu.markdown_table(
        "frame | ratio | all values: ratio of mean times (pyperf's verdict) | quiet values: "
        "ratio of medians | target | met (all values)", ratio_rows)  # fmt: skip
    return table, ratios, "\n".join(f"- {note}" for note in notes)


def report(doc: bu.Report, data: dict[str, Any]) -> None:
    cfg, settings = data["cfg"], data["h264"]
    doc.header(before=f"Recorder at {data['revision']}. ")
    doc.say("latency", renders=data["renders"], quantum=data["quantum"],
            burst_mib=cfg["burst_block_bytes"] // bu.MiB, arena=cfg["arena_perf"], chunk=CHUNK,
            table=latency_table(data))  # fmt: skip
    preset, crf, threads = settings["preset"], settings["crf"], settings["threads"]
    x264 = f"-c:v libx264 -preset {preset} -crf {crf} -threads {threads} -g {keyframe_interval(30)}"
    table, ratios, notes = encode_tables(data)
    doc.say("encode", cfg=cfg, perf=cfg["encode_perf"], x264=x264, threads=threads, quiet=QUIET,
            table=table, ratios=ratios, notes=notes)  # fmt: skip
    doc.say("rss", cycle=RSS_CYCLE, table=bu.markdown_table(
        "frames | raw GB | max_queue_bytes MiB | baseline MB | peak RSS MB | VmHWM MB | "
        "peak - baseline MB | baseline + budget MB (peak ≤ it: issue 13) | "
        "encoder process peak MB | peak queued MiB | frames in video | dropped | frames/s",
        [rss_row(r) for r in data["rss"]]))  # fmt: skip
    keep = data["keep"]
    counts = [keep[k] for k in ("episodes", "candidates", "kept", "deleted")]
    seconds = [f"{keep[k]:.2f}" for k in ("encode_all_s", "encode_kept_s", "wall_s")]
    doc.say("keep", table=bu.markdown_table(
        "episodes | candidates encoded | kept on disk | deleted | candidates / kept | "
        "encode s, all candidates | encode s, kept only | wall s",
        [[*counts, f"{keep['candidates'] / max(keep['kept'], 1):.1f}", *seconds]]))  # fmt: skip
    doc.footer()


if __name__ == "__main__":
    raise SystemExit(bu.main(sys.modules[__name__]))
