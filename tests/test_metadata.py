"""JSON sidecars and the per-folder manifest."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import always, painted

from recorder import Recorder
from recorder._gallery import build_gallery
from recorder._metadata import read_manifest
from recorder.ray import SinkServer


def test_sidecar_describes_the_video_and_the_episode(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, fps=20, step_trigger=lambda s: s == 11, video_length=3)
    with rec, rec.episode(4, step_starting_index=10, metadata={"seed": 7}) as ep:
        for i in range(6):
            ep.append(painted(i, 41, 101))
        ep.metadata["return"] = 12.5
    (handle,) = ep.handles
    info = handle.result()
    side = json.loads((tmp_path / "rl-video-step-11.json").read_text())
    assert side["path"] == "rl-video-step-11.mp4"
    assert side["frames"] == 3
    assert side["fps"] == 20.0
    assert (side["width"], side["height"]) == (101, 41)
    assert (side["encoded_width"], side["encoded_height"]) == (102, 42)
    assert side["codec"] == "h264"
    assert side["episode_index"] == 4
    assert side["first_step"] == 11
    assert side["duration"] == 3 / 20
    assert side["size_bytes"] == info.path.stat().st_size
    assert side["encode_seconds"] > 0
    # The clip ended (video_length) before the return was known: the sidecar says what was.
    assert side["metadata"] == {"seed": 7}
    assert info.metadata == {"seed": 7}


def test_metadata_set_before_the_episode_ends_is_recorded(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, episode_trigger=lambda e: True)
    with rec, rec.episode(0, metadata={"checkpoint": "ckpt-3"}) as ep:
        ep.append(painted(0))
        ep.metadata["return"] = 1.0
        ep.metadata["odd"] = {1, 2}  # not JSON: written as its repr
    side = json.loads((tmp_path / "rl-video-episode-0.json").read_text())
    assert side["metadata"] == {"checkpoint": "ckpt-3", "return": 1.0, "odd": "{1, 2}"}


def test_sidecar_records_the_settings_used_and_where_the_episode_starts(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, episode_trigger=lambda e: True)  # codec defaults
    with rec:
        rec.submit([painted(i) for i in range(3)], episode_index=2, step_starting_index=40)
    side = json.loads((tmp_path / "rl-video-episode-2.json").read_text())
    # The reset frame is followed by step 40: the clip is placed in the run's step count.
    assert (side["episode_index"], side["first_step"]) == (2, 40)
    assert (side["crf"], side["preset"], side["encoder"]) == (23, "ultrafast", "libx264")
    assert side["pix_fmt"] == "yuv420p"
    assert side["dropped_frames"] == 0
    with Recorder(tmp_path / "gif", episode_trigger=lambda e: True, codec="gif") as rec:
        rec.submit([painted(0)])
    side = json.loads((tmp_path / "gif" / "rl-video-episode-0.json").read_text())
    assert (side["crf"], side["preset"]) == (None, None)  # nothing of the kind applies


def test_manifest_one_line_per_video_from_many_writers(tmp_path: Path) -> None:
    script = (
        "import sys, numpy as np, recorder\n"
        "with recorder.Recorder(sys.argv[1], name_prefix=sys.argv[2],"
        " episode_trigger=lambda e: True) as rec:\n"
        "    for e in range(5):\n"
        "        rec.submit([np.zeros((16, 16, 3), np.uint8)] * 2, episode_index=e)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), f"proc{i}"])
        for i in range(2)
    ]

    def threaded(prefix: str) -> None:
        with Recorder(tmp_path, name_prefix=prefix, episode_trigger=lambda e: True) as rec:
            for e in range(5):
                rec.submit([painted(e)] * 2, episode_index=e)

    threads = [threading.Thread(target=threaded, args=(f"thread{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for p in procs:
        assert p.wait(60) == 0
    records = read_manifest(tmp_path)
    assert len(records) == 20
    assert sorted(r["path"] for r in records) == sorted(p.name for p in tmp_path.glob("*.mp4"))


def test_sidecars_can_be_turned_off(tmp_path: Path) -> None:
    with Recorder(tmp_path, episode_trigger=lambda e: True, sidecars=False) as rec:
        rec.submit([painted(0)])
    assert [p.name for p in tmp_path.iterdir()] == ["rl-video-episode-0.mp4"]


@pytest.mark.parametrize("mask", [0o027, 0o002])
def test_final_files_have_the_mode_of_gymnasium_s_under_a_umask(tmp_path: Path, mask: int) -> None:
    from gymnasium.utils.save_video import save_video

    frames = [painted(i) for i in range(4)]
    old = os.umask(mask)
    try:
        save_video(frames, str(tmp_path / "gym"), fps=10, episode_trigger=always)  # moviepy
        with Recorder(tmp_path / "rec", fps=10, episode_trigger=always) as rec:
            rec.submit(frames)
        build_gallery(tmp_path / "rec")
        (tmp_path / "sink").mkdir()
        SinkServer(str(tmp_path / "sink")).deliver("p", "d0", "v.mp4", b"bytes", {})
    finally:
        os.umask(old)
    reference = stat.S_IMODE((tmp_path / "gym" / "rl-video-episode-0.mp4").stat().st_mode)
    assert reference == 0o666 & ~mask
    modes = {
        f"{p.parent.name}/{p.name}": stat.S_IMODE(p.stat().st_mode)
        for folder in ("rec", "sink")
        for p in (tmp_path / folder).iterdir()
        if not p.name.startswith(".")  # the sink's lock file
    }
    assert modes == dict.fromkeys(
        [
            "rec/rl-video-episode-0.mp4",
            "rec/rl-video-episode-0.json",
            "rec/manifest.jsonl",
            "rec/index.html",
            "sink/p-v.mp4",
            "sink/p-v.json",
            "sink/manifest.jsonl",
        ],
        reference,
    )
