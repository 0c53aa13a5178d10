"""Soak (issue 6): many short episodes through one Recorder with 2 workers.

Prints RSS, open file descriptors and thread count after warm-up and at the end (they should
be the same, RSS within a tolerance), and checks that nothing is lost: every clip started is
saved, dropped or failed (``submitted = saved + dropped + failed``), a file exists exactly for
each saved clip, and no temporary file is left.

The loop is a training loop in bursts: ``--burst`` episodes as fast as it can, then a flush (a
checkpoint). The budget is small enough that some clips of each burst are dropped, and every
``--fail-every``-th encoder fails with ENOSPC at its third frame, so the three outcomes all
occur many times.

Usage::

    python scripts/bench_soak.py [--quick] [--episodes 10000] [--warmup 500] [--folder DIR]
                                 [--out FILE]

Exit status 1 when something was lost or a resource count differs at the end.
"""

from __future__ import annotations

import argparse
import errno
import gc
import logging
import os
import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import numpy as np

import recorder
from recorder._encoder import PyAVEncoder

RSS_TOLERANCE_MB = 48.0


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
        return _Failing(inner) if faulty else inner


class _Failing:
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


def open_fds() -> int:
    """Open file descriptors of this process (Linux /proc; -1 elsewhere)."""
    try:
        # listdir's own descriptor is counted every time alike.
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def snapshot() -> tuple[float, int, int]:
    """(RSS MB, open fds, threads) after a full garbage collection."""
    gc.collect()
    return bu.rss_mb(), open_fds(), threading.active_count()


def count_errors(action: Callable[[], None]) -> int:
    """Run *action* (flush or close); the number of failed videos it reported."""
    try:
        action()
    except ExceptionGroup as group:
        return len(group.exceptions)
    except OSError:
        return 1
    return 0


def soak(
    folder: Path,
    episodes: int,
    warmup: int,
    *,
    length: int = 8,
    workers: int = 2,
    burst: int = 40,
    fail_every: int = 97,
    budget_frames: int = 200,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the soak into *folder*; returns the figures and the checks.

    The handles of each burst are checked against the folder once it is flushed, then let go:
    holding 10,000 handles would itself grow the RSS being measured.
    """
    frames = [painted(i) for i in range(length)]
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
            kind = (
                "saved"
                if exc is None
                else "dropped"
                if isinstance(exc, recorder.ClipDroppedError)
                else "failed"
            )
            outcome[kind] += 1
            if h.path.exists() != (kind == "saved"):
                wrong.append(h.name)
        started += len(pending)
        pending.clear()

    start = time.perf_counter()
    rec = recorder.Recorder(
        folder,
        episode_trigger=lambda e: True,
        workers=workers,
        max_queue_bytes=budget_frames * frames[0].nbytes,
        encoder_factory=SometimesFailing(fail_every),
    )
    try:
        for e in range(episodes):
            with rec.episode(e, metadata={"episode": e}) as ep:
                for frame in frames:
                    if ep.wants_frame:
                        ep.append(frame)
                    else:
                        ep.skip()
            pending += ep.handles
            if (e + 1) % burst == 0 or e + 1 in (warmup, episodes):
                reported += count_errors(rec.flush)
                settle()
            if e + 1 == warmup:
                warm = snapshot()
            if (e + 1) % 1000 == 0:
                samples.append((e + 1, bu.rss_mb()))
                if progress:
                    bu.log(f"  {e + 1} episodes, RSS {samples[-1][1]:.0f} MB")
        end = snapshot()
    finally:
        reported += count_errors(rec.close)
        settle()
    elapsed = time.perf_counter() - start
    stats = rec.stats()
    temporaries = [n for n in os.listdir(folder) if n.endswith(".rec-tmp")]
    checks = {
        "submitted = saved + dropped + failed": stats.videos_started
        == stats.videos_saved + stats.videos_dropped + stats.videos_failed
        == started,
        "handles agree with stats()": (
            stats.videos_saved,
            stats.videos_dropped,
            stats.videos_failed,
        )
        == (outcome["saved"], outcome["dropped"], outcome["failed"]),
        "every failure reported by flush()/close()": reported == stats.videos_failed,
        "a file for every saved clip, none for the others": not wrong,
        "no temporary file left": not temporaries,
        "every handle resolved when flush() returns": not unresolved,
        "open fds the same as after warm-up": end[1] == warm[1],
        "threads the same as after warm-up": end[2] == warm[2],
        f"RSS within {RSS_TOLERANCE_MB:.0f} MB of after warm-up": end[0] - warm[0]
        < RSS_TOLERANCE_MB,
        "no thread left after close()": not [
            t for t in threading.enumerate() if t.name.startswith("recorder-")
        ],
    }
    return {
        "episodes": episodes,
        "warmup": warmup,
        "elapsed_s": elapsed,
        "warm": warm,
        "end": end,
        "samples": samples,
        "stats": stats,
        "outcome": outcome,
        "reported": reported,
        "unresolved": unresolved,
        "checks": checks,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the soak and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=None, help="default: episodes // 20")
    parser.add_argument("--length", type=int, default=8, help="frames per episode")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--burst", type=int, default=40, help="episodes between flushes")
    parser.add_argument("--fail-every", type=int, default=97, help="0: no injected failure")
    parser.add_argument("--budget-frames", type=int, default=200)
    parser.add_argument("--folder", default=None, help="default: a temporary folder, removed")
    parser.add_argument("--quick", action="store_true", help="1,000 episodes (a smoke run)")
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    args = parser.parse_args(argv)
    if args.quick:
        args.episodes = min(args.episodes, 1000)
    warmup = args.warmup or max(args.burst, args.episodes // 20 // args.burst * args.burst)
    # Failures and drops are expected here by design: keep stderr for progress.
    logging.getLogger("recorder").setLevel(logging.CRITICAL)

    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        folder = Path(args.folder) if args.folder else Path(tmp)
        r = soak(
            folder,
            args.episodes,
            warmup,
            length=args.length,
            workers=args.workers,
            burst=args.burst,
            fail_every=args.fail_every,
            budget_frames=args.budget_frames,
        )
    s: recorder.RecorderStats = r["stats"]
    (w_rss, w_fds, w_threads), (e_rss, e_fds, e_threads) = r["warm"], r["end"]
    report = bu.Report(f"Soak: {args.episodes} episodes, {args.workers} workers")
    report.add(
        f"`{shlex.join([Path(sys.executable).name, *sys.argv])}`\n\n"
        f"{bu.machine_info()}; load {bu.load_average()}.\n\n"
        f"{args.episodes} episodes of {args.length} frames (48x112), every episode triggered, "
        f"a flush every {args.burst} episodes, budget {args.budget_frames} frames, an ENOSPC "
        f"injected into every {args.fail_every}th encoder; {r['elapsed_s']:.1f} s."
    )
    report.add(
        bu.markdown_table(
            ["when", "RSS MB", "open fds", "threads"],
            [
                [f"after warm-up ({warmup} episodes)", f"{w_rss:.0f}", w_fds, w_threads],
                [f"at the end ({args.episodes} episodes)", f"{e_rss:.0f}", e_fds, e_threads],
            ],
        )
    )
    if r["samples"]:
        report.add(
            "RSS every 1000 episodes (MB): "
            + ", ".join(f"{n}: {rss:.0f}" for n, rss in r["samples"])
        )
    report.add(
        f"submitted {s.videos_started} = saved {s.videos_saved} + dropped {s.videos_dropped} "
        f"+ failed {s.videos_failed}; failures reported by flush()/close(): {r['reported']}; "
        f"frames submitted {s.frames_submitted}, encoded {s.frames_encoded}, dropped "
        f"{s.frames_dropped}; peak queued {s.peak_queued_bytes / bu.MiB:.1f} MiB of "
        f"{s.max_queue_bytes / bu.MiB:.1f}; handles still pending when flush() returned: "
        f"{r['unresolved']}."
    )
    checks: dict[str, bool] = r["checks"]
    report.add("\n".join(f"- {'met' if ok else 'NOT met'}: {name}" for name, ok in checks.items()))
    report.write(args.out)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
