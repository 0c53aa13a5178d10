"""CartPole benchmarks (issue 3; issue 7 scenarios 1, 2, 4, 5): the drop-ins against gymnasium.

1. Training-loop overhead, every episode recorded: loop time / the same loop rendering only,
   for ``recorder.wrappers.RecordVideo`` (defaults and variants), ``gymnasium.wrappers.
   RecordVideo``, ``gymnasium.utils.save_video`` and ``recorder.save_video`` at episode end;
   and with the default (capped cubic) schedule.
2. Time until every video is on disk (loop + ``close()``/flush), relative to gymnasium's.
4. Peak RSS recording one 10,000-frame episode (each in a fresh subprocess).
5. A Python-bound loop (a ~2 ms pure-Python step): slowdown and encoder frames/s, 1 and 2
   workers, two ``sys.setswitchinterval`` values.

Usage: ``python scripts/bench_cartpole.py [--quick] [--out PATH] [--json PATH]``.
"""

from __future__ import annotations

import gc
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import gymnasium as gym
import numpy as np

import recorder
import recorder.wrappers

TITLE = "CartPole benchmark: recorder vs gymnasium (issues 3 and 7)"
ENV_ID = "CartPole-v1"
SEED = 0
FRAME_BYTES = 400 * 600 * 3
LOOP_TARGET = 1.1  # recorder loop time / render-only loop time (issue 13)
DISK_TARGET = 0.4  # recorder time to disk / gymnasium RecordVideo's


@dataclass(frozen=True)
class Config:
    """How much to measure."""

    steps: int  # scenario 1/2: steps per loop
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


def balance(obs: Any) -> int:
    """A controller that keeps CartPole up (and on the track) for 10,000 steps and more."""
    x, x_dot, theta, theta_dot = (float(v) for v in obs)
    return int(theta + 0.5 * theta_dot + 0.05 * x + 0.1 * x_dot > 0)


# -- the training loop -------------------------------------------------------------------------


@dataclass
class Run:
    """One timed run of a variant."""

    loop_s: float  # wall time from the first reset() to the last step()
    disk_s: float = 0.0  # loop + close()/flush(): every video on disk
    videos: int = 0  # mp4 files on disk
    expected: int = 0  # videos the trigger asked for
    frames_dropped: int | None = None
    videos_dropped: int | None = None
    peak_queued_mib: float | None = None
    frames_encoded: int | None = None
    encode_s: float | None = None
    cpu_s: float = 0.0  # CPU time of the loop's thread
    blocked_s: float | None = None  # time the loop waited for budget (on_full="block")


class Variants:
    """Runs the loop the ways compared; each run writes into a fresh folder, removed after.

    Every way steps the same actions (so the same episodes and frames), resetting at episode
    ends; a wrapper renders itself, the other ways call ``env.render()`` after the reset and
    every step of an episode *render* wants, and the ``save_video`` ways save each episode's
    frames at its end (the last, partial episode after the loop, timed as close).
    """

    def __init__(self, tmp: Path, actions: Sequence[int]) -> None:
        self.tmp, self.actions, self.counter = tmp, actions, 0
        self.fps = float(gym.make(ENV_ID).metadata["render_fps"])

    def run(
        self,
        way: str,
        kwargs: dict[str, Any] | None = None,
        trigger: Callable[[int], bool] | None = bu.always,
        work: Callable[[], None] | None = None,
    ) -> Run:
        """*way*: ``render`` (render only), ``recorder`` / ``gymnasium`` (their RecordVideo,
        *kwargs* the recorder's), or ``recorder-save`` / ``gymnasium-save`` (save_video)."""
        import gymnasium.utils.save_video as gym_save
        from gymnasium.wrappers import RecordVideo

        self.counter += 1
        folder = self.tmp / f"run-{self.counter}"  # not created: no "overwriting" warning
        env: Any = make_env()
        blocked = None
        if way == "recorder":
            env = recorder.wrappers.RecordVideo(
                env, str(folder), episode_trigger=trigger, recorder_kwargs=kwargs or None
            )
            blocked = bu.instrument_waits(env.recorder)
        elif way == "gymnasium":
            env = RecordVideo(env, str(folder), episode_trigger=trigger)
        save = {"recorder-save": recorder.save_video, "gymnasium-save": gym_save.save_video}
        frames: list[Any] = []
        handles: list[recorder.ClipHandle] = []
        episodes = first = 0

        def end_episode() -> None:
            if way in save:
                handles.extend(
                    save[way](list(frames), str(folder), episode_trigger=bu.always, fps=self.fps,
                              episode_index=episodes, step_starting_index=first) or ()
                )  # fmt: skip
                frames.clear()

        def render() -> None:
            if way in save:
                frames.append(env.render())
            elif way == "render" and trigger is not None and trigger(episodes):
                env.render()

        try:
            start, cpu_start = time.perf_counter(), time.thread_time()
            env.reset(seed=SEED)
            render()
            for i, action in enumerate(self.actions):
                _, _, terminated, truncated, _ = env.step(action)
                if work is not None:
                    work()
                render()
                if terminated or truncated:
                    end_episode()
                    episodes, first = episodes + 1, i + 1
                    env.reset()
                    render()
            wall, cpu = time.perf_counter() - start, time.thread_time() - cpu_start
            if way == "render":
                return Run(wall, wall, cpu_s=cpu)
            t0 = time.perf_counter()
            end_episode()
            if way in ("recorder", "gymnasium"):
                env.close()
            elif way == "recorder-save":
                recorder.flush()
            run = Run(wall, wall + time.perf_counter() - t0, cpu_s=cpu)
            run.videos = len(list(folder.glob("*.mp4")))
            schedule = trigger or recorder.capped_cubic_video_schedule
            run.expected = sum(bool(schedule(e)) for e in range(episodes + 1))
            if way == "recorder":
                s = env.recorder.stats()
                run.frames_dropped, run.videos_dropped = s.frames_dropped, s.videos_dropped
                run.videos_dropped += s.videos_failed
                run.peak_queued_mib = s.peak_queued_bytes / bu.MiB
                run.frames_encoded, run.encode_s = s.frames_encoded, s.encode_seconds
                run.blocked_s = blocked[1] if blocked else None
            elif way == "recorder-save":
                run.videos_dropped = sum(h.exception() is not None for h in handles)
            return run
        finally:
            env.close()  # idempotent; after an error, no worker thread left behind
            shutil.rmtree(folder, ignore_errors=True)


# -- scenarios 1 and 2 ------------------------------------------------------------------------

RECORDER_VARIANTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("recorder.wrappers.RecordVideo (defaults: 1 worker, 256 MiB)", {}),
    ("recorder RecordVideo, workers=2", {"workers": 2}),
    ('recorder RecordVideo, encode_in="thread"', {"encode_in": "thread"}),
    ("recorder RecordVideo, worker_nice=0", {"worker_nice": 0}),
    ("recorder RecordVideo, max_queue_bytes=2 GiB", {"max_queue_bytes": 2 * 2**30}),
    ("recorder RecordVideo, preset=veryfast", {"preset": "veryfast"}),
)
RENDER_ONLY = "render only (env.render() every step, discarded)"
GYM_RV = "gymnasium.wrappers.RecordVideo"
RENDER_SCHED = "render only, scheduled episodes"
RENDER_SCHED_2 = "render only, scheduled episodes (2nd run: noise floor)"


def scenario_loop(cfg: Config, tmp: Path) -> dict[str, Any]:
    actions = np.random.default_rng(SEED).integers(2, size=cfg.steps).tolist()
    v = Variants(tmp, actions)
    cubic = recorder.capped_cubic_video_schedule
    V = bu.Variant
    variants = [
        V(RENDER_ONLY, lambda: v.run("render"), "every", "baseline"),
        *(V(label, lambda kw=kw: v.run("recorder", kw), "every", "recorder")
          for label, kw in RECORDER_VARIANTS),
        V(GYM_RV, lambda: v.run("gymnasium"), "every", "peer"),
        V("gymnasium.utils.save_video at episode end", lambda: v.run("gymnasium-save"), "every",
          "peer"),
        V("recorder.save_video at episode end", lambda: v.run("recorder-save"), "every",
          "recorder"),
        V(RENDER_SCHED, lambda: v.run("render", trigger=cubic), "schedule", "baseline"),
        V(RENDER_SCHED_2, lambda: v.run("render", trigger=cubic), "schedule", "baseline"),
        V("recorder.wrappers.RecordVideo, default schedule",
          lambda: v.run("recorder", trigger=None), "schedule", "recorder"),
        V("gymnasium.wrappers.RecordVideo, default schedule",
          lambda: v.run("gymnasium", trigger=None), "schedule", "peer"),
    ]  # fmt: skip
    bu.log(f"scenario 1/2: warming up ({cfg.warmup_steps} steps per variant)")
    warm = Variants(tmp, actions[: cfg.warmup_steps])
    for way in ("render", "recorder", "gymnasium", "gymnasium-save", "recorder-save"):
        warm.run(way)
    bu.log(f"scenario 1/2: {len(variants)} variants x {cfg.rounds} interleaved rounds")
    bu.interleave(cfg.rounds, variants)
    sched = [x for x in variants if x.group == "schedule"]
    if cfg.sched_rounds > cfg.rounds:
        bu.log(f"scenario 1/2: {len(sched)} default-schedule variants x more rounds")
        bu.interleave(cfg.sched_rounds - cfg.rounds, sched)
    by = {x.label: x for x in variants}
    base, base_sched, gym_rv = by[RENDER_ONLY], by[RENDER_SCHED], by[GYM_RV]
    rows = []
    for x in variants:
        peaks, runs = x.values("peak_queued_mib"), x.results
        enc = [r.frames_encoded / r.encode_s for r in runs if r.frames_encoded and r.encode_s]
        rows.append(
            {
                **summary(x, base),
                "group": x.group,
                "sched_ratio": ratio(x, base_sched, "loop_s"),
                "close_s": asdict(bu.spread(r.disk_s - r.loop_s for r in runs)),
                "disk_ratio": ratio(x, gym_rv, "disk_s"),
                "peak_queued_mib": max(peaks) if peaks else None,
                "peak_queued_mib_median": statistics.median(peaks) if peaks else None,
                "frames_dropped": sum(d) if (d := x.values("frames_dropped")) else None,
                "videos_dropped": sum(d) if (d := x.values("videos_dropped")) else None,
                "encoder_fps": statistics.median(enc) if enc else None,
                "videos": x.values("videos"),
                "expected": x.values("expected"),
            }
        )
    return {"rows": rows, "rounds": len(base.results), "sched_rounds": len(base_sched.results)}


def ratio(x: bu.Variant, base: bu.Variant, name: str) -> dict[str, Any]:
    """Per-round ratios of *name* of x's runs to base's, over the rounds both have."""
    return asdict(bu.paired_ratios(x.values(name), base.values(name)))


def summary(x: bu.Variant, base: bu.Variant) -> dict[str, Any]:
    """The figures both loop scenarios report of a variant."""
    blocked = x.values("blocked_s")
    return {
        "label": x.label,
        "kind": x.kind,
        "loop_s": asdict(bu.spread(x.values("loop_s"))),
        "loop_ratio": ratio(x, base, "loop_s"),
        "cpu_ratio": ratio(x, base, "cpu_s"),
        "blocked_s": asdict(bu.spread(blocked)) if blocked else None,
        "disk_s": asdict(bu.spread(x.values("disk_s"))),
        "complete": all(r.videos == r.expected for r in x.results),
    }


def _s(d: dict[str, Any]) -> bu.Spread:
    return bu.Spread(**d)


def check(value: float, target: float) -> str:
    return bu.mark(value <= target)


def loop_tables(res: dict[str, Any]) -> tuple[str, str, list[str]]:
    every, sched, verdicts = [], [], []
    for row in res["rows"]:
        is_base = row["kind"] == "baseline"
        loop_ratio = _s(row["loop_ratio"])
        disk_ratio = _s(row["disk_ratio"])
        mark_loop = mark_disk = ""
        if row["kind"] == "recorder" and row["group"] == "every":
            mark_loop = " " + check(loop_ratio.median, LOOP_TARGET)
            mark_disk = " " + check(disk_ratio.median, DISK_TARGET)
        videos = sorted(set(row["videos"]))
        got = "/".join(str(n) for n in videos)
        saved = f"{got} of {row['expected'][0]}" + ("" if row["complete"] else " ❌")
        dropped = "-" if row["frames_dropped"] is None else str(row["frames_dropped"])
        if row["videos_dropped"] is not None:
            dropped += f" ({row['videos_dropped']} videos)"
        peak = "-"
        if row["peak_queued_mib"] is not None:
            peak = f"{row['peak_queued_mib_median']:.0f} (max {row['peak_queued_mib']:.0f})"
        enc = "-" if row["encoder_fps"] is None else f"{row['encoder_fps']:.0f}"
        blocked = "-" if row["blocked_s"] is None else _s(row["blocked_s"]).fmt(2)
        cpu_ratio = _s(row["cpu_ratio"])
        loop_s = _s(row["loop_s"]).fmt(2)
        disk = "-" if is_base else _s(row["disk_s"]).fmt(2)
        if row["group"] == "every":
            every.append(
                [row["label"], loop_s, loop_ratio.fmt(3) + mark_loop, cpu_ratio.fmt(2), blocked,
                 "-" if is_base else _s(row["close_s"]).fmt(2), disk,
                 "-" if is_base else disk_ratio.fmt(2) + mark_disk, peak,
                 "-" if is_base else saved, dropped, enc]
            )  # fmt: skip
        else:
            sched.append(
                [row["label"], loop_s, _s(row["sched_ratio"]).fmt(2), loop_ratio.fmt(3), disk,
                 "-" if is_base else saved, dropped]
            )  # fmt: skip
        if row["label"].startswith("recorder.wrappers.RecordVideo (defaults"):
            verdicts.append(
                f"Scenario 1, recorder.wrappers.RecordVideo with its defaults: loop / render-only "
                f"= {loop_ratio.median:.3f} (target ≤ {LOOP_TARGET}) "
                f"{check(loop_ratio.median, LOOP_TARGET)}."
            )
            if row["blocked_s"] is not None:
                verdicts.append(
                    f"Of its loop time ({_s(row['loop_s']).median:.2f} s, median), "
                    f"{_s(row['blocked_s']).median:.2f} s were spent blocked on the full budget "
                    "(the encoder behind the loop); the loop thread's own CPU time was "
                    f"{cpu_ratio.median:.2f}x the render-only loop's (copies and hand-over: "
                    "what remains when the encoder keeps up and a core is free for it)."
                )
            verdicts.append(
                f"Scenario 2, time to disk / gymnasium RecordVideo's = {disk_ratio.median:.2f} "
                f"(target ≤ {DISK_TARGET}) {check(disk_ratio.median, DISK_TARGET)}."
            )
        if row["label"] == GYM_RV:
            verdicts.append(
                f"gymnasium.wrappers.RecordVideo: loop / render-only = {loop_ratio.median:.2f} "
                "(the peer's ~4.4 in DESIGN.md)."
            )
    t1 = bu.markdown_table(
        "variant | loop s | loop / render-only | loop-thread CPU / render-only's | blocked on "
        "budget s | close/flush s | time to disk s | time to disk / gymnasium RecordVideo | "
        "peak queued MiB: median (max) | videos on disk (per run) | frames dropped (all runs) | "
        "encoder frames per worker-second",
        every,
    )
    t2 = bu.markdown_table(
        "variant | loop s | loop / render-only on the schedule | loop / render-only every step | "
        "time to disk s | videos on disk (per run) | frames dropped (all runs)",
        sched,
    )
    return t1, t2, verdicts


# -- scenario 5: a Python-bound loop ----------------------------------------------------------


def busy(n: int) -> None:
    """Pure-Python work holding the GIL (a stand-in for a Python policy)."""
    s = 0
    for i in range(n):
        s += i * i
    if s < 0:  # never true: keeps the loop from looking dead
        raise AssertionError


def calibrate(step_ms: float, actions: Sequence[int]) -> tuple[int, float]:
    """Busy-loop count making env.step + policy take *step_ms* (median); the step it gives."""
    env = make_env()
    env.reset(seed=SEED)

    def one_step(n: int, i: int) -> float:
        t0 = time.perf_counter()
        _, _, te, tr, _ = env.step(actions[i % len(actions)])
        busy(n)
        dt = time.perf_counter() - t0
        if te or tr:
            env.reset()
        return dt

    n = 20_000
    for _ in range(4):
        med = statistics.median(one_step(n, i) for i in range(40))
        n = max(1, int(n * step_ms / 1e3 / med))
    med = statistics.median(one_step(n, i) for i in range(60))
    env.close()
    return n, med * 1e3


def scenario_python(cfg: Config, tmp: Path) -> dict[str, Any]:
    actions = np.random.default_rng(SEED + 1).integers(2, size=cfg.py_steps).tolist()
    n, step_ms = calibrate(cfg.py_step_ms, actions)
    bu.log(f"scenario 5: policy busy loop of {n} iterations: {step_ms:.2f} ms per step")
    v = Variants(tmp, actions)
    default_interval = sys.getswitchinterval()

    def at(interval: float, way: str, kwargs: dict[str, Any] | None = None) -> Callable[[], Run]:
        def run() -> Run:
            sys.setswitchinterval(interval)
            try:
                return v.run(way, kwargs, work=lambda: busy(n))
            finally:
                sys.setswitchinterval(default_interval)

        return run

    variants: list[bu.Variant] = []
    for interval in (0.005, 0.001):
        ms = f"{interval * 1e3:g} ms"
        variants += [
            bu.Variant(f"render only, switch {ms}", at(interval, "render"), ms, "baseline"),
            bu.Variant(f"recorder, 1 worker, switch {ms}", at(interval, "recorder"), ms,
                       "recorder"),
            bu.Variant(f"recorder, 2 workers, switch {ms}",
                       at(interval, "recorder", {"workers": 2}), ms, "recorder"),
        ]  # fmt: skip
    bu.log(f"scenario 5: {len(variants)} variants x {cfg.py_rounds} interleaved rounds")
    bu.interleave(cfg.py_rounds, variants)
    rows = []
    for x in variants:
        base = next(b for b in variants if b.group == x.group and b.kind == "baseline")
        runs = x.results
        enc = [r.frames_encoded / r.encode_s for r in runs if r.frames_encoded and r.encode_s]
        e2e = [r.frames_encoded / r.disk_s for r in runs if r.frames_encoded]
        rows.append(
            {
                **summary(x, base),
                "interval": x.group,
                "encoder_fps": asdict(bu.spread(enc)) if enc else None,
                "throughput_fps": asdict(bu.spread(e2e)) if e2e else None,
                "peak_queued_mib": max(x.values("peak_queued_mib"), default=None),
                "frames_dropped": sum(x.values("frames_dropped")),
            }
        )
    return {"rows": rows, "busy_iterations": n, "step_ms": step_ms, "steps": cfg.py_steps}


def python_table(res: dict[str, Any]) -> str:
    rows = []
    for row in res["rows"]:
        base = row["kind"] == "baseline"
        steps_per_s = res["steps"] / _s(row["loop_s"]).median
        peak = row["peak_queued_mib"]
        rows.append(
            [row["label"], bu.fmt_spread(row["loop_s"], 2), f"{steps_per_s:.0f}",
             bu.fmt_spread(row["loop_ratio"], 2), bu.fmt_spread(row["cpu_ratio"], 2),
             bu.fmt_spread(row["blocked_s"], 2), "-" if base else bu.fmt_spread(row["disk_s"], 2),
             bu.fmt_spread(row["encoder_fps"], 0), bu.fmt_spread(row["throughput_fps"], 0),
             "-" if peak is None else f"{peak:.0f}",
             "-" if base else f"{row['frames_dropped']}" + ("" if row["complete"] else " ❌")]
        )  # fmt: skip
    return bu.markdown_table(
        "variant | loop s | steps/s | loop / render-only | loop-thread CPU / render-only's | "
        "blocked on budget s | time to disk s | encoder frames per worker-second (frames / "
        "summed worker encode time) | frames/s to disk (frames / time to disk) | "
        "peak queued MiB | frames dropped",
        rows,
    )


# -- scenario 4: peak RSS (each measurement in a fresh process) --------------------------------


def child(kind: str, frames: int, budget: int) -> dict[str, Any]:
    """Record one *frames*-frame CartPole episode the *kind* way (in a fresh process)."""
    import tempfile

    if kind == "gymnasium":
        import moviepy  # noqa: F401  (imported before the baseline, as the wrapper needs it)
        from gymnasium.wrappers import RecordVideo
    env: Any = make_env(max_episode_steps=frames - 1)
    obs, _ = env.reset(seed=SEED)
    env.render()  # pygame initialised before the baseline
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "videos"
        gc.collect()
        baseline = bu.rss_mb()
        start = time.perf_counter()
        rec = None
        if kind == "recorder-episode":
            rec = recorder.Recorder(folder, episode_trigger=bu.always, max_queue_bytes=budget,
                                    on_full="block", sidecars=False)  # fmt: skip
            with rec, rec.episode(0) as ep:
                obs, _ = env.reset(seed=SEED)
                ep.append(env.render())
                done = False
                while not done:
                    obs, _, te, tr, _ = env.step(balance(obs))
                    ep.append(env.render())
                    done = te or tr
        else:
            if kind == "recorder-wrapper":
                env = recorder.wrappers.RecordVideo(
                    env, str(folder), episode_trigger=bu.always,
                    recorder_kwargs={"max_queue_bytes": budget},
                )  # fmt: skip
                rec = env.recorder
            else:
                env = RecordVideo(env, str(folder), episode_trigger=bu.always)
            obs, _ = env.reset(seed=SEED)
            done = False
            while not done:
                obs, _, te, tr, _ = env.step(balance(obs))
                done = te or tr
            env.close()
        wall = time.perf_counter() - start
        s = rec.stats() if rec is not None else None
        videos = list(folder.glob("*.mp4"))
        in_video = bu.video_frames(videos[0])
        env.close()
    # The recorder's encoder process (idle now, kept for a next recorder): its VmHWM, as
    # ru_maxrss survives exec. gymnasium's ffmpeg children were waited for: ru_maxrss.
    encoder_mb = bu.encoder_processes_hwm_mb()
    children = encoder_mb or resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "kind": kind, "frames": frames, "budget_mib": budget // bu.MiB, "videos": len(videos),
        "frames_in_video": in_video, "baseline_mb": baseline, "maxrss_mb": bu.maxrss_mb(),
        "hwm_mb": bu.rss_mb("VmHWM"), "children_maxrss_mb": children,
        "peak_queued_mib": None if s is None else s.peak_queued_bytes / bu.MiB,
        "dropped": None if s is None else s.frames_dropped, "wall_s": wall,
    }  # fmt: skip


def scenario_rss(cfg: Config) -> dict[str, Any]:
    default_budget = 256 * bu.MiB
    runs = [
        ("recorder-episode", cfg.rss_frames, default_budget),
        ("recorder-episode", cfg.rss_frames, 64 * bu.MiB),
        ("recorder-wrapper", cfg.rss_frames, default_budget),
        *(("gymnasium", n, default_budget) for n in cfg.rss_peer_frames),
    ]
    results = []
    for kind, frames, budget in runs:
        bu.log(f"scenario 4: {kind}, {frames} frames, {budget // bu.MiB} MiB (subprocess)")
        results.append(bu.in_child(__file__, kind, frames, budget))
    (n1, p1), (n2, p2) = ((r["frames"], r["hwm_mb"]) for r in results if r["kind"] == "gymnasium")
    slope = (p2 - p1) / (n2 - n1)
    return {
        "runs": results,
        "target_frames": cfg.rss_frames,
        "peer_mb_per_frame": slope,
        "peer_extrapolated_mb": p2 + slope * (cfg.rss_frames - n2),
    }


RSS_LABELS = {
    "recorder-episode": "recorder `Recorder.episode` streaming",
    "recorder-wrapper": "recorder.wrappers.RecordVideo (defaults)",
    "gymnasium": "gymnasium.wrappers.RecordVideo",
}


def rss_table(res: dict[str, Any]) -> str:
    rows: list[list[object]] = []
    for r in res["runs"]:
        queued = "-" if r["peak_queued_mib"] is None else f"{r['peak_queued_mib']:.0f}"
        rows.append(
            [RSS_LABELS[r["kind"]], f"{r['frames']:,}",
             "-" if r["kind"] == "gymnasium" else str(r["budget_mib"]), f"{r['baseline_mb']:.0f}",
             f"{r['hwm_mb']:.0f}", f"{r['maxrss_mb']:.0f}",
             f"{r['hwm_mb'] - r['baseline_mb']:.0f}", queued, f"{r['children_maxrss_mb']:.0f}",
             f"{r['frames_in_video']:,}", "-" if r["dropped"] is None else r["dropped"],
             f"{r['wall_s']:.1f}"]
        )  # fmt: skip
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


def run(bench: bu.Bench) -> dict[str, Any]:
    """Peak RSS first, while this process is small (ru_maxrss survives exec; VmHWM does not)."""
    cfg = bench.cfg
    rss = scenario_rss(cfg)
    loop = scenario_loop(cfg, bench.tmp)
    python = scenario_python(cfg, bench.tmp)
    bench.header(machine=f"; gymnasium {gym.__version__}")
    t1, t2, verdicts = loop_tables(loop)
    bench.add(
        "## Scenarios 1 and 2: training-loop overhead and time to disk\n\n"
        f"{ENV_ID} `rgb_array` (600x400, 50 fps), {cfg.steps} steps of a seeded random policy "
        f"(the same actions, episodes and frames for every variant), every episode recorded "
        f"({loop['rows'][1]['expected'][0]} videos per run). *Loop s*: wall time from the "
        "first `reset()` to the last `step()`. *Render only*: the same loop calling "
        "`env.render()` after the reset and every step, discarding the frame. *Time to disk*: "
        "loop + `env.close()` (wrappers) or saving the last, partial episode + flush "
        "(`save_video`): every video is a complete file. `gymnasium.utils.save_video` and "
        "`recorder.save_video` get the frames the loop rendered, at each episode end. "
        "gymnasium's peers run with their defaults (moviepy, libx264 preset medium); the "
        "recorder with `recorder_kwargs` as named (its wrapper defaults: private Recorder, "
        '`on_full="block"` (lossless), 1 worker, 256 MiB, libx264 ultrafast crf 23). '
        f"{loop['rounds']} rounds, variants interleaved with the order rotated each round; "
        "medians (min-max); every ratio is computed per round (runs close together in time) "
        "and then medianed. *Loop-thread CPU*: `time.thread_time()` of the loop (what the "
        "recording costs the training thread itself, whatever the other processes on the "
        "machine do); *blocked on budget*: time the loop waited in the recorder for the "
        "encoder to free budget (instrumented private condition, as bench_overload does). "
        "*Peak queued MiB*: `stats().peak_queued_bytes`; *encoder frames per worker-second*: "
        "`frames_encoded / encode_seconds` (summed over workers). Targets: recorder loop ratio "
        f"≤ {LOOP_TARGET}, time to disk ≤ {DISK_TARGET}x gymnasium RecordVideo's.\n\n" + t1
    )
    bench.add(
        "With the default schedule (capped cubic: episodes 0, 1, 8, 27, 64, ...), only the "
        "scheduled episodes are rendered by the wrappers; the fair baseline is a loop that "
        "renders the same episodes and discards the frames. The second run of that baseline "
        "shows the noise floor: a ratio within its spread is indistinguishable from 1. These "
        f"loops are short, so they run {loop['sched_rounds']} rounds (the "
        f"{loop['rounds']} above, then the schedule rows alone, interleaved).\n\n" + t2
    )
    bench.add("\n".join(f"- {v}" for v in verdicts))
    bench.add(
        "## Scenario 4: peak RSS of one long episode\n\n"
        f"One {ENV_ID} episode (a balancing controller keeps it going; `max_episode_steps` "
        "sets its length), rendered and recorded every step, in a fresh subprocess per row. "
        "*Baseline*: RSS after imports, env creation and a first render. *Peak*: VmHWM "
        "(per process image) at the end; ru_maxrss alongside. The recorder's encoder runs "
        "in its encoder process (VmHWM in the child column, not in the peak), gymnasium's "
        "(moviepy) in an ffmpeg subprocess (ru_maxrss in the child column). "
        "gymnasium's RecordVideo keeps every frame of a clip in a list until the "
        f"clip ends, so it runs at {cfg.rss_peer_frames[0]:,} and {cfg.rss_peer_frames[1]:,} "
        f"frames; its {cfg.rss_frames:,}-frame peak is **extrapolated linearly on paper** "
        "from those two (not measured), from the slope between them "
        f"(a 600x400 RGB frame is {FRAME_BYTES / 1e6:.2f} MB).\n\n" + rss_table(rss)
    )
    bench.add(
        "## Scenario 5: a Python-bound training loop\n\n"
        f"The loop of scenario 1 ({cfg.py_steps} steps, every episode recorded) with a "
        f"pure-Python policy after each step (a busy loop of {python['busy_iterations']:,} "
        f"iterations: `env.step` + policy ≈ {python['step_ms']:.2f} ms measured), rendering "
        "every step. The main thread holds the GIL almost all the time, so each time a worker "
        "needs the GIL back (between PyAV calls) it can wait up to the switch interval "
        "(`sys.setswitchinterval`, 5 ms by default). Tried: the default 5 ms and 1 ms. "
        'The recorder uses its wrapper defaults (`on_full="block"`), so an encoder that '
        "falls behind shows up as loop time once the 256 MiB budget is full. "
        f"{cfg.py_rounds} rounds, interleaved; medians (min-max).\n\n" + python_table(python)
    )
    bench.footer()
    return {"loop": loop, "rss": rss, "python": python, "quick": bench.args.quick}


if __name__ == "__main__":
    raise SystemExit(bu.main(sys.modules[__name__]))
