"""Every benchmark in scripts/, one report: docs/benchmarks.md (tables) and docs/benchmarks.png.

Two steps. ``measure`` runs each ``scripts/bench_*.py`` scenario in its own subprocess, which
writes its raw figures as JSON (``--json``; its pyperf files beside it) into the output folder,
with ``bench_all.json`` (the run: command, machine, load, each script's exit status and time).
``render`` writes the summary of the issues' targets, the plot and every scenario's report from
that JSON alone: a renderer change needs no new measurement. A missed target is printed, never an
error; a scenario that crashes is reported and makes ``measure``'s exit status 1 (after every
other one ran).

Usage: ``python scripts/bench_all.py measure [--quick] [--out-dir build/bench] [--only NAME ...]``
then ``python scripts/bench_all.py render [build/bench] [--out-dir docs]`` (``make bench``).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs

SCRIPTS = Path(__file__).resolve().parent
# Run first: the heaviest and most noise-sensitive; then the rest alphabetically.
ORDER = ("bench_cartpole", "bench_encode", "bench_core", "bench_overload")
TIMEOUT_S = 1800
RUN = "bench_all.json"  # the run's record in the output folder


@dataclass
class Result:
    """One scenario's run: its exit status, time, report and figures."""

    name: str
    returncode: int
    seconds: float
    markdown: str | None
    data: dict[str, Any]


def discover(only: Sequence[str] | None) -> list[str]:
    names = sorted(p.stem for p in SCRIPTS.glob("bench_*.py") if p.stem != "bench_all")
    if unknown := [n for n in only or () if n not in names]:
        raise SystemExit(f"unknown benchmark(s) {unknown}; known: {names}")
    names = [n for n in names if not only or n in only]
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def run_script(name: str, quick: bool, out_dir: Path) -> dict[str, Any]:
    """Measure one scenario into ``out_dir/NAME.json``; its exit status and time."""
    js = out_dir.resolve() / f"{name}.json"
    js.unlink(missing_ok=True)  # a crash must not leave an older run's figures to render
    cmd = [sys.executable, str(SCRIPTS / f"{name}.py"), "--json", str(js)]
    cmd += ["--quick"] if quick else []
    bu.log(f"== {name}: {shlex.join(cmd[1:])}")
    env = {**os.environ, "SDL_VIDEODRIVER": os.environ.get("SDL_VIDEODRIVER", "dummy")}
    start = time.perf_counter()
    # A scratch working directory: nothing a scenario leaves there lands in the caller's.
    with tempfile.TemporaryDirectory(prefix="bench-all-") as tmp:
        try:
            # The child's report (stdout) goes to our stderr: it is rendered again from the JSON.
            code = subprocess.run(
                cmd, stdout=sys.stderr, env=env, timeout=TIMEOUT_S, check=False, cwd=tmp
            ).returncode
        except subprocess.TimeoutExpired:
            code = -1
    seconds = time.perf_counter() - start
    bu.log(f"== {name}: exit {code} after {seconds:.0f} s")
    return {"name": name, "returncode": code, "seconds": seconds}


def measure(args: argparse.Namespace) -> int:
    """Run the scenarios; their JSON and the run's record into ``args.out_dir``."""
    names = discover(args.only)
    started, load_before = time.perf_counter(), bu.load_average()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    scripts = [run_script(name, args.quick, args.out_dir) for name in names]
    command = "python scripts/bench_all.py measure" + (" --quick" if args.quick else "")
    command += " --only " + " ".join(args.only) if args.only else ""
    run = {
        "command": command, "date": datetime.date.today().isoformat(), "quick": args.quick,
        "machine": bu.machine_info(), "load_before": load_before, "load_after": bu.load_average(),
        "seconds": time.perf_counter() - started, "scripts": scripts,
    }  # fmt: skip
    (args.out_dir / RUN).write_text(json.dumps(run, indent=1))
    bu.log(
        f"wrote {args.out_dir}: render it with python scripts/bench_all.py render {args.out_dir}"
    )
    return 0 if all(s["returncode"] == 0 for s in scripts) else 1


def load(folder: Path) -> tuple[dict[str, Any], dict[str, Result]]:
    """The run's record and each scenario's result (its report rendered from its JSON)."""
    if not (folder / RUN).exists():
        raise SystemExit(f"{folder / RUN} not found: measure first (bench_all.py measure)")
    run = json.loads((folder / RUN).read_text())
    results = {}
    for script in run["scripts"]:
        name, js = script["name"], folder / f"{script['name']}.json"
        record = json.loads(js.read_text()) if js.exists() else None
        markdown = None if record is None else bu.render(importlib.import_module(name), record)
        data = {} if record is None else record["data"]
        results[name] = Result(name, script["returncode"], script["seconds"], markdown, data)
    return run, results


# -- the summary of the targets ------------------------------------------------------------------

SHORT = (
    ("recorder.wrappers.RecordVideo (defaults: 1 worker, 256 MiB)", "recorder RecordVideo"),
    ("recorder.wrappers.RecordVideo, default schedule", "recorder RecordVideo"),
    ("gymnasium.wrappers.RecordVideo, default schedule", "gymnasium RecordVideo"),
    ("gymnasium.wrappers.RecordVideo", "gymnasium RecordVideo"),
    ("gymnasium.utils.save_video at episode end", "gymnasium save_video"),
    ("recorder.save_video at episode end", "recorder save_video"),
    ("recorder RecordVideo, ", "recorder "),
)


def short(label: str) -> str:
    for long, brief in SHORT:
        if label.startswith(long):
            return brief + label[len(long) :]
    return label


def core_latency(data: dict[str, Any]) -> list[dict[str, Any]]:
    """bench_core's append latencies (µs) of the plotted modes, per frame size."""
    return [r for r in data.get("append", ()) if r["mode"] in ("render", "paced", "burst")]


#: the met cell of a target this 2-core machine cannot settle: its figure, no verdict
RETIRED = "retired"
RETIRED_PRESETS = ("ultrafast",)  # where 2 workers / 1 worker is retired


def summary_rows(results: dict[str, Result]) -> list[list[object]]:
    rows: list[list[object]] = []

    def add(scenario: str, what: str, target: str, cell: str, met: str = "-") -> None:
        rows.append([scenario, what, target, cell, met])

    def sp(d: dict[str, Any]) -> bu.Spread:
        return bu.Spread(**d)

    mark = bu.mark
    cp, enc, core, ray, quality = (
        results[f"bench_{n}"].data if f"bench_{n}" in results else {}
        for n in ("cartpole", "encode", "core", "ray", "quality")
    )
    loop = cp.get("loop", {}).get("rows", [])
    every = [r for r in loop if r["group"] == "every" and r["kind"] != "baseline"]
    rec = next((r for r in every if r["label"].startswith("recorder.wrappers.Record")), None)
    others = [r for r in every if r["kind"] == "recorder" and r is not rec]
    if rec:
        s = sp(rec["loop_ratio"])
        add("1", "recorder RecordVideo (defaults): loop / render-only", "≤ 1.1", s.fmt(3),
            mark(s.median <= 1.1))  # fmt: skip
        for r in [*others, *(r for r in every if r["kind"] == "peer")]:
            add("1", f"{short(r['label'])}: loop / render-only", "-", sp(r["loop_ratio"]).fmt(2))
        busy = next(r for r in loop if r["label"].startswith("render only, an x264 encode"))
        add("1", "reference: render only beside an x264 encode on the other CPU / render only",
            "-", sp(busy["loop_ratio"]).fmt(2))  # fmt: skip
        sched = [r for r in loop if r["group"] == "schedule"]
        n = sp(next(r for r in sched if "noise" in r["label"])["sched_ratio"])
        s = sp(next(r for r in sched if r["kind"] == "recorder")["sched_ratio"])
        within = "✅ (within" if n.low <= s.median <= n.high else "❌ (outside"
        add("1", "default schedule: recorder loop / render-only (same episodes)",
            f"≈ 1 (noise floor {n.low:.2f}-{n.high:.2f})", s.fmt(2),
            f"{within} the noise floor)")  # fmt: skip
        d = sp(rec["disk_ratio"])
        add("2", "recorder RecordVideo (defaults): time to disk / gymnasium RecordVideo", "≤ 0.4",
            d.fmt(2), mark(d.median <= 0.4))  # fmt: skip
        for r in others:
            add("2", f"{short(r['label'])}: time to disk / gymnasium RecordVideo", "-",
                sp(r["disk_ratio"]).fmt(2))  # fmt: skip
    for case in enc.get("encode", ()):
        what = f"{case['size']} {case['preset']}"
        for key, name, target in (
            ("rec1_vs_ffmpeg", "recorder 1 worker / ffmpeg CLI", 1.0),
            ("rec2_vs_rec1", "recorder 2 workers / 1 worker", 1.6),
        ):
            q = case[key]
            met = mark(q["ratio"] >= target)
            if key == "rec2_vs_rec1" and case["preset"] in RETIRED_PRESETS:
                met = RETIRED
            add("3", f"{what}: {name} (frames/s, pyperf)", f"≥ {target}", bu.fmt_compared(q), met)
    if rss := cp.get("rss"):
        for r in rss["runs"]:
            if r["kind"] != "gymnasium":
                who = "Recorder.episode" if r["kind"] == "recorder-episode" else "RecordVideo"
                add("4", f"peak RSS, {r['frames']:,} frames: recorder {who}, {r['budget_mib']} MiB "
                    "budget", "-", f"{r['hwm_mb']:.0f} MB")  # fmt: skip
        add("4", f"peak RSS, {rss['target_frames']:,} frames: gymnasium RecordVideo (extrapolated "
            "on paper)", "-", f"≈ {rss['peer_extrapolated_mb']:,.0f} MB")  # fmt: skip
        for r in cp["python"]["rows"]:
            if r["kind"] == "recorder":
                e = bu.sp(r["encoder_fps"])
                fps = f"; encoder {e.median:.0f} frames per worker-second" if e else ""
                add("5", f"Python-bound loop, {r['label']}", "-", sp(r["loop_ratio"]).fmt(2) + fps)
    for r in core_latency(core):
        # The target was the training loop's case at CartPole's size (retired); the rest for
        # context.
        targeted = r["size"] == "600x400" and r["mode"] == "render"
        add("6", f"append latency {r['size']}, {r['mode']}: median / p99 / max µs",
            "≤ 30 / ≤ 100 / -" if targeted else "-",
            f"{r['median']:.1f} / {r['p99']:.1f} / {r['max']:.0f}",
            RETIRED if targeted else "-")  # fmt: skip
    if ratio := core.get("arena", {}).get("600x400", {}).get("ratio"):
        add("13", "append / numpy copy into the same arena, 600x400 (pyperf: mean times)",
            "≤ 1.15", bu.fmt_compared(ratio), mark(ratio["ratio"] <= 1.15))  # fmt: skip
    if keep := core.get("keep"):
        add("15", f"keep best 5 / worst 2 of {keep['episodes']} episodes: candidates encoded / "
            "kept (encode s all / kept)", "-", f"{keep['candidates']} / {keep['kept']} "
            f"({keep['encode_all_s']:.2f} / {keep['encode_kept_s']:.2f} s)")  # fmt: skip
    for n, rates in ray.get("rates", {}).items():
        add("14", f"Ray, {n} producer actor(s): videos/s into one sink / local folders", "-",
            sp(rates["ratio"]).fmt(2))  # fmt: skip
    if ray:
        less = ray["raw_bytes_per_video"] / ray["bytes_per_video"]
        add("14", "Ray: bytes sent per video / raw frame bytes", "-", f"1 / {less:,.0f}")
    timeline = results["bench_timeline"].data if "bench_timeline" in results else {}
    for r in timeline.get("loop", {}).get("rows", ()):
        if r.get("minus_off"):  # issue 31: the overlay's row has the target
            s, overlay = sp(r["minus_off"]), "overlay" in r["label"]
            add("31", f"{r['label']}: loop / render-only, minus no info's", "≤ 0.02" if overlay
                else "-", s.fmt(3), mark(s.median <= 0.02) if overlay else "-")  # fmt: skip
    for r in timeline.get("encode", ()):
        fps = bu.fmt_compared({**r["ratio"], "ratio": 1 / r["ratio"]["ratio"]})
        add("31", f"{r['size']}: encoder frames/s with overlay / without (pyperf)", "-", fps)
    if presets := (results["bench_presets"].data if "bench_presets" in results else {}):
        v = importlib.import_module("bench_presets").verdicts(presets)
        m = v["marks"]
        block, drop = (
            "{:.2f} / {:.2f}".format(*v["outrun_block"]),
            "{} / {}".format(*v["outrun_drop"]),
        )
        rows30 = (
            ("paced_bytes", "paced loop, RecordVideo defaults: bytes / gymnasium's", "≤ 1.2",
             f"{v['paced_bytes']:.2f}"),
            ("paced_loop", "paced loop: loop / paced render-only", "≤ 1.1",
             f"{v['paced_loop']:.3f}"),
            ("paced_cpu", "paced loop: loop-thread CPU ratio minus pinned ultrafast's",
             "within ±0.03", f"{v['paced_cpu']:+.3f}"),
            ("paced_dropped", "paced loop: frames dropped", "0", str(v["paced_dropped"])),
            ("schedule_bytes", "default schedule: bytes / gymnasium's", "≤ 1.1",
             f"{v['schedule_bytes']:.2f}"),
            ("stress_loop", "stress loop: loop / pinned ultrafast's (per round)",
             "no worse (within noise)", v["stress_loop"].fmt(2)),
            ("stress_disk", "stress loop: time to disk / pinned ultrafast's (per round)",
             "no worse (within noise)", v["stress_disk"].fmt(2)),
            ("stress_disk_gym", "stress loop: time to disk / gymnasium's", "≤ 0.4",
             f"{v['stress_disk_gym']:.2f} (bytes {v['stress_bytes']:.2f}x gymnasium's)"),
            ("outrun_block", ("1280x720 producer outrunning ultrafast, block: blocked s, "
                              "adaptive / pinned ultrafast"), "no more", block),
            ("outrun_drop", ("1280x720 producer, drop: videos dropped, adaptive / pinned "
                             "ultrafast"), "no more", drop),
        )  # fmt: skip
        for key, what, target, cell in rows30:
            add("30", what, target, cell, m[key])
    for case in quality.get("quality", ()):
        d, g = case["rows"]["defaults"], case["rows"]["gymnasium"]
        add("quality", f"{case['input']}: min PSNR, recorder defaults / gymnasium save_video",
            "≥ gymnasium - 1 dB", f"{d['psnr_min']:.2f} / {g['psnr_min']:.2f} dB",
            mark(case["met"]))  # fmt: skip
        size = f"{d['kb_per_s']:.1f} / {g['kb_per_s']:.1f} ({d['size_vs_gymnasium']:.1f}x)"
        add("quality", f"{case['input']}: kB per s of video, recorder defaults / gymnasium", "-",
            size)  # fmt: skip
    health = results["bench_health"].data if "bench_health" in results else {}
    for r in health.get("sizes", ()):
        s = sp(r["ratio"])
        add("29", f"{r['size']}: encode frames/s, health check on / off (interleaved rounds)",
            "≥ 0.97", s.fmt(3), mark(s.median >= 0.97))  # fmt: skip
    return rows


#: bench_quality's writer -> bench_presets' paced-loop variant, for :func:`trades`
TRADED = {
    "defaults": "recorder RecordVideo, defaults (adaptive)",
    "superfast": None,
    "fastest": None,
    "ultrafast": 'recorder RecordVideo, preset="ultrafast" (the default before)',
    "veryfast": 'recorder RecordVideo, preset="veryfast"',
    "av1": 'recorder RecordVideo, codec="av1"',
    "gymnasium": "gymnasium.wrappers.RecordVideo",
}


def trades(quality: dict[str, Any], presets: dict[str, Any]) -> str:
    """Issue 30's table: each preset or codec's kB/s and encode frames/s (CartPole, the noisy
    ramp: bench_quality) and its paced loop's ratios (bench_presets), beside gymnasium's."""
    paced = {r["label"]: r for r in presets.get("paced", ())}
    inputs = {case["input"]: case["rows"] for case in quality.get("quality", ())}
    rows = []
    for key, label in TRADED.items():
        cells: list[object] = []
        for case in inputs.values():
            row = case.get(key)
            cells += ["-", "-"] if row is None else [
                f"{row['kb_per_s']:.1f} ({row['size_vs_gymnasium']:.2f}x)",
                f"{bu.Spread(**row['fps']).median:.0f}"]  # fmt: skip
        loop = paced.get(label) if label else None
        cells += (
            ["-", "-"] if loop is None
            else [bu.fmt_spread(loop["loop_ratio"], 2), bu.fmt_spread(loop["bytes_ratio"], 2)]
        )  # fmt: skip
        name = next((case[key]["label"] for case in inputs.values() if key in case), key)
        rows.append([name, *cells])
    headers = " | ".join(
        [
            "setting",
            *(f"{i}: kB per s of video (x gymnasium's) | {i}: encode frames/s" for i in inputs),
            "paced CartPole loop / render-only",
            "paced CartPole loop: bytes / gymnasium's",
        ]
    )
    return (
        "## Presets and codecs: what each setting trades (issue 30)\n\n"
        "From bench_quality (the encoder alone on each input) and bench_presets (the paced "
        "training loop, every episode recorded).\n\n" + bu.markdown_table(headers, rows) + "\n"
    )


# -- the plot -----------------------------------------------------------------------------------

RECORDER_COLOR, PEER_COLOR, BASE_COLOR = "#1f77b4", "#ff7f0e", "#7f7f7f"


def _err(spreads: Sequence[bu.Spread]) -> list[list[float]]:
    return [[s.median - s.low for s in spreads], [s.high - s.median for s in spreads]]


def _hbars(ax: Any, rows: list[dict[str, Any]], key: str, labels: list[str]) -> None:
    """Horizontal bars of the spreads ``row[key]``, recorder rows blue, peers orange."""
    spreads = [bu.Spread(**r[key]) for r in rows]
    colors = [RECORDER_COLOR if r["kind"] == "recorder" else PEER_COLOR for r in rows]
    y = list(range(len(labels)))[::-1]
    ax.barh(y, [s.median for s in spreads], xerr=_err(spreads), color=colors, capsize=3)
    ax.set_yticks(y, labels, fontsize=8)
    for yi, s in zip(y, spreads, strict=True):
        ax.text(s.high, yi, f"  {s.median:.2f}", va="center", fontsize=8)


def _target(ax: Any, x: float, label: str, baseline: bool = True) -> None:
    if baseline:
        ax.axvline(1.0, color=BASE_COLOR, lw=1)
    ax.axvline(x, color="red", ls="--", lw=1.2, label=label)
    ax.legend(loc="lower right", fontsize=8)


def _grouped_bars(ax: Any, x_labels: list[str], series: list[tuple[str, list[Any]]]) -> None:
    """One bar per series at each x; a series' values are numbers or Spreads (error bars)."""
    import matplotlib.pyplot as plt
    import numpy as np

    width = 0.8 / len(series)
    cmap = plt.get_cmap("tab10" if isinstance(series[0][1][0], bu.Spread) else "tab20")
    for j, (label, values) in enumerate(series):
        x = np.arange(len(x_labels)) + (j - (len(series) - 1) / 2) * width
        if isinstance(values[0], bu.Spread):
            ax.bar(x, [s.median for s in values], width, yerr=_err(values), capsize=2,
                   label=label, color=cmap(j))  # fmt: skip
        else:
            ax.bar(x, values, width, label=label, color=cmap(j))
    ax.set_xticks(range(len(x_labels)), x_labels, fontsize=8)
    ax.set_yscale("log")


def _panel_memory(ax: Any, rss: dict[str, Any]) -> None:
    import matplotlib.ticker

    labels, values, colors = [], [], []
    for r in rss["runs"]:
        if r["kind"] == "gymnasium":
            labels.append(f"gymnasium RecordVideo, {r['frames']:,} frames")
        else:
            who = "Recorder.episode" if r["kind"] == "recorder-episode" else "recorder RV"
            labels.append(f"{who}, {r['frames']:,} frames, {r['budget_mib']} MiB")
        colors.append(PEER_COLOR if r["kind"] == "gymnasium" else RECORDER_COLOR)
        values.append(r["hwm_mb"])
    labels.append(f"gymnasium RecordVideo, {rss['target_frames']:,} frames\n(extrapolated)")
    values.append(rss["peer_extrapolated_mb"])
    colors.append("white")
    y = list(range(len(values)))[::-1]
    bars = ax.barh(y, values, color=colors, edgecolor=PEER_COLOR)
    bars[-1].set_hatch("//")
    for yi, v in zip(y, values, strict=True):
        ax.text(v, yi, f" {v:,.0f} MB", va="center", fontsize=8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(right=max(values) * 4)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel("peak RSS MB", fontsize=8)


def _panel_latency(ax: Any, lat: list[dict[str, Any]]) -> None:
    import matplotlib.ticker

    sizes = list(dict.fromkeys(r["size"] for r in lat))
    series = [("render", "median"), ("render", "p99"), ("render", "max")]
    series += [("paced", "p99"), ("burst", "p99")]
    _grouped_bars(ax, sizes, [(f"{mode} {stat}", [
        next((r[stat] for r in lat if r["size"] == s and r["mode"] == mode), 0.0) for s in sizes
    ]) for mode, stat in series])  # fmt: skip
    ax.set_ylabel("µs per append (log)", fontsize=8)
    ax.legend(fontsize=7)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))


def plot(results: dict[str, Result], path: Path, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(18, 10))
    cp = results["bench_cartpole"].data if "bench_cartpole" in results else {}
    enc = results["bench_encode"].data if "bench_encode" in results else {}
    lat = core_latency(results["bench_core"].data if "bench_core" in results else {})
    every = [r for r in cp.get("loop", {}).get("rows", []) if r["group"] == "every"]
    every = [r for r in every if r["kind"] != "baseline"]

    def loop_panel(ax: Any) -> None:
        _hbars(ax, every, "loop_ratio", [short(r["label"]) for r in every])
        _target(ax, 1.1, "target ≤ 1.1")
        ax.set_xlabel("slowdown (1 = no cost), median and min-max", fontsize=8)

    def disk_panel(ax: Any) -> None:
        _hbars(ax, every, "disk_ratio", [short(r["label"]) for r in every])
        _target(ax, 0.4, "target ≤ 0.4", baseline=False)
        ax.set_xlabel("ratio (lower is better)", fontsize=8)

    def encode_panel(ax: Any) -> None:
        cases = enc["encode"]
        tools = [(t, [bu.Spread(**c["fps"][t]) for c in cases]) for t in cases[0]["fps"]]
        _grouped_bars(ax, [f"{c['size']}\n{c['preset']}" for c in cases], tools)
        ax.set_ylabel("frames/s (log)", fontsize=8)
        ax.legend(fontsize=7, ncol=2)

    def python_panel(ax: Any) -> None:
        rows = [r for r in cp["python"]["rows"] if r["kind"] != "baseline"]
        labels = []
        for r in rows:
            e = bu.sp(r["encoder_fps"])
            labels.append(
                r["label"] + (f"\n(encoder {e.median:.0f} frames per worker-s)" if e else "")
            )
        _hbars(ax, rows, "loop_ratio", labels)
        _target(ax, 1.2, "1.2 (scenario 1's target)")

    panels = [
        ("1. Training loop time / render-only loop\n(CartPole 600x400, every episode)", cp,
         loop_panel),
        ("2. Time until every video is on disk\n/ gymnasium RecordVideo's (same runs)", cp,
         disk_panel),
        ("3. Encode frames/s\n(libx264, crf 23, 1 thread per video)", enc, encode_panel),
        ("4. Peak RSS recording one long CartPole episode\n(VmHWM of a fresh process; log scale)",
         cp, lambda ax: _panel_memory(ax, cp["rss"])),
        ("5. Python-bound loop (~2 ms pure-Python step)\nloop / render-only", cp, python_panel),
        ("6. Episode.append latency (bench_core; log scale)", lat,
         lambda ax: _panel_latency(ax, lat)),
    ]  # fmt: skip
    more = {2: "\ntargets: recorder-1 ≥ ffmpeg CLI,\nrecorder-2 ≥ 1.6x recorder-1 (veryfast)",
            5: "\n(issue 2's targets retired)"}  # fmt: skip
    for i, (title, data, draw) in enumerate(panels):
        ax = axes[i // 3][i % 3]
        if data:
            draw(ax)
            ax.set_title(title + more.get(i, ""), fontsize=10)
        else:
            ax.set_title(title, fontsize=10)
            ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
    fig.suptitle("recorder benchmarks: " + subtitle, fontsize=12)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- the report ---------------------------------------------------------------------------------


def demote(markdown: str) -> str:
    """One heading level down, so that each script's report nests under its section."""
    return re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", markdown, flags=re.MULTILINE)


def render(args: argparse.Namespace) -> int:
    """docs/benchmarks.md and .png from a measured folder's JSON (no measuring)."""
    run, results = load(args.folder)
    png = args.out_dir / "benchmarks.png"
    quick = "QUICK smoke run, " if run["quick"] else ""
    plot(results, png, f"{run['date']}, {quick}{run['machine']}")
    parts = [
        "# Benchmarks\n",
        (f"Generated by `{run['command']}` then `python scripts/bench_all.py render` "
         f"(`make bench{'-quick' if run['quick'] else ''}`) on {run['date']} in "
         f"{run['seconds'] / 60:.1f} min{bu.QUICK_NOTE if run['quick'] else ''}.\n"),
        (f"Machine: {run['machine']}. Load average before / after: {run['load_before']} → "
         f"{run['load_after']}. The machine is shared and noisy: the whole-loop scenarios compare "
         "variants measured in the same run, interleaved (the order rotated, or balanced, each "
         "round), repeated; "
         "medians with the spread (min-max); ratios are computed per round, then medianed. The "
         "throughput microbenchmarks (encode frames/s, the append against a copy into the "
         "arena) run on pyperf (calibrated loops, worker processes): their ratios are of mean "
         "times, with pyperf's verdict on their significance. A benchmark never fails on a "
         "target: it prints what it measured; a target this 2-core machine cannot settle is "
         f"*{RETIRED}*: its figure is shown, without a verdict.\n"),
        f"![benchmarks]({png.name})\n",
        "## Summary\n",
        bu.markdown_table("scenario | measure | target | measured: median (min-max) | met",
                          summary_rows(results)) + "\n",
        bu.markdown_table("script | exit status | seconds",
                          [[r.name, r.returncode, f"{r.seconds:.0f}"] for r in results.values()])
        + "\n",
    ]  # fmt: skip
    if "bench_presets" in results and "bench_quality" in results:
        parts.append(trades(results["bench_quality"].data, results["bench_presets"].data))
    for r in results.values():
        no_report = f"## {r.name}\n\nNo report: exit status {r.returncode}.\n"
        parts.append(no_report if r.markdown is None else demote(r.markdown))
    text = "\n".join(parts)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "benchmarks.md").write_text(text)
    print(text)
    bu.log(f"wrote {args.out_dir / 'benchmarks.md'} and {png}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    m = steps.add_parser("measure", help="run the scenarios; their raw figures as JSON")
    m.add_argument("--quick", action="store_true", help="every script's smoke run")
    m.add_argument("--out-dir", type=Path, default=Path("build/bench"))
    m.add_argument("--only", nargs="+", metavar="NAME", help="run only these scripts")
    r = steps.add_parser("render", help="the report from a measured folder's JSON")
    r.add_argument("folder", type=Path, nargs="?", default=Path("build/bench"))
    r.add_argument("--out-dir", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    return measure(args) if args.step == "measure" else render(args)


if __name__ == "__main__":
    raise SystemExit(main())
