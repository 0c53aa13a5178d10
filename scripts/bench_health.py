"""Health check (issue 29): encode throughput with ``Recorder(health=True)`` and without.

The default Recorder looks at every frame where it is encoded (the encoder process); target:
its encode throughput is at least 97% of the same Recorder's with ``health=False``, in the same
run, rounds interleaved. Beside it, the probe's own time per frame against the encoder's.

Usage: ``python scripts/bench_health.py [--quick] [--out PATH] [--json PATH]``.
"""

from __future__ import annotations

import itertools
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import numpy as np

import recorder
from recorder._testing import (
    MAX_ROWS,
    MIN_ROWS,
    ROW_STEP,
    WHOLE_BYTES,
    Probe,
    PyAVEncoder,
    format_of,
)

TITLE = "Health check: encode throughput with and without it"
FPS = 30
TARGET = 0.97  # issue 29: health on / off, encode frames/s
SIZES = ((64, 64), (400, 600), (720, 1280))  # (height, width); CartPole renders 600x400
# The fastest encoder, where the check's share is largest (adaptive quality's choice would
# also vary with the backlog between rounds).
PRESET = "ultrafast"


@dataclass(frozen=True)
class Config:
    """How much to measure: frames per round and size (in the order of SIZES), the videos they
    are cut in, interleaved rounds, distinct CartPole renders (cycled), probe timings."""

    frames: tuple[int, ...]
    videos: int
    rounds: int
    distinct: int
    probe_rounds: int


# About 0.7 s a round at each size: 3000 frames of 64x64 (0.2 s) gave ratios of 0.70 to 1.05.
FULL = Config((12000, 600, 160), 4, 41, 120, 5)
QUICK = Config((40, 16, 8), 2, 2, 16, 1)


@dataclass(frozen=True)
class Round:
    """What one round saved: frames, and videos looked at / found suspect."""

    frames: int
    looked: int
    suspect: int


def size_name(size: tuple[int, int]) -> str:
    return f"{size[1]}x{size[0]}"


def submit_all(
    rec: recorder.Recorder, clips: list[list[np.ndarray]], episodes: Iterator[int]
) -> Round:
    """``submit`` every clip, then ``flush()``: one round."""
    handles = [h for clip in clips for h in rec.submit(clip, episode_index=next(episodes))]
    rec.flush()
    infos = [h.result() for h in handles]
    return Round(
        frames=sum(i.frames for i in infos),
        looked=sum(i.health is not None for i in infos),
        suspect=sum(bool(i.health and i.health.suspect) for i in infos),
    )


def throughput(
    bench: bu.Bench, size: tuple[int, int], frames: list[np.ndarray], count: int
) -> dict[str, Any]:
    """Health on and off, each a long-lived default Recorder (encoder process, 1 worker),
    rounds interleaved after an untimed warm-up round each."""
    cfg = bench.cfg
    cycled = list(itertools.islice(itertools.cycle(frames), count))
    per = count // cfg.videos
    clips = [cycled[i * per : (i + 1) * per] for i in range(cfg.videos)]
    variants = []
    recorders = []
    try:
        for health in (True, False):
            rec = recorder.Recorder(
                bench.tmp / f"{size_name(size)}-{health}", fps=FPS, episode_trigger=bu.always,
                on_full="block", sidecars=False, health=health, preset=PRESET,
            )  # fmt: skip
            recorders.append(rec)
            run = partial(submit_all, rec, clips, itertools.count())
            run()  # warm-up: the encoder process starts, x264 and the arena's pages warm
            variants.append(bu.Variant("on" if health else "off", run))
        bu.log(f"{size_name(size)}: {cfg.rounds} rounds of {per * cfg.videos} frames")
        bu.interleave(cfg.rounds, variants)
    finally:
        for rec in recorders:
            rec.close()
    result: dict[str, Any] = {"size": size_name(size), "frames": per * cfg.videos}
    rates = {}
    for v in variants:
        n = per * cfg.videos
        rates[v.label] = [n / u.wall for u in v.usages]
        result[v.label] = {
            "fps": asdict(bu.spread(rates[v.label])),
            "cpu_ms_per_frame": statistics.median(1e3 * u.cpu / n for u in v.usages),
            "rounds": [asdict(r) for r in v.results],
        }
    result["ratio"] = asdict(bu.paired_ratios(rates["on"], rates["off"]))
    return result


def probe_cost(frames: list[np.ndarray], rounds: int, folder: Path) -> dict[str, Any]:
    """µs per frame: the probe alone, and the encoder's writes (``PyAVEncoder``, health off)
    alone, on the same distinct frames, alternately; medians."""
    spec = recorder.VideoSpec(
        str(folder / "probe.mp4"), FPS, recorder.Codec(preset=PRESET), format_of(frames[0])
    )
    probe_us, encode_us = [], []
    for _ in range(rounds):
        probe = Probe(frames[0].shape)
        start = time.perf_counter()
        for frame in frames:
            probe.see(frame)
        probe_us.append((time.perf_counter() - start) / len(frames) * 1e6)
        encoder = PyAVEncoder(spec)  # opened, and closed, outside the time: writes only
        start = time.perf_counter()
        for frame in frames:
            encoder.write(frame)
        encode_us.append((time.perf_counter() - start) / len(frames) * 1e6)
        encoder.close()
    probe_median, encode_median = statistics.median(probe_us), statistics.median(encode_us)
    return {
        "probe_us": probe_median,
        "encode_us": encode_median,
        "share": probe_median / encode_median,
    }


def measure(bench: bu.Bench) -> dict[str, Any]:
    """Per size: the interleaved throughput rounds, then the probe's cost."""
    cfg = bench.cfg
    bu.log(f"collecting {cfg.distinct} CartPole frames")
    base = bu.cartpole_frames(cfg.distinct)
    results = []
    for size, count in zip(SIZES, cfg.frames, strict=True):
        frames = bu.resized(base, *size)
        row = throughput(bench, size, frames, count)
        row["probe"] = probe_cost(frames, cfg.probe_rounds, bench.tmp)
        results.append(row)
    # Whole: every round saved its frames; with health on, each video looked at and none of
    # CartPole's suspect; with it off, none looked at.
    ok = all(
        r["frames"] == row["frames"]
        and r["looked"] == (cfg.videos if key == "on" else 0)
        and r["suspect"] == 0
        for row in results
        for key in ("on", "off")
        for r in row[key]["rounds"]
    )
    looked = {
        "row_step": ROW_STEP,
        "min_rows": MIN_ROWS,
        "max_rows": MAX_ROWS,
        "whole_kib": WHOLE_BYTES // 1024,
    }
    return {"cfg": asdict(cfg), "looked": looked, "sizes": results, "ok": ok}


def report(doc: bu.Report, data: dict[str, Any]) -> None:
    cfg = data["cfg"]
    doc.header()
    per_round = ", ".join(f"{r['frames']} of {r['size']}" for r in data["sizes"])
    doc.say("setup", cfg=cfg, fps=FPS, target=TARGET, per_round=per_round, **data["looked"])
    rows = []
    for r in data["sizes"]:
        ratio = bu.Spread(**r["ratio"])
        for key, label in (("on", "`health=True` (default)"), ("off", "`health=False`")):
            rows.append(
                [r["size"], label, bu.fmt_spread(r[key]["fps"], 0),
                 f"{r[key]['cpu_ms_per_frame']:.3f}",
                 f"{ratio.fmt(3)} {bu.mark(ratio.median >= TARGET)}" if key == "on" else ""]
            )  # fmt: skip
    doc.add(
        bu.markdown_table(
            f"frame | recorder | frames/s | CPU ms/frame | on / off frames/s (target ≥ {TARGET})",
            rows,
        )
    )
    doc.say("probe", rounds=cfg["probe_rounds"], **data["looked"])
    doc.add(
        bu.markdown_table(
            "frame | probe µs/frame | encode µs/frame | probe / encode",
            [
                [
                    r["size"],
                    f"{r['probe']['probe_us']:.1f}",
                    f"{r['probe']['encode_us']:.0f}",
                    f"{100 * r['probe']['share']:.2f}%",
                ]
                for r in data["sizes"]
            ],
        )
    )
    doc.say("checks", verdict="met" if data["ok"] else "NOT met")
    doc.footer()


if __name__ == "__main__":
    raise SystemExit(bu.main(sys.modules[__name__]))
