"""The benchmark scripts run end to end (a smoke run; benchmarks never fail on their figures)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.mark.timeout(90)
def test_bench_core_quick_writes_its_tables(tmp_path: Path) -> None:
    pytest.importorskip("imageio_ffmpeg", reason="the bench extra provides the ffmpeg CLI")
    out = tmp_path / "x.md"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_core.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=80,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    assert text.startswith("# Core benchmark")
    for heading in ("## 1. Append latency", "## 2. Encode throughput", "## 3. Peak RSS"):
        assert heading in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    # The three tables plus the ratios, each with a header, an alignment row and data rows.
    assert sum(line.startswith(("| ---", "| :--")) for line in rows) == 4
    assert any(line.startswith("| 600x400 | `Episode.append`, paced") for line in rows)
    assert any("ffmpeg CLI, videos in sequence" in line for line in rows)
    assert any("identical" in line for line in text.splitlines())  # same x264 settings
    # The RSS rows: every frame of the streamed episode reached the video, none dropped.
    rss = [line.split(" | ") for line in rows if line.startswith("| 300 |")]
    assert len(rss) == 2
    assert all(cells[8] == "300" and cells[9] == "0" for cells in rss)
    assert not list(tmp_path.glob("*.mp4"))  # nothing left behind in the working directory
