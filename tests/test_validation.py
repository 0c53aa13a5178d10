"""Bad input: a clear TypeError/ValueError at the call that received it; the recorder goes on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import decode, painted

from recorder import Recorder


@pytest.fixture
def rec(tmp_path: Path) -> Iterator[Recorder]:
    r = Recorder(
        tmp_path / "v",
        episode_trigger=lambda e: True,
        step_trigger=lambda s: s == 1,
        video_length=3,
    )
    yield r
    # The recorder is still usable after every rejected call, and wrote nothing bad.
    (h,) = [
        h for h in r.submit([painted(i) for i in range(2)], episode_index=99) if h.kind == "episode"
    ]
    r.close()
    assert decode(h.result().path).indices == [0, 1]
    for p in (tmp_path / "v").iterdir():
        assert p.suffix in (".mp4", ".json", ".jsonl")
        assert not p.name.startswith(".")


GOOD = painted(0)

BAD_FRAMES: dict[str, tuple[Any, type[Exception], str]] = {
    "float": (GOOD.astype(np.float32) / 255, TypeError, "uint8"),
    "int64": (GOOD.astype(np.int64), TypeError, "uint8"),
    "bool": (GOOD > 100, TypeError, "uint8"),
    "1-d": (np.zeros(10, np.uint8), ValueError, "HxW"),
    "4-d": (np.zeros((1, 4, 4, 3), np.uint8), ValueError, "HxW"),
    "2-channels": (np.zeros((4, 4, 2), np.uint8), ValueError, "channels"),
    "5-channels": (np.zeros((4, 4, 5), np.uint8), ValueError, "channels"),
    "zero-height": (np.zeros((0, 4, 3), np.uint8), ValueError, "empty"),
    "zero-width": (np.zeros((4, 0, 3), np.uint8), ValueError, "empty"),
    "none": (None, TypeError, "array"),
    "string": ("frame", TypeError, "array"),
    "list-out-of-range": ([[300, 0], [0, 0]], ValueError, "0..255"),
    "ragged-list": ([[1, 2], [3]], TypeError, "array"),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
def test_bad_frame_in_append(rec: Recorder, case: str) -> None:
    frame, error, match = BAD_FRAMES[case]
    with rec.episode(0) as ep:
        with pytest.raises(error, match=match):
            ep.append(frame)
        ep.append(painted(0))  # the episode goes on
    assert ep.handles[0].result().frames == 1


@pytest.mark.parametrize("case", list(BAD_FRAMES))
def test_bad_frame_in_submit_queues_nothing(rec: Recorder, case: str) -> None:
    frame, error, _ = BAD_FRAMES[case]
    with pytest.raises(error, match="frame 2"):
        rec.submit([painted(0), painted(1), frame, painted(3)], episode_index=0)
    assert rec.stats().videos_started == 0


def test_shape_change_within_a_clip(rec: Recorder) -> None:
    with rec.episode(0) as ep:
        ep.append(painted(0, 48, 112))
        with pytest.raises(ValueError, match="shape changed"):
            ep.append(painted(1, 50, 112))
        with pytest.raises(ValueError, match="shape changed"):
            ep.append(painted(1, channels=1))
        ep.append(painted(1))
    with pytest.raises(ValueError, match="frame 1 has shape"):
        rec.submit([painted(0), painted(1, 50, 112)])


def test_empty_frame_list(rec: Recorder) -> None:
    with pytest.raises(ValueError, match="empty"):
        rec.submit([])


@pytest.mark.parametrize("frames", [42, "abc", (f for f in [GOOD]), {"a": GOOD}, GOOD[0]])
def test_frames_not_a_sequence(rec: Recorder, frames: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="frames"):
        rec.submit(frames)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"episode_index": -1}, ValueError),
        ({"step_starting_index": -5}, ValueError),
        ({"episode_index": 1.5}, TypeError),
        ({"episode_index": True}, TypeError),
    ],
)
def test_bad_indices(rec: Recorder, kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error, match="index"):
        rec.submit([GOOD], **kwargs)
    with pytest.raises(error, match="index"):
        rec.episode(**kwargs)


def test_trigger_exception_propagates_from_the_call(tmp_path: Path) -> None:
    class Boom(Exception):
        pass

    def trigger(i: int) -> bool:
        if i == 3:
            raise Boom
        return True

    with Recorder(tmp_path, episode_trigger=trigger, step_trigger=trigger, video_length=2) as r:
        with pytest.raises(Boom):
            r.episode(3)
        with pytest.raises(Boom):
            r.submit([painted(i) for i in range(6)], episode_index=0, step_starting_index=0)
        with r.episode(0) as ep:
            for i in range(4):
                ep.append(painted(i))
            with pytest.raises(Boom):  # frame 4 is step 3
                ep.append(painted(4))
        r.submit([painted(i) for i in range(2)], episode_index=5)
    assert (tmp_path / "rl-video-episode-5.mp4").exists()


BAD_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"fps": 0}, ValueError, "fps"),
    ({"fps": -30}, ValueError, "fps"),
    ({"fps": float("nan")}, ValueError, "fps"),
    ({"fps": float("inf")}, ValueError, "fps"),
    ({"fps": "30"}, TypeError, "fps"),
    ({"video_length": 0}, ValueError, "video_length"),
    ({"video_length": -3}, ValueError, "video_length"),
    ({"video_length": 2.5}, TypeError, "video_length"),
    ({"name_prefix": "a/b"}, ValueError, "name_prefix"),
    ({"name_prefix": "../up"}, ValueError, "name_prefix"),
    ({"name_prefix": ".."}, ValueError, "name_prefix"),
    ({"name_prefix": "a\\b"}, ValueError, "name_prefix"),
    ({"name_prefix": "a\0b"}, ValueError, "name_prefix"),
    ({"name_prefix": 3}, TypeError, "name_prefix"),
    ({"workers": 0}, ValueError, "workers"),
    ({"max_queue_bytes": 0}, ValueError, "max_queue_bytes"),
    ({"on_full": "wait"}, ValueError, "on_full"),
    ({"episode_trigger": 5}, TypeError, "episode_trigger"),
    ({"codec": "mjpeg"}, ValueError, "codec"),
    ({"fps": 1e-4}, ValueError, "at least 1/1001"),  # mp4's rate would round to 0
    ({"codec": "gif", "fps": 120}, ValueError, "hundredths"),
    ({"crf": 99}, ValueError, "crf"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_OPTIONS)
def test_bad_options(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Recorder(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists() or not os.listdir(tmp_path / "x")


def test_bad_fps_per_episode(rec: Recorder) -> None:
    with pytest.raises(ValueError, match="fps"):
        rec.submit([GOOD], fps=0)
    with pytest.raises(ValueError, match="fps"):
        rec.episode(0, fps=float("nan"))
    with pytest.raises(ValueError, match="at least 1/1001"):
        rec.submit([GOOD], fps=1e-4)
    rec.submit([GOOD], fps=1 / 1000)  # the slowest rate an mp4 here is given


def test_fps_a_gif_cannot_store_is_refused_at_the_call(tmp_path: Path) -> None:
    from helpers import TinyEnv

    from recorder.wrappers import RecordVideo

    with Recorder(tmp_path, codec="gif", episode_trigger=lambda e: True) as gif:
        with pytest.raises(ValueError, match="hundredths"):
            gif.episode(0, fps=100.5)
        with pytest.raises(ValueError, match="hundredths"):
            RecordVideo(TinyEnv(), str(tmp_path / "w"), fps=144, recorder=gif)
        handle = gif.submit([GOOD, GOOD], fps=100)[0]
    with pytest.raises(ValueError, match="hundredths"):  # its private Recorder is closed again
        RecordVideo(TinyEnv(), str(tmp_path / "p"), fps=144, recorder_kwargs={"codec": "gif"})
    assert handle.result().fps == 100


def test_files_never_outside_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "inner"
    with pytest.raises(ValueError, match="name_prefix"):
        Recorder(folder, name_prefix="..rl")
    with Recorder(folder, name_prefix=" odd .name-", episode_trigger=lambda e: True) as r:
        r.submit([GOOD], episode_index=123456789)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "inner",
        "inner/ odd .name--episode-123456789.json",
        "inner/ odd .name--episode-123456789.mp4",
        "inner/manifest.jsonl",
    ]
