"""Every benchmark in scripts/, one report: docs/benchmarks.md (tables) and docs/benchmarks.png.

Runs each ``scripts/bench_*.py`` in its own subprocess (``--out`` markdown, and ``--json``
figures where the script has them), then writes a summary of the targets, the plot, and every
script's report. A missed target is printed, never an error; a script that crashes is reported
and makes the exit status 1 (after the report is written).

Usage::

    python scripts/bench_all.py [--quick] [--out-dir docs] [--only bench_encode ...]
"""

from __future__ import annotations

import argparse
import datetime
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
WITH_JSON = ("bench_cartpole", "bench_encode", "bench_quality")
TIMEOUT_S = 1800


@dataclass
class Result:
    """One script's run."""

    name: str
    returncode: int
    seconds: float
    markdown: str | None
    data: dict[str, Any] | None


def discover(only: Sequence[str] | None) -> list[str]:
    names = sorted(p.stem for p in SCRIPTS.glob("bench_*.py") if p.stem != "bench_all")
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise SystemExit(f"unknown benchmark(s) {unknown}; known: {names}")
        names = [n for n in names if n in only]
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def run_script(name: str, quick: bool, tmp: Path) -> Result:
    # Relative to the child's working directory (tmp): the command each report quotes stays short.
    out, js = tmp / f"{name}.md", tmp / f"{name}.json"
    cmd = [sys.executable, str(SCRIPTS / f"{name}.py"), "--out", out.name]
    if quick:
        cmd.append("--quick")
    if name in WITH_JSON:
        cmd += ["--json", js.name]
    bu.log(f"== {name}: {shlex.join(cmd[1:])}")
    env = {**os.environ, "SDL_VIDEODRIVER": os.environ.get("SDL_VIDEODRIVER", "dummy")}
    start = time.perf_counter()
    try:
        # The child's report (stdout) goes to our stderr: our stdout carries the summary.
        proc = subprocess.run(
            cmd, stdout=sys.stderr, env=env, timeout=TIMEOUT_S, check=False, cwd=tmp
        )
        code = proc.returncode
    except subprocess.TimeoutExpired:
        code = -1
    seconds = time.perf_counter() - start
    bu.log(f"== {name}: exit {code} after {seconds:.0f} s")
    markdown = out.read_text() if out.exists() else None
    data = json.loads(js.read_text()) if js.exists() else None
    return Result(name, code, seconds, markdown, data)


# -- extracting figures --------------------------------------------------------------------------


def spread_of(d: dict[str, Any] | None) -> bu.Spread | None:
    return None if d is None else bu.Spread(**d)


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


def core_latency(markdown: str | None) -> list[dict[str, Any]]:
    """The append-latency rows of bench_core's report (size, mode, median, p99, max in µs)."""
    rows = []
    for line in (markdown or "").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and "`Episode.append`" in cells[1] and "prefault" not in cells[1]:
            nums = [re.match(r"[\d.]+", c) for c in cells[3:6]]
            if all(nums):
                median, p99, peak = (float(m.group()) for m in nums if m)
                mode = next(m for m in ("render", "paced", "burst") if m in cells[1])
                rows.append(
                    {"size": cells[0], "mode": mode, "median": median, "p99": p99, "max": peak}
                )
    return rows


def summary_rows(results: dict[str, Result]) -> list[list[object]]:
    rows: list[list[object]] = []

    def verdict(ok: bool) -> str:
        return "✅" if ok else "❌"

    cp = results.get("bench_cartpole")
    if cp and cp.data:
        by = {r["label"]: r for r in cp.data["loop"]["rows"]}
        rec = next(r for r in by.values() if r["label"].startswith("recorder.wrappers.Record"))
        loop, disk = spread_of(rec["loop_ratio"]), spread_of(rec["disk_ratio"])
        assert loop is not None
        assert disk is not None
        rows.append(
            ["1", "recorder RecordVideo (defaults): loop / render-only", "≤ 1.1", loop.fmt(3),
             verdict(loop.median <= 1.1)]
        )  # fmt: skip
        for r in by.values():
            if r["group"] == "every" and r["kind"] == "recorder" and r is not rec:
                s = spread_of(r["loop_ratio"])
                assert s is not None
                rows.append(["1", f"{short(r['label'])}: loop / render-only", "-", s.fmt(2), "-"])
        for r in by.values():
            if r["group"] == "every" and r["kind"] == "peer":
                s = spread_of(r["loop_ratio"])
                assert s is not None
                rows.append(["1", f"{short(r['label'])}: loop / render-only", "-", s.fmt(2), "-"])
        sched = [r for r in by.values() if r["group"] == "schedule"]
        noise = next(r for r in sched if "noise" in r["label"])
        rec_s = next(r for r in sched if r["kind"] == "recorder")
        s, n = spread_of(rec_s["sched_ratio"]), spread_of(noise["sched_ratio"])
        assert s is not None
        assert n is not None
        rows.append(
            ["1", "default schedule: recorder loop / render-only (same episodes)",
             f"≈ 1 (noise floor {n.low:.2f}-{n.high:.2f})", s.fmt(2),
             verdict(n.low <= s.median <= n.high) + " (within the noise floor)"
             if n.low <= s.median <= n.high else "❌ (outside the noise floor)"]
        )  # fmt: skip
        rows.append(
            ["2", "recorder RecordVideo (defaults): time to disk / gymnasium RecordVideo",
             "≤ 0.4", disk.fmt(2), verdict(disk.median <= 0.4)]
        )  # fmt: skip
        for r in by.values():
            if r["group"] == "every" and r["kind"] == "recorder" and r is not rec:
                d = spread_of(r["disk_ratio"])
                assert d is not None
                rows.append(
                    ["2", f"{short(r['label'])}: time to disk / gymnasium RecordVideo", "-",
                     d.fmt(2), "-"]
                )  # fmt: skip
    enc = results.get("bench_encode")
    if enc and enc.data:
        for case in enc.data["encode"]:
            q1, q2 = spread_of(case["rec1_vs_ffmpeg"]), spread_of(case["rec2_vs_rec1"])
            assert q1 is not None
            assert q2 is not None
            what = f"{case['size']} {case['preset']}"
            rows.append(
                ["3", f"{what}: recorder 1 worker / ffmpeg CLI (frames/s)", "≥ 1.0", q1.fmt(2),
                 verdict(q1.median >= 1.0)]
            )  # fmt: skip
            rows.append(
                ["3", f"{what}: recorder 2 workers / 1 worker (frames/s)", "≥ 1.6", q2.fmt(2),
                 verdict(q2.median >= 1.6)]
            )  # fmt: skip
    if cp and cp.data:
        rss = cp.data["rss"]
        n = rss["target_frames"]
        for r in rss["runs"]:
            if r["kind"] != "gymnasium":
                who = "Recorder.episode" if r["kind"] == "recorder-episode" else "RecordVideo"
                rows.append(
                    ["4", (f"peak RSS, {r['frames']:,} frames: recorder {who}, "
                     f"{r['budget_mib']} MiB budget"), "-", f"{r['hwm_mb']:.0f} MB", "-"]
                )  # fmt: skip
        rows.append(
            ["4", f"peak RSS, {n:,} frames: gymnasium RecordVideo (extrapolated on paper)", "-",
             f"≈ {rss['peer_extrapolated_mb']:,.0f} MB", "-"]
        )  # fmt: skip
        for r in cp.data["python"]["rows"]:
            if r["kind"] == "recorder":
                s = spread_of(r["loop_ratio"])
                e = spread_of(r["encoder_fps"])
                assert s is not None
                fps = f"; encoder {e.median:.0f} frames per worker-second" if e else ""
                rows.append(["5", f"Python-bound loop, {r['label']}", "-", s.fmt(2) + fps, "-"])
    core = results.get("bench_core")
    if core:
        for r in core_latency(core.markdown):
            # The target is the training loop's case at CartPole's size; the rest for context.
            targeted = r["size"] == "600x400" and r["mode"] == "render"
            rows.append(
                ["6", f"append latency {r['size']}, {r['mode']}: median / p99 / max µs",
                 "≤ 30 / ≤ 100 / -" if targeted else "-",
                 f"{r['median']:.1f} / {r['p99']:.1f} / {r['max']:.0f}",
                 verdict(r["median"] <= 30 and r["p99"] <= 100) if targeted else "-"]
            )  # fmt: skip
    for line in (core.markdown if core else "").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[1].startswith("**append / copy") and cells[0] == "600x400":
            ratio = float(cells[3].split()[0])
            rows.append(
                ["13", "append / numpy copy into the same arena, 600x400 after render (medians)",
                 "≤ 1.15", f"{ratio:.2f}", verdict(ratio <= 1.15)]
            )  # fmt: skip
    quality = results.get("bench_quality")
    if quality and quality.data:
        for case in quality.data["quality"]:
            d, g = case["rows"]["defaults"], case["rows"]["gymnasium"]
            rows.append(
                ["quality", f"{case['input']}: min PSNR, recorder defaults / gymnasium save_video",
                 "≥ gymnasium - 1 dB", f"{d['psnr_min']:.2f} / {g['psnr_min']:.2f} dB",
                 verdict(case["met"])]
            )  # fmt: skip
            rows.append(
                ["quality", f"{case['input']}: kB per s of video, recorder defaults / gymnasium",
                 "-", f"{d['kb_per_s']:.1f} / {g['kb_per_s']:.1f} ({d['size_vs_gymnasium']:.1f}x)",
                 "-"]
            )  # fmt: skip
    return rows


# -- the plot -----------------------------------------------------------------------------------

RECORDER_COLOR, PEER_COLOR, BASE_COLOR = "#1f77b4", "#ff7f0e", "#7f7f7f"


def _err(spreads: Sequence[bu.Spread]) -> list[list[float]]:
    return [[s.median - s.low for s in spreads], [s.high - s.median for s in spreads]]


def _hbars(ax: Any, labels: list[str], spreads: list[bu.Spread], colors: list[str]) -> None:
    y = list(range(len(labels)))[::-1]
    ax.barh(y, [s.median for s in spreads], xerr=_err(spreads), color=colors, capsize=3)
    ax.set_yticks(y, labels, fontsize=8)
    for yi, s in zip(y, spreads, strict=True):
        ax.text(s.high, yi, f"  {s.median:.2f}", va="center", fontsize=8)


def _missing(ax: Any, title: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def plot(results: dict[str, Result], path: Path, subtitle: str) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(18, 10))
    cp = results.get("bench_cartpole")
    cp_data = cp.data if cp else None
    enc = results.get("bench_encode")
    enc_data = enc.data if enc else None
    core = results.get("bench_core")

    # (1) loop slowdown
    ax = axes[0][0]
    title1 = "1. Training loop time / render-only loop\n(CartPole 600x400, every episode)"
    if cp_data:
        rows = [r for r in cp_data["loop"]["rows"] if r["group"] == "every"]
        rows = [r for r in rows if r["kind"] != "baseline"]
        spreads = [bu.Spread(**r["loop_ratio"]) for r in rows]
        colors = [RECORDER_COLOR if r["kind"] == "recorder" else PEER_COLOR for r in rows]
        _hbars(ax, [short(r["label"]) for r in rows], spreads, colors)
        ax.axvline(1.0, color=BASE_COLOR, lw=1)
        ax.axvline(1.1, color="red", ls="--", lw=1.2, label="target ≤ 1.1")
        ax.legend(loc="lower right", fontsize=8)
        ax.set_xlabel("slowdown (1 = no cost), median and min-max", fontsize=8)
        ax.set_title(title1, fontsize=10)
    else:
        _missing(ax, title1)

    # (2) time to disk
    ax = axes[0][1]
    title2 = "2. Time until every video is on disk\n/ gymnasium RecordVideo's (same runs)"
    if cp_data:
        rows = [r for r in cp_data["loop"]["rows"] if r["group"] == "every"]
        rows = [r for r in rows if r["kind"] != "baseline"]
        spreads = [bu.Spread(**r["disk_ratio"]) for r in rows]
        colors = [RECORDER_COLOR if r["kind"] == "recorder" else PEER_COLOR for r in rows]
        _hbars(ax, [short(r["label"]) for r in rows], spreads, colors)
        ax.axvline(0.4, color="red", ls="--", lw=1.2, label="target ≤ 0.4")
        ax.legend(loc="lower right", fontsize=8)
        ax.set_xlabel("ratio (lower is better)", fontsize=8)
        ax.set_title(title2, fontsize=10)
    else:
        _missing(ax, title2)

    # (3) encode throughput
    ax = axes[0][2]
    title3 = "3. Encode frames/s\n(libx264, crf 23, 1 thread per video)"
    if enc_data:
        import numpy as np

        cases = enc_data["encode"]
        tools = list(cases[0]["fps"])
        width = 0.8 / len(tools)
        cmap = plt.get_cmap("tab10")
        for j, tool in enumerate(tools):
            spreads = [bu.Spread(**c["fps"][tool]) for c in cases]
            x = np.arange(len(cases)) + (j - (len(tools) - 1) / 2) * width
            ax.bar(x, [s.median for s in spreads], width, yerr=_err(spreads), capsize=2,
                   label=tool, color=cmap(j))  # fmt: skip
        ax.set_xticks(range(len(cases)), [f"{c['size']}\n{c['preset']}" for c in cases], fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("frames/s (log)", fontsize=8)
        ax.legend(fontsize=7, ncol=2)
        ax.set_title(
            title3 + "\ntargets: recorder-1 ≥ ffmpeg CLI,\nrecorder-2 ≥ 1.6x recorder-1",
            fontsize=10,
        )
    else:
        _missing(ax, title3)

    # (4) memory
    ax = axes[1][0]
    title4 = (
        "4. Peak RSS recording one long CartPole episode\n(VmHWM of a fresh process; log scale)"
    )
    if cp_data:
        rss = cp_data["rss"]
        labels, values, colors = [], [], []
        for r in rss["runs"]:
            if r["kind"] == "gymnasium":
                labels.append(f"gymnasium RecordVideo, {r['frames']:,} frames")
                colors.append(PEER_COLOR)
            else:
                who = "Recorder.episode" if r["kind"] == "recorder-episode" else "recorder RV"
                labels.append(f"{who}, {r['frames']:,} frames, {r['budget_mib']} MiB")
                colors.append(RECORDER_COLOR)
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
        ax.set_title(title4, fontsize=10)
    else:
        _missing(ax, title4)

    # (5) Python-bound loop
    ax = axes[1][1]
    title5 = "5. Python-bound loop (~2 ms pure-Python step)\nloop / render-only"
    if cp_data:
        rows = [r for r in cp_data["python"]["rows"] if r["kind"] != "baseline"]
        spreads = [bu.Spread(**r["loop_ratio"]) for r in rows]
        labels = []
        for r in rows:
            e = spread_of(r["encoder_fps"])
            per = f"\n(encoder {e.median:.0f} frames per worker-s)" if e else ""
            labels.append(r["label"] + per)
        _hbars(ax, labels, spreads, [RECORDER_COLOR] * len(rows))
        ax.axvline(1.0, color=BASE_COLOR, lw=1)
        ax.axvline(1.2, color="red", ls="--", lw=1.2, label="1.2 (scenario 1's target)")
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title(title5, fontsize=10)
    else:
        _missing(ax, title5)

    # (6) append latency
    ax = axes[1][2]
    title6 = "6. Episode.append latency (bench_core; log scale)"
    lat = core_latency(core.markdown if core else None)
    if lat:
        import numpy as np

        sizes = list(dict.fromkeys(r["size"] for r in lat))
        x = np.arange(len(sizes))
        series = [
            ("render", "median"),
            ("render", "p99"),
            ("render", "max"),
            ("paced", "p99"),
            ("burst", "p99"),
        ]
        width = 0.8 / len(series)
        cmap = plt.get_cmap("tab20")
        for j, (mode, stat) in enumerate(series):
            vals = [
                next((r[stat] for r in lat if r["size"] == s and r["mode"] == mode), 0.0)
                for s in sizes
            ]
            offset = (j - (len(series) - 1) / 2) * width
            ax.bar(x + offset, vals, width, label=f"{mode} {stat}", color=cmap(j))
        if "600x400" in sizes:
            i = sizes.index("600x400")
            for target, name, style in (
                (30, "target median ≤ 30 µs", "--"),
                (100, "target p99 ≤ 100 µs", ":"),
            ):
                ax.hlines(
                    target, i - 0.45, i + 0.45, colors="red", linestyles=style, lw=1.5, label=name
                )
        ax.set_xticks(x, sizes, fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("µs per append (log)", fontsize=8)
        ax.legend(fontsize=7)
        ax.set_title(title6 + "\ntargets at 600x400", fontsize=10)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    else:
        _missing(ax, title6)

    fig.suptitle("recorder benchmarks: " + subtitle, fontsize=12)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- the report ---------------------------------------------------------------------------------


def demote(markdown: str) -> str:
    """One heading level down, so that each script's report nests under its section."""
    return re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", markdown, flags=re.MULTILINE)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every script's smoke run")
    parser.add_argument("--out-dir", type=Path, default=Path("docs"))
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these scripts")
    args = parser.parse_args(argv)
    names = discover(args.only)
    started = time.perf_counter()
    load_before = bu.load_average()
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="bench-all-") as tmp:
        for name in names:
            results[name] = run_script(name, args.quick, Path(tmp))
    total = time.perf_counter() - started
    command = "python scripts/bench_all.py" + (" --quick" if args.quick else "")
    if args.only:
        command += " --only " + " ".join(args.only)
    today = datetime.date.today().isoformat()
    out_dir = args.out_dir
    png = out_dir / "benchmarks.png"
    plot(results, png, f"{today}, {'QUICK smoke run, ' if args.quick else ''}{bu.machine_info()}")

    parts = [
        "# Benchmarks\n",
        (
            f"Generated by `{command}` (`make bench`) on {today} in {total / 60:.1f} min"
            f"{' (QUICK smoke run: counts too small to mean much)' if args.quick else ''}.\n"
        ),
        (
            f"Machine: {bu.machine_info()}. Load average before / after: {load_before} → "
            f"{bu.load_average()}. The machine is shared and noisy: every figure below compares "
            "variants measured in the same run, interleaved (order rotated each round), repeated; "
            "medians with the spread (min-max); ratios are computed per round, then medianed. "
            "A benchmark never fails on a target: it prints what it measured.\n"
        ),
        f"![benchmarks]({png.name})\n",
        "## Summary\n",
        bu.markdown_table(
            ["scenario", "measure", "target", "measured: median (min-max)", "met"],
            summary_rows(results),
        )
        + "\n",
        bu.markdown_table(
            ["script", "exit status", "seconds"],
            [[r.name, r.returncode, f"{r.seconds:.0f}"] for r in results.values()],
        )
        + "\n",
    ]
    for r in results.values():
        if r.markdown is None:
            parts.append(f"## {r.name}\n\nNo report: exit status {r.returncode}.\n")
        else:
            parts.append(demote(r.markdown))
    text = "\n".join(parts)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "benchmarks.md").write_text(text)
    print(text)
    bu.log(f"wrote {out_dir / 'benchmarks.md'} and {png}")
    return 0 if all(r.returncode == 0 for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
