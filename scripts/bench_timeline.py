"""Timeline and overlays (issue 31): what per-frame info and overlays cost, and where.

1. The training loop: CartPole-v1 under ``recorder.wrappers.RecordVideo``, every episode
   recorded, loop time / the same loop rendering only, with no info made (the drop-in's
   defaults), with timelines written (sidecars on), and with an overlay drawn (in the encoder
   process); interleaved rounds of one run. Target: the overlay's ratio within 0.02 of no info's.
2. The encoder: frames/s of the encoder writing frames with and without overlay text, per frame
   size (pyperf; the same code draws in an encoder process).
3. The caller's thread: ``Episode.append`` of a frame with and without an info (pyperf).

Usage: ``python scripts/bench_timeline.py [--quick] [--out PATH] [--json PATH]``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import gymnasium as gym
import numpy as np
from bench_core import (  # its parked encoder: appends timed without a worker
    CHUNK,
    Parked,
    timed_appends,
)

import recorder
import recorder.wrappers
from recorder._testing import PyAVEncoder, format_of

TITLE = "Timeline and overlays (issue 31)"
ENV_ID = "CartPole-v1"
SEED = 0
TARGET = 0.02  # loop / render-only: overlay on minus off
FIELDS = ("step", "reward", "return")
ENCODE_SIZES = ((84, 84), (400, 600), (720, 1280))
APPEND_SIZES = ((84, 84), (400, 600))
INFO = {"step": 12, "reward": 1.0, "return": 13.0, "action": 1}  # what the wrappers give


@dataclass(frozen=True)
class Config:
    """How much to measure."""

    steps: int  # 1: steps per loop
    rounds: int
    warmup_steps: int
    encode_frames: int  # 2: frames per video (one video per value)
    encode_perf: bu.PerfPlan
    append_perf: bu.PerfPlan  # 3


FULL = Config(2000, 20, 100, 120, bu.PerfPlan(3, 3, 1, loops=1), bu.PerfPlan(4, 3, 1))
QUICK = Config(60, 1, 10, 12, bu.PerfPlan(1, 2, 1, loops=1), bu.PerfPlan(1, 2, 1, loops=64))


# -- 1. the training loop -----------------------------------------------------------------------

RENDER_ONLY = "render only (env.render() every step, discarded)"
OFF = "RecordVideo (defaults: no info made)"
TIMELINE = 'RecordVideo, timelines (recorder_kwargs={"sidecars": True})'
OVERLAY = 'RecordVideo, overlay=("step", "reward", "return")'
LOOPS: dict[str, dict[str, Any] | None] = {  # label: the wrapper's arguments (None: no wrapper)
    RENDER_ONLY: None,
    OFF: {},
    TIMELINE: {"recorder_kwargs": {"sidecars": True}},
    OVERLAY: {"overlay": FIELDS},
}


def loop(tmp: Path, actions: list[int], kwargs: dict[str, Any] | None) -> SimpleNamespace:
    """One run of the loop (*kwargs*: RecordVideo's, or None to render only): its times and
    what it left on disk."""
    folder = Path(tempfile.mkdtemp(dir=tmp)) / "videos"  # none yet: no "overwriting" warning
    env: Any = gym.make(ENV_ID, render_mode="rgb_array")
    if kwargs is not None:
        env = recorder.wrappers.RecordVideo(env, str(folder), episode_trigger=bu.always, **kwargs)
    render = env.render if kwargs is None else (lambda: None)
    episodes = 1
    try:
        start = time.perf_counter()
        env.reset(seed=SEED)
        render()
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            render()
            if terminated or truncated:
                episodes += 1
                env.reset()
                render()
        run = SimpleNamespace(loop_s=time.perf_counter() - start)
        if kwargs is None:
            return run
        env.close()
        run.disk_s = time.perf_counter() - start
        videos = sorted(folder.glob("*.mp4"))
        run.videos, run.expected = len(videos), episodes
        run.frames, run.expected_frames = sum(map(bu.video_frames, videos)), len(actions) + episodes
        timelines = [json.loads(p.read_text()) for p in folder.glob("*.timeline.json")]
        run.timeline_frames = sum(t["frames"] for t in timelines) if timelines else None
        return run
    finally:
        env.close()  # idempotent; after an error, no worker thread left behind
        shutil.rmtree(folder.parent, ignore_errors=True)


def scenario_loop(cfg: Config, tmp: Path) -> dict[str, Any]:
    actions = np.random.default_rng(SEED).integers(2, size=cfg.steps).tolist()
    variants = [bu.Variant(label, partial(loop, tmp, actions, kw)) for label, kw in LOOPS.items()]
    bu.log(f"loop: warming up ({cfg.warmup_steps} steps per variant)")
    for kw in LOOPS.values():
        loop(tmp, actions[: cfg.warmup_steps], kw)
    bu.log(f"loop: {len(variants)} variants x {cfg.rounds} interleaved rounds")
    bu.interleave(cfg.rounds, variants, balanced=True)
    by = {x.label: x for x in variants}
    base, off = by[RENDER_ONLY], by[OFF]

    def ratios(x: bu.Variant) -> list[float]:
        return [a / b for a, b in zip(x.values("loop_s"), base.values("loop_s"), strict=True)]

    rows = []
    for x in variants:
        row: dict[str, Any] = {"label": x.label, "loop_s": asdict(bu.spread(x.values("loop_s")))}
        if x is not base:
            # Each round's ratio minus no info's of the same round: the pair shares its noise.
            diffs = [a - b for a, b in zip(ratios(x), ratios(off), strict=True)]
            row |= {
                "loop_ratio": asdict(bu.spread(ratios(x))),
                "minus_off": asdict(bu.spread(diffs)) if x is not off else None,
                "disk_s": asdict(bu.spread(x.values("disk_s"))),
                "complete": all(
                    r.videos == r.expected and r.frames == r.expected_frames for r in x.results
                ),
                "timelines_whole": all(
                    r.timeline_frames == (r.frames if x.label == TIMELINE else None)
                    for r in x.results
                ),
                "videos": sorted({r.videos for r in x.results}),
            }
        rows.append(row)
    return {"rows": rows, "rounds": cfg.rounds, "steps": cfg.steps}


# -- 2. the encoder, 3. the caller's thread (pyperf) --------------------------------------------


def size_name(size: tuple[int, int]) -> str:
    return f"{size[1]}x{size[0]}"


def encode_run(variant: str, size: tuple[int, int], data: Path, stack: contextlib.ExitStack,
               frames: int) -> Callable[[], Path]:  # fmt: skip
    """What a value of *variant* (``plain`` or ``overlay``) runs: one video of *frames* CartPole
    frames at *size*, encoded by the recorder's encoder in this thread (with the wrappers'
    overlay text for ``overlay``); the file it wrote (then deleted)."""
    images = bu.resized(list(np.load(data / "frames.npy"))[:frames], *size)
    folder = bu.scratch(stack, data, variant)
    texts = [f"step {i} · reward 1.0 · return {i + 1}.0" for i in range(len(images))]
    spec_of = partial(recorder.VideoSpec, fps=30.0, codec=recorder.Codec(preset="ultrafast"),
                      frame_format=format_of(images[0]))  # fmt: skip
    videos = itertools.count()

    def run() -> Path:
        path = folder / f"{variant}-{next(videos)}.mp4"
        encoder = PyAVEncoder(spec_of(str(path)))
        for image, text in zip(images, texts, strict=True):
            if variant == "overlay":
                encoder.write(image, text)
            else:
                encoder.write(image)
        encoder.close()
        if bu.video_frames(path) != len(images):
            raise RuntimeError(f"{path}: not every frame was written")
        path.unlink()
        return path

    return run


def append_run(
    variant: str, size: tuple[int, int], data: Path, stack: contextlib.ExitStack
) -> Callable[[int], float]:
    """What a value of *variant* (``append``, ``append-info``) runs: *loops* calls of
    ``Episode.append`` of one CartPole frame at *size* (with :data:`INFO` for ``append-info``),
    their seconds; the encoder parked, as bench_core's append against the copy."""
    frame = bu.resize_nearest(np.load(data / "frames.npy")[0], *size)
    folder = bu.scratch(stack, data, variant)
    rec = stack.enter_context(recorder.Recorder(
        folder, episode_trigger=bu.always, on_full="drop", encoder_factory=Parked,
        max_queue_bytes=(CHUNK + 2) * (frame.nbytes + 1024), sidecars=False,
    ))  # fmt: skip
    stack.callback(Parked.gate.set)  # before the Recorder closes, even after an error
    return timed_appends(rec, frame, INFO if variant == "append-info" else None)


def time_perf(loops: int, make: Callable[[], Any], key: str, timer: bool) -> float:
    """pyperf's time function: the run *make* makes at the worker's first call (kept under
    *key*), *loops* times; *timer*: the run times itself."""
    run = bu.made_once(key, make)
    return float(run(loops)) if timer else bu.perf_time(loops, run)


def perf(runner: Any, args: Any, stack: contextlib.ExitStack) -> None:
    """The benchmarks of variant ``args.variant``: an encode per size (in frames), or an
    append per size (in calls)."""
    cfg = QUICK if args.quick else FULL
    if args.variant.startswith("append"):
        for size in APPEND_SIZES:
            make = partial(append_run, args.variant, size, args.data, stack)
            runner.bench_time_func(size_name(size), time_perf, make, size_name(size), True)
        return
    for size in ENCODE_SIZES:
        make = partial(encode_run, args.variant, size, args.data, stack, cfg.encode_frames)
        runner.bench_time_func(size_name(size), time_perf, make, size_name(size), False,
                               inner_loops=cfg.encode_frames)  # fmt: skip


def compare(bench: bu.Bench, plan: bu.PerfPlan, ref: str, changed: str) -> list[dict[str, Any]]:
    """*ref*'s and *changed*'s pyperf benchmarks, per size: their mean seconds per call or
    frame, and changed / ref with pyperf's verdict."""
    files = {k: bench.perf(k, *plan.args()) for k in (ref, changed)}
    runs = {k: bu.perf_load(path) for k, path in files.items()}
    verdicts = bu.perf_compare(files[ref], files[changed])
    return [
        {"size": name, "ref_s": b["mean"], "changed_s": runs[changed][name]["mean"],
         "ratio": bu.compared(runs[changed][name]["mean"] / b["mean"], verdicts[name])}
        for name, b in runs[ref].items()
    ]  # fmt: skip


def measure(bench: bu.Bench) -> dict[str, Any]:
    cfg, tmp = bench.cfg, bench.tmp
    bu.log("collecting CartPole frames")
    np.save(tmp / "frames.npy", np.stack(bu.cartpole_frames(max(cfg.encode_frames, 2))))
    loops = scenario_loop(cfg, tmp)
    encode = compare(bench, cfg.encode_perf, "plain", "overlay")
    append = compare(bench, cfg.append_perf, "append", "append-info")
    checks = {f"{r['label']}: every video and frame on disk": r["complete"]
              for r in loops["rows"] if "complete" in r}  # fmt: skip
    checks |= {f"{r['label']}: a timeline of every frame, only with timelines": r["timelines_whole"]
               for r in loops["rows"] if "timelines_whole" in r}  # fmt: skip
    return {"cfg": asdict(cfg), "loop": loops, "encode": encode, "append": append,
            "checks": checks, "ok": all(checks.values())}  # fmt: skip


# -- the report ---------------------------------------------------------------------------------


def verdict(data: dict[str, Any]) -> tuple[float, bool]:
    """The overlay's loop / render-only minus no info's (median of the rounds), and whether it
    meets the target."""
    row = next(r for r in data["loop"]["rows"] if r["label"] == OVERLAY)
    diff = bu.Spread(**row["minus_off"]).median
    return diff, diff <= TARGET


def report(doc: bu.Report, data: dict[str, Any]) -> None:
    cfg, lp = data["cfg"], data["loop"]
    doc.header()
    doc.say("loop", steps=lp["steps"], rounds=lp["rounds"], fields=", ".join(FIELDS))
    rows = []
    for r in lp["rows"]:
        base = "loop_ratio" not in r
        minus = r.get("minus_off")
        rows.append([
            r["label"], bu.fmt_spread(r["loop_s"], 2),
            "-" if base else bu.fmt_spread(r["loop_ratio"], 3),
            "-" if minus is None else bu.fmt_spread(minus, 3),
            "-" if base else bu.fmt_spread(r["disk_s"], 2),
            "-" if base else "/".join(map(str, r["videos"])) + ("" if r["complete"] else " ❌"),
        ])  # fmt: skip
    doc.add(bu.markdown_table(
        "variant | loop s | loop / render-only | minus no info's (same round) | time to disk s | "
        "videos on disk (per run)", rows,
    ))  # fmt: skip
    diff, met = verdict(data)
    doc.say("target", diff=diff, target=TARGET, mark=bu.mark(met))
    doc.say("encode", frames=cfg["encode_frames"])
    doc.add(bu.markdown_table(
        "frame | without overlay frames/s | with overlay frames/s | with / without, frames/s "
        "(pyperf's verdict) | overlay µs per frame",
        [[r["size"], f"{1 / r['ref_s']:.0f}", f"{1 / r['changed_s']:.0f}",
          bu.fmt_compared({**r["ratio"], "ratio": 1 / r["ratio"]["ratio"]}),
          f"{(r['changed_s'] - r['ref_s']) * 1e6:.0f}"] for r in data["encode"]],
    ))  # fmt: skip
    doc.say("append", info=json.dumps(INFO))
    doc.add(bu.markdown_table(
        "frame | append µs | append with info µs | the info's µs | with / without (pyperf's "
        "verdict)",
        [[r["size"], f"{r['ref_s'] * 1e6:.2f}", f"{r['changed_s'] * 1e6:.2f}",
          f"{(r['changed_s'] - r['ref_s']) * 1e6:.2f}", bu.fmt_compared(r["ratio"])]
         for r in data["append"]],
    ))  # fmt: skip
    doc.add(bu.checklist(data["checks"]))
    doc.footer()


if __name__ == "__main__":
    raise SystemExit(bu.main(sys.modules[__name__]))
