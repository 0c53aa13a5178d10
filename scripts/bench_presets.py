"""Smaller files at no cost to the loop (issue 30): adaptive quality against pinned presets.

1. A paced CartPole loop (every episode recorded, ~1 ms of numpy work per step standing in for a
   policy): bytes / gymnasium's, loop / paced render-only, the loop thread's CPU time.
2. The default capped-cubic schedule: bytes / gymnasium's on the same episodes.
3. The unpaced stress loop (every episode): loop ratio and time to disk against pinned ultrafast.
4. A producer that outruns even ultrafast (1280x720, every frame): waits and drops against
   pinned ultrafast.

Usage: ``python scripts/bench_presets.py [--quick] [--out PATH] [--json PATH]``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from functools import partial
from types import SimpleNamespace
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import numpy as np
from bench_cartpole import RENDER_ONLY, SEED, Loop, count_presets
from bench_overload import make_frames

import recorder
from recorder._testing import count_budget_waits

TITLE = "Smaller files at no cost to the loop: adaptive quality (issue 30)"
PACED_BYTES = 1.2  # target: paced loop, bytes / gymnasium's on the same episodes
PACED_LOOP = 1.1  # ... loop / paced render-only
PACED_CPU = 0.03  # ... loop-thread CPU ratio within this of pinned ultrafast's
SCHEDULE_BYTES = 1.1  # target: default schedule, bytes / gymnasium's
STRESS_DISK = 0.4  # target: unpaced, time to disk / gymnasium's
NOISE = 1.05  # "no worse than pinned ultrafast": per-round ratio median at most this, range over 1


@dataclass(frozen=True)
class Config:
    """How much to measure."""

    steps: int  # paced and unpaced loops
    rounds: int  # of the unpaced loop
    policy_ms: float  # the paced loop's numpy work per step
    schedule_steps: int
    schedule_rounds: int
    big_episodes: int  # the 1280x720 producer
    big_frames: int  # per episode
    big_rounds: int
    # Of the paced loop: with 5, two variants that ran the same pipeline (the defaults, all at
    # veryfast, and preset="veryfast") came 0.09 apart in loop / render-only.
    paced_rounds: int = 5


# 8 rounds of the unpaced loop, 12 of the paced one (two balanced blocks of their 4 and 6
# variants) and 8 of the 1280x720 producer: with 5 and 3, the adaptive default came 1.05 of
# pinned ultrafast's loop time in one run and 0.99 in 12 rounds of the same loop, and
# ultrafast kept 3 of 18 videos where 8 runs of each kept none.
FULL = Config(2000, 8, 1.0, 6000, 3, 6, 120, 8, 12)
QUICK = Config(60, 1, 1.0, 60, 1, 2, 12, 1, 1)

GYM = "gymnasium.wrappers.RecordVideo"
DEFAULTS = "recorder RecordVideo, defaults (adaptive)"
ULTRAFAST = 'recorder RecordVideo, preset="ultrafast" (the default before)'
#: label, way, recorder_kwargs, kind (bench_cartpole.Loop's ways)
PACED = (
    (f"{RENDER_ONLY}, paced", "render", {}, "baseline"),
    (DEFAULTS, "recorder", {}, "recorder"),
    (ULTRAFAST, "recorder", {"preset": "ultrafast"}, "recorder"),
    ('recorder RecordVideo, preset="veryfast"', "recorder", {"preset": "veryfast"}, "recorder"),
    ('recorder RecordVideo, codec="av1"', "recorder", {"codec": "av1"}, "recorder"),
    (GYM, "gymnasium", {}, "peer"),
)
STRESS = (
    (RENDER_ONLY, "render", {}, "baseline"),
    (DEFAULTS, "recorder", {}, "recorder"),
    (ULTRAFAST, "recorder", {"preset": "ultrafast"}, "recorder"),
    (GYM, "gymnasium", {}, "peer"),
)
SCHEDULE = ((DEFAULTS, "recorder", {}, "recorder"), (GYM, "gymnasium", {}, "peer"))


def policy(n: int, weights: np.ndarray) -> np.ndarray:
    """A small policy network's forward passes: single-threaded numpy work."""
    x = np.ones(weights.shape[0])
    for _ in range(n):
        x = np.tanh(weights @ x)
    return x


def calibrate(ms: float) -> tuple[Any, float]:
    """The policy call taking *ms* (median of 50); and what it takes."""
    weights = np.random.default_rng(SEED).random((64, 64)) / 64

    def median_ms(n: int) -> float:
        times = []
        for _ in range(50):
            t0 = time.perf_counter()
            policy(n, weights)
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e3

    n = 100
    for _ in range(4):
        n = max(1, round(n * ms / median_ms(n)))
    return partial(policy, n, weights), median_ms(n)


def loops(
    table: tuple[tuple[str, str, dict[str, Any], str], ...],
    group: str,
    loop: Loop,
    rounds: int,
    trigger: Any = bu.always,
) -> dict[str, bu.Variant]:
    """*table*'s variants of *loop*, *rounds* interleaved rounds; by label."""
    variants = [bu.Variant(label, partial(loop, way, kw, trigger), group, kind)
                for label, way, kw, kind in table]  # fmt: skip
    bu.log(f"{group}: {len(variants)} variants x {rounds} interleaved rounds")
    bu.interleave(rounds, variants, balanced=True)
    return {v.label: v for v in variants}


def ratio(x: bu.Variant, base: bu.Variant, name: str) -> dict[str, Any] | None:
    a, b = x.values(name), base.values(name)
    return asdict(bu.paired_ratios(a, b)) if a and b else None


def rows_of(by: dict[str, bu.Variant], base: str | None) -> list[dict[str, Any]]:
    """Each variant's figures and its per-round ratios (to *base*'s loop, gymnasium's bytes and
    time to disk, pinned ultrafast's)."""
    rows = []
    for label, x in by.items():
        presets: Counter[str] = Counter()
        for p in x.values("presets"):
            presets.update(p)
        dropped, videos, expected = (
            x.values("frames_dropped"),
            x.values("videos"),
            x.values("expected"),
        )
        rows.append({
            "label": label, "kind": x.kind, "loop_s": asdict(bu.spread(x.values("loop_s"))),
            "disk_s": asdict(bu.spread(x.values("disk_s"))),
            "loop_ratio": ratio(x, by[base], "loop_s") if base else None,
            "cpu_ratio": ratio(x, by[base], "cpu_s") if base else None,
            "bytes": asdict(bu.spread(b)) if (b := x.values("bytes")) else None,
            "bytes_ratio": ratio(x, by[GYM], "bytes"),
            "disk_ratio": ratio(x, by[GYM], "disk_s"),
            "vs_ultrafast_loop": ratio(x, by[ULTRAFAST], "loop_s") if ULTRAFAST in by else None,
            "vs_ultrafast_disk": ratio(x, by[ULTRAFAST], "disk_s") if ULTRAFAST in by else None,
            "peak_queued_mib": max(x.values("peak_queued_mib"), default=None),
            "blocked_s": asdict(bu.spread(s)) if (s := x.values("blocked_s")) else None,
            "frames_dropped": sum(dropped) if dropped else None,
            "complete": videos == expected, "presets": dict(presets),
        })  # fmt: skip
    if base:  # the CPU target: the loop thread's CPU ratio, minus pinned ultrafast's, per round
        cpu = {r["label"]: by[r["label"]].values("cpu_s") for r in rows}
        render, ultra = cpu[base], cpu.get(ULTRAFAST)
        for row in rows:
            if ultra and row["kind"] == "recorder":
                diffs = [
                    (a - u) / r for a, u, r in zip(cpu[row["label"]], ultra, render, strict=False)
                ]
                row["cpu_minus_ultrafast"] = asdict(bu.spread(diffs))
    return rows


# -- 4: a producer that outruns even ultrafast ---------------------------------------------------


def outrun(frames: list[np.ndarray], cfg: Config, on_full: str, preset: str | None) -> Any:
    """Every frame of *cfg.big_episodes* episodes into one Recorder, as fast as it takes them."""
    with tempfile.TemporaryDirectory(prefix="bench-presets-") as folder:
        presets: Counter[str] = Counter()
        rec = recorder.Recorder(
            folder, episode_trigger=bu.always, on_full=on_full, preset=preset,  # type: ignore[arg-type]
            sidecars=False, on_saved=partial(count_presets, presets),
        )  # fmt: skip
        waits = count_budget_waits(rec)
        start = time.perf_counter()
        with rec:
            for e in range(cfg.big_episodes):
                with rec.episode(e) as ep:
                    for i in range(cfg.big_frames):
                        ep.offer(partial(frames.__getitem__, (e + i) % len(frames)))
            producer = time.perf_counter() - start
        s = rec.stats()
    return SimpleNamespace(
        producer_s=producer, disk_s=time.perf_counter() - start, waits=waits[0],
        blocked_s=waits[1], videos_dropped=s.videos_dropped, frames_dropped=s.frames_dropped,
        videos_saved=s.videos_saved, presets=dict(presets),
    )  # fmt: skip


def scenario_outrun(cfg: Config) -> list[dict[str, Any]]:
    frames = make_frames(16)
    variants = [bu.Variant(f"{on_full}, {label}", partial(outrun, frames, cfg, on_full, preset),
                           on_full, "recorder")
                for on_full in ("block", "drop")
                for label, preset in (("adaptive", None), ("ultrafast", "ultrafast"))]  # fmt: skip
    outrun(frames, QUICK, "block", None)  # warm-up: an encoder process, the imports
    bu.log(f"outrun: {len(variants)} variants x {cfg.big_rounds} interleaved rounds")
    bu.interleave(cfg.big_rounds, variants)
    rows = []
    for v in variants:
        presets: Counter[str] = Counter()
        for p in v.values("presets"):
            presets.update(p)
        rows.append({
            "label": v.label, "on_full": v.group,
            **{k: asdict(bu.spread(v.values(k))) for k in ("producer_s", "disk_s", "blocked_s")},
            **{k: sum(v.values(k)) for k in ("waits", "videos_dropped", "frames_dropped",
                                             "videos_saved")},
            "presets": dict(presets),
        })  # fmt: skip
    return rows


# -- measuring -----------------------------------------------------------------------------------


def measure(bench: bu.Bench) -> dict[str, Any]:
    cfg = bench.cfg
    actions = np.random.default_rng(SEED).integers(2, size=cfg.steps).tolist()
    work, work_ms = calibrate(cfg.policy_ms)
    bu.log(f"paced loop: a policy of {work_ms:.2f} ms per step")
    warm = Loop(bench.tmp, actions[:10])
    for way in ("render", "recorder", "gymnasium"):
        warm(way, {})
    warm("recorder", {"codec": "av1"})
    paced = loops(PACED, "paced", Loop(bench.tmp, actions, work), cfg.paced_rounds)
    stress = loops(STRESS, "stress", Loop(bench.tmp, actions), cfg.rounds)
    long_actions = np.random.default_rng(SEED + 1).integers(2, size=cfg.schedule_steps).tolist()
    schedule = loops(SCHEDULE, "schedule", Loop(bench.tmp, long_actions), cfg.schedule_rounds,
                     None)  # fmt: skip
    outruns = scenario_outrun(cfg)
    bu.stop_idle_encoder_processes()
    base = f"{RENDER_ONLY}, paced"
    return {
        "cfg": asdict(cfg), "work_ms": work_ms, "paced": rows_of(paced, base),
        "stress": rows_of(stress, RENDER_ONLY), "schedule": rows_of(schedule, None),
        "outrun": outruns, "rounds": len(paced[base].results),
        "videos": paced[DEFAULTS].values("expected")[0],
    }  # fmt: skip


# -- the report ----------------------------------------------------------------------------------


def presets_cell(presets: dict[str, int]) -> str:
    """Each preset's share of the frames, the most used first."""
    total = sum(presets.values())
    ranked = sorted(presets.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{p} {n / total:.0%}" for p, n in ranked) if total else "-"


def kilo(d: dict[str, Any] | None) -> str:
    """A spread of bytes in kB."""
    if d is None:
        return "-"
    return f"{d['median'] / 1e3:.0f} ({d['low'] / 1e3:.0f}-{d['high'] / 1e3:.0f})"


def loop_table(rows: list[dict[str, Any]]) -> str:
    f = bu.fmt_spread
    out = []
    for r in rows:
        base = r["kind"] == "baseline"
        dropped = "-" if r["frames_dropped"] is None else str(r["frames_dropped"])
        out.append(
            [r["label"], f(r["loop_s"], 2), f(r["loop_ratio"], 3), f(r["cpu_ratio"], 3),
             f(r.get("cpu_minus_ultrafast"), 3), kilo(r["bytes"]),
             "-" if base else f(r["bytes_ratio"], 2), "-" if base else f(r["disk_s"], 2),
             "-" if base else f(r["disk_ratio"], 2), f(r["vs_ultrafast_loop"], 2),
             f(r["vs_ultrafast_disk"], 2), f(r["blocked_s"], 2),
             "-" if r["peak_queued_mib"] is None else f"{r['peak_queued_mib']:.0f}", dropped,
             presets_cell(r["presets"]) + ("" if base or r["complete"] else " ❌")]
        )  # fmt: skip
    return bu.markdown_table(
        "variant | loop s | loop / render-only | loop-thread CPU / render-only's | that, minus "
        "pinned ultrafast's | kB on disk | bytes / gymnasium's | time to disk s | time to disk / "
        "gymnasium's | loop / pinned ultrafast's | time to disk / pinned ultrafast's | blocked on "
        "budget s | peak queued MiB | frames dropped | frames by preset",
        out,
    )


def outrun_table(rows: list[dict[str, Any]]) -> str:
    f = bu.fmt_spread
    return bu.markdown_table(
        "on_full, preset | producer s | time to disk s | waits (all runs) | blocked s | videos "
        "saved / dropped (all runs) | frames dropped | frames by preset",
        [[r["label"], f(r["producer_s"], 2), f(r["disk_s"], 2), r["waits"], f(r["blocked_s"], 2),
          f"{r['videos_saved']} / {r['videos_dropped']}", r["frames_dropped"],
          presets_cell(r["presets"])] for r in rows],
    )  # fmt: skip


def verdicts(data: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, each with its figure and its mark."""
    paced = {r["label"]: r for r in data["paced"]}
    stress = {r["label"]: r for r in data["stress"]}
    sched = {r["label"]: r for r in data["schedule"]}
    d, s = paced[DEFAULTS], stress[DEFAULTS]
    v: dict[str, Any] = {}

    def med(d: dict[str, Any] | None) -> float:
        return bu.Spread(**d).median if d else float("nan")

    v["paced_bytes"] = med(d["bytes_ratio"])
    v["paced_loop"] = med(d["loop_ratio"])
    v["paced_cpu"] = med(d["cpu_minus_ultrafast"])
    v["paced_dropped"] = d["frames_dropped"]
    v["schedule_bytes"] = med(sched[DEFAULTS]["bytes_ratio"])
    loop_q, disk_q = bu.Spread(**s["vs_ultrafast_loop"]), bu.Spread(**s["vs_ultrafast_disk"])
    v["stress_loop"], v["stress_disk"] = loop_q, disk_q
    v["stress_disk_gym"] = med(s["disk_ratio"])
    v["stress_bytes"] = med(s["bytes_ratio"])
    marks = {
        "paced_bytes": v["paced_bytes"] <= PACED_BYTES,
        "paced_loop": v["paced_loop"] <= PACED_LOOP,
        "paced_cpu": abs(v["paced_cpu"]) <= PACED_CPU,
        "paced_dropped": v["paced_dropped"] == 0,
        "schedule_bytes": v["schedule_bytes"] <= SCHEDULE_BYTES,
        "stress_loop": loop_q.median <= NOISE and loop_q.low <= 1,
        "stress_disk": disk_q.median <= NOISE and disk_q.low <= 1,
        "stress_disk_gym": v["stress_disk_gym"] <= STRESS_DISK,
    }
    out = {r["label"]: r for r in data["outrun"]}
    for mode in ("block", "drop"):
        a, u = out[f"{mode}, adaptive"], out[f"{mode}, ultrafast"]
        key = "blocked_s" if mode == "block" else "videos_dropped"
        ours = bu.Spread(**a[key]).median if mode == "block" else a[key]
        theirs = bu.Spread(**u[key]).median if mode == "block" else u[key]
        v[f"outrun_{mode}"] = (ours, theirs)
        marks[f"outrun_{mode}"] = ours <= theirs * NOISE + (0.05 if mode == "block" else 0)
    v["marks"] = {k: bu.mark(ok) for k, ok in marks.items()}
    return v


def report(doc: bu.Report, data: dict[str, Any]) -> None:
    cfg = Config(**data["cfg"])
    doc.header()
    v = verdicts(data)
    doc.say("paced", cfg=cfg, work_ms=data["work_ms"], videos=data["videos"],
            rounds=data["rounds"], table=loop_table(data["paced"]))  # fmt: skip
    doc.say("stress", cfg=cfg, table=loop_table(data["stress"]))
    doc.say("schedule", cfg=cfg, table=loop_table(data["schedule"]))
    doc.say("outrun", cfg=cfg, table=outrun_table(data["outrun"]))
    doc.say("verdicts", v=v, m=v["marks"], noise=NOISE, paced_bytes=PACED_BYTES,
            paced_loop=PACED_LOOP, paced_cpu=PACED_CPU, schedule_bytes=SCHEDULE_BYTES,
            stress_disk=STRESS_DISK)  # fmt: skip
    doc.footer()


if __name__ == "__main__":
    raise SystemExit(bu.main(sys.modules[__name__]))
