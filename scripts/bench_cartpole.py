"""CartPole benchmarks (issue 3; issue 7 scenarios 1, 2, 4, 5): the drop-ins against gymnasium.

1. Training-loop time / the same loop rendering only, every episode recorded (and on the default
   schedule), for recorder's and gymnasium's ``RecordVideo`` and ``save_video``.
2. Time until every video is on disk (loop + ``close()``/flush), relative to gymnasium's.
4. Peak RSS recording one 10,000-frame episode (each in a fresh subprocess).
5. A Python-bound loop (a ~2 ms pure-Python step): 1 and 2 workers, two switch intervals.

Usage: ``python scripts/bench_cartpole.py [--quick] [--out PATH] [--json PATH]``.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import gymnasium as gym
import numpy as np
from gymnasium.wrappers import RecordVideo

import recorder
import recorder.wrappers
from recorder._testing import count_budget_waits

TITLE = "CartPole benchmark: recorder vs gymnasium (issues 3 and 7)"
ENV_ID = "CartPole-v1"
SEED = 0
LOOP_TARGET = 1.1  # recorder loop time / render-only loop time (issue 13)
DISK_TARGET = 0.4  # recorder time to disk / gymnasium RecordVideo's


@dataclass(frozen=True)
class Config:
    """How much to measure."""

    steps: int  # scenarios 1/2: steps per loop
    rounds: int
    sched_rounds: int  # the default-schedule loops are short (~0.3 s): more rounds of them
    warmup_steps: int
    py_steps: int  # scenario 5
    py_rounds: int
    py_step_ms: float
    rss_frames: int  # scenario 4: the recorder's episode
    rss_peer_frames: tuple[int, int]  # ... gymnasium's, extrapolated from these two


FULL = Config(2000, 5, 16, 100, 800, 3, 2.0, 10_000, (500, 1000))
QUICK = Config(60, 1, 1, 10, 30, 1, 2.0, 120, (20, 40))


def make_env(max_episode_steps: int | None = None) -> gym.Env[Any, Any]:
    return gym.make(ENV_ID, render_mode="rgb_array", max_episode_steps=max_episode_steps)


def spread(values: list[float]) -> dict[str, Any] | None:
    return asdict(bu.spread(values)) if values else None


def ratio(x: bu.Variant, base: bu.Variant, name: str) -> dict[str, Any]:
    """The per-round ratios of *name* of x's runs to base's."""
    return asdict(bu.paired_ratios(x.values(name), base.values(name)))


def num(value: float | None, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


# -- the training loop (scenarios 1, 2 and 5) ---------------------------------------------------

KINDS = {"render": "baseline", "render-busy": "baseline", "gymnasium": "peer",
         "gymnasium-save": "peer"}  # fmt: skip  # else recorder


def x264_neighbour() -> subprocess.Popen[bytes]:
    """An ffmpeg CLI x264 encode of its own test pattern (600x400, ultrafast, 1 thread, niced
    as the recorder's encoder), every thread confined to one CPU: what any background encoder
    costs a loop on the other CPU of this machine, whoever wrote the encoder."""
    cmd = ["nice", "-n", "10", bu.ffmpeg_exe(), "-loglevel", "error", "-filter_threads", "1",
           "-f", "lavfi", "-i", "testsrc2=size=600x400:rate=30", "-c:v", "libx264",
           "-preset", "ultrafast", "-threads", "1", "-f", "null", "-"]  # fmt: skip
    with bu.pinned_to_one_cpu():  # inherited by the child and all its threads
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    time.sleep(0.3)  # untimed: the encoder is up and busy before the loop starts
    return proc


@dataclass
class Loop:
    """The training loop, run one way (``render``: render only; ``recorder`` / ``gymnasium``:
    their RecordVideo; ``*-save``: their save_video at episode end) on the same actions, so the
    same episodes and frames. A wrapper renders itself; the other ways call ``env.render()``
    after the reset and every step of an episode the trigger wants (None: the default schedule),
    the save ways save each episode at its end (the last, partial one after the loop: as close).
    A run has ``loop_s`` (first reset to last step), ``disk_s`` (+ close/flush), ``cpu_s`` (the
    loop thread's), ``videos`` on disk, the ``expected`` ones, their ``bytes``, and the
    recorder's figures (``presets``: frames encoded at each preset).
    """

    tmp: Path
    actions: Sequence[int]
    work: Callable[[], object] | None = None  # after each step: scenario 5's policy
    switch: float | None = None  # sys.setswitchinterval() during the run

    def __call__(self, way: str, kwargs: dict[str, Any], trigger: Any = bu.always) -> Any:
        import gymnasium.utils.save_video as gym_save  # imports moviepy

        default_switch = sys.getswitchinterval()
        sys.setswitchinterval(self.switch or default_switch)
        folder = Path(tempfile.mkdtemp(dir=self.tmp)) / "videos"  # none: no "overwriting" warning
        save = {"recorder-save": recorder.save_video, "gymnasium-save": gym_save.save_video}
        save_fn, schedule = save.get(way), trigger or recorder.capped_cubic_video_schedule
        env: Any = make_env()
        neighbour = None
        presets: collections.Counter[str] = collections.Counter()
        if way == "recorder":
            env = recorder.wrappers.RecordVideo(
                env, str(folder), episode_trigger=trigger, recorder_kwargs=kwargs or None,
                on_saved=partial(count_presets, presets),
            )  # fmt: skip
            blocked = count_budget_waits(env.recorder)
        elif way == "gymnasium":
            env = RecordVideo(env, str(folder), episode_trigger=trigger)
        frames: list[Any] = []
        handles: list[recorder.ClipHandle] = []
        episodes = 0

        def end_episode() -> None:
            if save_fn:
                handles.extend(
                    save_fn(frames[:], str(folder), episode_trigger=bu.always,
                            fps=env.metadata["render_fps"], episode_index=episodes) or ()
                )  # fmt: skip
                frames.clear()

        def render() -> None:
            if save_fn:
                frames.append(env.render())
            elif way.startswith("render") and schedule(episodes):
                env.render()

        try:
            if way == "render-busy":
                neighbour = x264_neighbour()
            start, cpu_start = time.perf_counter(), time.thread_time()
            env.reset(seed=SEED)
            render()
            for action in self.actions:
                _, _, terminated, truncated, _ = env.step(action)
                if self.work is not None:
                    self.work()
                render()
                if terminated or truncated:
                    end_episode()
                    episodes += 1
                    env.reset()
                    render()
            wall, cpu = time.perf_counter() - start, time.thread_time() - cpu_start
            run = SimpleNamespace(loop_s=wall, disk_s=wall, cpu_s=cpu, videos=0, expected=0)
            if way.startswith("render"):
                return run
            end_episode()
            if way == "recorder-save":
                recorder.flush()
            elif not save_fn:
                env.close()
            run.disk_s = time.perf_counter() - start  # every video on disk
            run.videos = len(list(folder.glob("*.mp4")))
            run.bytes = sum(p.stat().st_size for p in folder.glob("*.mp4"))
            run.expected = sum(bool(schedule(e)) for e in range(episodes + 1))
            if way == "recorder-save":
                run.videos_dropped = sum(h.exception() is not None for h in handles)
            elif way == "recorder":
                s = env.recorder.stats()
                run.frames_dropped, run.frames_encoded = s.frames_dropped, s.frames_encoded
                run.videos_dropped = s.videos_dropped + s.videos_failed
                run.peak_queued_mib, run.blocked_s = s.peak_queued_bytes / bu.MiB, blocked[1]
                run.presets = dict(presets)
                if s.frames_encoded and s.encode_seconds:
                    run.encoder_fps = s.frames_encoded / s.encode_seconds
            return run
        finally:
            env.close()  # idempotent; after an error, no worker thread left behind
            if neighbour is not None:
                neighbour.kill()
                neighbour.wait()
            shutil.rmtree(folder.parent, ignore_errors=True)
            sys.setswitchinterval(default_switch)


def count_presets(counts: collections.Counter[str], info: recorder.VideoInfo) -> None:
    """Add *info*'s frames to *counts*, by the preset that encoded them (on_saved)."""
    start = 0
    preset = info.preset or "-"
    for frame, changed in info.preset_changes:
        counts[preset] += frame - start
        start, preset = frame, changed
    counts[preset] += info.frames - start


def summary(x: bu.Variant, base: bu.Variant) -> dict[str, Any]:
    """The figures both loop scenarios report of a variant, its ratios to *base*'s runs."""
    return {
        "label": x.label, "kind": x.kind, "loop_s": spread(x.values("loop_s")),
        "loop_ratio": ratio(x, base, "loop_s"), "cpu_ratio": ratio(x, base, "cpu_s"),
        "blocked_s": spread(x.values("blocked_s")), "disk_s": spread(x.values("disk_s")),
        "complete": x.values("videos") == x.values("expected"),
    }  # fmt: skip


# -- scenarios 1 and 2 ------------------------------------------------------------------------

RENDER_ONLY = "render only (env.render() every step, discarded)"
DEFAULT_RV = "recorder.wrappers.RecordVideo (defaults: 1 worker, 256 MiB)"
GYM_RV = "gymnasium.wrappers.RecordVideo"
BUSY_NEIGHBOUR = "render only, an x264 encode busy on the other CPU (ffmpeg CLI, reference)"
RENDER_SCHED = "render only, scheduled episodes"
LOOP_VARIANTS = {  # group: (label, way, recorder_kwargs); "schedule": the default schedule
    "every": (
        (RENDER_ONLY, "render", {}),
        (BUSY_NEIGHBOUR, "render-busy", {}),
        (DEFAULT_RV, "recorder", {}),
        ("recorder RecordVideo, workers=2", "recorder", {"workers": 2}),
        ('recorder RecordVideo, encode_in="thread"', "recorder", {"encode_in": "thread"}),
        ("recorder RecordVideo, worker_nice=0", "recorder", {"worker_nice": 0}),
        ("recorder RecordVideo, max_queue_bytes=2 GiB", "recorder", {"max_queue_bytes": 2**31}),
        ("recorder RecordVideo, preset=veryfast", "recorder", {"preset": "veryfast"}),
        (GYM_RV, "gymnasium", {}),
        ("gymnasium.utils.save_video at episode end", "gymnasium-save", {}),
        ("recorder.save_video at episode end", "recorder-save", {}),
    ),
    "schedule": (
        (RENDER_SCHED, "render", {}),
        (f"{RENDER_SCHED} (2nd run: noise floor)", "render", {}),
        ("recorder.wrappers.RecordVideo, default schedule", "recorder", {}),
        ("gymnasium.wrappers.RecordVideo, default schedule", "gymnasium", {}),
    ),
}


def scenario_loop(cfg: Config, tmp: Path) -> dict[str, Any]:
    actions = np.random.default_rng(SEED).integers(2, size=cfg.steps).tolist()
    variants = [
        bu.Variant(label, partial(Loop(tmp, actions), way, kw, None if group == "schedule"
                   else bu.always), group, KINDS.get(way, "recorder"))
        for group, table in LOOP_VARIANTS.items()
        for label, way, kw in table
    ]  # fmt: skip
    bu.log(f"scenario 1/2: warming up ({cfg.warmup_steps} steps per variant)")
    for way in ("render", "recorder", "gymnasium", "gymnasium-save", "recorder-save"):
        Loop(tmp, actions[: cfg.warmup_steps])(way, {})
    bu.log(f"scenario 1/2: {len(variants)} variants x {cfg.rounds} interleaved rounds")
    bu.interleave(cfg.rounds, variants)
    sched = [x for x in variants if x.group == "schedule"]
    if cfg.sched_rounds > cfg.rounds:
        bu.log(f"scenario 1/2: {len(sched)} default-schedule variants x more rounds")
        bu.interleave(cfg.sched_rounds - cfg.rounds, sched)
    by = {x.label: x for x in variants}
    rows = []
    for x in variants:
        peaks, enc = x.values("peak_queued_mib"), x.values("encoder_fps")
        rows.append({
            **summary(x, by[RENDER_ONLY]), "group": x.group, "videos": x.values("videos"),
            "expected": x.values("expected"), "sched_ratio": ratio(x, by[RENDER_SCHED], "loop_s"),
            "close_s": spread([r.disk_s - r.loop_s for r in x.results]),
            "disk_ratio": ratio(x, by[GYM_RV], "disk_s"),
            "peak_queued_mib": max(peaks, default=None),
            "peak_queued_mib_median": statistics.median(peaks) if peaks else None,
            **{k: sum(v) if (v := x.values(k)) else None
               for k in ("frames_dropped", "videos_dropped")},
            "encoder_fps": statistics.median(enc) if enc else None,
        })  # fmt: skip
    rounds = len(by[RENDER_ONLY].results)
    return {"rows": rows, "rounds": rounds, "sched_rounds": len(by[RENDER_SCHED].results)}


def loop_report(rows: list[dict[str, Any]]) -> tuple[str, str, dict[str, Any]]:
    """The every-episode table (the recorder's rows marked against the targets), the
    default-schedule one (a baseline has nothing on disk) and the figures of the verdicts."""
    every, sched = [], []
    for row in rows:
        base, f = row["kind"] == "baseline", partial(bu.fmt_spread, digits=2)
        loop_ratio, disk_ratio = bu.sp(row["loop_ratio"]), bu.sp(row["disk_ratio"])
        got = "/".join(str(n) for n in sorted(set(row["videos"])))
        saved = f"{got} of {row['expected'][0]}" + ("" if row["complete"] else " ❌")
        saved = "-" if base else saved
        dropped = num(row["frames_dropped"], "")
        if row["videos_dropped"] is not None:
            dropped += f" ({row['videos_dropped']} videos)"
        if row["group"] == "schedule":
            sched.append([row["label"], f(row["loop_s"]), f(row["sched_ratio"]), loop_ratio.fmt(3),
                          "-" if base else f(row["disk_s"]), saved, dropped])  # fmt: skip
            continue
        loop_cell, disk_cell, peak = loop_ratio.fmt(3), disk_ratio.fmt(2), row["peak_queued_mib"]
        if row["kind"] == "recorder":
            loop_cell += f" {bu.mark(loop_ratio.median <= LOOP_TARGET)}"
            disk_cell += f" {bu.mark(disk_ratio.median <= DISK_TARGET)}"
        every.append(
            [row["label"], f(row["loop_s"]), loop_cell, f(row["cpu_ratio"]), f(row["blocked_s"]),
             *(["-"] * 3 if base else [f(row["close_s"]), f(row["disk_s"]), disk_cell]),
             "-" if peak is None else f"{row['peak_queued_mib_median']:.0f} (max {peak:.0f})",
             saved, dropped, num(row["encoder_fps"])]
        )  # fmt: skip
    by = {r["label"]: r for r in rows}
    keys = ("loop_ratio", "disk_ratio", "cpu_ratio", "loop_s", "blocked_s")
    loop, disk, cpu, loop_s, blocked = (bu.sp(by[DEFAULT_RV][k]).median for k in keys)
    verdicts = {
        "loop": loop, "loop_target": LOOP_TARGET, "loop_mark": bu.mark(loop <= LOOP_TARGET),
        "loop_s": loop_s, "blocked": blocked, "cpu": cpu,
        "busy": bu.sp(by[BUSY_NEIGHBOUR]["loop_ratio"]).median,
        "disk": disk, "disk_target": DISK_TARGET, "disk_mark": bu.mark(disk <= DISK_TARGET),
        "gym": bu.sp(by[GYM_RV]["loop_ratio"]).median,
    }  # fmt: skip
    every_table = bu.markdown_table(
        "variant | loop s | loop / render-only | loop-thread CPU / render-only's | blocked on "
        "budget s | close/flush s | time to disk s | time to disk / gymnasium RecordVideo | peak "
        "queued MiB: median (max) | videos on disk (per run) | frames dropped (all runs) | "
        "encoder frames per worker-second",
        every,
    )
    sched_table = bu.markdown_table(
        "variant | loop s | loop / render-only on the schedule | loop / render-only every step | "
        "time to disk s | videos on disk (per run) | frames dropped (all runs)",
        sched,
    )
    return every_table, sched_table, verdicts


# -- scenario 5: a Python-bound loop ----------------------------------------------------------


def busy(n: int) -> int:
    """Pure-Python work holding the GIL (a stand-in for a Python policy)."""
    return sum(i * i for i in range(n))


def calibrate(step_ms: float, actions: Sequence[int]) -> tuple[int, float]:
    """Busy-loop count making env.step + policy take *step_ms* (median); the step it gives."""
    env = make_env()
    env.reset(seed=SEED)

    def median_step(n: int, steps: int) -> float:
        times = []
        for i in range(steps):
            t0 = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(actions[i % len(actions)])
            busy(n)
            times.append(time.perf_counter() - t0)
            if terminated or truncated:
                env.reset()
        return statistics.median(times)

    n = 20_000
    for _ in range(4):
        n = max(1, int(n * step_ms / 1e3 / median_step(n, 40)))
    step = median_step(n, 60)
    env.close()
    return n, step * 1e3


PY_VARIANTS = (  # label, way, recorder_kwargs; each at two switch intervals
    ("render only", "render", {}),
    ("recorder, 1 worker", "recorder", {}),
    ("recorder, 2 workers", "recorder", {"workers": 2}),
)


def scenario_python(cfg: Config, tmp: Path) -> dict[str, Any]:
    actions = np.random.default_rng(SEED + 1).integers(2, size=cfg.py_steps).tolist()
    n, step_ms = calibrate(cfg.py_step_ms, actions)
    bu.log(f"scenario 5: policy busy loop of {n} iterations: {step_ms:.2f} ms per step")
    variants = [
        bu.Variant(f"{label}, switch {ms} ms", partial(Loop(tmp, actions, partial(busy, n),
                   ms / 1e3), way, kw), f"{ms} ms", KINDS.get(way, "recorder"))
        for ms in (5, 1)
        for label, way, kw in PY_VARIANTS
    ]  # fmt: skip
    bu.log(f"scenario 5: {len(variants)} variants x {cfg.py_rounds} interleaved rounds")
    bu.interleave(cfg.py_rounds, variants)
    bases = {x.group: x for x in variants if x.kind == "baseline"}
    rows = [{
        **summary(x, bases[x.group]), "interval": x.group,
        "encoder_fps": spread(x.values("encoder_fps")),
        "throughput_fps": spread([r.frames_encoded / r.disk_s for r in x.results
                                  if getattr(r, "frames_encoded", 0)]),
        "peak_queued_mib": max(x.values("peak_queued_mib"), default=None),
        "frames_dropped": sum(x.values("frames_dropped")),
    } for x in variants]  # fmt: skip
    return {"rows": rows, "busy_iterations": n, "step_ms": step_ms, "steps": cfg.py_steps}


def python_table(res: dict[str, Any]) -> str:
    rows = []
    for row in res["rows"]:
        base, f = row["kind"] == "baseline", bu.fmt_spread
        dropped = f"{row['frames_dropped']}" + ("" if row["complete"] else " ❌")
        rows.append(
            [row["label"], f(row["loop_s"], 2), f"{res['steps'] / row['loop_s']['median']:.0f}",
             f(row["loop_ratio"], 2), f(row["cpu_ratio"], 2), f(row["blocked_s"], 2),
             "-" if base else f(row["disk_s"], 2), f(row["encoder_fps"], 0),
             f(row["throughput_fps"], 0), num(row["peak_queued_mib"]), "-" if base else dropped]
        )  # fmt: skip
    return bu.markdown_table(
        "variant | loop s | steps/s | loop / render-only | loop-thread CPU / render-only's | "
        "blocked on budget s | time to disk s | encoder frames per worker-second (frames / "
        "summed worker encode time) | frames/s to disk (frames / time to disk) | "
        "peak queued MiB | frames dropped",
        rows,
    )


# -- scenario 4: peak RSS (each measurement in a fresh process) --------------------------------


def child(kind: str, frames: int, budget_mib: int) -> dict[str, Any]:
    """Record one *frames*-frame episode the *kind* way (in a fresh process), played by a
    controller that keeps CartPole up (and on the track) for 10,000 steps and more."""
    if kind == "gymnasium":
        import moviepy  # noqa: F401  (imported before the baseline, as the wrapper needs it)
    env: Any = make_env(max_episode_steps=frames - 1)
    env.reset(seed=SEED)
    env.render()  # pygame initialised before the baseline
    with tempfile.TemporaryDirectory() as tmp:
        folder, budget, rec, ep = Path(tmp) / "videos", budget_mib * bu.MiB, None, None
        gc.collect()
        baseline, start = bu.rss_mb(), time.perf_counter()
        with contextlib.ExitStack() as stack:  # the video is on disk once it exits
            if kind == "recorder-episode":
                rec = recorder.Recorder(folder, episode_trigger=bu.always, max_queue_bytes=budget,
                                        on_full="block", sidecars=False)  # fmt: skip
                ep = stack.enter_context(stack.enter_context(rec).episode(0))
            elif kind == "recorder-wrapper":
                env = recorder.wrappers.RecordVideo(
                    env, str(folder), episode_trigger=bu.always,
                    recorder_kwargs={"max_queue_bytes": budget},
                )  # fmt: skip
                rec = env.recorder
            else:
                env = RecordVideo(env, str(folder), episode_trigger=bu.always)
            if ep is None:
                stack.callback(env.close)
            obs, _ = env.reset(seed=SEED)
            done = False
            while not done:
                if ep is not None:  # a wrapper renders itself
                    ep.append(env.render())
                x, x_dot, theta, theta_dot = (float(v) for v in obs)
                action = int(theta + 0.5 * theta_dot + 0.05 * x + 0.1 * x_dot > 0)
                obs, _, terminated, truncated, _ = env.step(action)
                done = terminated or truncated
            if ep is not None:
                ep.append(env.render())
        wall, s = time.perf_counter() - start, None if rec is None else rec.stats()
        videos = list(folder.glob("*.mp4"))
        in_video = bu.video_frames(videos[0])
        env.close()
    # The recorder's encoder process (idle now, kept for a next recorder): its VmHWM, as
    # ru_maxrss survives exec. gymnasium's ffmpeg children were waited for: ru_maxrss.
    encoder_mb = bu.encoder_processes_hwm_mb()
    children = encoder_mb or resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "kind": kind, "frames": frames, "budget_mib": budget_mib, "videos": len(videos),
        "frames_in_video": in_video, "baseline_mb": baseline, "maxrss_mb": bu.maxrss_mb(),
        "hwm_mb": bu.rss_mb("VmHWM"), "children_maxrss_mb": children,
        "peak_queued_mib": None if s is None else s.peak_queued_bytes / bu.MiB,
        "dropped": None if s is None else s.frames_dropped, "wall_s": wall,
    }  # fmt: skip


def scenario_rss(cfg: Config) -> dict[str, Any]:
    runs = [("recorder-episode", cfg.rss_frames, 256), ("recorder-episode", cfg.rss_frames, 64),
            ("recorder-wrapper", cfg.rss_frames, 256),
            *(("gymnasium", n, 256) for n in cfg.rss_peer_frames)]  # fmt: skip
    results = []
    for kind, frames, mib in runs:
        bu.log(f"scenario 4: {kind}, {frames} frames, {mib} MiB (subprocess)")
        results.append(bu.in_child(__file__, kind, frames, mib))
    (n1, p1), (n2, p2) = ((r["frames"], r["hwm_mb"]) for r in results if r["kind"] == "gymnasium")
    slope = (p2 - p1) / (n2 - n1)
    return {"runs": results, "target_frames": cfg.rss_frames, "peer_mb_per_frame": slope,
            "peer_extrapolated_mb": p2 + slope * (cfg.rss_frames - n2)}  # fmt: skip


RSS_LABELS = {
    "recorder-episode": "recorder `Recorder.episode` streaming",
    "recorder-wrapper": "recorder.wrappers.RecordVideo (defaults)",
    "gymnasium": "gymnasium.wrappers.RecordVideo",
}


def rss_table(res: dict[str, Any]) -> str:
    rows: list[list[object]] = [
        [RSS_LABELS[r["kind"]], f"{r['frames']:,}",
         "-" if r["kind"] == "gymnasium" else r["budget_mib"], num(r["baseline_mb"]),
         num(r["hwm_mb"]), num(r["maxrss_mb"]), num(r["hwm_mb"] - r["baseline_mb"]),
         num(r["peak_queued_mib"]), num(r["children_maxrss_mb"]), f"{r['frames_in_video']:,}",
         num(r["dropped"], ""), f"{r['wall_s']:.1f}"]
        for r in res["runs"]
    ]  # fmt: skip
    rows.append(
        ["gymnasium.wrappers.RecordVideo, **extrapolated on paper**", f"{res['target_frames']:,}",
         "-", "-", f"≈ {res['peer_extrapolated_mb']:,.0f}", "-",
         f"({res['peer_mb_per_frame']:.2f} MB/frame)", *["-"] * 5]
    )  # fmt: skip
    return bu.markdown_table(
        "recording | frames | max_queue_bytes MiB | baseline MB | peak RSS MB (VmHWM) | "
        "ru_maxrss MB | peak - baseline MB | peak queued MiB | child process peak MB (encoder / "
        "ffmpeg) | frames in video | dropped | wall s",
        rows,
    )


# -- the report ---------------------------------------------------------------------------------


def measure(bench: bu.Bench) -> dict[str, Any]:
    """Peak RSS first, while this process is small (ru_maxrss survives exec; VmHWM does not)."""
    cfg = bench.cfg
    rss = scenario_rss(cfg)
    loop = scenario_loop(cfg, bench.tmp)
    python = scenario_python(cfg, bench.tmp)
    return {"cfg": asdict(cfg), "gymnasium": gym.__version__, "loop": loop, "rss": rss,
            "python": python}  # fmt: skip


def report(doc: bu.Report, data: dict[str, Any]) -> None:
    cfg, loop, python = Config(**data["cfg"]), data["loop"], data["python"]
    doc.header(machine=f"; gymnasium {data['gymnasium']}")
    every, sched, verdicts = loop_report(loop["rows"])
    videos = next(r for r in loop["rows"] if r["label"] == DEFAULT_RV)["expected"][0]
    doc.say("loop", cfg=cfg, videos=videos, rounds=loop["rounds"], table=every)
    doc.say("schedule", sched_rounds=loop["sched_rounds"], rounds=loop["rounds"], table=sched)
    doc.say("verdicts", **verdicts)
    doc.say("rss", cfg=cfg, frame_mb=400 * 600 * 3 / 1e6, table=rss_table(data["rss"]))
    doc.say("python", cfg=cfg, python=python, table=python_table(python))
    doc.footer()


if __name__ == "__main__":
    raise SystemExit(bu.main(sys.modules[__name__]))
