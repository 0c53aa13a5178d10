"""frame_stride=k: every k-th frame of each clip (its first frame first), at fps / k."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import av
import gymnasium as gym
import numpy as np
import pytest
from fakes import FakeEncoders
from helpers import TinyEnv, decode, flat, painted, read_index
from hypothesis import given, settings
from hypothesis import strategies as st

import recorder
from recorder import Recorder
from recorder._testing import close_default, default_recorder
from recorder.wrappers import RecordVideo


def clips_of(
    frames: int, stride: int, steps: set[int], episode: bool, length: int | None, tmp: Path
) -> dict[str, list[int]]:
    """{video: the frame values its encoder got} for one submitted episode."""
    fake = FakeEncoders()
    with Recorder(
        tmp, episode_trigger=lambda e: episode, step_trigger=steps.__contains__,
        video_length=length, encoder_factory=fake, frame_stride=stride,
    ) as rec:  # fmt: skip
        rec.submit([flat(k) for k in range(frames)], episode_index=0, step_starting_index=0)
    return fake.plan()


@settings(deadline=None, max_examples=60)
@given(
    st.integers(1, 40),
    st.integers(1, 5),
    st.sets(st.integers(0, 40), max_size=4),
    st.booleans(),
    st.none() | st.integers(1, 12),
)
def test_each_clip_is_every_kth_frame_of_its_unstrided_self(
    tmp_path_factory: pytest.TempPathFactory,
    frames: int,
    stride: int,
    steps: set[int],
    episode: bool,
    length: int | None,
) -> None:
    tmp = tmp_path_factory.mktemp("stride")
    # The oracle: gymnasium's clips (stride 1), each thinned from its own first frame.
    whole = clips_of(frames, 1, steps, episode, length, tmp / "whole")
    strided = clips_of(frames, stride, steps, episode, length, tmp / "strided")
    assert strided == {name: values[::stride] for name, values in whole.items()}


def test_the_video_plays_at_fps_over_k_and_frames_between_are_not_rendered(
    tmp_path: Path,
) -> None:
    renders: list[int] = []

    def render(k: int) -> np.ndarray:
        renders.append(k)
        return painted(k)

    with Recorder(tmp_path, fps=30, episode_trigger=lambda e: True, frame_stride=3) as rec:
        with rec.episode(0) as ep:
            for k in range(10):  # the reset frame and 9 steps
                ep.offer(lambda k=k: render(k))
        assert ep.frames_seen == 10
    info = ep.handles[0].result()
    assert renders == [0, 3, 6, 9]
    assert (info.frames, info.fps) == (4, 10.0)
    video = decode(info.path)
    assert [read_index(f) for f in video.frames] == [0, 3, 6, 9]
    with av.open(str(info.path)) as container:
        assert float(container.streams.video[0].average_rate) == 10.0


def test_save_video_takes_a_stride(tmp_path: Path) -> None:
    try:
        handles = recorder.save_video(
            [painted(k) for k in range(7)], str(tmp_path), fps=20,
            episode_trigger=lambda e: True, frame_stride=2,
        )  # fmt: skip
        recorder.flush()
    finally:
        close_default()
    info = handles[0].result()
    assert (info.frames, info.fps) == (4, 10.0)
    assert [read_index(f) for f in decode(info.path).frames] == [0, 2, 4, 6]


@pytest.mark.parametrize("video_length", [0, 6])
def test_the_wrapper_renders_every_kth_frame(tmp_path: Path, video_length: int) -> None:
    tmp_path /= "videos"
    inner = TinyEnv()
    inner.length = 9
    env = RecordVideo(
        inner, str(tmp_path), episode_trigger=lambda e: e == 0, fps=30, frame_stride=4,
        video_length=video_length,
    )  # fmt: skip
    env.reset()
    for _ in range(9):
        env.step(0)
    env.reset()  # the episode clip ends here (video_length=0)
    env.close()
    span = 10 if video_length == 0 else video_length + 1  # gymnasium's clip: n + 1 frames
    video = decode(tmp_path / "rl-video-episode-0.mp4")
    assert len(video.frames) == math.ceil(span / 4)
    values = [int(f[0, 0, 0]) for f in video.frames]  # TinyEnv renders 10 * step
    assert np.allclose(values, [10 * t for t in range(0, span, 4)], atol=3), values
    assert video.fps == 7.5
    assert inner.renders == math.ceil(span / 4)  # the frames between: never rendered


def test_the_vector_wrapper_takes_a_stride(tmp_path: Path) -> None:
    from recorder.wrappers.vector import RecordVideo as VectorRecordVideo

    tmp_path /= "videos"
    envs = gym.make_vec("CartPole-v1", num_envs=2, render_mode="rgb_array")
    env = VectorRecordVideo(envs, str(tmp_path), episode_trigger=lambda e: e == 0, frame_stride=5)
    env.reset(seed=1)
    for _ in range(12):
        env.step(env.action_space.sample())
    env.close()
    (video,) = tmp_path.glob("*.mp4")
    assert decode(video).fps == envs.metadata["render_fps"] / 5


def test_a_shared_recorders_stride_applies_unless_the_wrapper_gives_one(tmp_path: Path) -> None:
    with Recorder(tmp_path / "shared", frame_stride=3) as rec:
        inner = TinyEnv()
        inner.length = 6
        env = RecordVideo(inner, str(tmp_path / "a"), episode_trigger=lambda e: True, recorder=rec)
        env.reset()
        for _ in range(6):
            env.step(0)
        env.close()
        own = RecordVideo(
            TinyEnv(), str(tmp_path / "b"), episode_trigger=lambda e: True, recorder=rec,
            frame_stride=1,
        )  # fmt: skip
        own.reset()
        own.close()
    assert len(decode(tmp_path / "a" / "rl-video-episode-0.mp4").frames) == 3  # of 7
    assert len(decode(tmp_path / "b" / "rl-video-episode-0.mp4").frames) == 1


@pytest.mark.parametrize(
    ("stride", "error", "words"),
    [(0, ValueError, "frame_stride must be >= 1"), (1.5, TypeError, "frame_stride must be an int"),
     ("2", TypeError, "frame_stride must be an int"), (True, TypeError, "must be an int")],
)  # fmt: skip
def test_a_bad_stride_fails_where_it_is_given(
    tmp_path: Path, stride: Any, error: type, words: str
) -> None:
    with pytest.raises(error, match=words):
        Recorder(tmp_path, frame_stride=stride)
    with pytest.raises(error, match=words):
        recorder.save_video([flat(0)], str(tmp_path), fps=10, frame_stride=stride)
    assert default_recorder() is None  # refused before the default Recorder is made
    with pytest.raises(error, match=words):
        RecordVideo(TinyEnv(), str(tmp_path / "w"), frame_stride=stride)
    with pytest.raises(TypeError, match="must not set frame_stride"):
        RecordVideo(TinyEnv(), str(tmp_path / "w"), recorder_kwargs={"frame_stride": 2})


def test_cli_frame_stride(tmp_path: Path) -> None:
    from recorder.__main__ import main

    out = tmp_path / "videos"
    args = ["record", "CartPole-v1", "--episodes", "1", "--frame-stride", "2", "--fps", "50"]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    video = decode(out / "rl-video-episode-0.mp4")
    assert video.fps == 25
