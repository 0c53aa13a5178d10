"""Soak (issue 6): many short episodes through one Recorder with 2 workers; nothing may be lost.

Bursts of BURST episodes, each then flushed (a training loop's checkpoint); the budget drops some
clips of each burst and every FAIL_EVERY-th encoder fails with ENOSPC at its third frame, so
saved, dropped and failed all occur often. Exit status 1 when a check fails.
"""

from __future__ import annotations

import errno
import gc
import itertools
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import numpy as np

import recorder
from recorder._testing import PyAVEncoder

TITLE = "Soak: {episodes} episodes, 2 workers"
RSS_TOLERANCE_MB = 48.0
LENGTH, WORKERS, BURST, FAIL_EVERY, BUDGET_FRAMES = 8, 2, 40, 97, 200
FULL, QUICK = 10_000, 1000  # episodes


def painted(index: int) -> np.ndarray:
    """A 48x112 frame whose top row of 8x8 cells spells *index* in binary (like the tests')."""
    img = np.full((48, 112, 3), 40, np.uint8)
    img[:8, :96] = np.repeat(np.where(index >> np.arange(12) & 1, 230, 40), 8)[:, None]
    return img


class SometimesFailing(PyAVEncoder):
    """A PyAV encoder; every FAIL_EVERY-th one made fails with ENOSPC at its frame 2."""

    # A module-level class, not one made per call: a closure's cell would keep the encoder
    # alive from the error's traceback (its frames keep their function), ~1.3 MB each.
    made = itertools.count(1)  # next() is atomic: the workers' threads share it

    def __init__(self, spec: recorder.VideoSpec) -> None:
        self.fail_at = 2 if next(self.made) % FAIL_EVERY == 0 else -1
        self.written = 0
        super().__init__(spec)

    def write(self, image: np.ndarray) -> None:
        if self.written == self.fail_at:
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        super().write(image)
        self.written += 1


def snapshot() -> tuple[float, int, int]:
    """(RSS MB, open fds, threads) after a full garbage collection."""
    gc.collect()
    return bu.rss_mb(), bu.open_fds(), threading.active_count()


def count_errors(action: Callable[[], None]) -> int:
    """Run *action* (flush or close); the number of failed videos it reported."""
    try:
        action()
    except ExceptionGroup as group:
        return len(group.exceptions)
    except OSError:
        return 1
    return 0


def checkpoint(action: Callable[[], None], handles: list[Any], tally: Counter[str]) -> None:
    """Run *action* (flush or close), count the failures it reports and each handle's outcome,
    then let the handles go (holding 10,000 would itself grow the RSS being measured)."""
    tally["reported"] += count_errors(action)
    for h in handles:
        tally["unresolved"] += not h.done()  # flush() promises every clip is on disk
        exc = h.exception(timeout=60)
        dropped = isinstance(exc, recorder.ClipDroppedError)
        kind = "saved" if exc is None else "dropped" if dropped else "failed"
        tally[kind] += 1
        tally["wrong"] += h.path.exists() != (kind == "saved")  # a file exactly when saved
    handles.clear()


def measure(bench: bu.Bench) -> dict[str, Any]:
    """The soak; each burst's handles are checked against the folder once it is flushed."""
    episodes, folder = bench.cfg, bench.tmp
    warmup = max(BURST, episodes // 20 // BURST * BURST)
    frames = [painted(i) for i in range(LENGTH)]
    tally: Counter[str] = Counter()
    pending: list[recorder.ClipHandle] = []
    samples: list[tuple[int, float]] = []
    start = time.perf_counter()
    rec = recorder.Recorder(
        folder, episode_trigger=bu.always, workers=WORKERS,
        max_queue_bytes=BUDGET_FRAMES * frames[0].nbytes, encoder_factory=SometimesFailing,
    )  # fmt: skip
    try:
        for e in range(episodes):
            with rec.episode(e, metadata={"episode": e}) as ep:
                for frame in frames:
                    ep.offer(lambda f=frame: f)  # appended when a clip wants it
            pending += ep.handles
            done = e + 1
            if done % BURST == 0 or done == episodes:
                checkpoint(rec.flush, pending, tally)
            if done == warmup:
                warm = snapshot()
            if done % 1000 == 0:
                samples.append((done, bu.rss_mb()))
                bu.log(f"  {done} episodes, RSS {samples[-1][1]:.0f} MB")
        end = snapshot()
    finally:
        checkpoint(rec.close, pending, tally)
    elapsed = time.perf_counter() - start
    s = rec.stats()
    outcomes = (s.videos_saved, s.videos_dropped, s.videos_failed)
    handled = (tally["saved"], tally["dropped"], tally["failed"])
    grown = end[0] - warm[0]  # RSS MB
    checks = {
        "submitted = saved + dropped + failed": s.videos_started == sum(outcomes) == sum(handled),
        "handles agree with stats()": outcomes == handled,
        "every failure reported by flush()/close()": tally["reported"] == s.videos_failed,
        "a file for every saved clip, none for the others": not tally["wrong"],
        "no temporary file left": not any(n.endswith(".rec-tmp") for n in os.listdir(folder)),
        "every handle resolved when flush() returns": not tally["unresolved"],
        "open fds the same as after warm-up": end[1] == warm[1],
        "threads the same as after warm-up": end[2] == warm[2],
        f"RSS within {RSS_TOLERANCE_MB:.0f} MB of after warm-up": grown < RSS_TOLERANCE_MB,
        "no thread left after close()": not any(
            t.name.startswith("recorder-") for t in threading.enumerate()
        ),
    }
    return {
        "episodes": episodes, "warmup": warmup, "elapsed_s": elapsed, "warm": warm, "end": end,
        "samples": samples, "stats": bu.counters(s), "tally": dict(tally), "checks": checks,
        "ok": all(checks.values()),
    }  # fmt: skip


def report(doc: bu.Report, data: dict[str, Any]) -> None:
    episodes, s = data["episodes"], SimpleNamespace(**data["stats"])
    doc.title = TITLE.format(episodes=episodes)
    doc.say(
        "setup", header=doc.short_header(), episodes=episodes, length=LENGTH, burst=BURST,
        budget_frames=BUDGET_FRAMES, fail_every=FAIL_EVERY, elapsed=data["elapsed_s"],
    )  # fmt: skip
    moments = {f"after warm-up ({data['warmup']} episodes)": data["warm"],
               f"at the end ({episodes} episodes)": data["end"]}  # fmt: skip
    rows = [[when, f"{rss:.0f}", fds, threads] for when, (rss, fds, threads) in moments.items()]
    doc.add(bu.markdown_table("when | RSS MB | open fds | threads", rows))
    if samples := data["samples"]:
        doc.add("RSS every 1000 episodes (MB): " + ", ".join(f"{n}: {m:.0f}" for n, m in samples))
    doc.say(
        "outcome", s=s, tally=Counter(data["tally"]), peak_mib=s.peak_queued_bytes / bu.MiB,
        budget_mib=s.max_queue_bytes / bu.MiB,
    )  # fmt: skip
    doc.add(bu.checklist(data["checks"]))


if __name__ == "__main__":
    raise SystemExit(bu.main(sys.modules[__name__]))
