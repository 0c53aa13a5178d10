"""Smoke runs (``--quick``) of the issue-7 benchmark scripts: they exit 0 and write their tables.

A benchmark never fails on its figures; these tests check that each script runs end to end,
writes the tables it promises, and that what it recorded is whole (no dropped frame, every
video on disk), not how fast anything was.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
pytestmark = pytest.mark.slow

pytest.importorskip("imageio_ffmpeg", reason="the bench extra provides the ffmpeg CLI")
pytest.importorskip("moviepy", reason="the peers (gymnasium's RecordVideo, moviepy) are measured")


def run_script(tmp_path: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    # Temporary files of the script (and its children) go under tmp_path too.
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "TMPDIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=100,
        cwd=tmp_path,
        env=env,
        check=False,
    )


def run_quick(tmp_path: Path, script: str, title: str) -> tuple[str, dict[str, Any], str]:
    """Run *script* ``--quick`` with ``--out`` and ``--json``; its report (titled *title*), its
    figures and its stdout, once it exited 0 and left nothing behind."""
    out, js = tmp_path / "report.md", tmp_path / "figures.json"
    proc = run_script(tmp_path, script, "--out", str(out), "--json", str(js))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = out.read_text()
    assert text.startswith(f"# {title}")
    assert not left_behind(tmp_path)
    return text, json.loads(js.read_text()), proc.stdout


def table_rows(text: str) -> list[list[str]]:
    """Data rows (not headers) of every markdown table in *text*, split into cells."""
    lines = text.splitlines()
    rows = []
    for i, line in enumerate(lines):
        is_rule = line.startswith(("| ---", "| :--"))
        is_header = i + 1 < len(lines) and lines[i + 1].startswith(("| ---", "| :--"))
        if line.startswith("| ") and not is_rule and not is_header:
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def left_behind(tmp_path: Path) -> list[Path]:
    """Videos or temporary folders a script did not clean up."""
    return [p for p in tmp_path.rglob("*") if p.suffix == ".mp4" or p.name.startswith("bench-")]


@pytest.mark.timeout(120)
def test_bench_cartpole_quick(tmp_path: Path) -> None:
    text, data, stdout = run_quick(tmp_path, "bench_cartpole.py", "CartPole benchmark")
    for heading in ("## Scenarios 1 and 2", "## Scenario 4", "## Scenario 5"):
        assert heading in text
    assert "## Scenario 4" in stdout  # the report is printed too
    rows = table_rows(text)
    labels = [r[0] for r in rows]
    for label in (
        "render only (env.render() every step, discarded)",
        "render only, an x264 encode busy on the other CPU (ffmpeg CLI, reference)",
        "recorder.wrappers.RecordVideo (defaults: 1 worker, 256 MiB)",
        "gymnasium.wrappers.RecordVideo",
        "gymnasium.utils.save_video at episode end",
        "recorder.wrappers.RecordVideo, default schedule",
        "gymnasium.wrappers.RecordVideo, **extrapolated on paper**",
        "recorder, 2 workers, switch 1 ms",
    ):
        assert label in labels
    assert "Scenario 1, recorder.wrappers.RecordVideo with its defaults" in text
    loop_rows = data["loop"]["rows"]
    assert len(loop_rows) == 15
    for row in loop_rows:
        assert row["complete"], row  # every video the trigger asked for is on disk
        if row["kind"] == "recorder":
            assert row["frames_dropped"] in (None, 0)
            assert row["videos_dropped"] == 0
    every = next(r for r in loop_rows if r["label"].startswith("recorder.wrappers.RecordVideo ("))
    assert every["expected"][0] > 1  # several episodes, each its own video
    for run in data["rss"]["runs"]:
        if run["kind"] == "gymnasium":
            # moviepy loses the last frame of some clips; gymnasium's files are what they are.
            assert run["frames"] - 1 <= run["frames_in_video"] <= run["frames"]
        else:
            assert run["frames_in_video"] == run["frames"]
            assert run["dropped"] == 0
            assert run["peak_queued_mib"] <= run["budget_mib"]
    assert data["rss"]["peer_mb_per_frame"] > 0
    for row in data["python"]["rows"]:
        assert row["complete"]
        assert row["frames_dropped"] == 0


@pytest.mark.timeout(60)
def test_bench_encode_quick(tmp_path: Path) -> None:
    text, data, _ = run_quick(tmp_path, "bench_encode.py", "Encode throughput")
    assert "## Scenario 3: encode throughput" in text
    rows = table_rows(text)
    sizes = {r[0] for r in rows if len(r) == 8}
    assert {"64x64", "256x256", "600x400", "1280x720"} <= sizes
    tools = {r[2] for r in rows if len(r) == 8}
    assert len(tools) == 7
    assert any(r[:2] == ["600x400", "veryfast"] for r in rows)
    for case in data["encode"]:
        for tool, check in case["checks"].items():
            # The same x264 settings in every tool's stream: an equal comparison.
            assert check["same_x264"], (case["size"], tool, check["x264"])
            if tool != "moviepy":  # moviepy may lose the last frame
                assert check["packets"] == case["frames_per_video"], (case["size"], tool)


@pytest.mark.timeout(60)
def test_bench_soak_quick_meets_its_checks(tmp_path: Path) -> None:
    text, _, _ = run_quick(tmp_path, "bench_soak.py", "Soak")
    assert "NOT met" not in text
    assert "- met: submitted = saved + dropped + failed" in text
    rows = table_rows(text)
    assert [r[0].split(" (")[0] for r in rows] == ["after warm-up", "at the end"]


@pytest.mark.timeout(60)
def test_bench_overload_quick_drops_never_block(tmp_path: Path) -> None:
    text, _, _ = run_quick(tmp_path, "bench_overload.py", "Overload")
    rows = {r[0]: r for r in table_rows(text)}
    assert set(rows) == {"drop", "block", 'drop, encode_in="thread"'}, rows
    assert rows["drop"][6] == "0"  # waits: the producer never waited with on_full="drop"
    assert int(rows["block"][9]) == 0  # nothing dropped with on_full="block"
    assert "- met: drop: every saved video complete" in text


@pytest.mark.timeout(60)
def test_bench_gil_quick_times_every_encoder_call(tmp_path: Path) -> None:
    rows = table_rows(run_quick(tmp_path, "bench_gil.py", "GIL")[0])
    # --quick: 3 videos of 5 frames per size: one create, first write and close per video.
    calls = {(r[0], r[1], r[2].split(" (")[0]): int(r[3]) for r in rows}
    assert len(calls) == 2 * 2 * 4
    for mode in ("thread", "process"):
        for size in ("600x400", "64x64"):
            assert calls[(mode, size, "create")] == 3
            assert calls[(mode, size, "1st write")] == 3
            assert calls[(mode, size, "other writes")] == 3 * 4
            assert calls[(mode, size, "close")] == 3
    assert all(float(r[6]) >= 0 for r in rows)


@pytest.mark.timeout(60)
def test_bench_quality_quick_compares_with_gymnasium(tmp_path: Path) -> None:
    text, data, _ = run_quick(tmp_path, "bench_quality.py", "Quality at the default settings")
    assert "The trade:" in text
    rows = table_rows(text)
    assert [r[0] for r in rows] == ["CartPole 600x400"] * 4 + ["noisy ramp 128x96"] * 4
    assert [r[1] for r in rows[:4]] == [
        "recorder, defaults",
        'recorder, `interpolation="point"` (the default before)',
        'recorder, `preset="veryfast"`',
        "gymnasium `save_video` (moviepy, preset medium)",
    ]
    for case in data["quality"]:
        # Compared frame by frame, by index: nothing shifted, nothing lost but moviepy's last.
        assert case["frames"] - 1 <= case["frames_compared"] <= case["frames"]
        for key, row in case["rows"].items():
            assert row["misaligned"] == 0, (case["input"], key)
            assert row["kb_per_s"] > 0
            if key != "gymnasium":
                assert row["frames_in_file"] == case["frames"]


@pytest.mark.timeout(120)
def test_bench_all_quick_writes_the_report_the_summary_and_the_plot(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    proc = run_script(
        tmp_path, "bench_all.py", "--only", "bench_encode", "bench_quality", "--out-dir", str(docs)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (docs / "benchmarks.md").read_text()
    assert text.startswith("# Benchmarks")
    assert "![benchmarks](benchmarks.png)" in text
    assert "## Summary" in text
    assert "## Encode throughput" in text  # the script's report, one heading level down
    assert "### Scenario 3: encode throughput" in text
    assert "## Quality at the default settings" in text
    rows = table_rows(text)
    assert any(r[0] == "3" and "recorder 1 worker / ffmpeg CLI" in r[1] for r in rows)
    assert [r[:2] for r in rows if r[0].startswith("bench_")] == [
        ["bench_encode", "0"],
        ["bench_quality", "0"],
    ]
    summary = [r for r in rows if r[0] == "quality"]
    assert len(summary) == 4  # min PSNR and size, per input
    assert all(r[2] == "≥ gymnasium - 1 dB" for r in summary[::2])
    png = (docs / "benchmarks.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 20_000
    assert not left_behind(tmp_path)


@pytest.mark.timeout(120)
def test_bench_core_quick_writes_its_tables(tmp_path: Path) -> None:
    text, data, _ = run_quick(tmp_path, "bench_core.py", "Core benchmark")
    for heading in (
        "## 1. Append latency",
        "## 2. Encode throughput",
        "## 3. Peak RSS",
        "## 4. Keep",
    ):
        assert heading in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    # The four tables plus the ratios, each with a header, an alignment row and data rows.
    assert sum(line.startswith(("| ---", "| :--")) for line in rows) == 5
    keep = data["keep"]
    # Every episode is a candidate; best 5 + worst 2 stay (episodes: 12 in quick mode).
    assert (keep["candidates"], keep["kept"], keep["deleted"]) == (12, 7, 5)
    assert keep["encode_all_s"] > keep["encode_kept_s"] > 0
    assert any(line.startswith("| 600x400 | `Episode.append`, paced") for line in rows)
    assert any(line.startswith("| 600x400 | `Episode.append`, after render") for line in rows)
    assert any("ffmpeg CLI, videos in sequence" in line for line in rows)
    assert any("identical" in line for line in text.splitlines())  # same x264 settings
    # The RSS rows: every frame of the streamed episode reached the video, none dropped.
    rss = [line.split(" | ") for line in rows if line.startswith("| 300 |")]
    assert len(rss) == 2
    assert all(cells[10] == "300" and cells[11] == "0" for cells in rss)
    assert all(cells[7].endswith(("✅", "❌")) for cells in rss)  # peak vs baseline + budget
    # Issue 13's ratio: append / a copy into the same arena, from the same run.
    assert any(line.startswith("| 600x400 | **append / copy into the next of") for line in rows)
    # bench_all's summary and plot read the latencies from the figures: 4 modes and the ratio
    # per size, equal to the table's medians.
    append = data["append"]
    assert [r["mode"] for r in append] == ["render", "bare", "paced", "burst", "ratio"] * 4
    render = next(r for r in append if (r["size"], r["mode"]) == ("600x400", "render"))
    what = "`Episode.append`, after render (a training loop)"
    cells = next(c for c in table_rows(text) if c[:2] == ["600x400", what])
    assert float(cells[3].split()[0]) == pytest.approx(render["median"], abs=0.05)


@pytest.mark.timeout(240)
def test_bench_ray_quick_measures_sink_and_local(tmp_path: Path) -> None:
    text, data, _ = run_quick(tmp_path, "bench_ray.py", "Ray: videos per second into one sink")
    assert [r[0] for r in table_rows(text)] == ["1", "2", "4"]
    assert set(data["rates"]) == {"1", "2", "4"}
    assert all(d["sink"]["median"] > 0 and d["local"]["median"] > 0 for d in data["rates"].values())
    assert data["raw_bytes_per_video"] == 8 * 600 * 400 * 3
    assert 0 < data["bytes_per_video"] < data["raw_bytes_per_video"]


def test_every_report_block_a_script_asks_for_is_in_its_md_and_every_block_is_used() -> None:
    # A block asked for only on a rare path (a target missed) would otherwise fail late, in a
    # full `make bench`; one no script asks for is text nobody reads.
    sys.path.insert(0, str(SCRIPTS))
    try:
        import _benchutil
    finally:
        sys.path.remove(str(SCRIPTS))
    pattern = re.compile(r"""(?:say\(\s*|words\[)["'](\w+)["']""")
    for md in sorted(SCRIPTS.glob("bench_*.md")):
        blocks = _benchutil.report_text(md)
        asked = set(pattern.findall(md.with_suffix(".py").read_text()))
        assert asked == set(blocks), (md.name, asked ^ set(blocks))
        for name, text in blocks.items():
            assert text, (md.name, name)
            assert "\n " not in text, (md.name, name)  # a wrapped line left unjoined
