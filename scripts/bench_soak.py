"""Soak (issue 6): many short episodes through one Recorder with 2 workers.

Prints RSS, open file descriptors and thread count after warm-up and at the end (they should
be the same, RSS within a tolerance), and checks that nothing is lost: every clip started is
saved, dropped or failed (``submitted = saved + dropped + failed``), a file exists exactly for
each saved clip, and no temporary file is left. The loop is a training loop in bursts: 40
episodes as fast as it can, then a flush (a checkpoint). The budget is small enough that some
clips of each burst are dropped, and every 97th encoder fails with ENOSPC at its third frame,
so the three outcomes all occur many times.

Usage: ``python scripts/bench_soak.py [--quick] [--out FILE] [--json FILE]``; exit status 1
when something was lost or a resource count differs at the end.
"""

from __future__ import annotations

import errno
import gc
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import numpy as np

import recorder
from recorder._encoder import PyAVEncoder

TITLE = "Soak: {episodes} episodes, 2 workers"
RSS_TOLERANCE_MB = 48.0
LENGTH, WORKERS, BURST, FAIL_EVERY, BUDGET_FRAMES = 8, 2, 40, 97, 200


FULL, QUICK = 10_000, 1000  # episodes


def painted(index: int, height: int = 48, width: int = 112) -> np.ndarray:
    """A small frame whose top row of cells spells *index* in binary (like the tests')."""
    img = np.full((height, width), 40, np.uint8)
    for bit in range(12):
        if index >> bit & 1:
            img[:8, bit * 8 : (bit + 1) * 8] = 230
    return np.ascontiguousarray(np.stack([img, img, img], -1))


class SometimesFailing:
    """PyAV encoders; every *every*-th one fails at its frame 2 (ENOSPC)."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.made = 0
        self.lock = threading.Lock()

    def __call__(self, spec: recorder.VideoSpec) -> Any:
        with self.lock:
            self.made += 1
            faulty = self.every > 0 and self.made % self.every == 0
        inner = PyAVEncoder(spec)
        return DiskFullAtFrame2(inner) if faulty else inner


class DiskFullAtFrame2:
    """A PyAV encoder that fails with ENOSPC at its frame 2."""

    # A module-level class, not one made per call: a closure's cell would keep the encoder
    # alive from the error's traceback (its frames keep their function), ~1.3 MB each.
    def __init__(self, inner: PyAVEncoder) -> None:
        self.inner = inner
        self.n = 0

    def write(self, image: np.ndarray) -> None:
        if self.n == 2:
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        self.inner.write(image)
        self.n += 1

    def close(self) -> None:
        self.inner.close()

    def abort(self) -> None:
        self.inner.abort()


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


def run(bench: bu.Bench) -> dict[str, Any]:
    """The soak: the handles of each burst are checked against the folder once it is flushed,
    then let go (holding 10,000 handles would itself grow the RSS being measured)."""
    episodes, folder = bench.cfg, bench.tmp
    bench.title = TITLE.format(episodes=episodes)
    warmup = max(BURST, episodes // 20 // BURST * BURST)
    frames = [painted(i) for i in range(LENGTH)]
    outcome = {"saved": 0, "dropped": 0, "failed": 0}
    wrong: list[str] = []  # clips whose file is missing (saved) or present (not saved)
    started = reported = unresolved = 0
    warm = (0.0, 0, 0)
    samples: list[tuple[int, float]] = []
    pending: list[recorder.ClipHandle] = []

    def settle() -> None:
        nonlocal started, unresolved
        for h in pending:
            # flush() promises every clip is on disk: its handle should be resolved by then.
            unresolved += not h.done()
            exc = h.exception(timeout=60)
            dropped = isinstance(exc, recorder.ClipDroppedError)
            kind = "saved" if exc is None else "dropped" if dropped else "failed"
            outcome[kind] += 1
            if h.path.exists() != (kind == "saved"):
                wrong.append(h.name)
        started += len(pending)
        pending.clear()

    start = time.perf_counter()
    rec = recorder.Recorder(
        folder, episode_trigger=bu.always, workers=WORKERS,
        max_queue_bytes=BUDGET_FRAMES * frames[0].nbytes,
        encoder_factory=SometimesFailing(FAIL_EVERY),
    )  # fmt: skip
    try:
        for e in range(episodes):
            with rec.episode(e, metadata={"episode": e}) as ep:
                for frame in frames:
                    ep.offer(lambda f=frame: f)  # appended when a clip wants it
            pending += ep.handles
            if (e + 1) % BURST == 0 or e + 1 in (warmup, episodes):
                reported += count_errors(rec.flush)
                settle()
            if e + 1 == warmup:
                warm = snapshot()
            if (e + 1) % 1000 == 0:
                samples.append((e + 1, bu.rss_mb()))
                bu.log(f"  {e + 1} episodes, RSS {samples[-1][1]:.0f} MB")
        end = snapshot()
    finally:
        reported += count_errors(rec.close)
        settle()
    elapsed = time.perf_counter() - start
    s = rec.stats()
    checks = {
        "submitted = saved + dropped + failed": s.videos_started
        == s.videos_saved + s.videos_dropped + s.videos_failed
        == started,
        "handles agree with stats()": (s.videos_saved, s.videos_dropped, s.videos_failed)
        == (outcome["saved"], outcome["dropped"], outcome["failed"]),
        "every failure reported by flush()/close()": reported == s.videos_failed,
        "a file for every saved clip, none for the others": not wrong,
        "no temporary file left": not [n for n in os.listdir(folder) if n.endswith(".rec-tmp")],
        "every handle resolved when flush() returns": not unresolved,
        "open fds the same as after warm-up": end[1] == warm[1],
        "threads the same as after warm-up": end[2] == warm[2],
        f"RSS within {RSS_TOLERANCE_MB:.0f} MB of after warm-up": end[0] - warm[0]
        < RSS_TOLERANCE_MB,
        "no thread left after close()": not [
            t for t in threading.enumerate() if t.name.startswith("recorder-")
        ],
    }
    add = bench.add
    add(
        f"{bench.short_header()}{episodes} episodes of {LENGTH} frames (48x112), every episode "
        f"triggered, a flush every {BURST} episodes, budget {BUDGET_FRAMES} frames, an ENOSPC "
        f"injected into every {FAIL_EVERY}th encoder; {elapsed:.1f} s."
    )
    add(
        bu.markdown_table(
            "when | RSS MB | open fds | threads",
            [
                [f"after warm-up ({warmup} episodes)", f"{warm[0]:.0f}", *warm[1:]],
                [f"at the end ({episodes} episodes)", f"{end[0]:.0f}", *end[1:]],
            ],
        )
    )
    if samples:
        add("RSS every 1000 episodes (MB): " + ", ".join(f"{n}: {m:.0f}" for n, m in samples))
    add(
        f"submitted {s.videos_started} = saved {s.videos_saved} + dropped {s.videos_dropped} "
        f"+ failed {s.videos_failed}; failures reported by flush()/close(): {reported}; "
        f"frames submitted {s.frames_submitted}, encoded {s.frames_encoded}, dropped "
        f"{s.frames_dropped}; peak queued {s.peak_queued_bytes / bu.MiB:.1f} MiB of "
        f"{s.max_queue_bytes / bu.MiB:.1f}; handles still pending when flush() returned: "
        f"{unresolved}."
    )
    add(bu.checklist(checks))
    return {"checks": checks, "ok": all(checks.values())}


if __name__ == "__main__":
    raise SystemExit(bu.main(sys.modules[__name__]))
