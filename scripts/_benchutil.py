"""Helpers shared by the benchmark scripts: frames, timing, statistics, RSS, ffmpeg, tables.

Benchmarks here run on shared, noisy machines: compare A and B measured in the same run,
interleaved (:func:`interleave`), and report medians with their spread (:func:`spread`).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

MiB = 2**20

# -- frames ------------------------------------------------------------------------------------


def cartpole_frames(count: int, seed: int = 0) -> list[np.ndarray]:
    """*count* CartPole-v1 ``rgb_array`` renders (600x400) of a seeded random policy."""
    import gymnasium as gym

    env = gym.make("CartPole-v1", render_mode="rgb_array")
    rng = np.random.default_rng(seed)
    frames: list[np.ndarray] = []
    try:
        env.reset(seed=seed)
        while len(frames) < count:
            frames.append(np.asarray(env.render()))
            _, _, terminated, truncated, _ = env.step(int(rng.integers(2)))
            if terminated or truncated:
                env.reset()
    finally:
        env.close()
    return frames


def noisy_ramp_frames(count: int, seed: int = 0) -> list[np.ndarray]:
    """96x128 RGB: one fixed image, grey 128 plus Gaussian noise (sigma 16, independent per
    pixel and channel, ``numpy.random.default_rng(seed)``), brightened by an offset that rises
    linearly from -80 to +80 over the frames; rounded and clipped to 0..255.

    For ``bench_quality`` and ``tests/test_quality.py``.
    """
    image = 128 + np.random.default_rng(seed).normal(0, 16, (96, 128, 3))
    offsets = np.linspace(-80, 80, count)
    return [np.clip(np.rint(image + o), 0, 255).astype(np.uint8) for o in offsets]


def resize_nearest(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize (or tiling-like upscale) to height x width, C-contiguous."""
    rows = np.arange(height) * frame.shape[0] // height
    cols = np.arange(width) * frame.shape[1] // width
    return np.ascontiguousarray(frame[rows][:, cols])


def resized(frames: Sequence[np.ndarray], height: int, width: int) -> list[np.ndarray]:
    """*frames* at height x width (the same arrays when they already have that size)."""
    if frames and frames[0].shape[:2] == (height, width):
        return list(frames)
    return [resize_nearest(f, height, width) for f in frames]


# -- statistics ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """Median of repeated measurements and their range."""

    median: float
    low: float
    high: float
    n: int

    def fmt(self, digits: int = 0, unit: str = "") -> str:
        """``median (low-high)``."""
        return f"{self.median:.{digits}f}{unit} ({self.low:.{digits}f}-{self.high:.{digits}f})"


def spread(values: Iterable[float]) -> Spread:
    """Median, min and max of *values*."""
    vals = list(values)
    return Spread(statistics.median(vals), min(vals), max(vals), len(vals))


@dataclass(frozen=True)
class Latency:
    """Percentiles of per-call durations, in microseconds."""

    median: float
    p99: float
    max: float
    n: int


def latency_us(samples_ns: Sequence[int] | np.ndarray) -> Latency:
    """Median, p99 and max (µs) of durations given in nanoseconds."""
    arr = np.asarray(samples_ns, dtype=np.float64) / 1e3
    return Latency(
        float(np.median(arr)), float(np.percentile(arr, 99)), float(arr.max()), int(arr.size)
    )


def interleave(
    rounds: int, runs: dict[str, Callable[[], float]], *, progress: bool = True
) -> dict[str, list[float]]:
    """Run every callable once per round, rotating the order each round; collect results.

    Rotation means no variant always runs first (cold) or last (after the others heated the
    machine), so slow drifts of a shared machine hit every variant alike.
    """
    names = list(runs)
    results: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            results[name].append(runs[name]())
        if progress:
            log(f"  round {r + 1}/{rounds} done")
    return results


def paired_ratios(a: Sequence[float], b: Sequence[float]) -> Spread:
    """Spread of the per-round ratios a[i] / b[i] (pairs measured close together in time)."""
    return spread(x / y for x, y in zip(a, b, strict=True))


# -- time and memory ---------------------------------------------------------------------------


def cpu_seconds() -> tuple[float, float]:
    """(CPU seconds of this process, of its children), user + system.

    The children are those waited for and the recorder's encoder processes still running
    (kept idle between recorders, they are waited for only at exit).
    """
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime + encoder_processes_cpu()


def encoder_processes_cpu() -> float:
    """CPU seconds used so far by the recorder's encoder processes not yet waited for."""
    from recorder import _process

    total = 0
    for child in list(_process._every_child):
        if child.proc.returncode is not None:
            continue  # waited for: counted in RUSAGE_CHILDREN
        try:
            with open(f"/proc/{child.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def encoder_processes_hwm_mb() -> float:
    """The largest peak RSS (VmHWM) among the recorder's encoder processes still running.

    Not ``RUSAGE_CHILDREN``: its ru_maxrss survives exec, so a child forked while this process
    was large would report this process's size.
    """
    from recorder import _process

    peak = 0
    for child in list(_process._every_child):
        try:
            with open(f"/proc/{child.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return peak / 1024


def stop_idle_encoder_processes() -> None:
    """Stop (and wait for) the encoder processes closed recorders kept for the next one."""
    from recorder import _process

    _process._stop_idle()


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs of the machine have been busy since boot (Linux; 0 elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    # guest time is already included in user time.
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class Usage:
    """Wall time of a measured block, CPU it used, and CPU the rest of the machine used."""

    wall: float = 0.0
    cpu: float = 0.0  # this process and the children it waited for
    others: float = 0.0  # every other process on the machine (clock-tick resolution)

    @property
    def others_cores(self) -> float:
        """Average number of CPUs kept busy by other processes meanwhile."""
        return self.others / self.wall if self.wall else 0.0


@contextlib.contextmanager
def measure() -> Iterator[Usage]:
    """Measure the wall time and CPU use of the block (the Usage is filled in at exit).

    ``others`` shows how much a shared machine's other tenants competed with the block.
    """
    usage = Usage()
    cpu0 = sum(cpu_seconds())
    busy0 = machine_busy_seconds()
    start = time.perf_counter()
    try:
        yield usage
    finally:
        usage.wall = time.perf_counter() - start
        usage.cpu = sum(cpu_seconds()) - cpu0
        usage.others = max(0.0, machine_busy_seconds() - busy0 - usage.cpu)


def _status_kib(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise KeyError(field_name)


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc; 0 where unavailable)."""
    try:
        return _status_kib("VmRSS") / 1024
    except (OSError, KeyError):
        return 0.0


def hwm_mb() -> float:
    """Peak RSS of this process image in MB (Linux VmHWM, reset by exec; 0 where unavailable)."""
    try:
        return _status_kib("VmHWM") / 1024
    except (OSError, KeyError):
        return 0.0


def maxrss_mb() -> float:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` in MB.

    On Linux it survives exec: a child reports at least its parent's RSS at fork time, so spawn
    measuring children while the parent is small (or compare with :func:`hwm_mb`).
    """
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / (1024 * 1024) if sys.platform == "darwin" else kib / 1024


def run_json(args: Sequence[str], timeout: float | None = None) -> dict[str, Any]:
    """Run a command whose last stdout line is a JSON object; return it (raise on failure)."""
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# -- the ffmpeg command line -------------------------------------------------------------------


def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped by imageio-ffmpeg (the bench extra)."""
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def ffmpeg_encode(
    exe: str,
    frames: Sequence[np.ndarray],
    path: str | os.PathLike[str],
    *,
    fps: float = 30,
    crf: int = 23,
    preset: str = "veryfast",
    threads: int = 1,
) -> None:
    """Encode RGB frames with the ffmpeg CLI: raw rgb24 on stdin, libx264, yuv420p, faststart.

    With the recorder's keyframe interval (``-g``), so that both encode the same stream.
    """
    from recorder._encoder import keyframe_interval

    height, width = frames[0].shape[:2]
    cmd = [
        exe, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps),
        "-i", "-",
        "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-threads", str(threads),
        "-g", str(keyframe_interval(fps)),
        "-pix_fmt", "yuv420p", "-movflags", "+faststart", os.fspath(path),
    ]  # fmt: skip
    # stderr goes to a file: a pipe nobody reads while we write could fill up and deadlock.
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=err)
        assert proc.stdin is not None
        try:
            for frame in frames:
                proc.stdin.write(np.ascontiguousarray(frame).data.cast("B"))
        finally:
            proc.stdin.close()
            proc.wait()
        if proc.returncode != 0:
            err.seek(0)
            message = err.read().decode(errors="replace")
            raise RuntimeError(f"ffmpeg exited {proc.returncode}: {message}")


def x264_options(path: str | os.PathLike[str]) -> str | None:
    """The options string x264 writes into the stream (SEI), to prove equal settings."""
    data = Path(path).read_bytes()
    match = re.search(rb"options: ([ -~]+)", data)
    return match.group(1).decode() if match else None


@contextlib.contextmanager
def pinned_to_one_cpu() -> Iterator[int | None]:
    """Pin the calling thread to one CPU; threads and processes it starts inherit the pin.

    Yields the CPU, or None where affinity is unsupported (nothing is pinned then).
    """
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    cpu = max(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


# -- threads -----------------------------------------------------------------------------------


def run_parallel(tasks: Sequence[Callable[[], object]]) -> None:
    """Run *tasks* each on its own thread; re-raise the first error."""
    errors: list[BaseException] = []

    def wrap(task: Callable[[], object]) -> None:
        try:
            task()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(t,)) for t in tasks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


# -- reporting ---------------------------------------------------------------------------------


def log(message: str) -> None:
    """Progress on stderr (stdout carries the report)."""
    print(message, file=sys.stderr, flush=True)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table, numbers right-aligned."""
    body = [[str(c) for c in row] for row in rows]
    align = ["---:" if body and _numeric(body[0][i]) else ":---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    return bool(re.match(r"^[-+]?[\d.]+", text))


def load_average() -> str:
    """The 1/5/15-minute load averages, for the record of a noisy machine."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine_info() -> str:
    """CPU, core count and library versions, one line."""
    import av

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, numpy {np.__version__}, PyAV {av.__version__}"
    )


@dataclass
class Report:
    """Markdown sections printed to stdout as they complete and written to a file at the end."""

    title: str
    parts: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        """Append a block (a paragraph or a table) and print it."""
        self.parts.append(text.rstrip() + "\n")
        print(text.rstrip() + "\n", flush=True)

    def text(self) -> str:
        """The whole report."""
        return f"# {self.title}\n\n" + "\n".join(self.parts)

    def write(self, path: str | os.PathLike[str] | None) -> None:
        """Write the report to *path* (nothing when None)."""
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(self.text())


def elapsed(fn: Callable[[], object]) -> float:
    """Wall seconds taken by ``fn()``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
