"""The README's runnable snippets, run as written (in a subprocess, in a temporary folder)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import decode

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)


def run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )


@pytest.mark.timeout(120)
def test_the_main_example_records_every_tenth_episode_whole(tmp_path: Path) -> None:
    example = python_blocks()[0]
    assert "ep.offer(env.render)" in example  # the README's streaming idiom
    proc = run(example, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "WARNING" not in proc.stderr  # nothing dropped or stalled
    videos = tmp_path / "videos"
    names = sorted(p.name for p in videos.glob("*.mp4"))
    assert names == sorted(f"rl-video-episode-{e}.mp4" for e in range(0, 100, 10))
    for name in names:
        sidecar = json.loads((videos / name).with_suffix(".json").read_text())
        # Every frame of the episode (reset frame included) reached the video.
        assert sidecar["frames"] >= 9  # CartPole's shortest episode: 8 steps and the reset
        assert len(decode(videos / name).frames) == sidecar["frames"]
    assert not [p.name for p in videos.iterdir() if p.name.startswith(".")]


def test_the_drop_in_imports_are_real(tmp_path: Path) -> None:
    block = next(b for b in python_blocks() if "was: from gymnasium" in b)
    proc = run(block, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
