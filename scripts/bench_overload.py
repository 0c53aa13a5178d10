"""Overload benchmark (issue 6): a producer much faster than the encoder.

With ``on_full="drop"`` the producer must never wait and the clips that do not fit are dropped
whole and counted; ``"block"`` (lossless: the producer waits for the encoder) is the contrast.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import asdict
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import numpy as np

import recorder
from recorder._testing import count_budget_waits

TITLE = "Overload: producer much faster than the encoder"
TARGET_MAX_US = 1000.0
HEIGHT, WIDTH, BUDGET_FRAMES, LENGTH, STEP_US = 720, 1280, 8, 8, 2000.0
FULL, QUICK = 60, 10  # episodes
MODES = (  # label, on_full, encode_in
    ("drop", "drop", "process"),
    ("block", "block", "process"),
    ('drop, encode_in="thread"', "drop", "thread"),
)
CHECKED = ("drop", "block")  # the modes whose checks are reported
HEADERS = (
    "on_full | appends / steps | median µs | p99 µs | max µs | first episode: max µs | "
    "waits | videos saved | dropped | failed | peak / budget MiB | producer s | flush s"
)


def make_frames(count: int) -> list[np.ndarray]:
    """*count* distinct frames: a gradient that moves (cheap to make, realistic to encode)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = ((x * 255 // (WIDTH - 1)) ^ (y * 255 // (HEIGHT - 1))).astype(np.uint8)
    rgb = np.stack([base, np.roll(base, HEIGHT // 3, 0), np.roll(base, WIDTH // 3, 1)], -1)
    return [np.ascontiguousarray(np.roll(rgb, 9 * i, axis=1)) for i in range(count)]


def produce(
    frames: list[np.ndarray], episodes: int, on_full: str, encode_in: str
) -> tuple[dict[str, Any], dict[str, bool]]:
    """Stream *episodes* episodes of LENGTH frames as fast as possible into one Recorder; its
    figures and the checks of its *on_full* policy."""
    first: list[int] = []  # append times (ns) of the first episode, then of the others
    later: list[int] = []
    with tempfile.TemporaryDirectory(prefix="bench-overload-") as folder:
        rec = recorder.Recorder(
            folder, episode_trigger=bu.always, workers=1, sidecars=False,
            max_queue_bytes=BUDGET_FRAMES * frames[0].nbytes, on_full=on_full,  # type: ignore[arg-type]
            encode_in=encode_in,  # type: ignore[arg-type]
        )  # fmt: skip
        waits = count_budget_waits(rec)
        handles: list[recorder.ClipHandle] = []
        start = time.perf_counter()
        with rec:
            for e in range(episodes):
                with rec.episode(e) as ep:
                    for i in range(LENGTH):
                        step_end = time.perf_counter() + STEP_US / 1e6
                        while time.perf_counter() < step_end:  # a Python step holds the GIL
                            pass
                        if not ep.wants_frame:  # dropped: the loop would skip render()
                            ep.skip()
                            continue
                        t0 = time.perf_counter_ns()
                        ep.append(frames[(e + i) % len(frames)])
                        (later if e else first).append(time.perf_counter_ns() - t0)
                handles += ep.handles
            producer_s = time.perf_counter() - start
            rec.flush()
            flush_s = time.perf_counter() - start - producer_s
        saved = [h for h in handles if h.exception() is None]
        complete = sum(bu.video_frames(h.path, True) == h.result().frames == LENGTH for h in saved)
        files = len([n for n in os.listdir(folder) if n.endswith(".mp4")])
    s, lat, waited = rec.stats(), bu.latency_us(later or first), int(waits[0])
    row = {
        "appends": lat.n, "steps": episodes * LENGTH, "latency_us": asdict(lat),
        "first_max_us": bu.latency_us(first).max, "waits": waited, "saved": s.videos_saved,
        "complete": complete, "dropped": s.videos_dropped, "failed": s.videos_failed,
        "peak_mib": s.peak_queued_bytes / bu.MiB, "budget_mib": s.max_queue_bytes / bu.MiB,
        "producer_s": producer_s, "flush_s": flush_s,
    }  # fmt: skip
    if on_full == "block":
        return row, {"nothing dropped": s.videos_dropped == 0}
    return row, {
        f"max append latency after the first episode < {TARGET_MAX_US:.0f} µs": lat.max
        < TARGET_MAX_US,
        "the producer never waited": waited == 0,
        "peak queued bytes within the budget": s.peak_queued_bytes <= s.max_queue_bytes,
        "drops counted (producer faster than the encoder)": s.videos_dropped > 0,
        "every saved video complete": complete == s.videos_saved == files,
        "started = saved + dropped + failed": s.videos_started
        == s.videos_saved + s.videos_dropped + s.videos_failed,
    }


def measure(bench: bu.Bench) -> dict[str, Any]:
    """Each mode after a one-episode warm-up (imports)."""
    frames = make_frames(16)
    rows, checks = [], {}
    for label, on_full, encode_in in MODES:
        bu.log(f"{label} ...")
        produce(frames, 1, on_full, encode_in)
        row, verdicts = produce(frames, bench.cfg, on_full, encode_in)
        rows.append({"label": label, **row})
        if label in CHECKED:
            checks |= {f"{label}: {name}": ok for name, ok in verdicts.items()}
    return {"episodes": bench.cfg, "frame_bytes": frames[0].nbytes, "rows": rows,
            "checks": checks}  # fmt: skip


def report(doc: bu.Report, data: dict[str, Any]) -> None:
    nbytes = data["frame_bytes"]
    doc.say(
        "setup", header=doc.short_header(), height=HEIGHT, width=WIDTH, length=LENGTH,
        frame_mib=nbytes / bu.MiB, budget_frames=BUDGET_FRAMES, episodes=data["episodes"],
        budget_mib=BUDGET_FRAMES * nbytes / bu.MiB, step_us=STEP_US,
    )  # fmt: skip
    rows = []
    for r in data["rows"]:
        lat = bu.Latency(**r["latency_us"])
        rows.append(
            [r["label"], f"{r['appends']} / {r['steps']}", f"{lat.median:.0f}", f"{lat.p99:.0f}",
             f"{lat.max:.0f}", f"{r['first_max_us']:.0f}", r["waits"],
             f"{r['saved']} ({r['complete']} complete)", r["dropped"], r["failed"],
             f"{r['peak_mib']:.1f} / {r['budget_mib']:.1f}", f"{r['producer_s']:.2f}",
             f"{r['flush_s']:.2f}"]
        )  # fmt: skip
    doc.add(bu.markdown_table(HEADERS, rows))
    doc.add(bu.checklist(data["checks"]))


if __name__ == "__main__":
    raise SystemExit(bu.main(sys.modules[__name__]))
