"""CartPole benchmarks (issue 3; issue 7 scenarios 1, 2, 4, 5): the drop-ins against gymnasium.

1. Training-loop overhead, every episode recorded: loop time / the same loop rendering only,
   for ``recorder.wrappers.RecordVideo`` (defaults and variants), ``gymnasium.wrappers.
   RecordVideo``, ``gymnasium.utils.save_video`` and ``recorder.save_video`` at episode end;
   and with the default (capped cubic) schedule.
2. Time until every video is on disk (loop + ``close()``/flush), relative to gymnasium's.
4. Peak RSS recording one 10,000-frame episode (each in a fresh subprocess).
5. A Python-bound loop (a ~2 ms pure-Python step): slowdown and encoder frames/s, 1 and 2
   workers, two ``sys.setswitchinterval`` values.

Usage::

    python scripts/bench_cartpole.py [--quick] [--out PATH] [--json PATH]

Prints a markdown report on stdout (progress on stderr), writes it to ``--out`` and the key
figures to ``--json`` (for scripts/bench_all.py's plot). A missed target is printed, never an
error.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import logging
import os
import resource
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import gymnasium as gym
import numpy as np

import recorder
import recorder.wrappers

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


FULL = Config(
    steps=2000,
    rounds=5,
    sched_rounds=16,
    warmup_steps=100,
    py_steps=800,
    py_rounds=3,
    py_step_ms=2.0,
    rss_frames=10_000,
    rss_peer_frames=(500, 1000),
)
QUICK = Config(
    steps=60,
    rounds=1,
    sched_rounds=1,
    warmup_steps=10,
    py_steps=30,
    py_rounds=1,
    py_step_ms=2.0,
    rss_frames=120,
    rss_peer_frames=(20, 40),
)


def always(_: int) -> bool:
    return True


def make_env(max_episode_steps: int | None = None) -> gym.Env[Any, Any]:
    return gym.make(ENV_ID, render_mode="rgb_array", max_episode_steps=max_episode_steps)


def balance(obs: Any) -> int:
    """A controller that keeps CartPole up (and on the track) for 10,000 steps and more."""
    x, x_dot, theta, theta_dot = (float(v) for v in obs)
    return int(theta + 0.5 * theta_dot + 0.05 * x + 0.1 * x_dot > 0)


# -- the training loop -------------------------------------------------------------------------


@dataclass
class Loop:
    """The loop every variant runs: the same actions, episodes and frames.

    Attributes:
        episodes: episodes started (the last one may be partial).
        first_step: global step index of the last episode's first step.
    """

    episodes: int = 0
    first_step: int = 0
    cpu_s: float = 0.0  # CPU time of the loop's thread


def episode_loop(
    env: gym.Env[Any, Any],
    actions: Sequence[int],
    *,
    render_episode: Callable[[int], bool] | None = None,
    on_frame: Callable[[Any], None] | None = None,
    on_episode_end: Callable[[int, int], None] | None = None,
    work: Callable[[], None] | None = None,
) -> tuple[float, Loop]:
    """Step *env* through *actions*, resetting at episode ends; return (wall seconds, Loop).

    Args:
        render_episode: ``episode -> bool``: call ``env.render()`` after the reset and every
            step of that episode (a render-only or collect-the-frames loop).
        on_frame: gets each rendered frame.
        on_episode_end: ``(episode, first_step)`` once an episode ends (before the reset).
        work: called after every step (a Python policy).
    """
    loop = Loop()
    start, cpu_start = time.perf_counter(), time.thread_time()
    env.reset(seed=SEED)
    rendering = render_episode is not None and render_episode(0)
    if rendering:
        frame = env.render()
        if on_frame is not None:
            on_frame(frame)
    for i, action in enumerate(actions):
        _, _, terminated, truncated, _ = env.step(action)
        if work is not None:
            work()
        if rendering:
            frame = env.render()
            if on_frame is not None:
                on_frame(frame)
        if terminated or truncated:
            if on_episode_end is not None:
                on_episode_end(loop.episodes, loop.first_step)
            loop.episodes += 1
            loop.first_step = i + 1
            env.reset()
            rendering = render_episode is not None and render_episode(loop.episodes)
            if rendering:
                frame = env.render()
                if on_frame is not None:
                    on_frame(frame)
    wall = time.perf_counter() - start
    loop.cpu_s = time.thread_time() - cpu_start
    loop.episodes += 1
    return wall, loop


@dataclass
class Run:
    """One timed run of a variant."""

    loop_s: float
    disk_s: float  # loop + close()/flush(): every video on disk
    videos: int  # mp4 files on disk
    expected: int  # videos the trigger asked for
    frames_dropped: int | None = None
    videos_dropped: int | None = None
    peak_queued_mib: float | None = None
    frames_encoded: int | None = None
    encode_s: float | None = None
    cpu_s: float = 0.0  # CPU time of the loop's thread
    blocked_s: float | None = None  # time the loop waited for budget (on_full="block")


def count_videos(folder: Path) -> int:
    return len(list(folder.glob("*.mp4")))


def time_blocked(rec: recorder.Recorder) -> list[float] | None:
    """Accumulate the seconds producers wait for budget (``on_full="block"``).

    Instrumentation only: wraps the wait of the queue's private ``not_full`` condition, as
    scripts/bench_overload.py counts it; None when the core has no such condition any more.
    """
    cond = getattr(getattr(rec, "_queue", None), "_not_full", None)
    if cond is None:
        return None
    original = cond.wait
    total = [0.0]

    def wait(timeout: float | None = None) -> bool:
        t0 = time.perf_counter()
        try:
            return bool(original(timeout))
        finally:
            total[0] += time.perf_counter() - t0

    cond.wait = wait
    return total


class Variants:
    """Makes the variants' run functions; each run writes into a fresh folder, removed after."""

    def __init__(self, tmp: Path, actions: Sequence[int]) -> None:
        self.tmp = tmp
        self.actions = actions
        self.counter = 0
        self.fps = float(gym.make(ENV_ID).metadata["render_fps"])

    def folder(self) -> Path:
        self.counter += 1
        return self.tmp / f"run-{self.counter}"  # not created: no "overwriting" warning

    def _expected(self, loop: Loop, trigger: Callable[[int], bool]) -> int:
        return sum(bool(trigger(e)) for e in range(loop.episodes))

    def render_only(
        self, trigger: Callable[[int], bool] = always, work: Callable[[], None] | None = None
    ) -> Run:
        env = make_env()
        try:
            wall, loop = episode_loop(env, self.actions, render_episode=trigger, work=work)
        finally:
            env.close()
        return Run(wall, wall, 0, 0, cpu_s=loop.cpu_s)

    def recorder_wrapper(
        self,
        kwargs: dict[str, Any],
        trigger: Callable[[int], bool] | None = always,
        work: Callable[[], None] | None = None,
    ) -> Run:
        folder = self.folder()
        env = recorder.wrappers.RecordVideo(
            make_env(), str(folder), episode_trigger=trigger, recorder_kwargs=kwargs or None
        )
        blocked = time_blocked(env.recorder)
        try:
            wall, loop = episode_loop(env, self.actions, work=work)
            t0 = time.perf_counter()
            env.close()
            close_s = time.perf_counter() - t0
            s = env.recorder.stats()
            return Run(
                wall,
                wall + close_s,
                count_videos(folder),
                self._expected(loop, trigger or recorder.capped_cubic_video_schedule),
                s.frames_dropped,
                s.videos_dropped + s.videos_failed,
                s.peak_queued_bytes / bu.MiB,
                s.frames_encoded,
                s.encode_seconds,
                loop.cpu_s,
                blocked[0] if blocked else None,
            )
        finally:
            env.close()  # idempotent; after an error, no worker thread left behind
            shutil.rmtree(folder, ignore_errors=True)

    def gym_wrapper(self, trigger: Callable[[int], bool] | None = always) -> Run:
        from gymnasium.utils.save_video import capped_cubic_video_schedule
        from gymnasium.wrappers import RecordVideo

        folder = self.folder()
        env = RecordVideo(make_env(), str(folder), episode_trigger=trigger)
        try:
            wall, loop = episode_loop(env, self.actions)
            t0 = time.perf_counter()
            env.close()
            close_s = time.perf_counter() - t0
            expected = self._expected(loop, trigger or capped_cubic_video_schedule)
            return Run(wall, wall + close_s, count_videos(folder), expected, cpu_s=loop.cpu_s)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def gym_save_video(self) -> Run:
        from gymnasium.utils.save_video import save_video

        folder = self.folder()
        frames: list[Any] = []

        def save(episode: int, first_step: int) -> None:
            save_video(
                list(frames),
                str(folder),
                episode_trigger=always,
                episode_index=episode,
                step_starting_index=first_step,
                fps=self.fps,
            )
            frames.clear()

        env = make_env()
        try:
            wall, loop = episode_loop(
                env, self.actions, render_episode=always, on_frame=frames.append,
                on_episode_end=save,
            )  # fmt: skip
            t0 = time.perf_counter()
            save(loop.episodes - 1, loop.first_step)  # the last, partial episode
            close_s = time.perf_counter() - t0
            return Run(wall, wall + close_s, count_videos(folder), loop.episodes, cpu_s=loop.cpu_s)
        finally:
            env.close()
            shutil.rmtree(folder, ignore_errors=True)

    def recorder_save_video(self) -> Run:
        folder = self.folder()
        frames: list[Any] = []
        handles: list[recorder.ClipHandle] = []

        def save(episode: int, first_step: int) -> None:
            handles.extend(
                recorder.save_video(
                    frames,
                    str(folder),
                    episode_trigger=always,
                    episode_index=episode,
                    step_starting_index=first_step,
                    fps=self.fps,
                )
            )
            frames.clear()  # save_video copied them

        env = make_env()
        try:
            wall, loop = episode_loop(
                env, self.actions, render_episode=always, on_frame=frames.append,
                on_episode_end=save,
            )  # fmt: skip
            t0 = time.perf_counter()
            save(loop.episodes - 1, loop.first_step)
            recorder.flush()
            close_s = time.perf_counter() - t0
            dropped = sum(h.dropped for h in handles)
            failed = sum(h.exception() is not None for h in handles) - dropped
            return Run(
                wall, wall + close_s, count_videos(folder), loop.episodes,
                videos_dropped=dropped + failed, cpu_s=loop.cpu_s,
            )  # fmt: skip
        finally:
            env.close()
            shutil.rmtree(folder, ignore_errors=True)


# -- scenarios 1 and 2 ------------------------------------------------------------------------


@dataclass
class Variant:
    """A named way of running the loop, and its runs."""

    label: str
    run: Callable[[], Run]
    group: str  # "every" (every episode) or "schedule" (capped cubic)
    kind: str  # "baseline", "recorder", "peer"
    runs: list[Run] = field(default_factory=list)

    def measure(self) -> float:
        gc.collect()
        r = self.run()
        self.runs.append(r)
        return r.loop_s

    def loop(self) -> list[float]:
        return [r.loop_s for r in self.runs]

    def disk(self) -> list[float]:
        return [r.disk_s for r in self.runs]

    def cpu(self) -> list[float]:
        return [r.cpu_s for r in self.runs]

    def blocked(self) -> bu.Spread | None:
        values = [r.blocked_s for r in self.runs if r.blocked_s is not None]
        return bu.spread(values) if values else None


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
    variants = [
        Variant(RENDER_ONLY, v.render_only, "every", "baseline"),
        *(
            Variant(label, lambda kw=kw: v.recorder_wrapper(kw), "every", "recorder")
            for label, kw in RECORDER_VARIANTS
        ),
        Variant(GYM_RV, v.gym_wrapper, "every", "peer"),
        Variant("gymnasium.utils.save_video at episode end", v.gym_save_video, "every", "peer"),
        Variant("recorder.save_video at episode end", v.recorder_save_video, "every", "recorder"),
        Variant(RENDER_SCHED, lambda: v.render_only(cubic), "schedule", "baseline"),
        Variant(RENDER_SCHED_2, lambda: v.render_only(cubic), "schedule", "baseline"),
        Variant(
            "recorder.wrappers.RecordVideo, default schedule",
            lambda: v.recorder_wrapper({}, None),
            "schedule",
            "recorder",
        ),
        Variant(
            "gymnasium.wrappers.RecordVideo, default schedule",
            lambda: v.gym_wrapper(None),
            "schedule",
            "peer",
        ),
    ]
    bu.log(f"scenario 1/2: warming up ({cfg.warmup_steps} steps per variant)")
    warm = Variants(tmp, actions[: cfg.warmup_steps])
    warm.render_only()
    warm.recorder_wrapper({})
    warm.gym_wrapper()
    warm.gym_save_video()
    warm.recorder_save_video()
    bu.log(f"scenario 1/2: {len(variants)} variants x {cfg.rounds} interleaved rounds")
    bu.interleave(cfg.rounds, {x.label: x.measure for x in variants})
    sched = [x for x in variants if x.group == "schedule"]
    extra = cfg.sched_rounds - cfg.rounds
    if extra > 0:
        bu.log(f"scenario 1/2: {len(sched)} default-schedule variants x {extra} more rounds")
        bu.interleave(extra, {x.label: x.measure for x in sched})
    return summarize_loop(variants)


def summarize_loop(variants: list[Variant]) -> dict[str, Any]:
    by = {x.label: x for x in variants}
    base, base_sched, gym_rv = by[RENDER_ONLY], by[RENDER_SCHED], by[GYM_RV]
    rows = []

    def paired(a: list[float], b: list[float]) -> bu.Spread:
        # The schedule group has more rounds than the every-episode one: pair the rounds
        # both have (run together, interleaved).
        n = min(len(a), len(b))
        return bu.paired_ratios(a[:n], b[:n])

    for x in variants:
        loop_ratio = paired(x.loop(), base.loop())
        sched_ratio = paired(x.loop(), base_sched.loop())
        disk_ratio = paired(x.disk(), gym_rv.disk())
        close = bu.spread(r.disk_s - r.loop_s for r in x.runs)
        peaks = [r.peak_queued_mib for r in x.runs if r.peak_queued_mib is not None]
        drops = [r.frames_dropped for r in x.runs if r.frames_dropped is not None]
        vdrops = [r.videos_dropped for r in x.runs if r.videos_dropped is not None]
        enc = [
            r.frames_encoded / r.encode_s
            for r in x.runs
            if r.frames_encoded is not None and r.encode_s
        ]
        complete = all(r.videos == r.expected for r in x.runs)
        rows.append(
            {
                "label": x.label,
                "group": x.group,
                "kind": x.kind,
                "loop_s": asdict(bu.spread(x.loop())),
                "loop_ratio": asdict(loop_ratio),
                "cpu_ratio": asdict(paired(x.cpu(), base.cpu())),
                "blocked_s": None if (b := x.blocked()) is None else asdict(b),
                "sched_ratio": asdict(sched_ratio),
                "close_s": asdict(close),
                "disk_s": asdict(bu.spread(x.disk())),
                "disk_ratio": asdict(disk_ratio),
                "peak_queued_mib": max(peaks) if peaks else None,
                "peak_queued_mib_median": statistics.median(peaks) if peaks else None,
                "frames_dropped": sum(drops) if drops else None,
                "videos_dropped": sum(vdrops) if vdrops else None,
                "encoder_fps": statistics.median(enc) if enc else None,
                "videos": [r.videos for r in x.runs],
                "expected": [r.expected for r in x.runs],
                "complete": complete,
            }
        )
    return {"rows": rows, "rounds": len(base.runs), "sched_rounds": len(base_sched.runs)}


def _s(d: dict[str, Any]) -> bu.Spread:
    return bu.Spread(**d)


def _check(value: float, target: float, below: bool = True) -> str:
    ok = value <= target if below else value >= target
    return "✅" if ok else "❌"


def loop_tables(res: dict[str, Any]) -> tuple[str, str, list[str]]:
    every, sched, verdicts = [], [], []
    for row in res["rows"]:
        is_base = row["kind"] == "baseline"
        loop_ratio = _s(row["loop_ratio"])
        disk_ratio = _s(row["disk_ratio"])
        mark_loop = mark_disk = ""
        if row["kind"] == "recorder" and row["group"] == "every":
            mark_loop = " " + _check(loop_ratio.median, LOOP_TARGET)
            mark_disk = " " + _check(disk_ratio.median, DISK_TARGET)
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
        common = [
            _s(row["loop_s"]).fmt(2),
        ]
        if row["group"] == "every":
            every.append(
                [
                    row["label"],
                    *common,
                    loop_ratio.fmt(3) + mark_loop,
                    cpu_ratio.fmt(2),
                    blocked,
                    "-" if is_base else _s(row["close_s"]).fmt(2),
                    "-" if is_base else _s(row["disk_s"]).fmt(2),
                    "-" if is_base else disk_ratio.fmt(2) + mark_disk,
                    peak,
                    "-" if is_base else saved,
                    dropped,
                    enc,
                ]
            )
        else:
            sched.append(
                [
                    row["label"],
                    *common,
                    _s(row["sched_ratio"]).fmt(2),
                    loop_ratio.fmt(3),
                    "-" if is_base else _s(row["disk_s"]).fmt(2),
                    "-" if is_base else saved,
                    dropped,
                ]
            )
        if row["label"].startswith("recorder.wrappers.RecordVideo (defaults"):
            verdicts.append(
                f"Scenario 1, recorder.wrappers.RecordVideo with its defaults: loop / render-only "
                f"= {loop_ratio.median:.3f} (target ≤ {LOOP_TARGET}) "
                f"{_check(loop_ratio.median, LOOP_TARGET)}."
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
                f"(target ≤ {DISK_TARGET}) {_check(disk_ratio.median, DISK_TARGET)}."
            )
        if row["label"] == GYM_RV:
            verdicts.append(
                f"gymnasium.wrappers.RecordVideo: loop / render-only = {loop_ratio.median:.2f} "
                "(the peer's ~4.4 in DESIGN.md)."
            )
    t1 = bu.markdown_table(
        [
            "variant",
            "loop s",
            "loop / render-only",
            "loop-thread CPU / render-only's",
            "blocked on budget s",
            "close/flush s",
            "time to disk s",
            "time to disk / gymnasium RecordVideo",
            "peak queued MiB: median (max)",
            "videos on disk (per run)",
            "frames dropped (all runs)",
            "encoder frames per worker-second",
        ],
        every,
    )
    t2 = bu.markdown_table(
        [
            "variant",
            "loop s",
            "loop / render-only on the schedule",
            "loop / render-only every step",
            "time to disk s",
            "videos on disk (per run)",
            "frames dropped (all runs)",
        ],
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

    def work() -> None:
        busy(n)

    intervals = (0.005, 0.001)
    default_interval = sys.getswitchinterval()

    def with_interval(interval: float, fn: Callable[[], Run]) -> Callable[[], Run]:
        def run() -> Run:
            sys.setswitchinterval(interval)
            try:
                return fn()
            finally:
                sys.setswitchinterval(default_interval)

        return run

    variants: list[Variant] = []
    for interval in intervals:
        ms = f"{interval * 1e3:g} ms"
        variants += [
            Variant(f"render only, switch {ms}", with_interval(interval, lambda: v.render_only(
                always, work)), ms, "baseline"),
            Variant(f"recorder, 1 worker, switch {ms}", with_interval(
                interval, lambda: v.recorder_wrapper({}, always, work)), ms, "recorder"),
            Variant(f"recorder, 2 workers, switch {ms}", with_interval(
                interval, lambda: v.recorder_wrapper({"workers": 2}, always, work)), ms,
                "recorder"),
        ]  # fmt: skip
    bu.log(f"scenario 5: {len(variants)} variants x {cfg.py_rounds} interleaved rounds")
    bu.interleave(cfg.py_rounds, {x.label: x.measure for x in variants})
    rows = []
    for x in variants:
        base = next(b for b in variants if b.group == x.group and b.kind == "baseline")
        enc = [r.frames_encoded / r.encode_s for r in x.runs if r.frames_encoded and r.encode_s]
        e2e = [r.frames_encoded / r.disk_s for r in x.runs if r.frames_encoded]
        rows.append(
            {
                "label": x.label,
                "interval": x.group,
                "kind": x.kind,
                "loop_s": asdict(bu.spread(x.loop())),
                "loop_ratio": asdict(bu.paired_ratios(x.loop(), base.loop())),
                "cpu_ratio": asdict(bu.paired_ratios(x.cpu(), base.cpu())),
                "blocked_s": None if (b := x.blocked()) is None else asdict(b),
                "disk_s": asdict(bu.spread(x.disk())),
                "encoder_fps": asdict(bu.spread(enc)) if enc else None,
                "throughput_fps": asdict(bu.spread(e2e)) if e2e else None,
                "peak_queued_mib": max(
                    (r.peak_queued_mib for r in x.runs if r.peak_queued_mib is not None),
                    default=None,
                ),
                "frames_dropped": sum(r.frames_dropped or 0 for r in x.runs),
                "complete": all(r.videos == r.expected for r in x.runs),
            }
        )
    return {"rows": rows, "busy_iterations": n, "step_ms": step_ms, "steps": cfg.py_steps}


def python_table(res: dict[str, Any]) -> str:
    rows = []
    for row in res["rows"]:
        base = row["kind"] == "baseline"
        steps_per_s = res["steps"] / _s(row["loop_s"]).median
        rows.append(
            [
                row["label"],
                _s(row["loop_s"]).fmt(2),
                f"{steps_per_s:.0f}",
                _s(row["loop_ratio"]).fmt(2),
                _s(row["cpu_ratio"]).fmt(2),
                "-" if row["blocked_s"] is None else _s(row["blocked_s"]).fmt(2),
                "-" if base else _s(row["disk_s"]).fmt(2),
                "-" if row["encoder_fps"] is None else _s(row["encoder_fps"]).fmt(0),
                "-" if row["throughput_fps"] is None else _s(row["throughput_fps"]).fmt(0),
                "-" if row["peak_queued_mib"] is None else f"{row['peak_queued_mib']:.0f}",
                "-" if base else f"{row['frames_dropped']}" + ("" if row["complete"] else " ❌"),
            ]
        )
    return bu.markdown_table(
        [
            "variant",
            "loop s",
            "steps/s",
            "loop / render-only",
            "loop-thread CPU / render-only's",
            "blocked on budget s",
            "time to disk s",
            "encoder frames per worker-second (frames / summed worker encode time)",
            "frames/s to disk (frames / time to disk)",
            "peak queued MiB",
            "frames dropped",
        ],
        rows,
    )


# -- scenario 4: peak RSS (each measurement in a fresh process) --------------------------------


def rss_child(kind: str, frames: int, budget: int) -> None:
    """Record one *frames*-frame CartPole episode the *kind* way; print a JSON line."""
    import av

    if kind == "gymnasium":
        import moviepy  # noqa: F401  (imported before the baseline, as the wrapper needs it)
        from gymnasium.wrappers import RecordVideo
    env: gym.Env[Any, Any] = make_env(max_episode_steps=frames - 1)
    obs, _ = env.reset(seed=SEED)
    env.render()  # pygame initialised before the baseline
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "videos"
        gc.collect()
        baseline = bu.rss_mb()
        start = time.perf_counter()
        peak_queued = None
        dropped = None
        if kind == "recorder-episode":
            rec = recorder.Recorder(
                folder, episode_trigger=always, max_queue_bytes=budget, on_full="block",
                sidecars=False,
            )  # fmt: skip
            with rec, rec.episode(0) as ep:
                obs, _ = env.reset(seed=SEED)
                ep.append(env.render())
                done = False
                while not done:
                    obs, _, te, tr, _ = env.step(balance(obs))
                    ep.append(env.render())
                    done = te or tr
            s = rec.stats()
            peak_queued, dropped = s.peak_queued_bytes / bu.MiB, s.frames_dropped
        else:
            if kind == "recorder-wrapper":
                env = recorder.wrappers.RecordVideo(
                    env, str(folder), episode_trigger=always,
                    recorder_kwargs={"max_queue_bytes": budget},
                )  # fmt: skip
            else:
                env = RecordVideo(env, str(folder), episode_trigger=always)
            obs, _ = env.reset(seed=SEED)
            done = False
            while not done:
                obs, _, te, tr, _ = env.step(balance(obs))
                done = te or tr
            env.close()
            if kind == "recorder-wrapper":
                s = env.recorder.stats()  # type: ignore[attr-defined]
                peak_queued, dropped = s.peak_queued_bytes / bu.MiB, s.frames_dropped
        wall = time.perf_counter() - start
        videos = list(folder.glob("*.mp4"))
        with av.open(str(videos[0])) as container:
            in_video = sum(1 for _ in container.demux(video=0) if _.size)
        env.close()
    # The recorder's encoder process (idle now, kept for a next recorder): its VmHWM, as
    # ru_maxrss survives exec. gymnasium's ffmpeg children were waited for: ru_maxrss.
    encoder_mb = bu.encoder_processes_hwm_mb()
    children = encoder_mb or resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "kind": kind,
                "frames": frames,
                "budget_mib": budget // bu.MiB,
                "videos": len(videos),
                "frames_in_video": in_video,
                "baseline_mb": baseline,
                "maxrss_mb": bu.maxrss_mb(),
                "hwm_mb": bu.hwm_mb(),
                "children_maxrss_mb": children,
                "peak_queued_mib": peak_queued,
                "dropped": dropped,
                "wall_s": wall,
            }
        )
    )


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
        args = [sys.executable, __file__, "--rss-child", kind, str(frames), str(budget)]
        results.append(bu.run_json(args, timeout=900))
    peers = [r for r in results if r["kind"] == "gymnasium"]
    (n1, p1), (n2, p2) = ((r["frames"], r["hwm_mb"]) for r in peers)
    slope = (p2 - p1) / (n2 - n1)
    extrapolated = p2 + slope * (cfg.rss_frames - n2)
    return {
        "runs": results,
        "target_frames": cfg.rss_frames,
        "peer_mb_per_frame": slope,
        "peer_extrapolated_mb": extrapolated,
    }


RSS_LABELS = {
    "recorder-episode": "recorder `Recorder.episode` streaming",
    "recorder-wrapper": "recorder.wrappers.RecordVideo (defaults)",
    "gymnasium": "gymnasium.wrappers.RecordVideo",
}


def rss_table(res: dict[str, Any]) -> str:
    rows: list[list[object]] = []
    for r in res["runs"]:
        budget = "-" if r["kind"] == "gymnasium" else str(r["budget_mib"])
        queued = "-" if r["peak_queued_mib"] is None else f"{r['peak_queued_mib']:.0f}"
        rows.append(
            [
                RSS_LABELS[r["kind"]],
                f"{r['frames']:,}",
                budget,
                f"{r['baseline_mb']:.0f}",
                f"{r['hwm_mb']:.0f}",
                f"{r['maxrss_mb']:.0f}",
                f"{r['hwm_mb'] - r['baseline_mb']:.0f}",
                queued,
                f"{r['children_maxrss_mb']:.0f}",
                f"{r['frames_in_video']:,}",
                "-" if r["dropped"] is None else r["dropped"],
                f"{r['wall_s']:.1f}",
            ]
        )
    n = res["target_frames"]
    rows.append(
        [
            "gymnasium.wrappers.RecordVideo, **extrapolated on paper**",
            f"{n:,}",
            "-",
            "-",
            f"≈ {res['peer_extrapolated_mb']:,.0f}",
            "-",
            f"({res['peer_mb_per_frame']:.2f} MB/frame)",
            "-",
            "-",
            "-",
            "-",
            "-",
        ]
    )
    return bu.markdown_table(
        [
            "recording",
            "frames",
            "max_queue_bytes MiB",
            "baseline MB",
            "peak RSS MB (VmHWM)",
            "ru_maxrss MB",
            "peak - baseline MB",
            "peak queued MiB",
            "child process peak MB (encoder / ffmpeg)",
            "frames in video",
            "dropped",
            "wall s",
        ],
        rows,
    )


# -- main ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (small counts)")
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    parser.add_argument("--json", type=Path, help="write the key figures here (for bench_all)")
    parser.add_argument("--rss-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.getLogger("recorder").setLevel(logging.ERROR)
    if args.rss_child:
        kind, frames, budget = args.rss_child
        rss_child(kind, int(frames), int(budget))
        return 0
    cfg = QUICK if args.quick else FULL
    started = time.perf_counter()
    load_before = bu.load_average()
    command = "python scripts/bench_cartpole.py" + (" --quick" if args.quick else "")
    if args.out is not None:
        command += f" --out {shlex.quote(str(args.out))}"

    # Peak RSS first, while this process is small (ru_maxrss survives exec; VmHWM does not).
    rss = scenario_rss(cfg)
    with tempfile.TemporaryDirectory(prefix="bench-cartpole-") as tmpdir:
        loop = scenario_loop(cfg, Path(tmpdir))
        python = scenario_python(cfg, Path(tmpdir))

    report = bu.Report("CartPole benchmark: recorder vs gymnasium (issues 3 and 7)")
    report.add(
        f"Generated by `{command}` on {datetime.date.today().isoformat()}"
        f"{' (QUICK smoke run: counts too small to mean much)' if args.quick else ''}.\n\n"
        f"Machine: {bu.machine_info()}; gymnasium {gym.__version__}. Load average before / "
        f"after: {load_before} → {bu.load_average()} (a shared machine: compare rows of one "
        "run, not across runs)."
    )
    t1, t2, verdicts = loop_tables(loop)
    report.add(
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
    report.add(
        "With the default schedule (capped cubic: episodes 0, 1, 8, 27, 64, ...), only the "
        "scheduled episodes are rendered by the wrappers; the fair baseline is a loop that "
        "renders the same episodes and discards the frames. The second run of that baseline "
        "shows the noise floor: a ratio within its spread is indistinguishable from 1. These "
        f"loops are short, so they run {loop['sched_rounds']} rounds (the "
        f"{loop['rounds']} above, then the schedule rows alone, interleaved).\n\n" + t2
    )
    report.add("\n".join(f"- {v}" for v in verdicts))
    report.add(
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
    report.add(
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
    report.add(f"Total benchmark time: {time.perf_counter() - started:.0f} s.")
    report.write(args.out)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"loop": loop, "rss": rss, "python": python, "quick": args.quick})
        )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    raise SystemExit(main())
