"""recorder.save_video and recorder.flush: gymnasium.utils.save_video is the oracle."""

from __future__ import annotations

import itertools
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes import FakeEncoders
from helpers import always, decode, gymnasium_clips, moviepy_frames, painted, run_child

from recorder import flush, save_video
from recorder._testing import close_default, default_options, default_recorder

Trigger = Callable[[int], bool] | None
H, W = 32, 96  # small, and wide enough for painted() to carry a frame index
FPS = 15

TRIGGERS: dict[str, tuple[Trigger, Trigger]] = {
    "default": (None, None),
    "every-episode": (lambda e: True, None),
    "no-episode": (lambda e: False, None),
    "steps-mod-3": (None, lambda s: s % 3 == 0),
    "every-step": (None, lambda s: True),
    "both": (lambda e: e % 2 == 0, lambda s: s % 4 == 1),
}
VIDEO_LENGTHS = [None, 1, 4]
EPISODE_LENGTHS = [1, 2, 5, 17]
# (episode_index, step_starting_index): 0 and 8 are in the capped cubic schedule, 3 is not.
STARTS = [(0, 0), (8, 5), (3, 11)]


@pytest.fixture(autouse=True)
def fresh_default() -> Iterator[None]:
    """Each test gets its own default recorder, closed (and its threads joined) at the end."""
    close_default()
    yield
    close_default()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeEncoders:
    """Make the default recorder encode with a controllable fake encoder."""
    encoders = FakeEncoders()
    monkeypatch.setitem(default_options(), "encoder_factory", encoders)
    return encoders


def episode(length: int) -> list[np.ndarray]:
    return [painted(i, H, W) for i in range(length)]


def logged(triggers: tuple[Trigger, Trigger], calls: tuple[list[int], list[int]]) -> Any:
    """The keyword arguments for *triggers* (episode, step), recording their arguments."""

    def wrap(trigger: Trigger, seen: list[int]) -> Trigger:
        if trigger is None:
            return None
        inner = trigger

        def wrapper(i: int) -> bool:
            seen.append(i)
            return inner(i)

        return wrapper

    return {
        "episode_trigger": wrap(triggers[0], calls[0]),
        "step_trigger": wrap(triggers[1], calls[1]),
    }


def decoded_clips(folder: Path) -> dict[str, list[int]]:
    """{file name: painted indices of the decoded frames} of every file in *folder*."""
    if not folder.exists():
        return {}
    return {p.name: decode(p).indices for p in sorted(folder.iterdir())}


# -- the same files as gymnasium --------------------------------------------------------------


@pytest.mark.parametrize("trigger", list(TRIGGERS))
def test_same_clips_as_gymnasium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trigger: str
) -> None:
    """Over the grid: same files, same frames in each, triggers called alike; one flush."""
    expected: dict[str, dict[str, list[int]]] = {}
    for video_length, length, (ep, step0) in itertools.product(
        VIDEO_LENGTHS, EPISODE_LENGTHS, STARTS
    ):
        case = f"vl{video_length}-n{length}-e{ep}-s{step0}"
        frames = episode(length)
        gym_calls: tuple[list[int], list[int]] = ([], [])
        our_calls: tuple[list[int], list[int]] = ([], [])
        shared = {"video_length": video_length, "episode_index": ep, "step_starting_index": step0}
        expected[case] = gymnasium_clips(
            monkeypatch,
            frames,
            tmp_path / "gym" / case,
            FPS,
            **logged(TRIGGERS[trigger], gym_calls),
            **shared,
        )
        folder = tmp_path / "rec" / case
        triggers = logged(TRIGGERS[trigger], our_calls)
        handles = save_video(frames, folder, **triggers, **shared, fps=FPS)
        assert our_calls == gym_calls, case
        assert sorted(h.path.name for h in handles) == sorted(expected[case]), case
        assert folder.is_dir()  # created even when nothing is saved
    flush()
    got = {case: decoded_clips(tmp_path / "rec" / case) for case in expected}
    assert got == expected
    assert any(expected.values()) == (trigger != "no-episode")


# Cases where moviepy really writes the files: names, fps and decoded frames must agree, but
# for the last frame moviepy drops (see moviepy_frames).
MOVIEPY_CASES = [
    ("both", None, 17, (0, 0)),
    ("steps-mod-3", 4, 17, (3, 11)),
    ("every-episode", None, 1, (0, 0)),
    ("default", 4, 5, (8, 5)),
    ("every-step", 1, 2, (3, 11)),
]


@pytest.mark.parametrize(("trigger", "video_length", "length", "start"), MOVIEPY_CASES)
def test_same_files_as_gymnasium_with_moviepy(
    tmp_path: Path,
    trigger: str,
    video_length: int | None,
    length: int,
    start: tuple[int, int],
) -> None:
    from gymnasium.utils.save_video import save_video as gym_save_video

    episode_trigger, step_trigger = TRIGGERS[trigger]
    frames = episode(length)
    kwargs: dict[str, Any] = {
        "episode_trigger": episode_trigger,
        "step_trigger": step_trigger,
        "video_length": video_length,
        "episode_index": start[0],
        "step_starting_index": start[1],
        "fps": FPS,
    }
    gym_save_video(frames, str(tmp_path / "gym"), **kwargs)
    save_video(frames, str(tmp_path / "rec"), **kwargs)
    flush()
    theirs = {p.name: decode(p) for p in sorted((tmp_path / "gym").iterdir())}
    ours = {p.name: decode(p) for p in sorted((tmp_path / "rec").iterdir())}
    assert theirs
    assert sorted(ours) == sorted(theirs)
    for name, video in theirs.items():
        n = len(ours[name].frames)
        assert len(video.frames) == moviepy_frames(n, FPS), name
        assert ours[name].indices[: len(video.frames)] == video.indices, name
        assert ours[name].fps == video.fps == FPS
        assert (ours[name].width, ours[name].height) == (video.width, video.height) == (W, H)


def test_moviepy_drops_a_last_frame_that_recorder_keeps(tmp_path: Path) -> None:
    """The one difference in gymnasium's files, pinned so that a fixed moviepy shows up."""
    from gymnasium.utils.save_video import save_video as gym_save_video

    frames = episode(15)
    # 14 on Python 3.11; 15 from 3.12 on, whose sum() of floats is compensated.
    expected = 14 if sys.version_info < (3, 12) else 15
    assert moviepy_frames(15, FPS) == expected
    gym_save_video(frames, str(tmp_path / "gym"), episode_trigger=always, fps=FPS)
    save_video(frames, tmp_path / "rec", episode_trigger=always, fps=FPS)
    flush()
    assert decode(tmp_path / "gym" / "rl-video-episode-0.mp4").indices == list(range(expected))
    assert decode(tmp_path / "rec" / "rl-video-episode-0.mp4").indices == list(range(15))


@pytest.mark.parametrize(
    "convert",
    [lambda f: f.astype(np.float32) + 0.75, lambda f: f.astype(np.float64), lambda f: f + 0],
    ids=["float32-with-fractions", "float64", "int64"],
)
def test_frames_gymnasium_takes_that_are_not_uint8(
    tmp_path: Path, convert: Callable[[np.ndarray], np.ndarray]
) -> None:
    from gymnasium.utils.save_video import save_video as gym_save_video

    frames = [convert(f.astype(np.int64)) for f in episode(5)]
    gym_save_video(frames, str(tmp_path / "gym"), episode_trigger=always, fps=FPS)
    save_video(frames, tmp_path / "rec", episode_trigger=always, fps=FPS)
    flush()
    theirs = decode(tmp_path / "gym" / "rl-video-episode-0.mp4")
    ours = decode(tmp_path / "rec" / "rl-video-episode-0.mp4")
    assert ours.indices == list(range(5))
    assert ours.indices[: len(theirs.frames)] == theirs.indices


def test_odd_sizes_are_padded_where_gymnasium_keeps_them(tmp_path: Path) -> None:
    """A difference gymnasium.md lists: yuv420p needs even sizes; VideoInfo keeps the given."""
    from gymnasium.utils.save_video import save_video as gym_save_video

    frames = [painted(i, 85, 85) for i in range(3)]
    gym_save_video(frames, str(tmp_path / "gym"), episode_trigger=always, fps=FPS)
    (handle,) = save_video(frames, tmp_path / "rec", episode_trigger=always, fps=FPS)
    flush()
    theirs = decode(tmp_path / "gym" / "rl-video-episode-0.mp4")
    ours = decode(tmp_path / "rec" / "rl-video-episode-0.mp4")
    assert (theirs.width, theirs.height) == (85, 85)
    assert (ours.width, ours.height) == (86, 86)
    info = handle.result()
    assert (info.width, info.height, info.encoded_width, info.encoded_height) == (85, 85, 86, 86)


def test_a_folder_that_is_a_file_is_refused_at_the_call(tmp_path: Path) -> None:
    (tmp_path / "videos").write_text("not a folder")
    with pytest.raises(ValueError, match=r"video_folder .* exists and is not a folder"):
        save_video(episode(2), tmp_path / "videos", episode_trigger=always, fps=FPS)
    assert (tmp_path / "videos").read_text() == "not a folder"


def test_durations_give_the_fps_moviepy_derives(tmp_path: Path) -> None:
    from gymnasium.utils.save_video import save_video as gym_save_video

    frames = episode(5)
    durations = [0.1] * 5
    gym_save_video(frames, str(tmp_path / "gym"), episode_trigger=always, durations=durations)
    save_video(frames, tmp_path / "rec", episode_trigger=always, durations=durations)
    flush()
    theirs = decode(tmp_path / "gym" / "rl-video-episode-0.mp4")
    ours = decode(tmp_path / "rec" / "rl-video-episode-0.mp4")
    assert ours.fps == theirs.fps == 10
    assert len(ours.frames) == len(theirs.frames) == 5
    # moviepy picks frames by cumulative float durations (here 2 twice, never 3); we keep all.
    assert ours.indices == [0, 1, 2, 3, 4]


# -- non-blocking, flush, errors -----------------------------------------------------------


def test_returns_before_the_video_is_encoded(tmp_path: Path, fake: FakeEncoders) -> None:
    fake.gate.clear()
    handles = save_video(episode(5), tmp_path, episode_trigger=always, fps=FPS)
    assert fake.started.wait(timeout=30)  # the worker is inside the encoder, held at the gate
    assert [h.done() for h in handles] == [False]
    assert not (tmp_path / "rl-video-episode-0.mp4").exists()
    fake.gate.set()
    flush()
    assert handles[0].done()
    assert handles[0].result().frames == 5
    assert (tmp_path / "rl-video-episode-0.mp4").read_bytes() == b"fake video"
    assert fake.made[0].frames == [40, 230, 40, 230, 40]  # painted()'s bit 0, frame by frame
    assert fake.made[0].spec.fps == FPS


def test_flush_with_nothing_saved_returns(tmp_path: Path) -> None:
    flush()
    assert save_video(episode(3), tmp_path, episode_trigger=lambda e: False, fps=FPS) == []
    flush(timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_flush_raises_a_worker_error_once(tmp_path: Path, fake: FakeEncoders) -> None:
    fake.fail_at = 2
    fake.fail_when = lambda spec: "bad" in Path(spec.path).name
    bad = save_video(episode(5), tmp_path, episode_trigger=always, name_prefix="bad", fps=FPS)
    good = save_video(episode(5), tmp_path, episode_trigger=always, name_prefix="good", fps=FPS)
    with pytest.raises(OSError, match="No space left on device") as info:
        flush()
    assert info.value is bad[0].exception()
    assert good[0].result().frames == 5
    flush()  # reported once
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good-episode-0.mp4"]  # no tmp file
    # The default recorder still works after a failure.
    save_video(episode(2), tmp_path, episode_trigger=always, name_prefix="again", fps=FPS)
    flush()
    assert (tmp_path / "again-episode-0.mp4").exists()


def test_flush_raises_several_errors_as_a_group(tmp_path: Path, fake: FakeEncoders) -> None:
    fake.fail_at = 0
    save_video(episode(5), tmp_path, step_trigger=lambda s: s in (1, 3), fps=FPS)
    with pytest.raises(ExceptionGroup) as info:
        flush()
    assert len(info.value.exceptions) == 2
    assert all(isinstance(e, OSError) for e in info.value.exceptions)


def test_flush_timeout(tmp_path: Path, fake: FakeEncoders) -> None:
    fake.gate.clear()
    save_video(episode(3), tmp_path, episode_trigger=always, fps=FPS)
    assert fake.started.wait(timeout=30)
    with pytest.raises(TimeoutError):
        flush(timeout=0.01)
    fake.gate.set()
    flush()


def test_nothing_dropped_when_the_budget_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame_bytes = H * W * 3
    monkeypatch.setitem(default_options(), "max_queue_bytes", 3 * frame_bytes)
    frames = episode(40)
    handles = save_video(frames, tmp_path, step_trigger=lambda s: s % 10 == 0, fps=FPS)
    flush()
    default = default_recorder()
    stats = default.stats() if default else None
    assert stats is not None
    assert stats.videos_dropped == 0
    assert stats.peak_queued_bytes <= 3 * frame_bytes
    assert [h.result().frames for h in handles] == [39, 29, 19, 9]
    assert decode(tmp_path / "rl-video-step-30.mp4").indices == list(range(31, 40))


def test_one_recorder_for_every_folder(tmp_path: Path) -> None:
    for i in range(4):
        save_video(
            episode(3 + i),
            tmp_path / f"run{i}",
            episode_trigger=always,
            name_prefix=f"p{i}",
            video_length=2 + i,
            fps=10 + i,
        )
    workers = [t for t in threading.enumerate() if t.name.startswith("recorder-worker")]
    assert len(workers) == default_options()["workers"] == 1
    flush()
    for i in range(4):
        video = decode(tmp_path / f"run{i}" / f"p{i}-episode-0.mp4")
        assert video.indices == list(range(2 + i))
        assert video.fps == 10 + i
        assert [p.name for p in (tmp_path / f"run{i}").iterdir()] == [f"p{i}-episode-0.mp4"]


def test_the_last_call_for_a_file_wins(tmp_path: Path) -> None:
    """As in gymnasium, whose calls write one after the other, even if the later is shorter."""
    first = save_video(episode(60), tmp_path, episode_trigger=always, fps=FPS)
    later = [painted(100 + i, H, W) for i in range(3)]
    second = save_video(later, tmp_path, episode_trigger=always, fps=FPS)
    flush()
    assert decode(tmp_path / "rl-video-episode-0.mp4").indices == [100, 101, 102]
    assert [p.name for p in tmp_path.iterdir()] == ["rl-video-episode-0.mp4"]
    assert second[0].result().frames == 3
    assert first[0].done()  # saved then overwritten, or dropped: never renamed last


def test_save_logger_logs_each_video(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="recorder")
    save_video(episode(3), tmp_path, episode_trigger=always, save_logger="bar", fps=FPS)
    save_video(episode(3), tmp_path, episode_trigger=always, name_prefix="quiet", fps=FPS)
    flush()
    saved = [r.getMessage() for r in caplog.records if r.getMessage().startswith("saved")]
    assert len(saved) == 1
    assert "rl-video-episode-0.mp4 (3 frames at 15 fps)" in saved[0]


# -- argument checking ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fps": FPS, "codec": "h264"},
        {"fps": FPS, "with_mask": False},
        {"duration": 1.0},  # moviepy takes durations=, not duration=
    ],
)
def test_unknown_keyword_is_a_type_error(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="supported: fps, durations") as info:
        save_video(episode(2), tmp_path / "videos", episode_trigger=always, **kwargs)
    bad = next(k for k in kwargs if k != "fps")
    assert repr(bad) in str(info.value)
    assert not (tmp_path / "videos").exists()
    assert default_recorder() is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, "needs fps"),
        ({"fps": 0}, ValueError, "fps"),
        ({"fps": "30"}, TypeError, "fps"),
        ({"durations": [0.1, 0.2, 0.1]}, ValueError, "must all be equal"),
        ({"durations": [0.1, 0.1]}, ValueError, "2 entries for 3 frames"),
        ({"durations": 0.1}, TypeError, "durations"),
        ({"durations": [0.1, 0.0, 0.1]}, ValueError, "durations must be seconds per frame"),
        ({"fps": FPS, "video_length": 0}, ValueError, "video_length"),
        ({"fps": FPS, "name_prefix": "../up"}, ValueError, "name_prefix"),
        ({"fps": FPS, "episode_index": -1}, ValueError, "episode_index"),
        ({"fps": FPS, "step_trigger": 3}, TypeError, "step_trigger"),
    ],
)
def test_invalid_arguments(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        save_video(episode(3), tmp_path, **{"episode_trigger": always, **kwargs})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("frames", "error"),
    [
        (None, TypeError),
        ("frames", TypeError),
        (np.zeros((H, W, 3), np.uint8), ValueError),  # one frame, not a list of them
        ([], ValueError),
        ([np.full((H, W, 3), 0.5, np.float32)], ValueError),  # 0..1: gymnasium's are black
        ([np.zeros((H, W, 3), np.uint8), np.zeros((H, W + 2, 3), np.uint8)], ValueError),
    ],
)
def test_invalid_frames(tmp_path: Path, frames: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        save_video(frames, tmp_path, episode_trigger=always, fps=FPS)
    assert list(tmp_path.iterdir()) == []


def test_a_raising_trigger_queues_nothing(tmp_path: Path) -> None:
    def step_trigger(step: int) -> bool:
        if step == 3:
            raise KeyError(step)
        return True

    with pytest.raises(KeyError):
        save_video(episode(6), tmp_path, episode_trigger=always, step_trigger=step_trigger, fps=FPS)
    flush()
    assert list(tmp_path.iterdir()) == []


def test_an_array_of_frames_is_accepted(tmp_path: Path) -> None:
    frames = np.stack(episode(4))
    save_video(frames, tmp_path, episode_trigger=always, fps=FPS)
    flush()
    assert decode(tmp_path / "rl-video-episode-0.mp4").indices == [0, 1, 2, 3]


# -- interpreter exit and fork --------------------------------------------------------------


PAINTED = """
    import sys
    from helpers import painted
    from recorder import save_video
    always = lambda i: True
    frames = [painted(i, 64, 96) for i in range(120)]
"""


def test_files_are_complete_at_exit_without_flush(tmp_path: Path) -> None:
    result = run_child(
        PAINTED
        + """
    save_video(frames, sys.argv[1], episode_trigger=always, step_trigger=lambda s: s == 50, fps=30)
    print("returned")
    """,
        tmp_path / "videos",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "returned"
    videos = tmp_path / "videos"
    assert sorted(p.name for p in videos.iterdir()) == [
        "rl-video-episode-0.mp4",
        "rl-video-step-50.mp4",
    ]
    assert decode(videos / "rl-video-episode-0.mp4").indices == list(range(120))
    assert decode(videos / "rl-video-step-50.mp4").indices == list(range(51, 120))


def test_save_video_from_a_thread_after_exit_began(tmp_path: Path) -> None:
    """A non-daemon thread saving after the main thread finished: saved, and no hang."""
    result = run_child(
        PAINTED
        + """
    import threading

    def late() -> None:
        threading.main_thread().join()  # returns once the interpreter's exit hooks ran
        handles = save_video(frames, sys.argv[1], episode_trigger=always, fps=30)
        print("done" if all(h.done() for h in handles) else "pending")

    save_video(frames[:3], sys.argv[1], episode_trigger=always, name_prefix="early", fps=30)
    threading.Thread(target=late).start()
    """,
        tmp_path / "videos",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    videos = tmp_path / "videos"
    assert decode(videos / "rl-video-episode-0.mp4").indices == list(range(120))
    assert decode(videos / "early-episode-0.mp4").indices == [0, 1, 2]
    assert sorted(p.name for p in videos.iterdir()) == [
        "early-episode-0.mp4",
        "rl-video-episode-0.mp4",
    ]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_gets_its_own_default_recorder(tmp_path: Path) -> None:
    save_video(episode(3), tmp_path / "parent", episode_trigger=always, fps=FPS)
    flush()  # the parent's worker is idle when we fork
    parent_default = default_recorder()
    assert parent_default is not None

    def child() -> None:
        assert default_recorder() is None
        handles = save_video(episode(4), tmp_path / "child", episode_trigger=always, fps=FPS)
        flush()
        assert default_recorder() is not None
        assert default_recorder() is not parent_default
        assert handles[0].result().frames == 4
        assert (tmp_path / "child" / "rl-video-episode-0.mp4").exists()
        close_default()

    assert run_child(child).returncode == 0
    assert decode(tmp_path / "child" / "rl-video-episode-0.mp4").indices == [0, 1, 2, 3]
    # The parent's default recorder is untouched by the child.
    assert default_recorder() is parent_default
    save_video(
        episode(2), tmp_path / "parent", episode_trigger=always, name_prefix="after", fps=FPS
    )
    flush()
    assert decode(tmp_path / "parent" / "after-episode-0.mp4").indices == [0, 1]
