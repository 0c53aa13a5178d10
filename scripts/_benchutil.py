"""The benchmark harness: one runner, one report format, the measuring tools scenarios share.

A scenario (``scripts/bench_*.py``) defines ``TITLE``, ``FULL`` and ``QUICK`` (its counts),
``measure(bench) -> dict`` (its figures, JSON-able: the raw results) and ``report(doc, data)``
(its markdown from those figures alone: tables with ``doc.add``, the words around them with
``doc.say``, kept in ``scripts/bench_*.md`` beside the script), and ends with
``raise SystemExit(bu.main(sys.modules[__name__]))``. :func:`main` gives each the same command
line (``--quick``, ``--out``, ``--json``); ``bench_all.py measure`` runs each in its own process
and keeps the JSON, ``bench_all.py render`` turns the JSON into the report (:func:`render`).

The machines are shared and noisy. Whole-loop scenarios run their variants interleaved
(:func:`interleave`, the order rotated or balanced each round), repeated; medians with their
spread; ratios per round, then medianed. Throughput microbenchmarks run on pyperf
(:meth:`Bench.perf`: calibrated loops, worker processes), one variant's benchmarks after
another; their ratios are of mean times, with ``pyperf compare_to``'s verdict on their
significance (:func:`perf_compare`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import logging
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np

from recorder import _testing

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

MiB = 2**20
QUICK_NOTE = " (QUICK smoke run: counts too small to mean much)"


def always(_: int) -> bool:
    """A trigger that records every episode."""
    return True


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
            if any(env.step(int(rng.integers(2)))[2:4]):
                env.reset()
    finally:
        env.close()
    return frames


def noisy_ramp_frames(count: int, seed: int = 0) -> list[np.ndarray]:
    """96x128 RGB: grey 128 plus Gaussian noise (sigma 16, per pixel and channel,
    ``default_rng(seed)``), brightened by an offset rising linearly from -80 to +80 over the
    frames; rounded and clipped to 0..255. For bench_quality and tests/test_quality.py."""
    image = 128 + np.random.default_rng(seed).normal(0, 16, (96, 128, 3))
    ramp = np.linspace(-80, 80, count)
    return [np.clip(np.rint(image + o), 0, 255).astype(np.uint8) for o in ramp]


def resize_nearest(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize to height x width, C-contiguous."""
    rows = np.arange(height) * frame.shape[0] // height
    cols = np.arange(width) * frame.shape[1] // width
    return np.ascontiguousarray(frame[rows][:, cols])


def resized(frames: Sequence[np.ndarray], height: int, width: int) -> list[np.ndarray]:
    """*frames* at height x width (the same arrays when they already have that size)."""
    if frames and frames[0].shape[:2] == (height, width):
        return list(frames)
    return [resize_nearest(f, height, width) for f in frames]


def video_frames(path: str | os.PathLike[str], decode: bool = False) -> int:
    """Frames in the video at *path*: its non-empty packets, or (*decode*) decoded frames."""
    import av

    with av.open(os.fspath(path)) as c:
        frames = c.decode(video=0) if decode else (p for p in c.demux(video=0) if p.size)
        return sum(1 for _ in frames)


# -- statistics and the interleaved runner -----------------------------------------------------


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


def paired_ratios(a: Sequence[float], b: Sequence[float]) -> Spread:
    """Spread of the per-round ratios a[i] / b[i]; pairs only the rounds both have."""
    return spread(x / y for x, y in zip(a, b, strict=False))


def sp(d: dict[str, Any] | None) -> Spread | None:
    """A Spread back from its JSON dict (None stays None)."""
    return None if d is None else Spread(**d)


def fmt_spread(d: dict[str, Any] | None, digits: int) -> str:
    """A JSON Spread formatted, or ``-``."""
    return "-" if d is None else Spread(**d).fmt(digits)


@dataclass(frozen=True)
class Latency:
    """Percentiles of per-call durations, in microseconds."""

    median: float
    p99: float
    max: float
    n: int


def latency_us(samples_ns: Sequence[int] | np.ndarray) -> Latency:
    """Median, p99 and max (µs) of durations given in nanoseconds."""
    a = np.asarray(samples_ns, dtype=np.float64) / 1e3
    return Latency(float(np.median(a)), float(np.percentile(a, 99)), float(a.max()), int(a.size))


@dataclass
class Variant:
    """A named way of running a measured thing; each call runs it once and keeps its result
    and :class:`Usage` (a run that returns a Usage measured its own part, without setup)."""

    label: str
    run: Callable[[], Any]
    group: str = ""
    kind: str = ""
    results: list[Any] = field(default_factory=list)
    usages: list[Usage] = field(default_factory=list)

    def __call__(self) -> None:
        gc.collect()  # no collection of an earlier run's garbage inside this one
        with measure() as usage:
            result = self.run()
        self.results.append(result)
        self.usages.append(result if isinstance(result, Usage) else usage)

    def values(self, name: str) -> list[Any]:
        """The attribute *name* of every result that has it (not None)."""
        return [v for r in self.results if (v := getattr(r, name, None)) is not None]


def interleave(rounds: int, variants: Sequence[Variant], *, balanced: bool = False) -> None:
    """Run every variant once per round, the order rotated each round: no variant always runs
    first (cold) or last (after the others heated the machine).

    Rotation keeps the cyclic order, so each variant always follows the same one. Where that
    matters, *balanced* orders the rounds by :func:`balanced_orders` instead: each variant
    follows each other one equally often (over ``len(variants)`` rounds, twice that for an
    odd count).
    """
    orders = balanced_orders(len(variants), rounds) if balanced else None
    for r in range(rounds):
        k = r % len(variants)
        order = [variants[i] for i in orders[r]] if orders else [*variants[k:], *variants[:k]]
        for variant in order:
            variant()
        log(f"  round {r + 1}/{rounds} done")


def balanced_orders(n: int, rounds: int) -> list[list[int]]:
    """*rounds* orders of ``range(n)`` from a Williams design: over each block of *n* orders
    (2n for an odd *n*), every index runs first once and directly follows every other index
    once, so what a run leaves behind (an idle CPU, cold memory) lands on each variant alike.

    A variant measured right after the render-only baseline ran measurably slower (on this
    machine, about 0.06 of the loop ratio): with rotation that was always the same variant.
    """
    first = [0]
    for j in range(1, n):
        first.append((j + 1) // 2 if j % 2 else n - j // 2)
    block = [[(i + r) % n for i in first] for r in range(n)]
    if n % 2:
        block += [order[::-1] for order in block]
    return [block[r % len(block)] for r in range(rounds)]


# -- time and memory ---------------------------------------------------------------------------


def _encoder_processes(what: str) -> float:
    """Of the recorder's encoder processes still running: CPU seconds so far (``cpu``; waited
    ones are in RUSAGE_CHILDREN) or the largest VmHWM MB (``hwm``: RUSAGE_CHILDREN's maxrss
    survives exec, so it reports a large parent's size)."""
    values = [0.0]
    for child in _testing.every_encoder_process():
        with contextlib.suppress(OSError, KeyError):
            if what == "cpu" and child.proc.returncode is None:
                with open(f"/proc/{child.proc.pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                values.append((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
            elif what == "hwm":
                values.append(_status_kib("VmHWM", child.proc.pid) / 1024)
    return sum(values) if what == "cpu" else max(values)


def encoder_processes_hwm_mb() -> float:
    """The largest peak RSS (VmHWM) among the recorder's encoder processes still running."""
    return _encoder_processes("hwm")


def stop_idle_encoder_processes() -> None:
    """Stop (and wait for) the encoder processes closed recorders kept for the next one."""
    _testing.stop_idle_encoders()


def _cpu_seconds() -> float:
    """CPU seconds of this process, its waited-for children and its live encoder processes."""
    me, kids = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime + _encoder_processes("cpu")


def _machine_busy_seconds() -> float:
    """CPU seconds all CPUs have been busy since boot (Linux /proc/stat; 0 elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait; guest is in user
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
    """Wall time and CPU use of the block (filled in at exit); ``others``: how much the shared
    machine's other tenants competed with it."""
    usage = Usage()
    cpu0, busy0, start = _cpu_seconds(), _machine_busy_seconds(), time.perf_counter()
    try:
        yield usage
    finally:
        usage.wall = time.perf_counter() - start
        usage.cpu = _cpu_seconds() - cpu0
        usage.others = max(0.0, _machine_busy_seconds() - busy0 - usage.cpu)


def _status_kib(field_name: str, pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise KeyError(field_name)


def rss_mb(field_name: str = "VmRSS") -> float:
    """Resident set size in MB (Linux /proc; 0 elsewhere); ``VmHWM``: the peak of this image."""
    try:
        return _status_kib(field_name) / 1024
    except (OSError, KeyError):
        return 0.0


def maxrss_mb() -> float:
    """``ru_maxrss`` in MB. On Linux it survives exec (a child reports at least its parent's RSS
    at fork time): spawn measuring children while the parent is small."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / (1024 * 1024) if sys.platform == "darwin" else kib / 1024


def counters(stats: Any) -> dict[str, float]:
    """The numbers of a ``RecorderStats`` (not its errors), for the JSON."""
    return {
        f.name: v for f in fields(stats) if isinstance(v := getattr(stats, f.name), int | float)
    }


def open_fds() -> int:
    """Open file descriptors of this process (Linux /proc; -1 elsewhere)."""
    try:
        return len(os.listdir("/proc/self/fd"))  # listdir's own one is counted every time alike
    except OSError:
        return -1


def in_child(script: str, *args: object, timeout: float = 900) -> dict[str, Any]:
    """Run ``child(*args)`` of *script* in a fresh Python process (its peak RSS its own); the
    dict it returned."""
    cmd = [sys.executable, script, "--child", json.dumps(args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@contextlib.contextmanager
def pinned_to_one_cpu() -> Iterator[int | None]:
    """Pin the calling thread to one CPU (threads and processes it starts inherit the pin);
    yields the CPU, or None where affinity is unsupported."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {max(before)})
    try:
        yield max(before)
    finally:
        os.sched_setaffinity(0, before)


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
    """Encode RGB frames with the ffmpeg CLI: rgb24 on stdin, libx264, yuv420p, faststart, with
    the recorder's keyframe interval (``-g``): both encode the same stream."""
    height, width = frames[0].shape[:2]
    cmd = [
        exe, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps),
        "-i", "-",
        "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-threads", str(threads),
        "-g", str(_testing.keyframe_interval(fps)),
        "-pix_fmt", "yuv420p", "-movflags", "+faststart", os.fspath(path),
    ]  # fmt: skip
    # stderr to a file: a pipe nobody reads while we write could fill up and deadlock.
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
            raise RuntimeError(
                f"ffmpeg exited {proc.returncode}: {err.read().decode(errors='replace')}"
            )


def x264_options(path: str | os.PathLike[str]) -> str | None:
    """The options string x264 writes into the stream (SEI), to prove equal settings."""
    match = re.search(rb"options: ([ -~]+)", Path(path).read_bytes())
    return match.group(1).decode() if match else None


def short_x264(options: str | None, keep: str) -> str:
    """The *keep* (space-separated names) settings of an x264 options string."""
    if options is None:
        return "none found"
    return " ".join(kv for kv in options.split() if kv.split("=")[0] in keep.split())


# -- reporting ---------------------------------------------------------------------------------


def log(message: str) -> None:
    """Progress on stderr (stdout carries the report)."""
    print(message, file=sys.stderr, flush=True)


def markdown_table(headers: str | Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table, numbers right-aligned; *headers* a list or one string
    of names separated by `` | ``."""
    if isinstance(headers, str):
        headers = headers.split(" | ")
    body = [[str(c) for c in row] for row in rows]
    numeric = [bool(body and re.match(r"^[-+]?[\d.]+", body[0][i])) for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |"]
    lines.append("| " + " | ".join("---:" if n else ":---" for n in numeric) + " |")
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])


def mark(ok: bool) -> str:
    """The verdict sign of a target."""
    return "✅" if ok else "❌"


def checklist(checks: dict[str, bool]) -> str:
    """``- met: name`` / ``- NOT met: name`` lines."""
    return "\n".join(f"- {'met' if ok else 'NOT met'}: {name}" for name, ok in checks.items())


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
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, numpy {np.__version__}, PyAV {av.__version__}"
    )


@dataclass
class Report:
    """What a scenario's ``report`` writes into: markdown blocks made from its figures alone,
    the words of its ``.md`` file, and ``meta`` (how, when and on what it was measured)."""

    title: str
    words: dict[str, str]
    meta: dict[str, Any]
    parts: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        """Append a block (a paragraph or a table) to the report."""
        self.parts.append(text.rstrip() + "\n")

    def say(self, block: str, **values: object) -> None:
        """Add the report text *block* (of the scenario's ``.md`` file), its ``{names}`` filled
        in from *values*."""
        self.add(self.words[block].format(**values))

    def text(self) -> str:
        """The whole report."""
        return f"# {self.title}\n\n" + "\n".join(self.parts)

    def header(self, machine: str = "", before: str = "") -> None:
        """The report's first block: how, when and on what it was measured."""
        m = self.meta
        self.add(
            f"Generated by `{m['command']}` on {m['date']}{QUICK_NOTE if m['quick'] else ''}."
            f"\n\n{before}Machine: {m['machine']}{machine}. Load average before / after: "
            f"{m['load_before']} → {m['load_after']} (a shared machine: compare rows of one "
            "run, not across runs)."
        )

    def short_header(self) -> str:
        """The command and the machine, for the reports that start with their description."""
        m = self.meta
        return f"`{m['command']}`\n\n{m['machine']}; load {m['load_before']}.\n\n"

    def footer(self) -> None:
        """The report's last line: how long the measuring took."""
        self.add(f"Total benchmark time: {self.meta['seconds']:.0f} s.")


def report_text(path: Path) -> dict[str, str]:
    """A scenario's report text by block, each from its ``<!-- name -->`` line to the next.

    A line break inside a paragraph or list item is a space (the file wraps what the report
    prints as one line); a blank line, a list item, a table row or a heading starts a new line.
    """
    if not path.exists():
        return {}
    parts = re.split(r"^<!-- (\w+) -->$", path.read_text(), flags=re.MULTILINE)
    unwrap = partial(re.sub, r"(?<=[^\n])\n[ \t]*(?=[^\n\-|# \t])", " ")
    return {name: unwrap(text.strip()) for name, text in zip(parts[1::2], parts[2::2], strict=True)}


def render(scenario: ModuleType, record: dict[str, Any]) -> str:
    """The markdown report of a measured *record* (what ``--json`` wrote): the scenario's
    ``report`` applied to its figures, no measuring."""
    words = report_text(Path(scenario.__file__ or "bench").with_suffix(".md"))
    doc = Report(scenario.TITLE, words, record["meta"])
    scenario.report(doc, record["data"])
    return doc.text()


# -- pyperf: the throughput microbenchmarks --------------------------------------------------------


@dataclass(frozen=True)
class PerfPlan:
    """pyperf's options for a group of benchmarks: *processes* worker processes per benchmark,
    each *warmups* warm-up values then *values* values of *loops* calls (0: calibrated, each
    value at least pyperf's ``--min-time``)."""

    processes: int
    values: int
    warmups: int
    loops: int = 0

    def args(self) -> list[str]:
        """As pyperf's command-line options."""
        return [f"--{k}={v}" for k, v in asdict(self).items()]


#: What a pyperf worker's benchmark function records besides its times: each value's Usage
#: (:func:`perf_time`) and notes on what it made (a scenario's checks of its last file).
perf_usages: list[Usage] = []
perf_notes: dict[str, Any] = {}


class _Carrier:
    """A pyperf hook (``--hook usage``): writes :data:`perf_usages` and :data:`perf_notes` into
    the worker's run metadata. pyperf makes one for the warm-ups, then one for the values: the
    values' usages are the run's."""

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        pass

    def teardown(self, metadata: dict[str, Any]) -> None:
        metadata["usage"] = json.dumps([[u.wall, u.cpu, u.others] for u in perf_usages])
        metadata["notes"] = json.dumps(perf_notes)
        perf_usages.clear()


PERF_HOOK = SimpleNamespace(name="usage", load=lambda: _Carrier)


def scratch(stack: contextlib.ExitStack, data: Path, prefix: str) -> Path:
    """A pyperf worker's own folder under the parent's *data*, removed when *stack* closes
    (after what the worker made there: enter those after this)."""
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=data))
    stack.callback(shutil.rmtree, folder, ignore_errors=True)
    return folder


_made: dict[str, Any] = {}


def made_once(key: str, make: Callable[[], Any]) -> Any:
    """``make()``, made at a pyperf worker's first call under *key* (its first warm-up: setup
    stays out of the values) and kept for the next calls."""
    if key not in _made:
        _made[key] = make()
    return _made[key]


def perf_time(loops: int, run: Callable[[], Any]) -> float:
    """A pyperf time function: *run* called *loops* times, one value; its wall time. A run that
    returns a :class:`Usage` measured its own part, without setup (as :class:`Variant`)."""
    total = Usage()
    for _ in range(loops):
        gc.collect()  # no collection of an earlier run's garbage inside this one
        with measure() as usage:
            result = run()
        part = result if isinstance(result, Usage) else usage
        total.wall, total.cpu = total.wall + part.wall, total.cpu + part.cpu
        total.others += part.others
    perf_usages.append(total)
    return total.wall


def options_given(
    options: Iterable[tuple[Sequence[str], Any]], args: argparse.Namespace
) -> list[str]:
    """The scenario's own ``OPTIONS`` given in *args*, as command-line arguments again (for
    pyperf's processes)."""
    given = (
        (flags[0], getattr(args, flags[0].lstrip("-").replace("-", "_"))) for flags, _ in options
    )
    return [arg for flag, value in given if value is not None for arg in (flag, str(value))]


def perf_main(scenario: ModuleType, argv: Sequence[str]) -> int:
    """The ``--perf`` mode: pyperf's Runner over the benchmarks of one variant (``--variant``)
    that the scenario's ``perf(runner, args, stack)`` declares; pyperf starts the worker
    processes, each running this script again (``--perf --worker ...``), one benchmark each.
    ``--data``: a folder the parent prepared (frames; scratch space)."""
    import pyperf

    options = getattr(scenario, "OPTIONS", ())

    def forward(cmd: list[str], args: argparse.Namespace) -> None:
        cmd += ["--variant", args.variant, "--data", str(args.data)] + ["--quick"] * args.quick
        cmd += options_given(options, args)

    script = str(Path(scenario.__file__ or "bench").resolve())
    runner = pyperf.Runner(
        program_args=(script, "--perf"), add_cmdline_args=forward, hooks=[PERF_HOOK]
    )
    parser = runner.argparser
    parser.add_argument("--perf", action="store_true", help="this mode")
    parser.add_argument("--quick", action="store_true", help="the QUICK counts")
    parser.add_argument("--variant", required=True, help="whose benchmarks to run")
    parser.add_argument("--data", type=Path, required=True, help="the parent's folder")
    for flags, kwargs in options:
        parser.add_argument(*flags, **kwargs)
    args = runner.parse_args(list(argv))
    logging.getLogger("recorder").setLevel(logging.CRITICAL)
    with contextlib.ExitStack() as stack:  # what the worker's benchmark made, closed at exit
        scenario.perf(runner, args, stack)
    return 0


def perf_load(path: Path) -> dict[str, dict[str, Any]]:
    """Each benchmark of a pyperf JSON file: its values (seconds per inner loop), their mean,
    each value's usage ``[wall, cpu, others]`` of its ``loops`` and each worker's notes."""
    import pyperf

    benchmarks = {}
    for bench in pyperf.BenchmarkSuite.load(str(path)).get_benchmarks():
        runs = [run for run in bench.get_runs() if run.values]  # not the calibration runs
        metadata = [run.get_metadata() for run in runs]
        benchmarks[bench.get_name()] = {
            "values": [v for run in runs for v in run.values],
            "mean": bench.mean(),
            "usage": [u for m in metadata for u in json.loads(m.get("usage", "[]"))],
            "notes": [json.loads(m["notes"]) for m in metadata if "notes" in m],
            "loops": metadata[0]["loops"],
            "inner_loops": metadata[0].get("inner_loops", 1),
        }
    return benchmarks


#: ``pyperf compare_to -v``'s lines on significance: the first that applies is the verdict.
_VERDICTS = (
    ("ERROR when testing", "untested"),  # one value each: no t-test
    ("Significant", "significant"),
    ("Not significant", "not significant"),
)


def perf_compare(ref: Path, changed: Path) -> dict[str, str]:
    """``pyperf compare_to``'s verdict on each benchmark both files hold (Student's t-test of
    their values): ``significant``, ``not significant`` or ``untested`` (one value each)."""
    cmd = [sys.executable, "-m", "pyperf", "compare_to", "-v", str(ref), str(changed)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    log(f"$ {shlex.join(['pyperf', *cmd[3:]])}\n{out.rstrip()}")
    theirs = perf_load(changed)
    names = [n for n in perf_load(ref) if n in theirs]
    lines = out.splitlines()
    name, verdicts = (names[0] if len(names) == 1 else None), {}
    for i, line in enumerate(lines):
        if line in names and lines[i + 1 : i + 2] and lines[i + 1].startswith("==="):
            name = line  # the title of a benchmark's block (shown when there are several)
        verdict = next((v for start, v in _VERDICTS if line.startswith(start)), None)
        if name is not None and verdict is not None:
            verdicts.setdefault(name, verdict)
    if set(verdicts) != set(names):
        raise RuntimeError(f"pyperf compare_to: no verdict for {set(names) - set(verdicts)}")
    return verdicts


def compared(ratio: float, significance: str) -> dict[str, Any]:
    """A ratio between two pyperf variants and pyperf's verdict on it, for the JSON."""
    return {"ratio": ratio, "significance": significance}


def fmt_compared(d: dict[str, Any] | None, digits: int = 2) -> str:
    """A :func:`compared` formatted: ``ratio (verdict)``, or ``-``."""
    return "-" if d is None else f"{d['ratio']:.{digits}f} ({d['significance']})"


def perf_rates(bench: dict[str, Any]) -> list[float]:
    """A pyperf benchmark's values as rates (inner loops per second: frames/s)."""
    return [1 / v for v in bench["values"]]


def perf_usage(bench: dict[str, Any]) -> list[Usage]:
    """A pyperf benchmark's usage of each value."""
    return [Usage(*u) for u in bench["usage"]]


def perf_cpu_ms(bench: dict[str, Any]) -> float:
    """Median CPU ms per inner loop (frame) of a pyperf benchmark's values."""
    pairs = zip(bench["values"], perf_usage(bench), strict=True)
    return 1e3 * statistics.median(v * u.cpu / u.wall for v, u in pairs)


def speed_ratio(x: dict[str, Any], ref: dict[str, Any], significance: str) -> dict[str, Any]:
    """x's rate / ref's (pyperf benchmarks: the ratio of their mean times, ref's over x's),
    with pyperf's verdict on it."""
    return compared(ref["mean"] / x["mean"], significance)


# -- the runner --------------------------------------------------------------------------------


@dataclass
class Bench:
    """What the runner gives a scenario's ``measure``: its counts, options, a scratch folder
    (removed after) and where its pyperf results go (kept beside ``--json``)."""

    cfg: Any
    args: argparse.Namespace
    tmp: Path
    script: Path
    perf_dir: Path
    options: list[str]  # the scenario's OPTIONS given, for its pyperf processes

    def perf(self, variant: str, *pyperf_args: str) -> Path:
        """Run the scenario's pyperf benchmarks of *variant* (``perf(runner, args, stack)``, in
        pyperf's worker processes; *pyperf_args*: its options, e.g. ``--processes 3``); the
        pyperf JSON file they are in. ``self.tmp`` is the workers' ``--data`` folder."""
        self.perf_dir.mkdir(parents=True, exist_ok=True)
        out = self.perf_dir / f"{variant}.json"
        out.unlink(missing_ok=True)  # pyperf refuses to overwrite
        cmd = [sys.executable, str(self.script), "--perf", "--variant", variant, "--data",
               str(self.tmp), "--hook", "usage", "--copy-env", "--quiet", "-o", str(out),
               *pyperf_args, *self.options, *["--quick"] * self.args.quick]  # fmt: skip
        log(f"pyperf {variant}: {shlex.join(cmd[2:])}")
        # pyperf's lines (a benchmark's mean) to stderr: stdout carries the report.
        subprocess.run(cmd, stdout=sys.stderr, check=True)
        return out


def command(name: str, argv: Sequence[str]) -> str:
    """The command line that measured, as ``python scripts/NAME.py ...`` (where the report
    and the figures went is no part of it)."""
    argv = list(argv)
    for option in ("--json", "--out"):
        if option in argv:
            del argv[argv.index(option) : argv.index(option) + 2]
    return shlex.join(["python", f"scripts/{name}.py", *argv])


def main(scenario: ModuleType, argv: Sequence[str] | None = None) -> int:
    """Measure *scenario* (a ``bench_*`` module) from the command line, print its report; its
    exit status.

    ``--child JSON`` runs the module's ``child(*args)`` instead (see :func:`in_child`),
    ``--perf ...`` its pyperf benchmarks (see :func:`perf_main`).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--perf"]:
        return perf_main(scenario, argv)
    parser = argparse.ArgumentParser(description=(scenario.__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (small counts)")
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    parser.add_argument("--json", type=Path, help="write the raw figures here (for bench_all)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = getattr(scenario, "OPTIONS", ())
    for flags, kwargs in options:
        parser.add_argument(*flags, **kwargs)
    args = parser.parse_args(argv)
    # Drops and failures are reported from stats(); the recorder's log would clutter stderr.
    logging.getLogger("recorder").setLevel(logging.CRITICAL)
    if args.child:
        print(json.dumps(scenario.child(*json.loads(args.child))))
        return 0
    name = Path(scenario.__file__ or "bench").stem
    meta: dict[str, Any] = {
        "command": command(name, argv), "date": datetime.date.today().isoformat(),
        "quick": args.quick, "machine": machine_info(), "load_before": load_average(),
    }  # fmt: skip
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"{name.replace('_', '-')}-") as tmp:
        perf_dir = args.json.parent / f"{name}-pyperf" if args.json else Path(tmp, "pyperf")
        cfg = scenario.QUICK if args.quick else scenario.FULL
        script = Path(scenario.__file__ or name).resolve()
        bench = Bench(cfg, args, Path(tmp), script, perf_dir, options_given(options, args))
        data: dict[str, Any] = scenario.measure(bench)
    meta |= {"load_after": load_average(), "seconds": time.perf_counter() - started}
    record = {"scenario": name, "meta": meta, "data": data}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1))
    text = render(scenario, record)
    print(text, flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0 if data.get("ok", True) else 1
