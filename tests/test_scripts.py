"""The scripts run end to end: smoke runs (benchmarks never fail on their figures)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import decode, painted

from recorder import Recorder

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
CHROMIUM = os.environ.get("RECORDER_CHROMIUM", "/usr/bin/chromium")


def run_script(
    name: str, *argv: str, cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / name), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "SDL_VIDEODRIVER": "dummy"},
        check=False,
    )


def browser_unavailable(reason: str) -> None:
    """Skip with the reason, or fail under RECORDER_REQUIRE_BROWSER (as in test_gallery.py)."""
    if os.environ.get("RECORDER_REQUIRE_BROWSER"):
        pytest.fail(f"RECORDER_REQUIRE_BROWSER is set but {reason}")
    pytest.skip(reason)


@pytest.mark.timeout(60)
def test_async_example_records_every_episode(tmp_path: Path) -> None:
    out = tmp_path / "videos"
    proc = run_script(
        "async_example.py", "--out", str(out), "--envs", "2", "--episodes", "2",
        cwd=tmp_path, timeout=50,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    *lines, last = proc.stdout.strip().splitlines()
    assert re.search(r"^2 envs x 2 episodes: .* saved 4, dropped 0, failed 0, ", last), last
    # One numbering across the envs: the episodes are 0..3, whichever env played each.
    names = [f"cartpole-episode-{i}.mp4" for i in range(4)]
    assert sorted(p.name for p in out.glob("*.mp4")) == names
    assert len(lines) == 4
    for index, (name, line) in enumerate(zip(names, lines, strict=True)):
        match = re.fullmatch(rf"{re.escape(name)}: (\d+) frames, env ([01]), return (\d+)", line)
        assert match, line
        frames, env, ret = map(int, match.groups())
        assert len(decode(out / name).frames) == frames
        assert frames == ret + 1  # the reset frame, then one per step at a reward of 1
        meta = json.loads((out / name).with_suffix(".json").read_text())["metadata"]
        assert meta == {"env": env, "seed": index, "return": ret}
    assert not list(tmp_path.glob("videos/.*"))  # no temporary file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["videos"]


@pytest.mark.timeout(90)
def test_gallery_check_plays_every_video_in_chromium(tmp_path: Path) -> None:
    try:
        import playwright.sync_api  # noqa: F401 - only whether it imports
    except ImportError:
        browser_unavailable("playwright is not installed (pip install playwright)")
    if not os.access(CHROMIUM, os.X_OK):
        browser_unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    folder = tmp_path / "videos"
    with Recorder(folder, fps=10, episode_trigger=lambda e: True) as rec:
        rec.submit([painted(k) for k in range(12)], episode_index=0)
        rec.submit([painted(k) for k in range(5)], episode_index=1, fps=25)
    with Recorder(folder, fps=20, episode_trigger=lambda e: True, codec="vp9") as rec:
        rec.submit([painted(k) for k in range(8)], episode_index=2)
    shot = tmp_path / "shot.png"
    proc = run_script(
        "gallery_check.py", str(folder), "--screenshot", str(shot), "--chromium", CHROMIUM,
        cwd=tmp_path, timeout=80,
    )  # fmt: skip
    if proc.returncode == 2 and "Chromium did not start" in proc.stderr:
        browser_unavailable(proc.stderr.strip().splitlines()[0])
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    durations = {  # frames / fps, as the Chromium <video> reports it
        "rl-video-episode-0.mp4": 1.2,
        "rl-video-episode-1.mp4": 0.2,
        "rl-video-episode-2.webm": 0.4,
    }
    for name, seconds in durations.items():
        (line,) = [line for line in lines if line.startswith(name + " ")]
        assert re.fullmatch(rf"{re.escape(name)} +{seconds:.2f} s  ok", line), line
    assert lines[-1] == "3 of 3 videos play"
    assert (folder / "index.html").is_file()  # built because it was missing
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
