"""Core benchmark (issue 2): append latency, encode throughput vs the ffmpeg CLI, peak RSS.

Usage: ``python scripts/bench_core.py [--quick] [--preset P] [--out FILE] [--json FILE]``.
"""

from __future__ import annotations

import contextlib
import gc
import subprocess
import sys
import tempfile
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
from recorder import _testing
from recorder._encode.encoder import keyframe_interval
from recorder._encode.sidecars import read_manifest
from recorder._queue import queue as _queue

TITLE = "Core benchmark (issue 2)"
OPTIONS = [
    (("--preset",), {"help": "x264 preset for the encode benchmark (default: the recorder's)"})
]
FRAME = (400, 600)  # CartPole-v1 rgb_array
LATENCY_SIZES = [(64, 64), (256, 256), FRAME, (720, 1280)]
ENCODE_SIZES = [FRAME, (256, 256)]
RSS_CYCLE = 32  # distinct CartPole frames the RSS child cycles through
QUIET = 0.25  # a round is "quiet" when other processes used less CPU than this
#: arena blocks the copy reference rotates over: more than the caches hold, like the blocks
#: of a queue that grows while the encoder lags (each written once before, as those are).
REF_BLOCKS = 64
# Recorder() options: record every episode, block rather than drop a frame.
LOSSLESS: dict[str, Any] = {"episode_trigger": bu.always, "on_full": "block"}
Row = list[object]
Frames = Sequence[np.ndarray]


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
    _queue.PREFAULT = prefault
    try:
        env.reset(seed=0)
        with recorder.Recorder(folder, episode_trigger=bu.always, max_queue_bytes=budget) as rec:
            queue = _testing.queue_of(rec)
            with queue._lock:
                blocks = [queue.memory.alloc((*size, 3)) for _ in range(REF_BLOCKS)]
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
            dropped = rec.stats().frames_dropped
            with queue._lock:
                for block in refs:
                    queue.memory.release(block, block.nbytes)
    finally:
        env.close()
        _queue.PREFAULT = True
    return [bu.latency_us(s) for s in (lat, cold, hot)], dropped


def paced(rec: recorder.Recorder, frames: Frames, n: int) -> Iterator[np.ndarray]:
    """*n* of *frames* in turn, each once fewer than a worker's batch (QUANTUM) are queued."""
    for frame in islice(cycle(frames), n):
        while rec.stats().queued_frames >= _queue.QUANTUM:
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


def judged(value: float, ok: bool, target: bool, digits: int = 1) -> str:
    """*value* formatted, with its target's verdict on a targeted row."""
    return f"{value:.{digits}f}" + (f" {bu.mark(ok)}" if target else "")


def latency_row(
    name: str, what: str, lat: bu.Latency, use: bu.Usage, drops: object = "-", target: bool = False
) -> Row:
    return [name, what, lat.n, judged(lat.median, lat.median <= 30, target),
            judged(lat.p99, lat.p99 <= 100, target), f"{lat.max:.0f}", drops,
            f"{use.others_cores:.2f}"]  # fmt: skip


def bench_latency(
    by_size: Mapping[tuple[int, int], Frames], cfg: Config, tmp: Path
) -> tuple[list[Row], list[dict[str, Any]]]:
    """The table's rows, and its figures for bench_all: each append mode's µs per size, and
    append / copy (mode ``ratio``, in ``median``)."""
    rows: list[Row] = []
    figures: list[dict[str, Any]] = []
    n = cfg.append_n
    what = "numpy copy of the same just-rendered frames into a block of the same arena"
    for size in LATENCY_SIZES:
        name, frames, target = f"{size[1]}x{size[0]}", by_size[size], size == FRAME
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
            rows.append(latency_row(name, f"`Episode.append`, {mode}", lats[0], use, drops, target))
            figures.append({"size": name, "mode": key, **asdict(lats[0])})
            if key == "render":
                (appended, cold, hot), render_use = lats, use
        rows += [
            latency_row(name, f"{what}, {where}: reference, steps interleaved with the appends "
                        "above", lat, render_use)
            for where, lat in ((f"the next of {REF_BLOCKS} blocks (not in the caches)", cold),
                               ("always the same block (in the caches)", hot))
        ]  # fmt: skip
        ratio = appended.median / cold.median
        figures.append({"size": name, "mode": "ratio", "median": ratio})
        rows.append([name, (f"**append / copy into the next of {REF_BLOCKS} blocks, medians** "
                     "(target ≤ 1.15)"), "-", judged(ratio, ratio <= 1.15, target, 2),
                     *["-"] * 4])  # fmt: skip
        if target:
            bu.log("latency: numpy references")
            with bu.measure() as use:
                reused, fresh = numpy_references(frames, n, cfg.burst_block_bytes)
            rows += [
                latency_row(name, "numpy copy into a reused buffer (reference)", reused, use),
                latency_row(name, "numpy `empty` + copy, fresh memory (reference)", fresh, use),
            ]
    return rows, figures


# -- 2. encode throughput ----------------------------------------------------------------------
#: the ratio rows: (numerator, denominator) as indices into encode_size's variants, target
RATIOS = ((0, 4, 1.0), (2, 4, 1.0), (6, 7, 1.0), (1, 0, 1.6), (3, 2, 1.6), (5, 4, None))


def encode_size(
    size: tuple[int, int], frames: Frames, cfg: Config, h264: dict[str, Any], tmp: Path
) -> tuple[list[Row], list[Row], str]:
    """One size's encode rows, ratio rows and the note comparing the x264 options."""
    name, per = f"{size[1]}x{size[0]}", len(frames) // cfg.encode_videos
    videos = [frames[i * per : (i + 1) * per] for i in range(cfg.encode_videos)]
    total, folder, episodes, paths = per * cfg.encode_videos, tmp / f"encode-{name}", count(1), []
    folder.mkdir()
    codec, exe = recorder.Codec("h264", **h264), bu.ffmpeg_exe()
    # The pool keeps up to a quarter of the budget: sized so every buffer is recycled.
    budget = 2 * total * frames[0].nbytes + 64 * bu.MiB

    def new(workers: int) -> recorder.Recorder:
        return recorder.Recorder(folder, workers=workers, max_queue_bytes=budget, codec=codec,
                                 **LOSSLESS)  # fmt: skip

    def encode(rec: recorder.Recorder) -> bu.Usage:
        """Submit every video, flush: the time from the first submit until flush returned."""
        before = rec.stats().frames_encoded
        with bu.measure() as usage:
            handles = [h for v in videos for h in rec.submit(v, episode_index=next(episodes))]
            rec.flush()
        infos = [h.result() for h in handles]
        encoded = rec.stats().frames_encoded - before
        if encoded != total or sum(i.frames for i in infos) != total:
            raise RuntimeError(f"encoded {encoded} frames, expected {total}")
        paths.append(infos[-1].path)
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

    def ffmpeg(start: int = 0, step: int = 1) -> None:
        for i in range(start, len(videos), step):
            bu.ffmpeg_encode(exe, videos[i], folder / f"ffmpeg-{i}.mp4", **h264)

    def ffmpeg_parallel() -> None:
        with ThreadPoolExecutor(2) as pool:  # every other video each; re-raises an error
            list(pool.map(ffmpeg, (0, 1), (2, 2)))

    def ffmpeg_pinned() -> None:
        with bu.pinned_to_one_cpu():  # ffmpeg inherits the single-CPU affinity
            ffmpeg()

    with contextlib.ExitStack() as stack:
        bu.log(f"encode {name}: warming up")
        warm: dict[int, recorder.Recorder] = {}
        for workers in (1, 2):
            warm[workers] = stack.enter_context(new(workers))
            encode(warm[workers])  # warm-up: threads, buffer pool, codec tables
        variants = [bu.Variant(label, run) for label, run in (
            ("recorder, 1 worker (warm)", lambda: encode(warm[1])),
            ("recorder, 2 workers (warm)", lambda: encode(warm[2])),
            ("recorder, 1 worker (new Recorder)", lambda: cold(1)),
            ("recorder, 2 workers (new Recorder)", lambda: cold(2)),
            ("ffmpeg CLI, videos in sequence", ffmpeg),
            ("ffmpeg CLI, 2 processes in parallel", ffmpeg_parallel),
            ("recorder, 1 worker, pinned to 1 CPU", pinned),
            ("ffmpeg CLI, in sequence, pinned to 1 CPU", ffmpeg_pinned),
        )]  # fmt: skip
        bu.log(f"encode {name}: {cfg.rounds} interleaved rounds")
        bu.interleave(cfg.rounds, variants)
    fps = [[total / u.wall for u in v.usages] for v in variants]
    rows: list[Row] = [
        [name, v.label, f"{len(videos)} x {per}", bu.spread(f).fmt(0),
         f"{bu.spread(u.cpu / total * 1e3 for u in v.usages).median:.2f}",
         bu.spread(u.others_cores for u in v.usages).fmt(2)]
        for v, f in zip(variants, fps, strict=True)
    ]  # fmt: skip
    ratio_rows: list[Row] = []
    for a, b, target in RATIOS:
        ratio, rounds = bu.paired_ratios(fps[a], fps[b]), len(fps[a])
        pairs = zip(fps[a], fps[b], variants[a].usages, variants[b].usages, strict=True)
        quiet = [(x, y) for x, y, ux, uy in pairs if max(ux.others_cores, uy.others_cores) < QUIET]
        quiet_text = f"none of {rounds}"
        if quiet:
            quiet_ratio = bu.paired_ratios(*zip(*quiet, strict=True)).fmt(2)
            quiet_text = f"{quiet_ratio}, {len(quiet)} of {rounds}"
        met = "-" if target is None else bu.mark(ratio.median >= target)
        ratio_rows.append([name, f"{variants[a].label} / {variants[b].label}", ratio.fmt(2),
                           quiet_text, "-" if target is None else f">= {target}", met])  # fmt: skip
    ours, theirs = bu.x264_options(paths[-1]), bu.x264_options(folder / "ffmpeg-0.mp4")
    if ours is not None and ours == theirs:
        short = bu.short_x264(ours, "threads lookahead_threads crf bframes ref subme me rc")
        note = f"{name}: the x264 options in both streams are identical (`{short}`)."
    else:
        note = f"{name}: x264 options DIFFER: recorder `{ours}`, ffmpeg `{theirs}`."
    return rows, ratio_rows, note


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


def run(bench: bu.Bench) -> dict[str, Any]:
    """Peak RSS first, while this process is small: ru_maxrss survives exec, so a child would
    otherwise report at least the parent's size at spawn time."""
    cfg, tmp, quick = bench.cfg, bench.tmp, bench.args.quick
    bu.log(f"rss: {len(cfg.rss_runs)} children")
    rss = [bu.in_child(__file__, budget, frames, timeout=600) for budget, frames in cfg.rss_runs]
    bu.log("collecting CartPole frames")
    base = bu.cartpole_frames(max(cfg.encode_frames, 60 if quick else 300))
    by_size = {size: bu.resized(base, *size) for size in {*LATENCY_SIZES, *ENCODE_SIZES}}
    latency, append = bench_latency(by_size, cfg, tmp)
    # The recorder's h264 defaults (read from it, not assumed): the ffmpeg CLI gets them too.
    codec = recorder.Codec("h264")
    opts = codec.ffmpeg_settings()[3]
    crf, preset, threads = int(opts["crf"]), bench.args.preset or opts["preset"], codec.threads
    h264 = {"crf": crf, "preset": preset, "threads": threads}
    encode = [encode_size(s, by_size[s][: cfg.encode_frames], cfg, h264, tmp) for s in ENCODE_SIZES]
    bu.log("keep best/worst")
    keep = bench_keep(by_size[FRAME], 12 if quick else 60, tmp)
    bench.header(before=f"Recorder at {revision()}. ")
    bench.say("latency", renders=len(base), quantum=_queue.QUANTUM,
              burst_mib=cfg.burst_block_bytes // bu.MiB, table=bu.markdown_table(
                  "frame | what | n | median µs | p99 µs | max µs | frames dropped | "
                  "other processes' CPU load (cores)", latency))  # fmt: skip
    x264 = f"-c:v libx264 -preset {preset} -crf {crf} -threads {threads} -g {keyframe_interval(30)}"
    bench.say(
        "encode", cfg=cfg, x264=x264, threads=threads, quiet=QUIET,
        table=bu.markdown_table(
            "frame | encoder | videos x frames | frames/s | CPU ms/frame | "
            "other processes' CPU load (cores)", [row for rows, _, _ in encode for row in rows]),
        ratios=bu.markdown_table(
            "frame | ratio | all rounds | quiet rounds | target | met (all rounds)",
            [row for _, ratios, _ in encode for row in ratios]),
        notes="\n".join(f"- {note}" for *_, note in encode),
    )  # fmt: skip
    bench.say("rss", cycle=RSS_CYCLE, table=bu.markdown_table(
        "frames | raw GB | max_queue_bytes MiB | baseline MB | peak RSS MB | VmHWM MB | "
        "peak - baseline MB | baseline + budget MB (peak ≤ it: issue 13) | "
        "encoder process peak MB | peak queued MiB | frames in video | dropped | frames/s",
        [rss_row(r) for r in rss]))  # fmt: skip
    counts = [keep[k] for k in ("episodes", "candidates", "kept", "deleted")]
    seconds = [f"{keep[k]:.2f}" for k in ("encode_all_s", "encode_kept_s", "wall_s")]
    bench.say("keep", table=bu.markdown_table(
        "episodes | candidates encoded | kept on disk | deleted | candidates / kept | "
        "encode s, all candidates | encode s, kept only | wall s",
        [[*counts, f"{keep['candidates'] / max(keep['kept'], 1):.1f}", *seconds]]))  # fmt: skip
    bench.footer()
    return {"append": append, "rss": rss, "keep": keep}


if __name__ == "__main__":
    raise SystemExit(bu.main(sys.modules[__name__]))
