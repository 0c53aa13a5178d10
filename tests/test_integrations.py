"""recorder.integrations against the real libraries, offline: tensorboardX event files read
back, wandb in offline mode."""

from __future__ import annotations

import io
import struct
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from helpers import decode, painted, read_index
from PIL import Image

import recorder
from recorder import integrations
from recorder.wrappers import RecordVideo

FRAMES = [painted(i, 48, 112) for i in range(12)]
ODD = [painted(i, 47, 111) for i in range(12)]  # padded to 48x112 in the video


def record_two(folder: Path, on_saved: Any, frames: list[Any], episodes: tuple[int, int]) -> None:
    """Two episodes into *folder*: all of *frames*, then their first *len // 2 + 1*."""
    with recorder.Recorder(folder, episode_trigger=lambda e: True, on_saved=on_saved) as rec:
        rec.submit(frames, episode_index=episodes[0])
        rec.submit(frames[: len(frames) // 2 + 1], episode_index=episodes[1])


def read_events(folder: Path) -> list[object]:
    """Every Event in the TFRecord files under *folder* (length, crc, data, crc framing)."""
    from tensorboardX.proto import event_pb2

    events = []
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            offset += 12
            event = event_pb2.Event()
            event.ParseFromString(data[offset : offset + length])
            events.append(event)
            offset += length + 4
    return events


def video_summaries(folder: Path, tag: str) -> dict[int, object]:
    """{step: the Summary.Image} of *tag*."""
    found = {}
    for event in read_events(folder):
        for value in event.summary.value:  # type: ignore[attr-defined]
            if value.tag == tag:
                found[event.step] = value.image  # type: ignore[attr-defined]
    return found


def gif_frames(image: object) -> tuple[int, tuple[int, int]]:
    gif = Image.open(io.BytesIO(image.encoded_image_string))  # type: ignore[attr-defined]
    return gif.n_frames, gif.size


def test_tensorboard_event_file_holds_each_video(tmp_path: Path) -> None:
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "runs"))
    record_two(tmp_path / "videos", integrations.tensorboard(writer, "rollout"), ODD, (3, 5))
    writer.close()
    found = video_summaries(tmp_path / "runs", "rollout")
    assert sorted(found) == [3, 5]
    # One GIF frame per video frame, at the size given (the padding to even sizes removed).
    assert gif_frames(found[3]) == (12, (111, 47))
    assert gif_frames(found[5]) == (7, (111, 47))
    assert (found[3].height, found[3].width) == (47, 111)  # type: ignore[attr-defined]
    gif = Image.open(io.BytesIO(found[3].encoded_image_string))  # type: ignore[attr-defined]
    for i in range(12):
        gif.seek(i)
        assert read_index(np.asarray(gif.convert("RGB"))) == i


def test_tensorboard_from_the_wrapper(tmp_path: Path) -> None:
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "runs"))
    env = gym.make("CartPole-v1", render_mode="rgb_array", max_episode_steps=9)
    env = RecordVideo(
        env,
        tmp_path / "videos",
        episode_trigger=lambda e: True,
        on_saved=integrations.tensorboard(writer, max_frames=5),
    )
    env.reset(seed=0)
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        done = terminated or truncated
    env.close()
    writer.close()
    found = video_summaries(tmp_path / "runs", "video")
    assert list(found) == [0]
    # max_frames=5 of the episode's frames; Pillow merges identical consecutive frames (a
    # still cart), adding up their durations: the GIF lasts 5 frames whatever their count.
    gif = Image.open(io.BytesIO(found[0].encoded_image_string))  # type: ignore[attr-defined]
    assert gif.size == (600, 400)
    durations = []
    for i in range(gif.n_frames):
        gif.seek(i)
        durations.append(gif.info["duration"])
    assert 1 <= gif.n_frames <= 5
    assert sum(durations) == 5 * round(1000 / 50)  # CartPole renders at 50 fps


def test_tensorboard_bad_arguments_fail_at_the_call() -> None:
    from tensorboardX import SummaryWriter

    with pytest.raises(TypeError, match="SummaryWriter"):
        integrations.tensorboard(object())
    with pytest.raises(ValueError, match="step"):
        integrations.tensorboard(SummaryWriter, step="time")


def test_tensorboard_without_pillow_fails_at_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not later, in the worker, for every video saved.
    from tensorboardX import SummaryWriter

    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    writer = SummaryWriter(str(tmp_path))
    try:
        with pytest.raises(ImportError, match="pip install pillow"):
            integrations.tensorboard(writer)
    finally:
        writer.close()


def test_wandb_offline_run_holds_each_mp4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = wandb.init(project="recorder-test", dir=str(tmp_path), mode="offline")
    try:
        record_two(tmp_path / "videos", integrations.wandb(run, "rollout"), FRAMES, (0, 1))
    finally:
        run.finish()
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    media = sorted((run_dir / "files" / "media" / "videos").glob("rollout_*.mp4"))
    assert sorted(len(decode(p).frames) for p in media) == [7, 12]
    # The run's record file (protobuf records) holds the history rows naming them.
    raw = next(run_dir.glob("run-*.wandb")).read_bytes()
    assert raw.count(b"video-file") >= 2
    assert all(p.name.encode() in raw for p in media)
