"""Which clips a trigger set produces: gymnasium.utils.save_video is the oracle."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import decode, frame_counts, painted

from recorder import Recorder, capped_cubic_video_schedule

Trigger = Callable[[int], bool] | None

TRIGGERS: dict[str, tuple[Trigger, Trigger]] = {
    "default": (None, None),
    "every-episode": (lambda e: True, None),
    "odd-episodes": (lambda e: e % 2 == 1, None),
    "steps-mod-4": (None, lambda s: s % 4 == 0),
    "both": (lambda e: e % 3 == 0, lambda s: s % 5 == 2),
}


def gymnasium_files(
    tmp: Path, frames: list, ep_t: Trigger, st_t: Trigger, vl: int | None, episode: int, step0: int
) -> dict[str, int]:
    from gymnasium.utils.save_video import save_video

    save_video(
        list(frames),
        str(tmp),
        episode_trigger=ep_t,
        step_trigger=st_t,
        video_length=vl,
        episode_index=episode,
        step_starting_index=step0,
        fps=10,
    )
    return frame_counts(tmp) if tmp.exists() else {}


CASES = list(itertools.product(TRIGGERS, [None, 1, 3], [1, 2, 7], [(0, 0), (8, 13), (27, 40)]))


@pytest.mark.parametrize(("trigger", "video_length", "length", "start"), CASES)
def test_submit_matches_gymnasium(
    tmp_path: Path, trigger: str, video_length: int | None, length: int, start: tuple[int, int]
) -> None:
    ep_t, st_t = TRIGGERS[trigger]
    episode, step0 = start
    frames = [painted(i, 16, 112) for i in range(length)]
    expected = gymnasium_files(tmp_path / "gym", frames, ep_t, st_t, video_length, episode, step0)
    with Recorder(
        tmp_path / "rec", fps=10, episode_trigger=ep_t, step_trigger=st_t, video_length=video_length
    ) as rec:
        handles = rec.submit(frames, episode_index=episode, step_starting_index=step0)
    got = frame_counts(tmp_path / "rec")
    assert got == expected
    assert sorted(h.path.name for h in handles) == sorted(expected)


@pytest.mark.parametrize("trigger", list(TRIGGERS))
def test_streaming_matches_submit_and_skips_unwanted(tmp_path: Path, trigger: str) -> None:
    ep_t, st_t = TRIGGERS[trigger]
    calls: list[int] = []

    def counted(s: int) -> bool:
        calls.append(s)
        return bool(st_t(s)) if st_t else False

    length, step0 = 23, 5
    frames = [painted(i) for i in range(length)]
    with Recorder(tmp_path / "a", episode_trigger=ep_t, step_trigger=st_t, video_length=4) as a:
        a.submit(frames, episode_index=2, step_starting_index=step0)
    rendered = []
    with (
        Recorder(
            tmp_path / "b",
            episode_trigger=ep_t,
            step_trigger=counted if st_t else None,
            video_length=4,
        ) as b,
        b.episode(2, step_starting_index=step0) as ep,
    ):
        for i in range(length):
            if ep.wants_frame:
                rendered.append(i)
                ep.append(frames[i])
            else:
                ep.skip()
    assert frame_counts(tmp_path / "b") == frame_counts(tmp_path / "a")
    # each step trigger is asked once per step, in order
    if st_t:
        assert calls == list(range(step0, step0 + length - 1))
    # frames that no clip needed were never rendered
    for path in (tmp_path / "b").glob("*.mp4"):
        video = decode(path)
        assert set(video.indices) <= set(rendered)
    if trigger == "default":
        assert rendered == []  # episode 2 is not in the default schedule


def test_step_clip_frames_are_the_right_ones(tmp_path: Path) -> None:
    frames = [painted(i) for i in range(12)]
    with Recorder(tmp_path, step_trigger=lambda s: s == 103, video_length=3) as rec:
        rec.submit(frames, step_starting_index=100)
    # step 103 is frame 4 (frame 0 is the reset frame, frame 1 is step 100)
    assert decode(tmp_path / "rl-video-step-103.mp4").indices == [4, 5, 6]


def test_capped_cubic_schedule_matches_gymnasium() -> None:
    from gymnasium.utils.save_video import capped_cubic_video_schedule as theirs

    assert [capped_cubic_video_schedule(i) for i in range(5000)] == [theirs(i) for i in range(5000)]


def test_video_length_ends_clip_before_episode_ends(tmp_path: Path) -> None:
    with Recorder(tmp_path, episode_trigger=lambda e: True, video_length=5) as rec:
        ep = rec.episode(0)
        for i in range(5):
            ep.append(painted(i))
        # the clip is complete: it is written without waiting for the episode to end
        rec.flush()
        assert ep.handles[0].done()
        assert not ep.wants_frame
        ep.append(painted(5))  # ignored
        ep.close()
    assert decode(tmp_path / "rl-video-episode-0.mp4").indices == list(range(5))
